// The resource pipeline every interaction goes through: parse -> authorise (the caller's Gate) ->
// validate -> store. Express routes and transaction Bundles both call into this one class; the
// workflow's own writes use createValidated and updateValidated, which validate the resource and leave
// authorisation to the caller (who acts through a named gate).
// Every method takes the gate it acts through: a caller's, or the service's named one.
import { randomUUID } from 'node:crypto';
import { applyPatch, type Operation } from 'rfc6902';
import { matchesSearchRequest } from '@medplum/core';
import type { Bundle, OperationOutcome, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { type Gate } from '../access/gate.js';
import type { Conformance } from '../conformance/artifacts.js';
import { classOf } from '../access/policy.js';
import { isPatientLabel } from '../access/labels.js';
import { checkReferences } from '../access/reference-check.js';
import type { Delivery, StoredResource } from '../store/models.js';
import type { Repository, WriteResult } from '../store/repository.js';
import { afterCommit } from '../store/transactions.js';
import type { ResourceValidator } from '../validation/validator.js';
import {
  badRequest,
  businessRule,
  conflict,
  FhirError,
  informational,
  notFound,
  notKnown,
  outcomeOf,
  preconditionFailed,
  unprocessable,
} from '../base/outcome.js';
import { isStoredResourceType } from '../base/resource-types.js';
import { nonNegativeInteger, pageUrl, parseSearch, searchBundle, usedParameters, type QueryParams } from './search/search.js';
import { isSubsetted, subsetOf } from './subset.js';
import { isFhirId } from '../base/ids.js';

/** What an interaction answers: a status, a body, and the headers FHIR asks for. */
export interface Reply {
  status: number;
  body?: Resource;
  /** The stored resource a write produced, for ETag, Last-Modified and Location. */
  written?: Resource;
  /** A body too large to hold at once: its JSON text, piece by piece. */
  stream?: AsyncIterable<string>;
  /** The patients whose records the interaction touched, for the audit trail. */
  patients?: string[];
  /** Headers an operation sets (an asynchronous request's Content-Location). */
  headers?: Record<string, string>;
}

/**
 * Called before a resource of one type is stored (create or update), with the current version when
 * there is one: may refuse the write (throw a FhirError), change the resource, and attach a delivery
 * the new version owes, which is stored in the same write. It writes nothing itself.
 */
export type BeforeWrite = (resource: Resource, current: Resource | undefined) => Promise<{ resource: Resource; outbox?: Delivery } | undefined>;

/**
 * Called after the write, with the stored version and the version it replaced (undefined for a
 * create): a record of the write itself (its Provenance), never a next stage.
 */
export type AfterWrite = (resource: Resource, previous: Resource | undefined) => Promise<void>;

/**
 * A hook on the writes of one type, as HAPI FHIR's interceptors are: `order` says where it runs
 * among the type's hooks (lower first), whoever registered it first.
 */
export interface WriteHook {
  order: number;
  before?: BeforeWrite;
  after?: AfterWrite;
}

/** What a committed write tells its listeners beside the stored version. */
export interface CommittedWrite {
  /** The write was a create (not an update, nor a PUT at a new id). */
  created: boolean;
  /** The labels the version was stored with (access/ownership.ts): its owner, without reading it again. */
  access: string[];
}

/**
 * Told once a write and its hooks are done and, in a transaction, once it has committed, with the
 * stored version: where the case pipeline (case/pipeline.ts) starts the stage that follows, never
 * inside an open transaction.
 */
export type CommittedListener = (resource: Resource, write: CommittedWrite) => Promise<void>;

export class FhirService {
  readonly fhirBase: string;
  private readonly writeHooks = new Map<string, WriteHook[]>();
  private readonly committedListeners = new Map<string, CommittedListener[]>();
  /** A condition applied to a create that came without If-None-Exist (the workflow's idempotency keys). */
  private readonly implicitCondition: (resource: Resource) => string | undefined;

  constructor(
    readonly repository: Repository,
    readonly validator: ResourceValidator,
    readonly conformance: Conformance,
    baseUrl: string,
    options: { implicitCondition?: (resource: Resource) => string | undefined } = {},
  ) {
    this.fhirBase = `${baseUrl}/fhir`;
    this.implicitCondition = options.implicitCondition ?? (() => undefined);
  }

  /** Hooks every write of `type`, at the hook's order among the type's hooks. */
  hookWrites(type: string, hook: WriteHook): void {
    this.writeHooks.set(
      type,
      [...(this.writeHooks.get(type) ?? []), hook].sort((a, b) => a.order - b.order),
    );
  }

  /** Tells `listener` of every committed write of `type`, after the listeners already there. */
  onCommitted(type: string, listener: CommittedListener): void {
    this.committedListeners.set(type, [...(this.committedListeners.get(type) ?? []), listener]);
  }

  private committed(resource: Resource, write: CommittedWrite): Promise<void> {
    const listeners = this.committedListeners.get(resource.resourceType) ?? [];
    if (!listeners.length) return Promise.resolve();
    return afterCommit(async () => {
      for (const listener of listeners) await listener(resource, write);
    });
  }

  /** Runs the hooks of the resource's type in order; answers the resource as they left it and the delivery one of them owed. */
  private async beforeWrite(resource: Resource, current: Resource | undefined): Promise<{ resource: Resource; outbox?: Delivery }> {
    let outbox: Delivery | undefined;
    for (const hook of this.writeHooks.get(resource.resourceType) ?? []) {
      const hooked = await hook.before?.(resource, current);
      resource = hooked?.resource ?? resource;
      outbox = hooked?.outbox ?? outbox;
    }
    return { resource, outbox };
  }

  private async afterWrite(resource: Resource, previous: Resource | undefined): Promise<void> {
    for (const hook of this.writeHooks.get(resource.resourceType) ?? []) await hook.after?.(resource, previous);
  }

  checkType(type: string): void {
    if (!isStoredResourceType(type)) {
      throw notFound(`Resource type "${type}" is not served here`);
    }
  }

  checkId(id: string): void {
    if (!isFhirId(id)) {
      throw badRequest(`"${id}" is not a valid FHIR id`, 'id');
    }
  }

  async read(type: string, id: string, gate: Gate): Promise<Reply> {
    this.checkType(type);
    this.checkId(id);
    gate.checkType(type, 'read');
    const doc = await this.visible(type, id, gate);
    const resource = await this.repository.read(type, id, doc);
    return { status: 200, body: resource, written: resource, patients: patientsOf(doc) };
  }

  async vread(type: string, id: string, versionId: string, gate: Gate): Promise<Reply> {
    this.checkType(type);
    this.checkId(id);
    gate.checkType(type, 'read');
    // One answer for a version that is not there, of a record that is not there or not the caller's.
    const unknown = notKnown(type, 'version');
    if (!/^\d+$/.test(versionId)) throw unknown;
    const doc = await this.visible(type, id, gate).catch((err: unknown) => {
      if (err instanceof FhirError && err.status === 404) return undefined;
      throw err;
    });
    if (!doc) throw unknown;
    const resource = await this.repository.readVersion(type, id, versionId);
    return { status: 200, body: resource, written: resource, patients: patientsOf(doc) };
  }

  async create(type: string, body: unknown, ifNoneExist: string | undefined, gate: Gate): Promise<Reply> {
    this.checkType(type);
    gate.checkType(type, 'create');
    const resource = this.sentResource(type, body);
    await this.admit(resource, gate);
    return written(await this.storeNew(resource, gate, { ifNoneExist }));
  }

  async update(type: string, id: string, body: unknown, ifMatch: string | undefined, gate: Gate): Promise<Reply> {
    this.checkType(type);
    this.checkId(id);
    gate.checkType(type, 'update');
    const resource = this.sentResource(type, body);
    this.checkSameId(resource, id);
    await this.admit(resource, gate, await this.existing(type, id, gate));
    return written(await this.storeAt(resource, id, gate, ifMatch));
  }

  /**
   * The stored record a caller's PUT replaces. Ids of patient data are the server's to give: a PUT to
   * an id that is not there answers 404, like one that is another institution's, so that the answer
   * never tells whether an id is taken. Directory records may be made at an id of the admin's choosing.
   */
  async existing(type: string, id: string, gate: Gate): Promise<StoredResource | undefined> {
    const doc = await this.visible(type, id, gate);
    if (!doc && !gate.isService && classOf(type) === 'patient-data') throw notKnown(type);
    return doc;
  }

  /**
   * Refuses a write that names a record the caller may not read (ownership.ts checkReferences), or that
   * would place it outside the caller's reach (Gate.checkWrite), judged on the labels it would be
   * stored with; `current` is the stored record it replaces, `writing` what a transaction creates.
   */
  async admit(resource: Resource, gate: Gate, current?: StoredResource, writing: ReadonlySet<string> = new Set()): Promise<void> {
    await checkReferences(this.repository, gate, resource, writing, current);
    if (!gate.isService) await gate.checkWrite(resource.resourceType, await this.repository.labelsFor(resource, gate.placement(current)));
  }

  /**
   * PATCH with a JSON Patch (RFC 6902): applied to the current version and written as an update of
   * that version, so that every check of an update applies and a write that came in between is never
   * overwritten. With If-Match, a stale version answers 412; without it, the patch is applied again
   * to the newer version (three tries, then 409).
   */
  async patch(type: string, id: string, body: unknown, ifMatch: string | undefined, gate: Gate): Promise<Reply> {
    this.checkType(type);
    this.checkId(id);
    gate.checkType(type, 'update');
    const operations = jsonPatchOf(body);
    for (let attempt = 1; ; attempt++) {
      const doc = await this.visible(type, id, gate);
      if (!doc) throw notKnown(type);
      const current = await this.repository.read(type, id, doc);
      const patched = structuredClone(current);
      const results = applyPatch(patched, operations);
      const failed = results.findIndex((result) => result !== null);
      if (failed >= 0) {
        // The error's own message may quote stored values: only its kind and the operation are told.
        const { op, path } = operations[failed];
        throw businessRule(`Patch operation ${failed} (${op} ${path.slice(0, 100)}) cannot be applied to ${type}/${id}: ${results[failed]?.name}`, type);
      }
      if (patched.resourceType !== type || patched.id !== id) throw businessRule(`A patch does not change a resource's type or id`, `${type}.id`);
      const resource = this.sentResource(type, patched);
      await this.admit(resource, gate, doc);
      try {
        return written(await this.storeAt(resource, id, gate, ifMatch ?? `W/"${current.meta?.versionId}"`));
      } catch (err) {
        if (ifMatch !== undefined || !(err instanceof FhirError) || err.status !== 412) throw err;
        if (attempt === 3) throw conflict(`${type}/${id} is being changed by others; try again`);
      }
    }
  }

  async delete(type: string, id: string, gate: Gate): Promise<Reply> {
    this.checkType(type);
    this.checkId(id);
    gate.checkType(type, 'delete');
    const doc = await this.visible(type, id, gate);
    await this.repository.delete(type, id);
    return { status: 200, body: informational(`${type}/${id} deleted`), patients: patientsOf(doc) };
  }

  /** The stored record, when there is one; 404 when it is outside the caller's reach. */
  async visible(type: string, id: string, gate: Gate): Promise<StoredResource | undefined> {
    const doc = await this.repository.current(type, id);
    if (doc) await gate.checkVisible(type, id, doc.access);
    return doc;
  }

  async history(type: string, id: string, query: QueryParams, gate: Gate): Promise<Reply> {
    this.checkType(type);
    this.checkId(id);
    gate.checkType(type, 'read');
    const doc = await this.visible(type, id, gate);
    const count = Math.min(nonNegativeInteger(query, '_count') ?? 100, 1000);
    const offset = nonNegativeInteger(query, '_offset') ?? 0;
    const sinceValue = [query._since].flat()[0];
    const since = sinceValue ? new Date(String(sinceValue)) : undefined;
    if (since && Number.isNaN(since.getTime())) {
      throw badRequest('_since must be an instant', '_since');
    }
    const { entries: versions, total } = await this.repository.history(type, id, { count, offset, since });
    const self = new URL(`${this.fhirBase}/${type}/${id}/_history`);
    if (sinceValue) self.searchParams.set('_since', String(sinceValue));
    const page = (at: number): string => pageUrl(self, at, count);
    const link = [{ relation: 'self', url: page(offset) }];
    if (count > 0 && offset + count < total) link.push({ relation: 'next', url: page(offset + count) });
    if (count > 0 && offset > 0) link.push({ relation: 'previous', url: page(Math.max(0, offset - count)) });
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'history',
      total,
      link,
      ...(versions.length
        ? {
            entry: versions.map((v) => ({
              fullUrl: `${this.fhirBase}/${type}/${id}`,
              ...(v.resource ? { resource: v.resource } : {}),
              request: { method: v.deleted ? 'DELETE' : v.versionId === 1 ? 'POST' : 'PUT', url: v.versionId === 1 ? type : `${type}/${id}` },
              response: {
                status: v.deleted ? '204' : v.versionId === 1 ? '201' : '200',
                etag: `W/"${v.versionId}"`,
                lastModified: v.lastUpdated.toISOString(),
              },
            })),
          }
        : {}),
    };
    return { status: 200, body: bundle, patients: patientsOf(doc) };
  }

  /** A search; `lenient`: parameters the server does not know are left out rather than refused (`Prefer: handling=lenient`). */
  async search(type: string, asked: QueryParams, selfUrl: URL, gate: Gate, lenient = false): Promise<Reply> {
    this.checkType(type);
    gate.checkType(type, 'search');
    const query = usedParameters(type, asked, lenient);
    const search = parseSearch(type, query);
    const self = new URL(selfUrl);
    for (const key of Object.keys(asked)) if (!(key in query)) self.searchParams.delete(key);
    const { bundle, patients } = await searchBundle(this.repository, search, self, this.fhirBase, gate, subsetOf(type, query));
    return { status: 200, body: bundle, patients };
  }

  /** $validate: the verdict a create or update would get, without storing anything. */
  validate(type: string, resource: unknown, profile?: StructureDefinition): OperationOutcome {
    this.checkType(type);
    const issues = this.validator.validate(this.shapeOf(type, resource), profile);
    return issues.length ? outcomeOf(issues) : informational('Validation successful: no errors');
  }

  /** Validates a resource (validResource) and stores it as new: a stage's own write, through the gate it names. */
  createValidated(resource: Resource, gate: Gate, options: { ifNoneExist?: string; id?: string } = {}): Promise<WriteResult> {
    return this.storeNew(this.validResource(resource.resourceType, resource), gate, options);
  }

  /** Validates a resource (validResource) and stores it at `id`: a stage's own write, through the gate it names. */
  updateValidated(resource: Resource, id: string, gate: Gate, ifMatch?: string): Promise<WriteResult> {
    return this.storeAt(this.validResource(resource.resourceType, resource), id, gate, ifMatch);
  }

  /**
   * Stores a resource validResource answered as new, through the write hooks; whether the caller may
   * write it was decided before (admit). `id` is one chosen beforehand (a transaction resolving urn:uuid references).
   */
  async storeNew(resource: Resource, gate: Gate, { ifNoneExist, id }: { ifNoneExist?: string; id?: string } = {}): Promise<WriteResult> {
    const hooked = this.writeHooks.has(resource.resourceType);
    let outbox: Delivery | undefined;
    if (hooked) {
      // The id is fixed before the hooks see the resource: what they sign is what is stored.
      id ??= randomUUID();
      ({ resource, outbox } = await this.beforeWrite({ ...resource, id }, undefined));
    }
    const condition = ifNoneExist ?? this.implicitCondition(resource);
    const result = condition
      ? await this.createConditionally(resource, condition, gate, id, outbox)
      : await this.repository.create(resource, id, outbox, gate.placement());
    if (result.created) {
      if (hooked) await this.afterWrite(result.resource, undefined);
      await this.committed(result.resource, { created: true, access: result.access });
    }
    return result;
  }

  /** Stores a resource validResource answered at `id` (update, or create at a chosen id), written for the gate's institution, through the write hooks. */
  async storeAt(resource: Resource, id: string, gate: Gate, ifMatch?: string): Promise<WriteResult> {
    this.checkSameId(resource, id);
    const version = ifMatch === undefined ? undefined : parseETag(ifMatch);
    if (!this.writeHooks.has(resource.resourceType)) {
      const result = await this.repository.update(resource, version, undefined, gate.placement());
      await this.committed(result.resource, { created: false, access: result.access });
      return result;
    }
    const current = await this.repository.current(resource.resourceType, id);
    // A stale If-Match is a 412 before the hooks judge the write against a version the writer never saw (they would answer 409).
    if (version !== undefined && current?.versionId !== version) {
      throw preconditionFailed(`${resource.resourceType}/${id} is at version ${current?.versionId ?? 'none'}, not ${version}`);
    }
    const previous = current && !current.deleted ? current.resource : undefined;
    const hooked = await this.beforeWrite(resource, previous);
    // Written only on the version the hooks judged, so no other write slips in between.
    const result = await this.repository.update(hooked.resource, version ?? current?.versionId, hooked.outbox, gate.placement(), current);
    // Written on the version the hooks judged: `previous` is the version it replaced.
    await this.afterWrite(result.resource, result.created ? undefined : previous);
    await this.committed(result.resource, { created: false, access: result.access });
    return result;
  }

  /** 400 unless the body's id is the one in the URL: checked before anything else is looked at. */
  checkSameId(resource: Resource, id: string): void {
    if (resource.id !== id) {
      throw badRequest(`Resource id "${resource.id ?? ''}" does not match the id in the URL "${id}"`, `${resource.resourceType}.id`);
    }
  }

  /** The body as a resource of `type`, its shape and profiles validated; throws 400/404/422 so that a bad request changes nothing. It says nothing of rights. */
  validResource(type: string, body: unknown): Resource {
    this.checkType(type);
    const resource = this.shapeOf(type, body);
    const issues = this.validator.validate(resource);
    if (issues.length) {
      throw unprocessable(issues);
    }
    return resource;
  }

  /** A resource a client sent to be written: valid, and whole, not a part of one read with _summary or _elements (marked SUBSETTED). */
  sentResource(type: string, body: unknown): Resource {
    const resource = this.validResource(type, body);
    if (isSubsetted(resource)) {
      throw businessRule(
        `This ${type} is marked SUBSETTED: it is a part of a record, read with _summary or _elements; send the whole record`,
        `${type}.meta.tag`,
      );
    }
    return resource;
  }

  private shapeOf(type: string, body: unknown): Resource {
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw badRequest('The request body must be a FHIR resource (a JSON object)');
    }
    const resourceType = (body as { resourceType?: unknown }).resourceType;
    if (resourceType !== type) {
      throw badRequest(`resourceType "${String(resourceType)}" does not match the URL's "${type}"`, 'resourceType');
    }
    return body as Resource;
  }

  /**
   * If-None-Exist: answers the matching resource (200) when there is one, 412 when several, else
   * creates once, even when the same request arrives twice at the same moment.
   */
  private async createConditionally(resource: Resource, ifNoneExist: string, gate: Gate, preferredId?: string, outbox?: Delivery): Promise<WriteResult> {
    const type = resource.resourceType;
    const params = new URLSearchParams(ifNoneExist.replace(/^[^?]*\?/, ''));
    const query: QueryParams = {};
    for (const key of [...new Set(params.keys())].sort()) {
      query[key] = params.getAll(key);
    }
    if (!Object.keys(query).length) {
      throw badRequest('If-None-Exist must hold search parameters', 'If-None-Exist');
    }
    const search = parseSearch(type, query);
    search.count = 2;
    search.offset = 0;
    // The condition is judged among the records the caller can see: another tenant's never matches.
    const { matches } = await this.repository.search(search, await gate.narrowing(type));
    if (matches.length > 1) {
      throw new FhirError(412, outcomeOf([{ severity: 'error', code: 'multiple-matches', details: { text: `If-None-Exist matches ${type} more than once` } }]));
    }
    if (matches.length === 1) {
      return { resource: matches[0].resource, created: false, access: matches[0].access };
    }
    const key = `${type}?${new URLSearchParams(Object.entries(query).flatMap(([k, vs]) => [vs].flat().map((v) => [k, String(v)] as [string, string]))).toString()}`;
    let claim = await this.repository.claimCondition(key, preferredId ?? randomUUID());
    if (!claim.won) {
      const existing = await this.repository.current(type, claim.resourceId);
      if (existing && !(await gate.sees(type, existing.access))) {
        // Claimed for another tenant: this caller's record is made apart, unseen by and unseeing of that one.
        return this.repository.create(resource, preferredId ?? randomUUID(), outbox, gate.placement());
      }
      if (existing?.resource && !existing.deleted && matchesSearchRequest(existing.resource, search)) {
        return { resource: existing.resource, created: false, access: existing.access ?? [] };
      }
      if (existing) {
        // The claimed resource was deleted or no longer matches: the claim is stale.
        await this.repository.releaseClaim(key, claim.resourceId);
        claim = await this.repository.claimCondition(key, preferredId ?? randomUUID());
      }
    }
    try {
      return await this.repository.create(resource, claim.resourceId, outbox, gate.placement());
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      // The other request of the pair created it first.
      const first = await this.repository.current(type, claim.resourceId);
      return { resource: await this.repository.read(type, claim.resourceId, first), created: false, access: first?.access ?? [] };
    }
  }
}

/** The patients a stored record is labelled with. */
function patientsOf(doc: StoredResource | undefined): string[] {
  return doc?.access?.filter(isPatientLabel) ?? [];
}

function written(result: WriteResult): Reply {
  return { status: result.created ? 201 : 200, body: result.resource, written: result.resource, patients: result.access.filter(isPatientLabel) };
}

/** `W/"3"` (or `"3"`, or `3`) -> 3 */
export function parseETag(etag: string): number {
  const match = /^(?:W\/)?"?(\d+)"?$/.exec(etag.trim());
  if (!match) {
    throw badRequest(`If-Match must be a version ETag such as W/"1", got ${etag.slice(0, 40)}`, 'If-Match');
  }
  return Number(match[1]);
}

const patchOperations = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** The body as a JSON Patch: an array of operations, each with a known op and a path (400 otherwise, before anything is read). */
function jsonPatchOf(body: unknown): Operation[] {
  if (!Array.isArray(body) || body.length === 0) throw badRequest('A JSON Patch (RFC 6902) is a non-empty array of operations');
  body.forEach((operation: unknown, i) => {
    const { op, path, from } = (operation ?? {}) as { op?: unknown; path?: unknown; from?: unknown };
    if (typeof op !== 'string' || !patchOperations.has(op) || typeof path !== 'string' || ((op === 'move' || op === 'copy') && typeof from !== 'string')) {
      throw badRequest(`Patch operation ${i} needs op (${[...patchOperations].join(', ')}), path${op === 'move' || op === 'copy' ? ' and from' : ''}`);
    }
    if (['add', 'replace', 'test'].includes(op) && !('value' in (operation as object))) throw badRequest(`Patch operation ${i} (${op}) needs a value`);
  });
  return body as Operation[];
}
