// Durable background jobs: stored in the database, claimed under a lease, and picked up again by
// any worker once the lease runs out (after a crash or a restart). Single-document atomic updates only.
// A job that has ended moves from `jobs` to `jobs_ended`, so that `jobs` holds only the work still to
// do and stays small however many jobs have run; an ended job still marks its id as taken. A claim is
// one findOneAndUpdate on the index by kind, state and lease, exclusive across service processes.
// A job enqueued by one process wakes the workers of all (enqueuedOf, read by the change feed).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Schema, type Connection, type Model } from 'mongoose';
import type { Change, WorkIn } from './change-feed.js';
import { modelOf } from './model-of.js';
import { inSession } from './transactions.js';

export type JobState = 'pending' | 'running' | 'done' | 'failed';

export interface Job<P = Record<string, unknown>, G = Record<string, unknown>> {
  _id: string;
  kind: string;
  state: JobState;
  payload: P;
  progress: G;
  attempts: number;
  leaseUntil: Date;
  owner?: string;
  error?: string;
  createdAt: Date;
  updatedAt: Date;
}

/** Whether a change of the `jobs` collection (seen by the change feed) may be a new job of `kind`; undefined: changes may have been missed. */
export const enqueuedOf = (kind: string): WorkIn => ({
  selector: { operationType: 'insert', 'fullDocument.kind': kind },
  wanted: (change: Change | undefined): boolean => !change || (change.operation === 'insert' && change.fields.kind === kind),
});

/** What a claim looks for: a job of `kind` that nobody holds at `now`, oldest first. */
export const claimableBy = (kind: string, now: Date) => ({
  filter: { kind, state: { $in: ['pending', 'running'] }, leaseUntil: { $lt: now } },
  sort: { createdAt: 1 as const },
});

export class JobQueue {
  private readonly jobs: Model<Job>;
  private readonly ended: Model<Job>;
  /** Who holds a job: this queue, named by host and process id so that an operator reading `jobs` can tell which process it is. */
  readonly owner = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;

  constructor(connection: Connection) {
    const schema = new Schema<Job>(
      {
        _id: String,
        kind: String,
        state: String,
        payload: Schema.Types.Mixed,
        progress: Schema.Types.Mixed,
        attempts: Number,
        leaseUntil: Date,
        owner: String,
        error: String,
        createdAt: Date,
        updatedAt: Date,
      },
      { versionKey: false, minimize: false, collection: 'jobs' },
    );
    const endedSchema = schema.clone();
    endedSchema.set('collection', 'jobs_ended');
    endedSchema.index({ kind: 1, updatedAt: 1 });
    schema.index({ kind: 1, state: 1, leaseUntil: 1 });
    this.jobs = modelOf(connection, 'Job', schema);
    this.ended = modelOf(connection, 'EndedJob', endedSchema);
  }

  async init(): Promise<void> {
    await Promise.all([this.jobs.createIndexes(), this.ended.createIndexes()]);
    // Jobs that ended before ended jobs had their own collection.
    for (const job of await this.jobs.find({ state: { $in: ['done', 'failed'] } }).lean<Job[]>()) {
      await this.ended.collection.replaceOne({ _id: job._id } as never, job, { upsert: true });
      await this.jobs.deleteOne({ _id: job._id });
    }
  }

  /** Adds a job once: enqueueing the same id again changes nothing. In a transaction, the job is added with its writes. */
  async enqueue(kind: string, id: string, payload: Record<string, unknown>): Promise<void> {
    if (await this.ended.exists({ _id: id }).session(inSession().session ?? null)) return;
    const now = new Date();
    try {
      await this.jobs.collection.insertOne(
        {
          _id: id,
          kind,
          state: 'pending',
          payload,
          progress: {},
          attempts: 0,
          leaseUntil: new Date(0),
          createdAt: now,
          updatedAt: now,
        } as never,
        inSession(),
      );
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
  }

  /** Takes the oldest job of this kind that nobody holds, for `leaseMs`. */
  async claim(kind: string, leaseMs: number): Promise<Job | undefined> {
    const now = new Date();
    const { filter, sort } = claimableBy(kind, now);
    const job = await this.jobs
      .findOneAndUpdate(
        filter,
        { $set: { state: 'running', owner: this.owner, leaseUntil: new Date(now.getTime() + leaseMs), updatedAt: now }, $inc: { attempts: 1 } },
        { sort, returnDocument: 'after' },
      )
      .lean<Job>();
    return job ?? undefined;
  }

  /** Extends the lease and records progress; false when the job is no longer ours. */
  async heartbeat(id: string, leaseMs: number, progress?: Record<string, unknown>): Promise<boolean> {
    const now = new Date();
    const result = await this.jobs.updateOne(
      { _id: id, owner: this.owner, state: 'running' },
      { $set: { leaseUntil: new Date(now.getTime() + leaseMs), updatedAt: now, ...(progress ? { progress } : {}) } },
    );
    return result.matchedCount === 1;
  }

  /** Gives back a job we hold, unfinished (its process is stopping), to be claimed again at once; the attempt does not count. */
  async release(id: string): Promise<boolean> {
    const result = await this.jobs.updateOne(
      { _id: id, owner: this.owner, state: 'running' },
      { $set: { leaseUntil: new Date(0), updatedAt: new Date() }, $inc: { attempts: -1 } },
    );
    return result.matchedCount === 1;
  }

  /**
   * Ends a job we hold (false: it is not ours any more, say cancelled); `progress` is written with its
   * end, so a result appears with it. The ended job is written before the job to do is removed: a
   * crash in between leaves the job to be done again, never lost.
   */
  async finish(id: string, state: 'done' | 'failed', error?: string, progress?: Record<string, unknown>): Promise<boolean> {
    const job = await this.jobs.findById(id).lean<Job>();
    if (job?.owner !== this.owner) return false;
    const updatedAt = new Date();
    await this.ended.collection.replaceOne(
      { _id: id } as never,
      { ...job, state, updatedAt, ...(error ? { error } : {}), ...(progress ? { progress } : {}) },
      { upsert: true },
    );
    if ((await this.jobs.deleteOne({ _id: id, owner: this.owner })).deletedCount === 1) return true;
    await this.ended.deleteOne({ _id: id, updatedAt }); // taken from us meanwhile (removed, or claimed after our lease ran out)
    return false;
  }

  /** Forgets a job, to do or ended; a worker holding it finds out at its next heartbeat. */
  async remove(id: string): Promise<boolean> {
    const [todo, ended] = await Promise.all([this.jobs.deleteOne({ _id: id }), this.ended.deleteOne({ _id: id })]);
    return todo.deletedCount + ended.deletedCount > 0;
  }

  /** The jobs of a kind that ended (done or failed) before `before`. */
  async endedBefore(kind: string, before: Date): Promise<string[]> {
    const ended = await this.ended.find({ kind, updatedAt: { $lt: before } }, { _id: 1 }).lean<{ _id: string }[]>();
    return ended.map((job) => job._id);
  }

  /** A job to do, or else an ended one. */
  async get(id: string): Promise<Job | undefined> {
    return (await this.jobs.findById(id).lean<Job>()) ?? (await this.ended.findById(id).lean<Job>()) ?? undefined;
  }
}
