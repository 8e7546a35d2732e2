// FHIR Bulk Data export (`GET /fhir/$export`, `/fhir/Patient/$export`, `/fhir/Group/{id}/$export`), asynchronous: the
// kick-off queues a durable job and answers 202 with a status URL under /bulk; the job reads the store
// a batch at a time and writes NDJSON files into GridFS, de-identified unless an allowed role asks
// otherwise; the status URL answers 202 with X-Progress, then the manifest; DELETE cancels. An ended
// export and its files are deleted once its retention has passed (the manifest's Expires header).
import type { Router } from 'express';
import type { FhirService, Reply } from '../fhir/interactions.js';
import type { Logger } from '../logger.js';
import type { Invocation } from '../operations/operation.js';
import type { ExportFiles } from '../store/export-files.js';
import type { JobQueue } from '../store/jobs.js';
import type { BulkExportOptions } from './job.js';
import { kickOff } from './kick-off.js';
import { exportRoutes } from './routes.js';
import { ExportWorker } from './worker.js';

export { exportJobKind, type BulkExportOptions } from './job.js';

export class BulkExport {
  readonly worker: ExportWorker;
  /** GET /bulk/{id} (status or manifest), DELETE /bulk/{id} (cancel), GET /bulk/{id}/{file} (NDJSON); mount behind authentication. */
  readonly routes: Router;

  constructor(
    service: FhirService,
    private readonly jobs: JobQueue,
    files: ExportFiles,
    log: Logger,
    private readonly options: BulkExportOptions,
  ) {
    this.worker = new ExportWorker(jobs, files, service, log, options);
    this.routes = exportRoutes(jobs, files, options);
  }

  /** The kick-off (for a role the gate let call it): checks the parameters, queues the job, answers 202 with its status URL. */
  kickOff(call: Invocation): Promise<Reply> {
    return kickOff(call, this.jobs, this.options, () => this.worker.nudge());
  }
}
