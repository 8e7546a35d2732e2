// The stages of a case (DESIGN.md's flow), built from the configuration: intake and its poller,
// retrieval's worker, review, the opinion and its delivery, Bulk Data export and the outcome counters;
// the FHIR operations that hand over to them; the stores they keep their work in; and the change feed
// that wakes their workers when another process enqueues work (and drops the store's cached Endpoints).
import type { Authentication } from './auth/authentication.js';
import { CaseEvents } from './case/events.js';
import { casePipeline } from './case/pipeline.js';
import type { Conformance } from './conformance/artifacts.js';
import type { Config } from './config.js';
import type { Database } from './database/connect.js';
import { BulkExport, exportJobKind } from './export/bulk-export.js';
import type { Institutions } from './intake/institutions.js';
import { caseOpener } from './intake/open-case.js';
import { Poller } from './intake/poller.js';
import { RequestIntake } from './intake/submit.js';
import type { FhirService } from './fhir/interactions.js';
import type { Logger } from './logger.js';
import { operationTable, type OperationTable } from './operations/index.js';
import { Opinions } from './opinion/opinions.js';
import { OpinionSigner } from './opinion/signing.js';
import { installOutcomes, type Outcomes } from './outcomes/install.js';
import { retrievalJobKind } from './retrieval/retrieve-chart.js';
import { RetrievalWorker } from './retrieval/worker.js';
import { installReviewWorkflow, type ReviewWorkflow } from './review/workflow.js';
import { AttachmentStore } from './store/attachments.js';
import { ChangeFeed } from './store/change-feed.js';
import { CursorStore } from './store/cursors.js';
import { ExportFiles } from './store/export-files.js';
import { enqueuedOf, JobQueue } from './store/jobs.js';
import type { Models } from './store/models.js';
import { Outbox, owingIn } from './store/outbox.js';
import { owedToReferrer } from './writeback/communications.js';
import { DeliveryWorker } from './writeback/delivery.js';

/** The record types whose versions may owe a delivery to the referring institution. */
const deliveredTypes = ['DiagnosticReport', 'Communication', 'CommunicationRequest'];

export interface Stages {
  jobs: JobQueue;
  attachments: AttachmentStore;
  review: ReviewWorkflow;
  signer: OpinionSigner;
  bulkExport: BulkExport;
  outcomes: Outcomes;
  operations: OperationTable;
  /** Starts the change feed and the background workers: retrieval, polling, delivery, export, the counters' catching up. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface StageContext {
  config: Config;
  log: Logger;
  conformance: Conformance;
  database: Database;
  models: Models;
  service: FhirService;
  institutions: Institutions;
  auth: Authentication;
}

export async function buildStages({ config, log, conformance, database, models, service, institutions, auth }: StageContext): Promise<Stages> {
  const { connection } = database;
  const { retrieval } = config;
  const outboundRetry = {
    attempts: retrieval.retryAttempts,
    baseDelayMs: retrieval.retryBaseDelayMs,
    maxDelayMs: retrieval.retryMaxDelayMs,
    callTimeoutMs: retrieval.callTimeoutMs,
  };
  const jobs = new JobQueue(connection);
  const outbox = new Outbox(models, deliveredTypes);
  await Promise.all([jobs.init(), outbox.init()]);
  const cursors = new CursorStore(connection);
  const attachments = new AttachmentStore(connection);
  const events = new CaseEvents();
  const worker = new RetrievalWorker(jobs, cursors, service, events, log, {
    credentialsFor: (ehrBase) => institutions.credentialsFor(ehrBase),
    institutionAt: async (ehrBase) => (await institutions.endpointFor(ehrBase))?.managingOrganization?.reference,
    pageSize: retrieval.pageSize,
    concurrency: retrieval.concurrency,
    retry: outboundRetry,
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
  const intake = new RequestIntake(service, institutions, cursors, outboundRetry);
  const signer = await OpinionSigner.load(config.opinionKey, log);
  const { delivery: deliveryConfig } = config;
  const opinions = new Opinions(service, signer, outbox);
  opinions.install();
  const delivery = new DeliveryWorker(outbox, service, institutions, opinions, log, {
    ...deliveryConfig,
    retry: { ...outboundRetry, attempts: deliveryConfig.callRetryAttempts, maxDelayMs: deliveryConfig.callRetryMaxDelayMs },
  });
  // A message for the referring side owes a delivery, stored in the same write (after the review's hooks have linked it to its case).
  for (const type of ['Communication', 'CommunicationRequest']) service.hookWrites(type, { order: 200, before: owedToReferrer(service) });
  // Bulk Data export: the kick-off is a FHIR operation; status, files and cancel live under /bulk.
  const bulkExport = new BulkExport(service, jobs, new ExportFiles(connection, models), log, { ...config.bulkExport, baseUrl: config.baseUrl });
  // Outcome analytics: counters kept as cases move, $evaluate-measure, the analysts' figures and page.
  const outcomes = await installOutcomes(service, connection, cursors, { authenticate: auth.authenticate, scope: auth.requireScope('Measure', 'r') }, log);
  // Which event starts which stage (case/pipeline.ts).
  const openCase = caseOpener(service, jobs, institutions, () => worker.nudge());
  casePipeline(service, events, { openCase, review, opinions, delivery, outcomes });
  // The FHIR operations (operations/index.ts), each handing over to the stage that does the work.
  const operations = operationTable(conformance, { intake, routing: review.routing, opinions, delivery, bulkExport, reports: outcomes.reports });
  const poller = new Poller((onError, onRefused) => intake.pollAll(onError, onRefused), config.pollIntervalMs, log);
  // What other processes write reaches this one through the change feed: it wakes the workers and drops cached Endpoints.
  const feed = new ChangeFeed(connection, log);
  service.repository.cache.follow(feed);
  worker.wakeOn(feed, 'jobs', enqueuedOf(retrievalJobKind));
  bulkExport.worker.wakeOn(feed, 'jobs', enqueuedOf(exportJobKind));
  for (const type of outbox.types) delivery.wakeOn(feed, type, owingIn);
  return {
    jobs,
    attachments,
    review,
    signer,
    bulkExport,
    outcomes,
    operations,
    start: async () => {
      await feed.start();
      worker.start();
      poller.start();
      delivery.start();
      bulkExport.worker.start();
      void outcomes.recover().catch((err: Error) => log.warn({ err: err.name }, 'outcome counters could not catch up'));
    },
    stop: async () => {
      // The work in hand may finish within the grace; past it, it is left as it is (a retrieval waiting
      // on a server that does not answer, say): its job's or delivery's lease runs out and it is taken
      // up again, by another process or the next start, and the stop goes on to close the database.
      const workers = Promise.all([poller.stop(), delivery.stop(), worker.stop(), bulkExport.worker.stop()]);
      let grace: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([
        workers.then(() => true),
        new Promise<boolean>((resolve) => (grace = setTimeout(() => resolve(false), config.shutdownGraceMs))),
      ]);
      clearTimeout(grace);
      if (!inTime) log.warn({ graceMs: config.shutdownGraceMs }, 'stopping with work in hand: it is taken up again once its lease runs out');
      await feed.stop();
    },
  };
}
