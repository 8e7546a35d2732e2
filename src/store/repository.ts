// The one place resources are read and written. Versions are kept with single-document atomic
// writes: a version guard on the current document.
import { randomUUID } from 'node:crypto';
import type { SearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { conflict, gone, notKnown, preconditionFailed } from '../base/outcome.js';
import { buildSearchIndex, supportedParameters } from './search/parameters.js';
import { buildFilter, buildSort } from './search/query.js';
import type { Delivery, HistoryEntry, Models, StoredResource } from './models.js';
import { PageWindows } from './page-windows.js';
import { ReadCache } from './read-cache.js';
import { inSession, Transactions } from './transactions.js';

export interface SearchMatch {
  resource: Resource;
  /** The search index written with it; _include reads references from here. */
  idx: Record<string, string[]>;
  /** Who may see it (see access/ownership.ts). */
  access: string[];
}

/** What the server knows about a write, beside the resource: never taken from the body (labelled by access/ownership.ts). */
export interface Placement {
  /** The institution the writer writes for: a referring system's, or the one retrieval fetched from. */
  owner?: string;
  /** A record copied from the owner's chart by retrieval, or its record of that copy: what it refers to is all the owner's. */
  retrieved?: boolean;
  /** The stored record this write replaces: its owner stays. */
  current?: StoredResource;
}

/**
 * The access labels of a resource about to be stored, from what the server knows of the write
 * (access/ownership.ts); it reads what it needs (the labels of what the resource refers to) from `store`.
 */
export type Labeller = (resource: Resource, placement: Placement, store: Repository) => Promise<string[]>;

/** A query a search or read is narrowed by (the caller's reach), merged into the store's filter. */
export type Narrowing = Record<string, unknown>;

export interface SearchResult {
  matches: SearchMatch[];
  /** Set when it costs nothing (the last page) or was asked for (`_total=accurate`, `_summary=count`). */
  total?: number;
  /** Whether there are matches after this page. */
  more: boolean;
}

export interface WriteResult {
  resource: Resource;
  created: boolean;
  /** The current document before this write, for undoing it in a failed transaction. */
  previous?: StoredResource;
  /** The labels the version stands with (see access/ownership.ts). */
  access: string[];
}

const maxRetries = 5;

export class Repository {
  /** Searches of the registered Endpoints, read several times by every case create, answered from memory. */
  readonly cache = new ReadCache(new Set(['Endpoint']));
  private readonly windows = new PageWindows();

  /**
   * `labeller` labels every version written; without one (tools, some tests) nothing is labelled.
   * `transactions` are the database's; without them (and on a standalone server) writes are made one by one.
   */
  constructor(
    private readonly models: Models,
    private readonly baseUrl: string,
    private readonly labeller: Labeller = async () => [],
    readonly transactions: Transactions = new Transactions(undefined, false),
  ) {}

  /** The current document, deleted or not; undefined when the resource never existed. */
  async current(type: string, id: string): Promise<StoredResource | undefined> {
    return (await this.models.resources(type).findById(`${type}/${id}`).lean<StoredResource>()) ?? undefined;
  }

  /** The current version; `known` is its document when the caller has just read it. */
  async read(type: string, id: string, known?: StoredResource): Promise<Resource> {
    const doc = known ?? (await this.current(type, id));
    if (!doc) {
      throw notKnown(type);
    }
    if (doc.deleted || !doc.resource) {
      throw gone(`${type}/${id} was deleted`);
    }
    return doc.resource;
  }

  async readVersion(type: string, id: string, versionId: string): Promise<Resource> {
    const version = Number(versionId);
    const current = await this.current(type, id);
    const entry = current?.versionId === version ? current : await this.models.history(type).findById(`${type}/${id}/${version}`).lean<HistoryEntry>();
    if (!current || !entry) {
      throw notKnown(type, 'version');
    }
    if (entry.deleted || !entry.resource) {
      throw gone(`${type}/${id} version ${versionId} is a deletion`);
    }
    return entry.resource;
  }

  /** Creates at `id`; `outbox` is a delivery the new version owes, written in the same document. */
  async create(resource: Resource, id: string = randomUUID(), outbox: Delivery | undefined, placement: Placement): Promise<WriteResult> {
    const stored = this.prepare(resource, id, 1, await this.labeller({ ...resource, id }, placement, this), outbox);
    await this.models.resources(resource.resourceType).collection.insertOne(stored as never, inSession());
    this.cache.forget(resource.resourceType);
    return { resource: stored.resource as Resource, created: true, access: stored.access ?? [] };
  }

  /** The labels a version of a resource would be written with (`placement.current`: the stored record it replaces). */
  labelsFor(resource: Resource, placement: Placement): Promise<string[]> {
    return this.labeller(resource, placement, this);
  }

  /** Creates many resources of one type (each with its id set) in one round trip; answers those whose id was taken. */
  async createMany(resources: Resource[], placement: Placement): Promise<Resource[]> {
    if (!resources.length) return [];
    const docs = await Promise.all(resources.map(async (r) => this.prepare(r, r.id as string, 1, await this.labeller(r, placement, this))));
    try {
      await this.models.resources(resources[0].resourceType).collection.insertMany(docs as never[], { ordered: false, ...inSession() });
      this.cache.forget(resources[0].resourceType);
      return [];
    } catch (err) {
      const failed = ((err as { writeErrors?: { index: number; code?: number; err?: { index: number; code?: number } }[] }).writeErrors ?? []).map(
        (e) => e.err ?? e,
      );
      if (!failed.length || failed.some((e) => e.code !== 11000)) throw err;
      return failed.map((e) => resources[e.index]);
    }
  }

  /**
   * Update (or create at a client-chosen id). With `ifMatch`, the write happens only on that version (412 otherwise).
   * `known` is the current document when the caller has just read it: the first attempt writes on it
   * without reading it again (the write is guarded by its version all the same).
   */
  async update(
    resource: Resource,
    ifMatch: number | undefined,
    outbox: Delivery | undefined,
    placement: Placement,
    known?: StoredResource,
  ): Promise<WriteResult> {
    const { resourceType: type, id } = resource as Resource & { id: string };
    for (let attempt = 0; attempt < maxRetries; attempt++) {
      const current = attempt === 0 && known ? known : await this.current(type, id);
      if (ifMatch !== undefined && current?.versionId !== ifMatch) {
        throw preconditionFailed(`${type}/${id} is at version ${current?.versionId ?? 'none'}, not ${ifMatch}`);
      }
      if (!current) {
        try {
          return await this.create(resource, id, outbox, placement);
        } catch (err) {
          if (isDuplicateKey(err)) continue; // created concurrently: update it instead
          throw err;
        }
      }
      // A delivery still owed by an earlier version stays owed unless this write brings its own.
      const next = this.prepare(resource, id, current.versionId + 1, await this.labelsFor(resource, { ...placement, current }), outbox ?? current.outbox);
      if (await this.replaceCurrent(current, next)) {
        this.cache.forget(type);
        return { resource: next.resource as Resource, created: current.deleted, previous: current, access: next.access ?? [] };
      }
      if (ifMatch !== undefined) {
        throw preconditionFailed(`${type}/${id} changed while it was being updated`);
      }
    }
    throw conflict(`${type}/${id} is being changed by others; try again`);
  }

  async delete(type: string, id: string): Promise<StoredResource | undefined> {
    for (let attempt = 0; attempt < maxRetries; attempt++) {
      const current = await this.current(type, id);
      if (!current) {
        throw notKnown(type);
      }
      if (current.deleted) {
        return undefined; // deleting a deleted resource is a no-op
      }
      const tombstone: StoredResource = {
        _id: current._id,
        type,
        id,
        versionId: current.versionId + 1,
        lastUpdated: new Date(),
        deleted: true,
        idx: {},
        dt: {},
        ...(current.access ? { access: current.access } : {}),
      };
      if (await this.replaceCurrent(current, tombstone)) {
        this.cache.forget(type);
        return current;
      }
    }
    throw conflict(`${type}/${id} is being changed by others; try again`);
  }

  /** A page of the versions of one resource, newest first (`offset` of them skipped), and how many there are in all (since `since`). */
  async history(type: string, id: string, page: { count: number; offset: number; since?: Date }): Promise<{ entries: HistoryEntry[]; total: number }> {
    const current = await this.current(type, id);
    if (!current) {
      throw notKnown(type);
    }
    const { count, offset, since } = page;
    const filter = { id, versionId: { $lt: current.versionId }, ...(since ? { lastUpdated: { $gte: since } } : {}) };
    const { idx: _i, dt: _d, outbox: _o, access: _a, ...head } = current;
    // The current version heads the list (when it is in range); the older ones follow from the history collection.
    const withHead = !since || current.lastUpdated >= since ? 1 : 0;
    const heads = withHead && offset === 0 && count > 0 ? [head] : [];
    const wanted = count - heads.length;
    const [older, olderCount] = await Promise.all([
      wanted > 0
        ? this.models
            .history(type)
            .find(filter)
            .sort({ versionId: -1 })
            .skip(Math.max(0, offset - withHead))
            .limit(wanted)
            .lean<HistoryEntry[]>()
        : [],
      this.models.history(type).countDocuments(filter),
    ]);
    return { entries: [...heads, ...older], total: withHead + olderCount };
  }

  /** The database filter of a search (its parameters; paging and sorting aside). */
  filterOf(search: SearchRequest): Record<string, unknown> {
    return buildFilter(search, this.baseUrl);
  }

  /**
   * `narrowing` (the caller's reach) is applied to the matches and to the total. The total is counted
   * only when asked for (`_total=accurate`, `_summary=count`): a count reads every index entry that
   * matches, so a default search stays as fast at 20,000 matches as at 20. A page that is the last one
   * states its total anyway, since it is known without a count; `_total=none` never states one.
   */
  async search(search: SearchRequest, narrowing?: Narrowing): Promise<SearchResult> {
    const filter = { ...this.filterOf(search), ...narrowing };
    const count = search.count ?? 20;
    const offset = search.offset ?? 0;
    const collection = this.models.resources(search.resourceType);
    const counting = search.total !== 'none' && (count === 0 || search.total === 'accurate');
    const [docs, counted] = await Promise.all([
      count === 0 ? Promise.resolve([]) : this.page(search.resourceType, filter, buildSort(search), offset, count),
      counting ? collection.countDocuments(filter) : Promise.resolve(undefined),
    ]);
    const more = docs.length > count;
    const matches = docs.slice(0, count).map((d) => ({ resource: d.resource as Resource, idx: d.idx ?? {}, access: d.access ?? [] }));
    const lastPage = !more && (offset === 0 || matches.length > 0);
    const total = counted ?? (search.total !== 'none' && lastPage ? offset + matches.length : undefined);
    return { matches, total, more };
  }

  /**
   * `count` matches after `offset` in `sort` order, and one more when there are more. A page newest
   * first is read from the time its last answer ended when that still holds a full page (see
   * page-windows.ts), so its cost follows the page and what was written since, not the matches.
   */
  private async page(type: string, filter: Record<string, unknown>, sort: Record<string, 1 | -1>, offset: number, count: number): Promise<StoredResource[]> {
    const read = (where: Record<string, unknown>) =>
      this.models
        .resources(type)
        .find(where, { resource: 1, idx: 1, access: 1, lastUpdated: 1 })
        .sort(sort)
        .skip(offset)
        .limit(count + 1)
        .lean<StoredResource[]>();
    if (!isNewestFirst(sort)) return read(filter);
    const key = `${type} ${offset} ${count} ${JSON.stringify(filter)}`;
    const since = this.windows.get(key);
    let docs = since ? await read({ ...filter, lastUpdated: { $gte: since } }) : [];
    if (docs.length <= count) docs = await read(filter);
    if (docs.length > count) this.windows.set(key, docs[count].lastUpdated);
    else this.windows.forget(key);
    return docs;
  }

  /** Current resources by `Type/id` key, skipping unknown and deleted ones. */
  async readMany(keys: string[]): Promise<Resource[]> {
    return (await this.readManyStored(keys)).map((d) => d.resource as Resource);
  }

  /** The labels of current records by `Type/id` key, skipping unknown and deleted ones: what ownership reads of a record's references. */
  async labelsOfMany(keys: string[]): Promise<Pick<StoredResource, '_id' | 'access'>[]> {
    const docs = await Promise.all(
      [...byType(keys)].map(([type, ids]) =>
        this.models
          .resources(type)
          .find({ _id: { $in: ids }, deleted: false }, { access: 1 })
          .lean<Pick<StoredResource, '_id' | 'access'>[]>(),
      ),
    );
    return docs.flat();
  }

  /** Like readMany, with each resource's stored document (its labels among them). */
  async readManyStored(keys: string[]): Promise<StoredResource[]> {
    // One query a type, answered from the _id index however many keys it names.
    const docs = await Promise.all(
      [...byType(keys)].map(async ([type, ids]) =>
        ids.length === 1
          ? [await this.models.resources(type).findById(ids[0], { resource: 1, deleted: 1, access: 1 }).lean<StoredResource>()].filter(
              (d): d is StoredResource => !!d && !d.deleted,
            )
          : await this.models
              .resources(type)
              .find({ _id: { $in: ids }, deleted: false }, { resource: 1, access: 1 })
              .lean<StoredResource[]>(),
      ),
    );
    return docs.flat();
  }

  /** Resources of the type(s) whose reference parameter(s) point at any of `targets`; `limit` 0 is all. */
  async referencing(type: string | string[], code: string | string[], targets: string[], limit: number): Promise<Resource[]> {
    return (await this.referencingStored(type, code, targets, limit)).map((d) => d.resource as Resource);
  }

  /** Like referencing, with each stored document, narrowed by `narrowing`. */
  async referencingStored(
    type: string | string[],
    code: string | string[],
    targets: string[],
    limit: number,
    narrowing?: Narrowing,
  ): Promise<StoredResource[]> {
    if (!targets.length) return [];
    const docs = await Promise.all(
      [type].flat().map((t) => {
        const byCode = [code]
          .flat()
          .filter((c) => supportedParameters(t).has(c))
          .map((c) => ({ [`idx.${c}`]: { $in: targets } }));
        return byCode.length
          ? this.models
              .resources(t)
              .find({ deleted: false, ...(byCode.length > 1 ? { $or: byCode } : byCode[0]), ...narrowing }, { resource: 1, access: 1 })
              .limit(limit)
              .lean<StoredResource[]>()
              .exec()
          : Promise.resolve([]);
      }),
    );
    const found = docs.flat();
    return limit ? found.slice(0, limit) : found;
  }

  /** Like `referencing` for one type, and matching `where`, read as a stream: a batch at a time, never all at once. */
  async *streamReferencing(type: string, codes: string[], targets: string[], where: Record<string, unknown> = {}): AsyncGenerator<Resource> {
    const byCode = codes.filter((c) => supportedParameters(type).has(c)).map((c) => ({ [`idx.${c}`]: { $in: targets } }));
    if (!byCode.length || !targets.length) return;
    const referring = byCode.length > 1 ? { $or: byCode } : byCode[0];
    const cursor = this.models
      .resources(type)
      .find({ deleted: false, ...(Object.keys(where).length ? { $and: [referring, where] } : referring) }, { resource: 1 })
      .lean<StoredResource>()
      .cursor({ batchSize: 500 });
    for await (const doc of cursor) yield doc.resource as Resource;
  }

  /**
   * Claims a conditional-create query for a new id; answers the id already claimed when another
   * request got there first, so two identical requests never create two resources.
   */
  async claimCondition(key: string, resourceId: string): Promise<{ resourceId: string; won: boolean }> {
    try {
      await this.models.claims.collection.insertOne({ _id: key, resourceId } as never, inSession());
      return { resourceId, won: true };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const claim = await this.models.claims.findById(key).lean();
      return { resourceId: claim?.resourceId ?? resourceId, won: false };
    }
  }

  async releaseClaim(key: string, resourceId: string): Promise<void> {
    await this.models.claims.deleteOne({ _id: key, resourceId });
  }

  /** Puts back the document a write replaced (or removes a created one): undo for transactions where the database has none. */
  async restore(type: string, id: string, previous: StoredResource | undefined): Promise<void> {
    const key = `${type}/${id}`;
    if (previous) {
      await this.models.resources(type).collection.replaceOne({ _id: key } as never, previous);
      // The history entry the write made of `previous` goes too: `previous` is current again.
      await this.models.history(type).collection.deleteOne({ _id: `${key}/${previous.versionId}` } as never);
    } else {
      await this.models.resources(type).collection.deleteOne({ _id: key } as never);
    }
    this.cache.forget(type);
  }

  /** Like search, answered from memory for the types the cache holds (see read-cache.ts). */
  searchCached(search: SearchRequest): Promise<SearchResult> {
    if (!this.cache.holds(search.resourceType)) return this.search(search);
    return this.cache.get(search.resourceType, JSON.stringify(search), () => this.search(search));
  }

  private prepare(resource: Resource, id: string, versionId: number, access: string[], outbox?: Delivery): StoredResource {
    const lastUpdated = new Date();
    const body = {
      ...resource,
      id,
      meta: { ...resource.meta, versionId: String(versionId), lastUpdated: lastUpdated.toISOString() },
    } as Resource;
    const { idx, dt } = buildSearchIndex(body, this.baseUrl);
    return {
      _id: `${body.resourceType}/${id}`,
      type: body.resourceType,
      id,
      versionId,
      lastUpdated,
      deleted: false,
      resource: body,
      idx,
      dt,
      ...(access.length ? { access } : {}),
      ...(outbox ? { outbox } : {}),
    };
  }

  /**
   * Keeps `current` in history, then swaps in `next` if the resource is still at `current`'s version:
   * the replace's filter names the version, and MongoDB applies a filtered single-document write
   * atomically, so of two writers moving one version on exactly one matches. The history entry is an
   * upsert of `current` itself, so a losing writer's entry is the same document the winner keeps.
   */
  private async replaceCurrent(current: StoredResource, next: StoredResource): Promise<boolean> {
    const { idx: _i, dt: _d, outbox: _o, access: _a, ...entry } = current;
    const key = `${current._id}/${current.versionId}`;
    await this.models.history(current.type).collection.replaceOne({ _id: key } as never, { ...entry, _id: key }, { upsert: true, ...inSession() });
    const replaced = await this.models
      .resources(current.type)
      .collection.replaceOne({ _id: current._id, versionId: current.versionId } as never, next, inSession());
    return replaced.matchedCount === 1;
  }
}

/** `Type/id` keys by type. */
function byType(keys: string[]): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const key of keys) {
    const type = key.split('/')[0];
    grouped.set(type, [...(grouped.get(type) ?? []), key]);
  }
  return grouped;
}

/** The default order of a search, newest first: the one a `lastUpdated` window preserves. */
function isNewestFirst(sort: Record<string, 1 | -1>): boolean {
  const keys = Object.keys(sort);
  return keys.length === 2 && sort.lastUpdated === -1 && sort._id === 1;
}

export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number })?.code === 11000;
}
