// Assembles the service: database, store, validator, FHIR API, health probes; used by main and tests.
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { pipeline } from 'node:stream/promises';
import express from 'express';
import type { Endpoint } from '@medplum/fhirtypes';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { isCapabilityRequest, startAuthentication } from './auth/authentication.js';
import { hasSecondOpinionCategory, loadConformance } from './conformance/artifacts.js';
import { openDatabase, type Database } from './database/connect.js';
import { AuditTrail } from './access/audit.js';
import { gateOf } from './access/gate.js';
import { Ownership } from './access/ownership.js';
import { agentOfRequest } from './fhir/actor.js';
import { FhirService } from './fhir/interactions.js';
import { notFound } from './fhir/outcome.js';
import { errorHandler, fhirRouter } from './fhir/router.js';
import { hardening } from './http/hardening.js';
import { requestLog } from './http/request-log.js';
import { Institutions } from './intake/institutions.js';
import { caseOpener, requestIdentity } from './intake/open-case.js';
import { Poller } from './intake/poller.js';
import { RequestIntake } from './intake/submit.js';
import { loadSigningKey } from './outbound/authorization.js';
import { Opinions } from './opinion/opinions.js';
import { BulkExport, exportJobKind } from './export/bulk-export.js';
import { operationTable } from './operations/index.js';
import { OpinionSigner } from './opinion/signing.js';
import { loadRecordIdKey } from './retrieval/record-id-key.js';
import { retrievalJobKind } from './retrieval/retrieve-chart.js';
import { RetrievalWorker } from './retrieval/worker.js';
import { installOutcomes } from './outcomes/install.js';
import { installReviewWorkflow, type ReviewWorkflow } from './review/workflow.js';
import { AttachmentStore } from './store/attachments.js';
import { ChangeFeed } from './store/change-feed.js';
import { CursorStore } from './store/cursors.js';
import { ExportFiles } from './store/export-files.js';
import { enqueuedOf, JobQueue } from './store/jobs.js';
import { Outbox, owingIn } from './store/outbox.js';
import { createModels, ensureIndexes } from './store/models.js';
import { Repository } from './store/repository.js';
import { Transactions } from './store/transactions.js';
import { ResourceValidator } from './validation/validator.js';
import { owedToReferrer } from './writeback/communications.js';
import { DeliveryWorker } from './writeback/delivery.js';
import { installWorkbench } from './workbench/install.js';

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
  loadRecordIdKey(config, log);
  const database = await openDatabase(config, log);
  try {
    const models = createModels(database.connection);
    const jobs = new JobQueue(database.connection);
    await Promise.all([ensureIndexes(models), jobs.init()]);
    const auth = await startAuthentication(config, database.connection, log);
    const service = new FhirService(new Repository(models, config.baseUrl), new ResourceValidator(conformance), conformance, config.baseUrl);
    const { retrieval } = config;
    const signingKey = await loadSigningKey(config.smartKey);
    const institutions = new Institutions(service, signingKey);
    // Every version written is labelled with its one owning institution, its case and its patient: what access is decided by.
    const ownership = new Ownership(service.repository, institutions, (r) => hasSecondOpinionCategory(conformance, r));
    service.repository.labeller = (resource, placement) => ownership.labelsOf(resource, placement);
    // What other processes write reaches this one through the change feed: it wakes the workers and drops cached Endpoints.
    const feed = new ChangeFeed(database.connection, log);
    service.repository.transactions = await Transactions.of(database.connection);
    service.repository.cache.follow(feed);
    service.hookWrites(
      'Endpoint',
      async (endpoint) => void (await institutions.refuseSharedAddress(endpoint as Endpoint)),
      async () => undefined,
    );
    const audit = new AuditTrail(service.repository, conformance, config.baseUrl, log);
    const workbench = await installWorkbench(config, database.connection, conformance, auth, audit, log);
    const cursors = new CursorStore(database.connection);
    const attachments = new AttachmentStore(database.connection);
    const worker = new RetrievalWorker(jobs, cursors, service, log, {
      credentialsFor: (ehrBase) => institutions.credentialsFor(ehrBase),
      institutionAt: async (ehrBase) => (await institutions.endpointFor(ehrBase))?.managingOrganization?.reference,
      pageSize: retrieval.pageSize,
      concurrency: retrieval.concurrency,
      retry: { attempts: retrieval.retryAttempts, baseDelayMs: retrieval.retryBaseDelayMs, maxDelayMs: 15_000 },
      leaseMs: retrieval.leaseMs,
      pollMs: retrieval.pollMs,
      maxAttempts: retrieval.maxAttempts,
      sinceMarginMs: retrieval.sinceMarginMs,
      attachments: {
        store: attachments,
        maxBytes: retrieval.attachmentMaxBytes,
        publicBase: config.baseUrl,
        extensionUrl: `${conformance.canonical}/StructureDefinition/attachment-retrieval`,
      },
    });
    const review = installReviewWorkflow(service, institutions, config.review);
    service.implicitCondition = requestIdentity(service);
    service.onCreated(caseOpener(service, jobs, institutions, () => worker.nudge()));
    const intake = new RequestIntake(service, institutions, cursors, {
      attempts: retrieval.retryAttempts,
      baseDelayMs: retrieval.retryBaseDelayMs,
      maxDelayMs: 15_000,
    });
    const outbox = new Outbox(models, ['DiagnosticReport', 'Communication', 'CommunicationRequest']);
    await outbox.init();
    const signer = await OpinionSigner.load(config.opinionKey, log);
    const opinions = new Opinions(service, signer, outbox);
    opinions.install();
    const { delivery: deliveryConfig } = config;
    const delivery = new DeliveryWorker(outbox, service, institutions, opinions, log, {
      ...deliveryConfig,
      retry: { attempts: 2, baseDelayMs: retrieval.retryBaseDelayMs, maxDelayMs: 2000 },
    });
    opinions.onDeliveryOwed = () => delivery.nudge();
    for (const type of ['Communication', 'CommunicationRequest']) service.hookWrites(type, owedToReferrer(service), async () => delivery.nudge());
    // Bulk Data export: the kick-off is a FHIR operation; status, files and cancel live under /bulk.
    const bulkExport = new BulkExport(service, jobs, new ExportFiles(database.connection, models), log, {
      ...config.bulkExport,
      baseUrl: config.baseUrl,
      maxAttempts: 3,
    });
    // Outcome analytics: counters kept as cases move, $evaluate-measure, the analysts' figures and page.
    const outcomes = await installOutcomes(
      service,
      database.connection,
      cursors,
      { authenticate: auth.authenticate, scope: auth.requireScope('Measure', 'r') },
      log,
    );
    // The FHIR operations (operations/index.ts), each handing over to the stage that does the work.
    const operations = operationTable(conformance, { intake, routing: review.routing, opinions, delivery, bulkExport, reports: outcomes.reports });
    const poller = new Poller((onError, onRefused) => intake.pollAll(onError, onRefused), config.pollIntervalMs, log);
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
      res.json({ keys: [...(signingKey ? [signingKey.publicJwk] : []), signer.publicJwk, auth.publicJwk] });
    });
    // The token endpoint, client registration and the SMART configuration; attachments and /fhir need a token.
    app.use(workbench.routes);
    app.use(auth.routes);
    // Attachment content retrieved from referring institutions; the records' Attachment.url points here.
    app.use('/attachments', auth.authenticate, auth.requireScope('Binary', 'r'));
    app.get('/attachments/:id', async (req, res) => {
      const stored = /^[0-9a-f]{32}$/.test(req.params.id) ? await attachments.get(req.params.id) : undefined;
      const gate = gateOf(res, service.repository);
      gate.checkType('Binary', 'read');
      if (!stored || !(await gate.sees('Binary', stored.access))) {
        res
          .status(404)
          .type('application/fhir+json')
          .send(JSON.stringify(notFound('No such attachment').outcome));
        return;
      }
      res.status(200).type(stored.contentType).setHeader('content-length', stored.length);
      await pipeline(stored.stream(), res).catch(() => res.destroy()); // the client went away
    });
    app.use('/bulk', auth.authenticate, bulkExport.routes);
    app.use(outcomes.routes);
    app.use(
      '/fhir',
      auth.authenticateFhir,
      agentOfRequest,
      fhirRouter(service, operations, { maxBodyBytes: config.maxBodyBytes, maxJsonDepth: config.maxJsonDepth, version, log, authorize: auth.authorizeFhir }),
    );
    // Anything else: an OperationOutcome, never the framework's page or a stack trace.
    app.use((_req, _res, next) => next(notFound('No such endpoint: the FHIR API is at /fhir')));
    app.use(errorHandler(log));
    // Not app.listen: express 5 calls its callback on a listen error too, as if listening had begun.
    const server: Server = createServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    worker.wakeOn(feed, 'jobs', enqueuedOf(retrievalJobKind));
    bulkExport.worker.wakeOn(feed, 'jobs', enqueuedOf(exportJobKind));
    for (const type of outbox.types) delivery.wakeOn(feed, type, owingIn);
    await feed.start();
    worker.start();
    poller.start();
    delivery.start();
    bulkExport.worker.start();
    void outcomes.recover().catch((err: Error) => log.warn({ err: err.name }, 'outcome counters could not catch up'));
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
        await audit.drain();
        await poller.stop();
        await delivery.stop();
        await worker.stop();
        await bulkExport.worker.stop();
        await feed.stop();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
