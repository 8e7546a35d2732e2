// The outbox: deliveries owed to referring institutions, kept in the document of the resource version
// that owes them (so a version and its delivery are written in one atomic step), claimed under a lease
// by a delivery worker of any service process and settled by it. Every change is guarded by the version
// and the state, so a worker that lost its lease, or a newer version, is never overwritten. A claim is
// one findOneAndUpdate on the index of pending deliveries by due time, so it is exclusive across
// processes and an idle poll reads no more than that index. A delivery owed in one process wakes the
// delivery workers of all (owingIn, read by the change feed).
import type { Change, WorkIn } from './change-feed.js';
import type { Delivery, Models, StoredResource } from './models.js';

export interface OwedDelivery {
  type: string;
  id: string;
  versionId: number;
  delivery: Delivery;
}

/** Whether a change of a resource (seen by the change feed) may owe a delivery; undefined: changes may have been missed. */
export const owingIn: WorkIn = {
  // A version stored owing one, or a change of a delivery's state (an operator's retry); never the chart's records.
  selector: { $or: [{ 'fullDocument.outbox.state': 'pending' }, { operationType: 'update' }] },
  wanted: (change: Change | undefined): boolean =>
    !change || change.fields['outbox.state'] === 'pending' || (change.fields.outbox as Delivery | undefined)?.state === 'pending',
};

/** The index a claim walks: pending deliveries by due time. */
export const owedIndex = { 'outbox.state': 1, 'outbox.due': 1 } as const;
/** What a claim looks for: the pending deliveries due by `now`, earliest first. */
export const owedBy = (now: Date) => ({ filter: { 'outbox.state': 'pending', 'outbox.due': { $lte: now } }, sort: { 'outbox.due': 1 as const } });

export class Outbox {
  constructor(
    private readonly models: Models,
    /** The resource types whose versions can owe a delivery. */
    readonly types: readonly string[],
  ) {}

  async init(): Promise<void> {
    await Promise.all(this.types.map((type) => this.models.resources(type).collection.createIndex(owedIndex, { name: 'outbox_owed' })));
  }

  /** Takes the earliest due delivery under a lease of `leaseMs` (its `due` moves past the lease). */
  async claim(leaseMs: number, now = new Date()): Promise<OwedDelivery | undefined> {
    for (const type of this.types) {
      const { filter, sort } = owedBy(now);
      const doc = await this.models
        .resources(type)
        .findOneAndUpdate(filter, { $set: { 'outbox.due': new Date(now.getTime() + leaseMs) }, $inc: { 'outbox.attempts': 1 } }, { sort, new: true })
        .lean<StoredResource>();
      if (doc?.outbox) return { type, id: doc.id, versionId: doc.versionId, delivery: doc.outbox };
    }
    return undefined;
  }

  /** Records the outcome of an attempt, if the delivery is still the one that was claimed. */
  async settle(owed: OwedDelivery, change: Partial<Delivery>): Promise<boolean> {
    const set = Object.fromEntries(Object.entries(change).map(([key, value]) => [`outbox.${key}`, value]));
    const result = await this.models
      .resources(owed.type)
      .updateOne(
        { _id: `${owed.type}/${owed.id}`, versionId: owed.versionId, 'outbox.state': 'pending', 'outbox.attempts': owed.delivery.attempts },
        { $set: set },
      );
    return result.modifiedCount === 1;
  }

  /** A failed delivery, due again now with a fresh give-up time; false when there is none to retry. */
  async retry(type: string, id: string, now = new Date()): Promise<boolean> {
    const result = await this.models
      .resources(type)
      .updateOne(
        { _id: `${type}/${id}`, 'outbox.state': 'failed' },
        { $set: { 'outbox.state': 'pending', 'outbox.due': now, 'outbox.since': now, 'outbox.attempts': 0 } },
      );
    return result.modifiedCount === 1;
  }

  async get(type: string, id: string): Promise<Delivery | undefined> {
    return (await this.models.resources(type).findById(`${type}/${id}`, { outbox: 1 }).lean<StoredResource>())?.outbox;
  }
}
