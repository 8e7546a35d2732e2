// The /bulk routes of an export, for the caller who kicked it off only: GET /bulk/{id} (202 with
// X-Progress while it runs, then the manifest), DELETE /bulk/{id} (cancel), GET /bulk/{id}/{file}
// (an NDJSON file). Mount behind authentication.
import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response, type Router } from 'express';
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Principal } from '../auth/bearer.js';
import { informational, notFound, outcomeOf } from '../base/outcome.js';
import type { ExportFiles } from '../store/export-files.js';
import type { Job, JobQueue } from '../store/jobs.js';
import { type BulkExportOptions, callerKey, ended, expiresAt, exportJobKind, type ExportPayload, type ExportProgress, statusUrl } from './job.js';

export function exportRoutes(jobs: JobQueue, files: ExportFiles, options: BulkExportOptions): Router {
  const router = express.Router();
  const fail = (res: Response, status: number, outcome: OperationOutcome): void => {
    res.status(status).type('application/fhir+json').send(JSON.stringify(outcome));
  };
  // Another caller's export, an expired one, or none: the same 404, so that an export's existence is not given away.
  const ownJob = async (req: Request, res: Response): Promise<Job | undefined> => {
    const job = /^[0-9a-f-]{36}$/.test(req.params.id as string) ? await jobs.get(req.params.id as string) : undefined;
    const caller = res.locals.principal as Principal | undefined;
    const live = job && !(ended(job) && expiresAt(job, options) <= new Date());
    if (live && job.kind === exportJobKind && caller && (job.payload as unknown as ExportPayload).caller === callerKey(caller)) return job;
    fail(res, 404, notFound('No such export').outcome);
    return undefined;
  };
  router.get('/:id', async (req, res) => {
    const job = await ownJob(req, res);
    if (!job) return;
    const progress = job.progress as ExportProgress;
    if (ended(job)) res.set('Expires', expiresAt(job, options).toUTCString());
    if (job.state === 'failed')
      return fail(res, 500, outcomeOf([{ severity: 'error', code: 'exception', details: { text: `The export failed: ${job.error ?? 'unknown error'}` } }]));
    if (job.state !== 'done') {
      const payload = job.payload as unknown as ExportPayload;
      const at = progress.type ? `; ${progress.type} (type ${(progress.typeIndex ?? 0) + 1} of ${payload.types.length})` : '';
      res
        .status(202)
        .set({ 'X-Progress': `${job.state === 'pending' ? 'queued' : 'running'}: ${progress.written ?? 0} resources written${at}`, 'Retry-After': '1' })
        .end();
      return;
    }
    res.status(200).json(manifest(job, options));
  });
  router.delete('/:id', async (req, res) => {
    const job = await ownJob(req, res);
    if (!job) return;
    await jobs.remove(job._id);
    await files.remove(job._id);
    res
      .status(202)
      .type('application/fhir+json')
      .send(JSON.stringify(informational('The export is cancelled and its files are deleted')));
  });
  router.get('/:id/:name', async (req, res) => {
    const job = await ownJob(req, res);
    if (!job) return;
    const output = job.state === 'done' ? (job.progress as ExportProgress).output?.find((o) => o.name === req.params.name) : undefined;
    const file = output && (await files.open(output.file));
    if (!file) return fail(res, 404, notFound('No such file in this export').outcome);
    res.status(200).type('application/fhir+ndjson').setHeader('content-length', file.length);
    await pipeline(file.stream(), res).catch(() => res.destroy()); // the client went away
  });
  return router;
}

/** The manifest of a finished export: its files, each at its URL under the status URL. */
function manifest(job: Job, options: BulkExportOptions): Record<string, unknown> {
  const payload = job.payload as unknown as ExportPayload;
  const progress = job.progress as ExportProgress;
  return {
    transactionTime: progress.transactionTime,
    request: payload.request,
    requiresAccessToken: true,
    output: (progress.output ?? []).map((o) => ({ type: o.type, url: `${statusUrl(options, job._id)}/${o.name}`, count: o.count })),
    error: [],
  };
}
