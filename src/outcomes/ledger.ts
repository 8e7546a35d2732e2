// The outcome ledger: one document per case with the facts its counters hold (outcome_cases), the
// counters themselves (outcome_counters), the cases still waiting for an opinion (outcome_waiting,
// one document each while they wait), and the changes in progress (outcome_changes).
//
// A change of a case's facts is applied exactly once, without transactions:
//   1. it is written as the case's change in progress: an insert keyed by the case, so one change
//      per case at a time, across processes, on any engine (a second insert fails on the key);
//   2. each counter takes its delta with `$inc`, marking the change as applied (`applied.<change>`)
//      in the same single-document update; a counter already marked is skipped, so doing it again
//      is a no-op; then the case's document and its waiting entry take the new facts;
//   3. the change moves to `release`, the marks are removed, and the change is deleted.
// A crash anywhere leaves the change in outcome_changes, and recover() (or the next change of the
// case) finishes it. A change computed from facts another process had already replaced is found
// stale before it applies anything, and dropped.
//
// Every update here is a single-document atomic update, so this holds with several service
// processes on one database; the counter updates of a change go in one unordered bulkWrite.
import { randomUUID } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Connection, mongo } from 'mongoose';
import type { CaseFacts, CounterDelta } from './counters.js';
import { difference, merged } from './counters.js';

interface Change {
  /** The case's id, or `batch~<uuid>` for a bulk import. */
  _id: string;
  /** This change's own id: the counters' mark. */
  change: string;
  phase: 'apply' | 'release';
  owner: string;
  lease: Date;
  deltas: CounterDelta[];
  /** What the case's document becomes (absent for a bulk import). */
  becomes?: { seq: number; counted: CaseFacts };
}

export interface CaseOutcome {
  _id: string;
  seq: number;
  /** The change that wrote this version of the facts. */
  change?: string;
  counted: CaseFacts;
}

/** A case waiting for an opinion: what the waiting and overdue figures count. */
interface WaitingCase {
  _id: string;
  /** `YYYY-MM`: the month the case was opened. */
  period: string;
  due: string;
  strata: CaseFacts['strata'];
}

export interface CounterSum {
  dim: string;
  value: string;
  sums: Record<string, number>;
}

/** A document keyed by a string, as every ledger document is. */
type Document = { _id: string; [field: string]: unknown };
type Collection<T extends mongo.Document = Document> = mongo.Collection<T>;

const isDuplicateKey = (err: unknown): boolean =>
  (err as { code?: number }).code === 11000 || ((err as { writeErrors?: { code?: number }[] }).writeErrors ?? []).some((e) => e.code === 11000);
const same = (a: CaseFacts | undefined, b: CaseFacts): boolean => canonicalize(a) === canonicalize(b);

export class OutcomeLedger {
  readonly cases: Collection<CaseOutcome>;
  readonly counters: Collection;
  readonly changes: Collection<Change>;
  readonly waiting: Collection<WaitingCase>;
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
    this.changes = db.collection<Change>('outcome_changes');
    this.waiting = db.collection<WaitingCase>('outcome_waiting');
  }

  /** The indexes the report's reads use: counters by stratifier and month, waiting cases by month opened and due time. */
  async init(): Promise<void> {
    await Promise.all([this.counters.createIndex({ dim: 1, period: 1 }), this.waiting.createIndex({ period: 1, due: 1 })]);
  }

  async facts(caseId: string): Promise<CaseFacts | undefined> {
    return (await this.cases.findOne({ _id: caseId }, { projection: { counted: 1 } }))?.counted;
  }

  /** Makes the ledger hold `facts` for the case (`undefined`: what it holds already); answers whether anything changed. */
  record(caseId: string, facts: (counted: CaseFacts | undefined) => Promise<CaseFacts | undefined>): Promise<boolean> {
    return this.serially(caseId, async () => {
      for (;;) {
        const unfinished = await this.changes.findOne({ _id: caseId });
        if (unfinished) {
          await this.finish(unfinished, false);
          continue;
        }
        const doc = await this.cases.findOne({ _id: caseId });
        const next = await facts(doc?.counted);
        if (!next || same(doc?.counted, next)) return false;
        const change: Change = {
          _id: caseId,
          change: randomUUID(),
          phase: 'apply',
          owner: this.owner,
          lease: new Date(Date.now() + this.leaseMs),
          deltas: difference(doc?.counted, next),
          becomes: { seq: (doc?.seq ?? 0) + 1, counted: next },
        };
        if (!(await this.insertNew(this.changes, change))) continue; // another process has a change of this case in progress
        if (await this.finish(change, true)) return true;
      }
    });
  }

  /**
   * Records many new cases at once (a bulk import into an empty ledger, such as the benchmark's):
   * the same deltas, merged per counter and applied under one change. The change makes the counter
   * updates exactly once; the case documents are inserted before it is written.
   */
  async recordMany(cases: { caseId: string; facts: CaseFacts }[]): Promise<void> {
    if (!cases.length) return;
    const ignoringDuplicates = (err: unknown): void => {
      if (!isDuplicateKey(err)) throw err;
    };
    await this.cases
      .insertMany(
        cases.map(({ caseId, facts }) => ({ _id: caseId, seq: 1, counted: facts })),
        { ordered: false },
      )
      .catch(ignoringDuplicates);
    const waiting = cases.filter(({ facts }) => facts.waiting).map(({ caseId, facts }) => waitingCase(caseId, facts));
    if (waiting.length) await this.waiting.insertMany(waiting, { ordered: false }).catch(ignoringDuplicates);
    const id = `batch~${randomUUID()}`;
    const change: Change = {
      _id: id,
      change: id,
      phase: 'apply',
      owner: this.owner,
      lease: new Date(Date.now() + this.leaseMs),
      deltas: merged(cases.flatMap(({ facts }) => difference(undefined, facts))),
    };
    await this.changes.insertOne(change);
    await this.finish(change, true);
  }

  /** Finishes every change a crash or a failure left in progress; answers how many. */
  async recover(): Promise<number> {
    await this.upgrade();
    let finished = 0;
    for (const { _id } of await this.changes.find({}, { projection: { _id: 1 } }).toArray()) {
      await this.serially(_id, async () => {
        const current = await this.changes.findOne({ _id });
        if (current) {
          await this.finish(current, false);
          finished++;
        }
      });
    }
    return finished;
  }

  /**
   * A ledger written before waiting cases were a set counted them per month opened and due minute
   * (`kind: 'waiting'`): the set is made from the cases' facts, then those counters go.
   */
  private async upgrade(): Promise<void> {
    if (!(await this.counters.findOne({ kind: 'waiting' }, { projection: { _id: 1 } }))) return;
    for await (const { _id, counted } of this.cases.find({ 'counted.waiting': { $exists: true } })) {
      await this.waiting.replaceOne({ _id }, waitingCase(_id, counted), { upsert: true });
    }
    await this.counters.deleteMany({ kind: 'waiting' });
  }

  /**
   * Sums of counter fields over the months `from`..`to` (`YYYY-MM`), by stratifier value (or by month:
   * `byPeriod`). The database selects the counters (one document per month and stratum value, a few
   * hundred a year whatever the number of cases); their fields, one per figure and bucket, are added here.
   */
  async sums(from: string, to: string, dims: string[], options: { byPeriod?: boolean } = {}): Promise<CounterSum[]> {
    const byStratum = new Map<string, CounterSum>();
    for await (const { _id: _key, applied: _applied, period, dim, value, ...fields } of this.counters.find(countersOf(from, to, dims))) {
      const [d, v] = options.byPeriod ? ['month', period as string] : [dim as string, value as string];
      const sum = byStratum.get(`${d}|${v}`) ?? { dim: d, value: v, sums: {} };
      for (const [field, n] of Object.entries(fields)) if (typeof n === 'number') sum.sums[field] = (sum.sums[field] ?? 0) + n;
      byStratum.set(`${d}|${v}`, sum);
    }
    return [...byStratum.values()];
  }

  /** Cases opened in `from`..`to` and waiting (due before `dueBefore`, when given), counted in the database by stratifier value (`month`: by month opened). */
  async waitingCounts(from: string, to: string, dims: string[], dueBefore?: string): Promise<CounterSum[]> {
    const match = waitingOf(from, to, dueBefore);
    const counted = await Promise.all(
      dims.map(async (dim) => {
        const key = dim === 'all' ? null : dim === 'month' ? '$period' : `$strata.${dim}`;
        const rows = await this.waiting.aggregate<{ _id: string | null; n: number }>([{ $match: match }, { $group: { _id: key, n: { $sum: 1 } } }]).toArray();
        return rows.map(({ _id, n }) => ({ dim, value: _id ?? 'all', sums: { waiting: n } }));
      }),
    );
    return counted.flat();
  }

  /**
   * Phases 2 and 3 of a change, from wherever it stopped; waits out another process's live lease.
   * `fresh`: this process has just written the change, so nothing of it is applied yet. Answers
   * false when the change was stale (another change of the case came first) and has been dropped.
   */
  private async finish(change: Change, fresh: boolean): Promise<boolean> {
    const ours = { _id: change._id, change: change.change };
    if (!fresh && !(await this.claim(change))) return true; // finished by another process
    const mark = `applied.${change.change}`;
    if (change.phase === 'apply') {
      if (change.becomes) {
        const doc = await this.cases.findOne({ _id: change._id }, { projection: { seq: 1, change: 1 } });
        const [was, is] = [(doc?.seq ?? 0) === change.becomes.seq - 1, doc?.seq === change.becomes.seq && doc.change === change.change];
        if (!was && !is) {
          await this.changes.deleteOne(ours);
          return false;
        }
      }
      await this.applyOnce(change.deltas, change.change);
      if (change.becomes) {
        const { seq, counted } = change.becomes;
        await this.cases.updateOne({ _id: change._id }, { $set: { seq, counted, change: change.change } }, { upsert: true });
        if (counted.waiting) await this.waiting.replaceOne({ _id: change._id }, waitingCase(change._id, counted), { upsert: true });
        else await this.waiting.deleteOne({ _id: change._id });
      }
      await this.changes.updateOne(ours, { $set: { phase: 'release' } });
    }
    await this.counters.updateMany({ _id: { $in: change.deltas.map(({ key }) => key) } }, { $unset: { [mark]: '' } });
    await this.changes.deleteOne(ours);
    return true;
  }

  /** Takes over a change (ours, or its lease has run out); false once it is no longer in progress. */
  private async claim(change: Change): Promise<boolean> {
    for (;;) {
      const now = new Date();
      const claimed = await this.changes.updateOne(
        { _id: change._id, change: change.change, $or: [{ owner: this.owner }, { lease: { $lte: now } }] },
        { $set: { owner: this.owner, lease: new Date(now.getTime() + this.leaseMs) } },
      );
      if (claimed.matchedCount) return true;
      const current = await this.changes.findOne({ _id: change._id }, { projection: { change: 1 } });
      if (current?.change !== change.change) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * `$inc` on each counter that has not marked the change as applied, and the mark, in one update per
   * counter, all in one bulkWrite. The filter skips a counter already marked; its upsert then fails on
   * the key, as does one that another process created at the same moment: those are sent once more,
   * and a counter that fails again exists and is marked, so it had the change already.
   */
  private async applyOnce(deltas: CounterDelta[], change: string): Promise<void> {
    const mark = `applied.${change}`;
    let pending = deltas;
    for (let round = 0; round < 2 && pending.length; round++) {
      const failed = await this.counters
        .bulkWrite(
          pending.map(({ key, inc, meta }) => ({
            updateOne: {
              filter: { _id: key, [mark]: { $ne: true } },
              // The driver's typings want a Document here; the rule misreads the assertion as one the receiver does not need.
              // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
              update: { $inc: inc as mongo.Document, $set: { [mark]: true }, $setOnInsert: { ...meta } },
              upsert: true,
            },
          })),
          { ordered: false },
        )
        .then(
          () => [],
          (err: { writeErrors?: { index: number; code?: number }[] | { index: number; code?: number } }) => {
            const errors = [err.writeErrors ?? []].flat();
            if (!errors.length || errors.some((e) => e.code !== 11000)) throw err;
            return errors.map((e) => pending[e.index]);
          },
        );
      pending = failed;
    }
  }

  /** Inserts a document; false if one with its `_id` is there already. */
  private insertNew<T extends mongo.Document & { _id: string }>(collection: Collection<T>, doc: T): Promise<boolean> {
    return collection.insertOne(doc as mongo.OptionalUnlessRequiredId<T>).then(
      () => true,
      (err: Error) => (isDuplicateKey(err) ? false : Promise.reject(err)),
    );
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

/** The counters of stratifiers `dims` for the months `from`..`to`. */
export const countersOf = (from: string, to: string, dims: string[]) => ({ dim: { $in: dims }, period: { $gte: from, $lte: to } });

/** The cases opened in `from`..`to` and waiting (due before `dueBefore`, when given). */
export const waitingOf = (from: string, to: string, dueBefore?: string) => ({
  period: { $gte: from, $lte: to },
  ...(dueBefore ? { due: { $lt: dueBefore } } : {}),
});

function waitingCase(caseId: string, facts: CaseFacts): WaitingCase {
  return { _id: caseId, period: facts.openedMonth, due: facts.waiting?.due ?? 'none', strata: facts.strata };
}
