// Runs retrieval jobs from the durable queue: one at a time per process, under a lease that a
// heartbeat keeps alive, so a job whose process died is taken up again by the next one.
import type { CaseEvents } from '../case/events.js';
import type { FhirService } from '../fhir/interactions.js';
import type { Logger } from '../logger.js';
import { ReferringEhrError } from '../outbound/referring-ehr-client.js';
import { WorkLoop } from '../store/work-loop.js';
import type { CursorStore } from '../store/cursors.js';
import type { JobQueue } from '../store/jobs.js';
import { failCase, retrievalJobKind, retrieveChart, type RetrievalOptions, type RetrievalPayload, type RetrievalProgress } from './retrieve-chart.js';

export interface WorkerOptions extends RetrievalOptions {
  leaseMs: number;
  pollMs: number;
  maxAttempts: number;
}

export class RetrievalWorker extends WorkLoop {
  constructor(
    private readonly jobs: JobQueue,
    private readonly cursors: CursorStore,
    private readonly service: FhirService,
    private readonly events: CaseEvents,
    private readonly log: Logger,
    private readonly options: WorkerOptions,
  ) {
    super(options.pollMs, (err) => log.warn({ err: err.name }, 'a retrieval job failed and could not be recorded: its lease runs out and it is taken again'));
  }

  protected async takeOne(): Promise<boolean> {
    const job = await this.jobs.claim(retrievalJobKind, this.options.leaseMs).catch((err: Error) => {
      this.log.warn({ err: err.name }, 'could not claim a retrieval job');
      return undefined;
    });
    if (!job) return false;
    // A beat the database cannot take (gone, say, after a stop's grace ran out) is logged, never thrown
    // from the timer, which would end the process: the lease then runs out and the job is taken again.
    const beat = (): Promise<unknown> =>
      this.jobs
        .heartbeat(job._id, this.options.leaseMs)
        .catch((err: Error) => this.log.warn({ job: job._id, err: err.name }, 'could not extend a retrieval lease'));
    const heartbeat = setInterval(() => void beat(), this.options.leaseMs / 3);
    const started = Date.now();
    const progress: RetrievalProgress = {
      doneTypes: [],
      stored: 0,
      unchanged: 0,
      targets: [],
      attachmentsStored: 0,
      attachmentsSkipped: 0,
      ...(job.progress as Partial<RetrievalProgress>),
    };
    try {
      const onOutboundRefused = (origin: string) => this.log.warn({ job: job._id, origin }, 'outbound call refused: outside the registered Endpoint');
      await retrieveChart(
        this.service,
        this.cursors,
        job.payload as unknown as RetrievalPayload,
        progress,
        (p) => this.jobs.heartbeat(job._id, this.options.leaseMs, { ...p }).then(() => undefined),
        { ...this.options, onOutboundRefused, signal: this.stopSignal },
      );
      // The next stage starts before the job is done: a crash in between runs the job, and tells, again.
      await this.events.tell('chart-retrieved', { taskId: (job.payload as unknown as RetrievalPayload).taskId });
      await this.jobs.finish(job._id, 'done');
      this.log.info({ job: job._id, stored: progress.stored, unchanged: progress.unchanged, ms: Date.now() - started }, 'chart retrieved');
    } catch (err) {
      if (this.stopSignal.aborted) {
        // Stopped mid-way: given back with its progress, for another process or the next start to go on with.
        await this.jobs.release(job._id);
        this.log.info({ job: job._id, stored: progress.stored }, 'stopping: the retrieval is given back unfinished, to be taken up again');
        return true;
      }
      // Left running: the lease runs out and the job is tried again, up to maxAttempts.
      // Only our own outbound errors are worded safely enough for a log line.
      const reason = err instanceof ReferringEhrError ? err.message : (err as Error).name;
      this.log.warn({ job: job._id, attempt: job.attempts, reason }, 'chart retrieval attempt failed');
      if (job.attempts >= this.options.maxAttempts) {
        await this.jobs.finish(job._id, 'failed', reason);
        // The requester is told and the Task fails with the reason, as for a refusal: never a silent stall.
        await failCase(
          this.service,
          job.payload as unknown as RetrievalPayload,
          'ehr-unavailable',
          `Retrieval gave up after ${job.attempts} attempts: ${reason}`,
        ).catch((failure: Error) => this.log.warn({ job: job._id, err: failure.name }, 'could not mark the case failed'));
      } else {
        await this.jobs.heartbeat(job._id, Math.min(60_000, 1000 * 2 ** job.attempts));
      }
    } finally {
      clearInterval(heartbeat);
    }
    return true;
  }
}
