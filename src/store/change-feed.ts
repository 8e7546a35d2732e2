// What other service processes write, as it happens: one change stream on the database, read by
// every part that would otherwise poll (work loops, caches). A replica set or a sharded cluster has
// change streams; a standalone server has none, and then the feed says so once and stays idle, and
// its users poll as before. A stream that drops is opened again; since changes may have been missed
// meanwhile, every listener is told, as if its collection had changed.
import type { Connection, mongo } from 'mongoose';
import type { Logger } from '../logger.js';
import { isReplicated } from './transactions.js';

/** One change as a listener sees it: the collection, and the fields the change set (the whole document for an insert or a replace). */
export interface Change {
  collection: string;
  operation: string;
  fields: Record<string, unknown>;
}

type Listener = (change: Change | undefined) => void;

/**
 * Which changes of a collection a listener wants, as a `$match` on the change event that the database
 * runs: a chart of thousands of records, or a job's progress, then never leaves the database.
 * Undefined: every change.
 */
export type ChangeSelector = Record<string, unknown> | undefined;

/** The changes that may bring a worker work: picked by the database (`selector`), then judged by the worker (`wanted`; undefined: changes may have been missed). */
export interface WorkIn {
  selector: ChangeSelector;
  wanted: (change: Change | undefined) => boolean;
}

/** What no listener reads, left out of every event: a record's body and index, a job's payload and progress. */
const unread = Object.fromEntries(
  [
    'fullDocument.resource',
    'fullDocument.idx',
    'fullDocument.dt',
    'fullDocument.access',
    'fullDocument.payload',
    'fullDocument.progress',
    'updateDescription.updatedFields.progress',
  ].map((field) => [field, 0]),
);

const reopenAfterMs = 1000;

export class ChangeFeed {
  private readonly listeners = new Map<string, { listener: Listener; selector: ChangeSelector }[]>();
  private stream?: mongo.ChangeStream;
  private stopped = false;
  /** True while a stream is open: the time a missed change can stay unseen is then short. */
  live = false;

  constructor(
    private readonly connection: Connection,
    private readonly log: Logger,
  ) {}

  /**
   * Calls `listener` with each change of `collection` that `selector` picks (and with undefined when
   * changes may have been missed). A listener may also hear changes another listener of the same
   * collection picked: each still judges what it hears.
   */
  on(collection: string, listener: Listener, selector?: ChangeSelector): void {
    this.listeners.set(collection, [...(this.listeners.get(collection) ?? []), { listener, selector }]);
  }

  /** Opens the stream where the database has them; answers whether it does. */
  async start(): Promise<boolean> {
    const db = this.connection.db;
    if (!db || !(await isReplicated(this.connection))) {
      this.log.info('the database has no change streams (a standalone server): workers poll, caches expire after a short time');
      return false;
    }
    this.open(db);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.live = false;
    await this.stream?.close().catch(() => undefined);
  }

  private open(db: mongo.Db): void {
    if (this.stopped) return;
    const wanted = [...this.listeners].map(([collection, listeners]) => {
      const selectors = listeners.map((l) => l.selector);
      return selectors.every((selector) => selector) ? { 'ns.coll': collection, $or: selectors } : { 'ns.coll': collection };
    });
    const stream = db.watch([{ $match: { operationType: { $in: ['insert', 'update', 'replace', 'delete'] }, $or: wanted } }, { $project: unread }]);
    this.stream = stream;
    stream.on('change', (event: mongo.ChangeStreamDocument) => {
      this.live = true;
      const change = changeOf(event);
      if (change) for (const { listener } of this.listeners.get(change.collection) ?? []) listener(change);
    });
    stream.once('error', (err: Error & { code?: unknown }) => {
      if (this.stopped) return;
      this.live = false;
      this.log.warn({ err: err.name, code: err.code }, 'the change stream dropped; opening it again');
      void stream.close().catch(() => undefined);
      for (const { listener } of [...this.listeners.values()].flat()) listener(undefined);
      setTimeout(() => this.open(db), reopenAfterMs).unref();
    });
    // The server has accepted the stream once it answers the first command.
    stream.once('init', () => {
      this.live = !this.stopped;
    });
  }
}

function changeOf(event: mongo.ChangeStreamDocument): Change | undefined {
  if (!('ns' in event) || !event.ns || !('coll' in event.ns) || !event.ns.coll) return undefined;
  const fields =
    event.operationType === 'insert' || event.operationType === 'replace'
      ? (event.fullDocument as Record<string, unknown>)
      : event.operationType === 'update'
        ? (event.updateDescription.updatedFields ?? {})
        : {};
  return { collection: event.ns.coll, operation: event.operationType, fields };
}
