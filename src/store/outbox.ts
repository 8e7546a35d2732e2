// The outbox: deliveries owed to referring institutions, kept in the document of the resource version
// that owes them (so a version and its delivery are written in one atomic step), claimed under a lease
// by the delivery worker and settled by it. Every change is guarded by the version and the state, so
// a worker that lost its lease, or a newer version, is never overwritten.
//
// Which resources owe something, and when, is also listed in a small collection of its own
// (outbox_due, one document per resource, by `Type/id`), so that a poll with nothing due reads that
// list, not every opinion and message stored (a store that filters by scanning, FerretDB, would read
// them all every second). The list is a guide, not the record: an entry is added after the version is
// written, so a crash in between can lose one, and rebuild() makes the list again from the resources
// at start. An entry whose resource no longer owes anything is dropped when it is met.
import type { Connection, mongo } from 'mongoose';
import type { Delivery, Models, StoredResource } from './models.js';

export interface OwedDelivery {
  type: string;
  id: string;
  versionId: number;
  delivery: Delivery;
}

interface DueEntry {
  /** `Type/id` of the resource that owes a delivery. */
  _id: string;
  due: Date;
}

export class Outbox {
  private readonly dueList: mongo.Collection<DueEntry>;

  constructor(
    connection: Connection,
    private readonly models: Models,
    /** The resource types whose versions can owe a delivery. */
    private readonly types: readonly string[],
  ) {
    if (!connection.db) throw new Error('the outbox needs an open database connection');
    this.dueList = connection.db.collection<DueEntry>('outbox_due');
  }

  /** Lists a resource as owing a delivery from `due` on. */
  async owes(key: string, due: Date): Promise<void> {
    await this.dueList.replaceOne({ _id: key }, { due }, { upsert: true });
  }

  /** Makes the list of what is owed again from the resources themselves (at start); answers how many are owed. */
  async rebuild(): Promise<number> {
    let owed = 0;
    for (const type of this.types) {
      for await (const doc of this.models.resources(type).find({ 'outbox.state': 'pending' }, { _id: 1, outbox: 1 }).lean<StoredResource>().cursor()) {
        await this.owes(doc._id, (doc.outbox as Delivery).due);
        owed++;
      }
    }
    return owed;
  }

  /** Takes the next due delivery under a lease of `leaseMs` (its `due` moves past the lease). */
  async claim(leaseMs: number, now = new Date()): Promise<OwedDelivery | undefined> {
    for (const entry of await this.dueList.find({ due: { $lte: now } }).sort({ due: 1 }).limit(20).toArray()) {
      const type = entry._id.split('/')[0];
      if (!this.types.includes(type)) continue;
      const resources = this.models.resources(type);
      const doc = await resources
        .findOneAndUpdate({ _id: entry._id, 'outbox.state': 'pending', 'outbox.due': { $lte: now } }, { $set: { 'outbox.due': new Date(now.getTime() + leaseMs) }, $inc: { 'outbox.attempts': 1 } }, { new: true })
        .lean<StoredResource>();
      if (doc?.outbox) {
        await this.owes(entry._id, doc.outbox.due);
        return { type, id: doc.id, versionId: doc.versionId, delivery: doc.outbox };
      }
      // Not due after all: owed later (its entry moves), or owed nothing any more (its entry goes, unless a new version has just replaced it).
      const current = await resources.findById(entry._id, { outbox: 1 }).lean<StoredResource>();
      if (current?.outbox?.state === 'pending') await this.owes(entry._id, current.outbox.due);
      else await this.dueList.deleteOne({ _id: entry._id, due: entry.due });
    }
    return undefined;
  }

  /** Records the outcome of an attempt, if the delivery is still the one that was claimed. */
  async settle(owed: OwedDelivery, change: Partial<Delivery>): Promise<boolean> {
    const set = Object.fromEntries(Object.entries(change).map(([key, value]) => [`outbox.${key}`, value]));
    const key = `${owed.type}/${owed.id}`;
    const result = await this.models
      .resources(owed.type)
      .updateOne({ _id: key, versionId: owed.versionId, 'outbox.state': 'pending', 'outbox.attempts': owed.delivery.attempts }, { $set: set });
    if (result.modifiedCount === 1) {
      if (change.due) await this.owes(key, change.due);
      else if (change.state && change.state !== 'pending') await this.dueList.deleteOne({ _id: key, due: owed.delivery.due });
    }
    return result.modifiedCount === 1;
  }

  /** A failed delivery, due again now with a fresh give-up time; false when there is none to retry. */
  async retry(type: string, id: string, now = new Date()): Promise<boolean> {
    const result = await this.models
      .resources(type)
      .updateOne({ _id: `${type}/${id}`, 'outbox.state': 'failed' }, { $set: { 'outbox.state': 'pending', 'outbox.due': now, 'outbox.since': now, 'outbox.attempts': 0 } });
    if (result.modifiedCount === 1) await this.owes(`${type}/${id}`, now);
    return result.modifiedCount === 1;
  }

  async get(type: string, id: string): Promise<Delivery | undefined> {
    return (await this.models.resources(type).findById(`${type}/${id}`, { outbox: 1 }).lean<StoredResource>())?.outbox;
  }
}
