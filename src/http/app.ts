// The HTTP face of the service, in the order a request meets it: hardening and the request log, the
// audit trail, health probes, the public keys, the workbench, the token endpoint, attachments, Bulk Data files, the
// analysts' endpoints, the FHIR API, and an OperationOutcome for anything else.
import express, { type Express, type RequestHandler, type Router } from 'express';
import type { JWK } from 'jose';
import type { AuditTrail } from '../access/audit.js';
import { isCapabilityRequest, type Authentication } from '../auth/authentication.js';
import type { Config } from '../config.js';
import type { Database } from '../database/connect.js';
import { agentOfRequest } from '../fhir/actor.js';
import { notFound } from '../base/outcome.js';
import { errorHandler } from '../fhir/router.js';
import type { Logger } from '../logger.js';
import { hardening } from './hardening.js';
import { requestLog } from './request-log.js';

export interface HttpParts {
  database: Database;
  auth: Authentication;
  audit: AuditTrail;
  /** The reviewers' workbench and people's sign-in (src/workbench/). */
  workbench: Router;
  /** The public keys served at /.well-known/jwks.json. */
  publicKeys: JWK[];
  /** GET /attachments/{id}, with its own authentication. */
  attachments: Router;
  /** Bulk Data status, files and cancel; mounted behind authentication. */
  bulk: Router;
  /** The analysts' endpoints and page, with their own authentication. */
  outcomes: Router;
  /** The FHIR API (fhir/router.ts), mounted at /fhir behind authentication. */
  fhir: RequestHandler;
}

export function httpApp(config: Config, log: Logger, parts: HttpParts): Express {
  const { auth, audit, database } = parts;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(...hardening({ corsOrigins: config.corsOrigins, ratePerMinute: config.ratePerMinute }));
  app.use(requestLog(log));
  app.use('/fhir', audit.recorder('rest', isCapabilityRequest));
  app.use(['/attachments', '/bulk'], audit.recorder('rest'));
  app.use('/auth/token', audit.recorder('login'));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ready = await database.ping();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'database unreachable' });
  });
  // The public halves of the SMART Backend Services key (for institutions to register), of the
  // key opinions are signed with (for anyone to check a signature) and of the access-token key.
  app.get('/.well-known/jwks.json', (_req, res) => {
    res.json({ keys: parts.publicKeys });
  });
  // The workbench and sign-in; the token endpoint, client registration and the SMART configuration;
  // attachments and /fhir need a token.
  app.use(parts.workbench);
  app.use(auth.routes);
  app.use(parts.attachments);
  app.use('/bulk', auth.authenticate, parts.bulk);
  app.use(parts.outcomes);
  app.use('/fhir', auth.authenticateFhir, agentOfRequest, parts.fhir);
  // Anything else: an OperationOutcome, never the framework's page or a stack trace.
  app.use((_req, _res, next) => next(notFound('No such endpoint: the FHIR API is at /fhir')));
  app.use(errorHandler(log));
  return app;
}
