// The outcome ledger: one document per case with the facts its counters hold (outcome_cases), and
// the counters themselves (outcome_counters). A change of a case's facts is applied exactly once,
// without transactions, in two phases recorded in the case's document:
//   1. the new facts and the counter deltas they imply are written in one guarded update (`seq`);
//   2. each counter takes its delta with `$inc` only if it has not yet marked the event as applied
//      (`applied.<event>`, set in the same single-document update), so re-applying is a no-op;
//   3. once all are applied the case moves to `release`, the marks are removed, and the pending
//      entry is cleared. A crash anywhere leaves a pending entry that recover() finishes.
// Within a process, changes to one case are serialised; across processes a lease on the pending
// entry keeps a second process off it while the first is at work.
import { randomUUID } from 'node:crypto';
import type { Connection, mongo } from 'mongoose';
import type { CaseFacts, CounterDelta } from '../outcomes/counters.js';
import { difference, merged } from '../outcomes/counters.js';

interface Pending {
  id: string;
  phase: 'apply' | 'release';
  owner: string;
  lease: Date;
  deltas: CounterDelta[];
}

export interface CaseOutcome {
  _id: string;
  seq: number;
  counted: CaseFacts;
  pending?: Pending;
}

/** A bulk import's journal: its merged deltas, applied and released like a case's. */
interface Batch {
  _id: string;
  pending: Pending;
}

export interface CounterSum {
  dim: string;
  value: string;
  sums: Record<string, number>;
}

/** A document keyed by a string, as every ledger document is. */
type Document = { _id: string; [field: string]: unknown };
type Collection<T extends mongo.Document = Document> = mongo.Collection<T>;

const isDuplicateKey = (err: unknown): boolean => (err as { code?: number }).code === 11000 || ((err as { writeErrors?: { code?: number }[] }).writeErrors ?? []).some((e) => e.code === 11000);

export class OutcomeLedger {
  readonly cases: Collection<CaseOutcome>;
  readonly counters: Collection;
  private readonly batches: Collection<Batch>;
  private readonly owner = randomUUID();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    connection: Connection,
    private readonly leaseMs = 10_000,
  ) {
    const db = connection.db;
    if (!db) throw new Error('the outcome ledger needs an open database connection');
    this.cases = db.collection<CaseOutcome>('outcome_cases');
    this.counters = db.collection<Document>('outcome_counters');
    this.batches = db.collection<Batch>('outcome_batches');
  }

  async facts(caseId: string): Promise<CaseFacts | undefined> {
    return (await this.cases.findOne({ _id: caseId }, { projection: { counted: 1 } }))?.counted;
  }

  /** Makes the counters hold `facts` for the case (`undefined`: what they hold already); answers whether anything changed. */
  record(caseId: string, facts: (counted: CaseFacts | undefined) => Promise<CaseFacts | undefined>): Promise<boolean> {
    return this.serially(caseId, async () => {
      for (;;) {
        const doc = await this.cases.findOne({ _id: caseId });
        if (doc?.pending) {
          await this.finish(this.cases, caseId, doc.pending);
          continue;
        }
        const next = await facts(doc?.counted);
        if (!next) return false;
        const deltas = difference(doc?.counted, next);
        if (!deltas.length) return false;
        const seq = (doc?.seq ?? 0) + 1;
        const pending: Pending = { id: `${caseId.replaceAll('.', '_')}~${seq}`, phase: 'apply', owner: this.owner, lease: new Date(Date.now() + this.leaseMs), deltas };
        if (!doc) {
          const inserted = await this.cases.insertOne({ _id: caseId, seq, counted: next, pending }).then(() => true, (err) => (isDuplicateKey(err) ? false : Promise.reject(err)));
          if (!inserted) continue;
        } else {
          const { modifiedCount } = await this.cases.updateOne({ _id: caseId, seq: doc.seq, pending: { $exists: false } }, { $set: { seq, counted: next, pending } });
          if (!modifiedCount) continue; // another process moved the case first: read it again
        }
        await this.finish(this.cases, caseId, pending);
        return true;
      }
    });
  }

  /**
   * Records many new cases at once (a bulk import into an empty ledger, such as the benchmark's):
   * the same deltas, merged per counter and applied under one journal entry. The journal makes the
   * counter updates exactly once; the case documents are inserted before it is written.
   */
  async recordMany(cases: { caseId: string; facts: CaseFacts }[]): Promise<void> {
    if (!cases.length) return;
    await this.cases.insertMany(cases.map(({ caseId, facts }) => ({ _id: caseId, seq: 1, counted: facts })), { ordered: false });
    const id = `batch~${randomUUID()}`;
    const pending: Pending = { id, phase: 'apply', owner: this.owner, lease: new Date(Date.now() + this.leaseMs), deltas: merged(cases.flatMap(({ facts }) => difference(undefined, facts))) };
    await this.batches.insertOne({ _id: id, pending });
    await this.finish(this.batches, id, pending);
  }

  /** Finishes every change a crash or a failure left half-applied; answers how many. */
  async recover(): Promise<number> {
    let finished = 0;
    for (const collection of [this.batches, this.cases] as unknown as Collection<CaseOutcome>[]) {
      for (const doc of await collection.find({ pending: { $exists: true } }, { projection: { _id: 1 } }).toArray()) {
        await this.serially(doc._id, async () => {
          const current = await collection.findOne({ _id: doc._id });
          if (current?.pending) {
            await this.finish(collection, doc._id, current.pending);
            finished++;
          }
        });
      }
    }
    return finished;
  }

  /**
   * Sums of counter fields over the months `from`..`to` (`YYYY-MM`), by stratifier value (or by month:
   * `byPeriod`). The database selects the counters; they are added up here, since FerretDB 1.24
   * computes only the first accumulator of a `$group` (and there is one field per figure and bucket).
   */
  async sums(kind: 'month' | 'waiting', from: string, to: string, dims: string[], options: { byPeriod?: boolean; dueBefore?: string } = {}): Promise<CounterSum[]> {
    const match: mongo.Document = { kind, period: { $gte: from, $lte: to }, dim: { $in: dims }, ...(options.dueBefore ? { due: { $lt: options.dueBefore } } : {}) };
    const byStratum = new Map<string, CounterSum>();
    for await (const { _id: _key, applied: _applied, kind: _kind, period, dim, value, due: _due, ...fields } of this.counters.find(match)) {
      const [d, v] = options.byPeriod ? ['month', period as string] : [dim as string, value as string];
      const sum = byStratum.get(`${d}|${v}`) ?? { dim: d, value: v, sums: {} };
      for (const [field, n] of Object.entries(fields)) sum.sums[field] = (sum.sums[field] ?? 0) + (n as number);
      byStratum.set(`${d}|${v}`, sum);
    }
    return [...byStratum.values()];
  }

  /** Phase 2 and 3 of a change, from wherever it stopped; waits out another process's live lease. */
  private async finish(collection: Collection<CaseOutcome> | Collection<Batch>, id: string, pending: Pending): Promise<void> {
    const docs = collection as unknown as Collection<Document>;
    for (;;) {
      const now = new Date();
      const claimed = await docs.updateOne(
        { _id: id, 'pending.id': pending.id, $or: [{ 'pending.owner': this.owner }, { 'pending.lease': { $lte: now } }] },
        { $set: { 'pending.owner': this.owner, 'pending.lease': new Date(now.getTime() + this.leaseMs) } },
      );
      if (claimed.matchedCount) break;
      const current = await docs.findOne({ _id: id }, { projection: { 'pending.id': 1 } });
      if ((current?.pending as Pending | undefined)?.id !== pending.id) return; // finished by another process
      await new Promise((r) => setTimeout(r, 100));
    }
    const mark = `applied.${pending.id}`;
    if (pending.phase === 'apply') {
      await this.applyOnce(pending.deltas, mark);
      await docs.updateOne({ _id: id, 'pending.id': pending.id }, { $set: { 'pending.phase': 'release' } });
    }
    await this.counters.updateMany({ _id: { $in: pending.deltas.map((d) => d.key) } }, { $unset: { [mark]: '' } });
    await docs.updateOne({ _id: id, 'pending.id': pending.id }, collection === (this.batches as unknown) ? { $set: { done: true }, $unset: { pending: '' } } : { $unset: { pending: '' } });
  }

  /** `$inc` on each counter that has not marked the event as applied, and the mark, in one update. */
  private async applyOnce(deltas: CounterDelta[], mark: string): Promise<void> {
    const operation = (delta: CounterDelta): mongo.AnyBulkWriteOperation<Document> => ({
      updateOne: { filter: { _id: delta.key, [mark]: { $exists: false } }, update: { $inc: delta.inc as mongo.Document, $set: { [mark]: true }, $setOnInsert: { ...delta.meta } }, upsert: true },
    });
    let todo = deltas;
    while (todo.length) {
      try {
        await this.counters.bulkWrite(todo.map(operation), { ordered: false });
        return;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      // A duplicate key: the counter exists and has the mark (already applied), or another event made it first (do it again).
      const marked = new Set((await this.counters.find({ _id: { $in: todo.map((d) => d.key) }, [mark]: { $exists: true } }, { projection: { _id: 1 } }).toArray()).map((d) => d._id as string));
      todo = todo.filter((d) => !marked.has(d.key));
    }
  }

  private serially<T>(caseId: string, work: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(caseId) ?? Promise.resolve()).then(work, work);
    const settled = run.catch(() => undefined);
    this.queues.set(caseId, settled);
    void settled.then(() => {
      if (this.queues.get(caseId) === settled) this.queues.delete(caseId);
    });
    return run;
  }
}
