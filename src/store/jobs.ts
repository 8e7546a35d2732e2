// Durable background jobs: stored in the database, claimed under a lease, and picked up again by
// any worker once the lease runs out (after a crash or a restart). Single-document atomic updates only.
import { randomUUID } from 'node:crypto';
import { Schema, type Connection, type Model } from 'mongoose';

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

export class JobQueue {
  private readonly jobs: Model<Job>;
  readonly owner = randomUUID();

  constructor(connection: Connection) {
    const schema = new Schema<Job>(
      {
        _id: String, kind: String, state: String, payload: Schema.Types.Mixed, progress: Schema.Types.Mixed,
        attempts: Number, leaseUntil: Date, owner: String, error: String, createdAt: Date, updatedAt: Date,
      },
      { versionKey: false, minimize: false, collection: 'jobs' },
    );
    schema.index({ kind: 1, state: 1, leaseUntil: 1 });
    this.jobs = connection.models.Job ?? connection.model('Job', schema);
  }

  async init(): Promise<void> {
    await this.jobs.createIndexes();
  }

  /** Adds a job once: enqueueing the same id again changes nothing. */
  async enqueue(kind: string, id: string, payload: Record<string, unknown>): Promise<void> {
    const now = new Date();
    try {
      await this.jobs.collection.insertOne({
        _id: id, kind, state: 'pending', payload, progress: {}, attempts: 0, leaseUntil: new Date(0), createdAt: now, updatedAt: now,
      } as never);
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
  }

  /** Takes the oldest job of this kind that nobody holds, for `leaseMs`. */
  async claim(kind: string, leaseMs: number): Promise<Job | undefined> {
    const now = new Date();
    const job = await this.jobs
      .findOneAndUpdate(
        { kind, state: { $in: ['pending', 'running'] }, leaseUntil: { $lt: now } },
        { $set: { state: 'running', owner: this.owner, leaseUntil: new Date(now.getTime() + leaseMs), updatedAt: now }, $inc: { attempts: 1 } },
        { sort: { createdAt: 1 }, returnDocument: 'after' },
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

  /** Ends a job we hold (false: it is not ours any more); `progress` is written in the same update, so a result appears with its end. */
  async finish(id: string, state: 'done' | 'failed', error?: string, progress?: Record<string, unknown>): Promise<boolean> {
    const result = await this.jobs.updateOne({ _id: id, owner: this.owner }, { $set: { state, updatedAt: new Date(), ...(error ? { error } : {}), ...(progress ? { progress } : {}) } });
    return result.matchedCount === 1;
  }

  /** Forgets a job; a worker holding it finds out at its next heartbeat. */
  async remove(id: string): Promise<boolean> {
    return (await this.jobs.deleteOne({ _id: id })).deletedCount === 1;
  }

  /** The jobs of a kind that ended (done or failed) before `before`. */
  async endedBefore(kind: string, before: Date): Promise<string[]> {
    const ended = await this.jobs.find({ kind, state: { $in: ['done', 'failed'] }, updatedAt: { $lt: before } }, { _id: 1 }).lean<{ _id: string }[]>();
    return ended.map((job) => job._id);
  }

  async get(id: string): Promise<Job | undefined> {
    return (await this.jobs.findById(id).lean<Job>()) ?? undefined;
  }
}
