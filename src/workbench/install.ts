// The reviewers' workbench, assembled for the server: people's sign-in (auth/sign-in.ts) and the web
// app under /workbench (built from web/workbench by `npm run build` into dist/web/workbench), which
// reads and writes everything through the FHIR API with the person's token.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import type { Connection } from 'mongoose';
import type { AuditTrail } from '../access/audit.js';
import type { Authentication } from '../auth/authentication.js';
import { startSignIn, type SignIn } from '../auth/sign-in.js';
import type { Config } from '../config.js';
import type { Conformance } from '../conformance/artifacts.js';
import type { Logger } from '../logger.js';
import { notFound } from '../base/outcome.js';

/** Where `npm run build` puts the app (scripts/build-workbench.ts), from dist/src/workbench. */
export const builtApp = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/workbench');

// Helmet's policy, plus blob: images (attachments fetched with a token are shown from memory).
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "worker-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join(';');

export interface Workbench {
  routes: Router;
  signIn: SignIn;
}

export async function installWorkbench(
  config: Config,
  connection: Connection,
  conformance: Conformance,
  auth: Authentication,
  audit: AuditTrail,
  log: Logger,
): Promise<Workbench> {
  const signIn = await startSignIn(config, connection, auth, audit, log);
  const routes = express.Router();
  routes.use(signIn.routes);
  if (!existsSync(path.join(builtApp, 'index.html'))) {
    // A service without its workbench still serves the API; the page says what to do.
    log.error({ path: builtApp }, 'the workbench is not built: run npm run build');
    routes.use('/workbench', (_req, _res, next) => next(notFound('The workbench is not built on this server: run npm run build')));
    return { routes, signIn };
  }
  // Codes the app shows by name, from profiles/: no second copy in the front end.
  const codes = (name: string) =>
    (conformance.codeSystems.get(`${conformance.canonical}/CodeSystem/${name}`)?.concept ?? []).map((c) => ({ code: c.code, display: c.display ?? c.code }));
  const settings = {
    canonical: conformance.canonical,
    concordance: codes('concordance'),
    followUp: codes('follow-up'),
    businessStatus: codes('task-business-status'),
  };
  // The app's relative links need the trailing slash (express's routing ignores it, so check the path itself).
  routes.get('/workbench', (req, res, next) => (req.path === '/workbench' ? res.redirect(301, '/workbench/') : next()));
  routes.use('/workbench', (_req, res, next) => {
    res.setHeader('Content-Security-Policy', contentSecurityPolicy);
    next();
  });
  routes.get('/workbench/settings.json', (_req, res) => {
    res.json(settings);
  });
  routes.use('/workbench', express.static(builtApp, { index: 'index.html', redirect: false }));
  return { routes, signIn };
}
