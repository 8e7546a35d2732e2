// Assembles the service: database, store, validator, FHIR API, health probes; used by main and tests.
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { loadConformance } from './conformance/artifacts.js';
import { openDatabase, type Database } from './database/connect.js';
import { agentOfRequest } from './fhir/actor.js';
import { FhirService } from './fhir/interactions.js';
import { fhirRouter } from './fhir/router.js';
import { Institutions } from './intake/institutions.js';
import { caseOpener, requestIdentity } from './intake/open-case.js';
import { Poller } from './intake/poller.js';
import { RequestIntake } from './intake/submit.js';
import { loadSigningKey } from './outbound/authorization.js';
import { RetrievalWorker } from './retrieval/worker.js';
import { installReviewWorkflow, type ReviewWorkflow } from './review/workflow.js';
import { CursorStore } from './store/cursors.js';
import { JobQueue } from './store/jobs.js';
import { createModels, ensureIndexes } from './store/models.js';
import { Repository } from './store/repository.js';
import { ResourceValidator } from './validation/validator.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export interface RunningServer {
  url: string;
  database: Database;
  jobs: JobQueue;
  review: ReviewWorkflow;
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const conformance = loadConformance();
  const database = await openDatabase(config, log);
  try {
    const models = createModels(database.connection);
    const jobs = new JobQueue(database.connection);
    await Promise.all([ensureIndexes(models), jobs.init()]);
    const service = new FhirService(new Repository(models, config.baseUrl), new ResourceValidator(conformance), conformance, config.baseUrl);
    const { retrieval } = config;
    const signingKey = await loadSigningKey(config.smartKey);
    const institutions = new Institutions(service, signingKey);
    const cursors = new CursorStore(database.connection);
    const worker = new RetrievalWorker(jobs, cursors, service, log, {
      credentialsFor: (ehrBase) => institutions.credentialsFor(ehrBase),
      pageSize: retrieval.pageSize,
      concurrency: retrieval.concurrency,
      retry: { attempts: retrieval.retryAttempts, baseDelayMs: retrieval.retryBaseDelayMs, maxDelayMs: 15_000 },
      leaseMs: retrieval.leaseMs,
      pollMs: retrieval.pollMs,
      maxAttempts: 5,
    });
    const review = installReviewWorkflow(service, institutions, config.review);
    service.implicitCondition = requestIdentity(service);
    service.onCreated(caseOpener(service, jobs, institutions, () => worker.nudge()));
    const intake = new RequestIntake(service, institutions, cursors, { attempts: retrieval.retryAttempts, baseDelayMs: retrieval.retryBaseDelayMs, maxDelayMs: 15_000 });
    service.operations.set('submit', { methods: ['POST'], run: (_s, { body }) => intake.submit(body) });
    service.operations.set('notify', { methods: ['POST'], run: (_s, { id }) => intake.notify(id as string) });
    const poller = new Poller((onError) => intake.pollAll(onError), config.pollIntervalMs, log);
    const app = express();
    app.disable('x-powered-by');
    app.set('trust proxy', 'loopback');
    app.use((req, res, next) => {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        // The route pattern, never the URL: ids and search values can identify a patient.
        const route = `${req.baseUrl}${(req.route as { path?: string } | undefined)?.path ?? ''}` || 'unmatched';
        log.info({ method: req.method, route, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
      });
      next();
    });
    app.use('/fhir', agentOfRequest);
    app.get('/healthz', (_req, res) => {
      res.json({ status: 'ok' });
    });
    app.get('/readyz', async (_req, res) => {
      const ready = await database.ping();
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'database unreachable' });
    });
    // The public half of the SMART Backend Services key, for institutions to register.
    app.get('/.well-known/jwks.json', (_req, res) => {
      res.json({ keys: signingKey ? [signingKey.publicJwk] : [] });
    });
    app.use('/fhir', fhirRouter(service, { maxBodyBytes: config.maxBodyBytes, version, log }));
    const server: Server = await new Promise((resolve, reject) => {
      const s = app.listen(config.port, config.host, () => resolve(s));
      s.once('error', reject);
    });
    worker.start();
    poller.start();
    const { port } = server.address() as AddressInfo;
    const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
    log.info({ port, engine: database.engine }, 'second-opinion service listening');
    return {
      url: `http://${host}:${port}`,
      database,
      jobs,
      review,
      close: async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await poller.stop();
        await worker.stop();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
