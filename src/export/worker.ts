// The export worker: runs queued export jobs one at a time under a lease, writing NDJSON files into
// the store (store/export-files.ts), de-identified and subset as the kick-off asked.
import type { Group, Resource } from '@medplum/fhirtypes';
import type { FhirService } from '../fhir/interactions.js';
import type { Logger } from '../logger.js';
import type { ExportFiles, ExportFileWriter } from '../store/export-files.js';
import type { Job, JobQueue } from '../store/jobs.js';
import { WorkLoop } from '../store/work-loop.js';
import { Deidentifier } from './deidentify.js';
import { type BulkExportOptions, Cancelled, exportJobKind, type ExportPayload, type ExportProgress } from './job.js';
import { compartmentCodes, inAnyCompartment, searchOf } from './query.js';
import { Subsetter } from './subset.js';
import { referenceTo } from '../base/ids.js';

const patientReference = referenceTo('Patient');

/**
 * Runs export jobs one at a time under a lease. An attempt starts from nothing (the files of an earlier
 * attempt are deleted, a new key is made) and the output is recorded with the job's end in one update,
 * so a crash never leaves a manifest pointing at partial files: the job is taken up again, or fails.
 */
export class ExportWorker extends WorkLoop {
  constructor(
    private readonly jobs: JobQueue,
    private readonly files: ExportFiles,
    private readonly service: FhirService,
    private readonly log: Logger,
    private readonly options: BulkExportOptions,
  ) {
    super(options.pollMs, (err) => log.warn({ err: err.name }, 'an export job failed and could not be recorded: its lease runs out and it is taken again'));
  }

  private nextSweep = 0;

  protected async takeOne(): Promise<boolean> {
    if (Date.now() >= this.nextSweep) {
      this.nextSweep = Date.now() + Math.min(60_000, (this.options.retentionSeconds * 1000) / 2);
      await this.deleteExpired().catch((err: Error) => this.log.warn({ err: err.name }, 'could not delete expired exports'));
    }
    const job = await this.jobs.claim(exportJobKind, this.options.leaseMs).catch((err: Error) => {
      this.log.warn({ err: err.name }, 'could not claim an export job');
      return undefined;
    });
    if (!job) return false;
    const started = Date.now();
    try {
      await this.files.remove(job._id); // an earlier attempt's, never to be listed
      if (job.attempts > this.options.maxAttempts) throw new Error(`gave up after ${this.options.maxAttempts} attempts`);
      const progress = await this.writeExport(job);
      if (!(await this.jobs.finish(job._id, 'done', undefined, { ...progress }))) throw new Cancelled();
      this.log.info({ job: job._id, written: progress.written, files: progress.output?.length, ms: Date.now() - started }, 'export written');
    } catch (err) {
      await this.files.remove(job._id, job.attempts).catch(() => undefined);
      if (err instanceof Cancelled) {
        this.log.info({ job: job._id }, 'export cancelled');
      } else {
        // Only the error's name: a message could quote stored values.
        const reason = (err as Error).message?.startsWith('gave up') ? (err as Error).message : (err as Error).name;
        this.log.warn({ job: job._id, attempt: job.attempts, reason }, 'export attempt failed');
        if (job.attempts >= this.options.maxAttempts) await this.jobs.finish(job._id, 'failed', `the export could not be written (${reason})`);
        else await this.jobs.heartbeat(job._id, Math.min(60_000, 1000 * 2 ** job.attempts));
      }
    }
    return true;
  }

  /** Deletes the exports that ended more than the retention ago: the files first, so none is left without its job. */
  private async deleteExpired(): Promise<void> {
    const expired = await this.jobs.endedBefore(exportJobKind, new Date(Date.now() - this.options.retentionSeconds * 1000));
    for (const id of expired) {
      await this.files.remove(id);
      await this.jobs.remove(id);
    }
    if (expired.length) this.log.info({ exports: expired.length }, 'expired exports deleted');
  }

  /** One attempt: each type in turn, into files of at most `fileMaxResources` resources. */
  private async writeExport(job: Job): Promise<ExportProgress> {
    const payload = job.payload as unknown as ExportPayload;
    const progress: ExportProgress = { written: 0, transactionTime: new Date().toISOString(), output: [] };
    const deidentifier = payload.deidentify ? new Deidentifier(this.service.fhirBase) : undefined;
    const subsetter = payload.elements ? new Subsetter(payload.elements) : undefined;
    const since = payload.since ? new Date(payload.since) : undefined;
    // The heartbeat keeps the lease and shows progress; a job that is no longer ours was cancelled.
    let lost = false;
    const heartbeat = setInterval(
      () => {
        const { output: _o, ...shown } = progress;
        this.jobs.heartbeat(job._id, this.options.leaseMs, shown).then(
          (ours) => (lost ||= !ours),
          () => undefined,
        );
      },
      Math.min(1000, this.options.leaseMs / 3),
    );
    try {
      const where = (type: string): Record<string, unknown> => {
        const clauses = [
          ...(since ? [{ lastUpdated: { $gt: since } }] : []),
          ...(payload.patients && type !== 'Patient' ? [inAnyCompartment(type)] : []),
          ...(payload.typeFilters?.[type] ? [{ $or: payload.typeFilters[type].map((q) => this.service.repository.filterOf(searchOf(type, q))) }] : []),
        ];
        return clauses.length > 1 ? { $and: clauses } : (clauses[0] ?? {});
      };
      const source = payload.group ? this.compartment(await this.members(payload.group), where) : (type: string) => this.files.resources(type, where(type));
      for (const [typeIndex, type] of payload.types.entries()) {
        Object.assign(progress, { type, typeIndex });
        let file: ExportFileWriter | undefined;
        const close = async (): Promise<void> => {
          if (!file) return;
          await file.close();
          progress.output?.push({ type, name: file.id.split('/').pop() as string, file: file.id, count: file.count });
        };
        for await (const resource of source(type)) {
          if (lost) throw new Cancelled();
          if (!file || file.count >= this.options.fileMaxResources) {
            await close();
            const n = (progress.output?.filter((o) => o.type === type).length ?? 0) + 1;
            file = this.files.create(`${job._id}/${job.attempts}/${type}-${n}.ndjson`, job._id, job.attempts);
          }
          const kept = subsetter ? subsetter.subset(resource) : resource;
          await file.write(JSON.stringify(deidentifier ? deidentifier.deidentify(kept) : kept));
          progress.written = (progress.written ?? 0) + 1;
        }
        await close();
      }
    } finally {
      clearInterval(heartbeat);
    }
    return progress;
  }

  /** The Group's member Patients (`Patient/id`), and the references to them at the institutions their records came from. */
  private async members(groupId: string): Promise<string[]> {
    const group = (await this.service.repository.read('Group', groupId)) as Group;
    const keys = (group.member ?? [])
      .filter((m) => !m.inactive)
      .map((m) => m.entity?.reference ?? '')
      .filter((r) => patientReference.test(r));
    const patients = await this.service.repository.readMany(keys);
    const sources = patients.map((p) => p.meta?.source?.replace(/\/_history\/.*$/, '')).filter((s): s is string => !!s);
    return [...keys, ...sources];
  }

  /** The records of a type in the members' compartments that match `where`. */
  private compartment(targets: string[], where: (type: string) => Record<string, unknown>): (type: string) => AsyncGenerator<Resource> {
    const members = targets.filter((t) => t.startsWith('Patient/')).map((t) => t.slice('Patient/'.length));
    return (type) =>
      type === 'Patient'
        ? this.files.resources('Patient', { id: { $in: members }, ...where('Patient') })
        : this.service.repository.streamReferencing(type, compartmentCodes, targets, where(type));
  }
}
