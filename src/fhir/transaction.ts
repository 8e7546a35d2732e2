// `transaction` and `batch` Bundles posted to the FHIR base. A transaction is all or nothing: every
// entry is checked before any is stored, and its writes, with what their types' hooks write beside
// them (a Task's Provenance, a case's Task and job), run in one database transaction, so a failure at
// any entry, the database's own included, leaves nothing stored. On a database without transactions
// (a standalone server) the writes made before a failure are undone one by one instead.
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from '@medplum/fhirtypes';
import type { Gate } from '../access/gate.js';
import type { StoredResource } from '../store/models.js';
import { type FhirService, type Reply } from './interactions.js';
import { badRequest, FhirError } from '../base/outcome.js';
import { mapReferences } from './references.js';
import { subsetOf, subsetResource } from './subset.js';

const methodOrder: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, GET: 3, HEAD: 3 };

interface Undo {
  type: string;
  id: string;
  previous?: StoredResource;
}

/** Every entry passes the caller's gate as the interaction it stands for would. */
export async function processBundle(service: FhirService, body: unknown, gate: Gate): Promise<Reply> {
  const bundle = body as Bundle;
  if (!bundle || bundle.resourceType !== 'Bundle') {
    throw badRequest('POST to the FHIR base takes a Bundle of type transaction or batch', 'resourceType');
  }
  if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
    throw badRequest(`Bundle.type must be transaction or batch, got "${bundle.type}"`, 'Bundle.type');
  }
  const entries = bundle.entry ?? [];
  entries.forEach((entry, i) => {
    const method = entry.request?.method;
    if (!method || !(method in methodOrder) || !entry.request?.url) {
      throw badRequest('Each entry needs request.method (GET, POST, PUT or DELETE) and request.url', `Bundle.entry[${i}].request`);
    }
  });
  return bundle.type === 'batch' ? batch(service, entries, gate) : transaction(service, entries, gate);
}

async function batch(service: FhirService, entries: BundleEntry[], gate: Gate): Promise<Reply> {
  const responses: BundleEntry[] = [];
  for (const entry of entries) {
    try {
      responses.push(await runEntry(service, entry, checkedResource(service, entry), undefined, [], gate, new Set()));
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      responses.push({ response: { status: String(err.status), outcome: err.outcome } });
    }
  }
  return { status: 200, body: { resourceType: 'Bundle', type: 'batch-response', entry: responses } };
}

async function transaction(service: FhirService, entries: BundleEntry[], gate: Gate): Promise<Reply> {
  // New resources get their ids now, so that urn:uuid references between entries can be resolved.
  const assigned = new Map<string, string>();
  const newIds = new Map<number, string>();
  entries.forEach((entry, i) => {
    if (entry.request?.method === 'POST') {
      const id = randomUUID();
      newIds.set(i, id);
      if (entry.fullUrl?.startsWith('urn:uuid:') || entry.fullUrl?.startsWith('urn:oid:')) {
        assigned.set(entry.fullUrl, `${entry.resource?.resourceType}/${id}`);
      }
    }
  });
  const resolved = entries.map((entry) =>
    entry.resource ? { ...entry, resource: mapReferences(entry.resource, (reference) => assigned.get(reference)) } : entry,
  );
  // Everything is checked before anything is written.
  const checked = resolved.map((entry, i) => {
    try {
      return checkedResource(service, entry);
    } catch (err) {
      throw atEntry(err, i);
    }
  });
  const order = resolved.map((_, i) => i).sort((a, b) => methodOrder[resolved[a].request?.method ?? 'GET'] - methodOrder[resolved[b].request?.method ?? 'GET']);
  const responses = new Array<BundleEntry>(resolved.length);
  // What the transaction creates may be named by its other entries before it is written.
  const writing: ReadonlySet<string> = new Set(assigned.values());
  const { transactions } = service.repository;
  const undo: Undo[] = [];
  try {
    await transactions.atomically(async () => {
      undo.length = 0; // the database retries a transaction that met a conflict from its start
      for (const i of order) {
        responses[i] = await runEntry(service, resolved[i], checked[i], newIds.get(i), undo, gate, writing).catch((err) => {
          throw atEntry(err, i);
        });
      }
    });
  } catch (err) {
    if (!transactions.supported) {
      for (const step of undo.reverse()) await service.repository.restore(step.type, step.id, step.previous);
    }
    throw err;
  }
  return { status: 200, body: { resourceType: 'Bundle', type: 'transaction-response', entry: responses } };
}

/**
 * A conditional update or delete (PUT or DELETE [type]?criteria), in a Bundle as at the REST endpoint:
 * not offered, so 400, as FHIR asks of a server without them. An update or delete names its record.
 */
export function conditionalWriteRefused(method: 'PUT' | 'DELETE'): FhirError {
  const write = method === 'PUT' ? 'update' : 'delete';
  return badRequest(`Conditional ${write} (${method} [type]?[criteria]) is not supported: search for the record, then ${method} [type]/[id]`);
}

/** The entry's resource, checked as its create or update would check it; undefined for reads and deletes. */
function checkedResource(service: FhirService, entry: BundleEntry): Resource | undefined {
  const { method, url } = entry.request as NonNullable<BundleEntry['request']>;
  return method === 'POST' || method === 'PUT' ? service.sentResource(url.split(/[/?]/)[0], entry.resource) : undefined;
}

async function runEntry(
  service: FhirService,
  entry: BundleEntry,
  resource: Resource | undefined,
  newId: string | undefined,
  undo: Undo[],
  gate: Gate,
  writing: ReadonlySet<string>,
): Promise<BundleEntry> {
  const request = entry.request as NonNullable<BundleEntry['request']>;
  const url = new URL(request.url, 'http://entry/');
  const [type, id, sub, version] = url.pathname.slice(1).split('/');
  switch (request.method) {
    case 'POST': {
      gate.checkType(type, 'create');
      await service.admit({ ...(resource as Resource), id: newId }, gate, undefined, writing);
      const result = await service.storeNew(resource as Resource, gate, { ifNoneExist: request.ifNoneExist, id: newId });
      if (result.created) undo.push({ type, id: result.resource.id as string });
      return written(service, result.resource, result.created ? '201 Created' : '200 OK');
    }
    case 'PUT': {
      if (!id) throw conditionalWriteRefused('PUT');
      service.checkId(id);
      gate.checkType(type, 'update');
      await service.admit(resource as Resource, gate, await service.existing(type, id, gate), writing);
      const result = await service.storeAt(resource as Resource, id, gate, request.ifMatch);
      undo.push({ type, id, previous: result.previous });
      return written(service, result.resource, result.created ? '201 Created' : '200 OK');
    }
    case 'DELETE': {
      if (!id) throw conditionalWriteRefused('DELETE');
      service.checkType(type);
      gate.checkType(type, 'delete');
      await service.visible(type, id, gate);
      const previous = await service.repository.delete(type, id);
      if (previous) undo.push({ type, id, previous });
      return { response: { status: '204 No Content' } };
    }
    default: {
      const query = Object.fromEntries([...new Set(url.searchParams.keys())].map((k) => [k, url.searchParams.getAll(k)]));
      // A search cuts its entries itself; a read is cut here, as the REST read is (router.ts).
      const subset = id ? subsetOf(type, query) : undefined;
      const reply = !id
        ? await service.search(type, query, new URL(`${service.fhirBase}/${type}${url.search}`), gate)
        : sub === '_history' && version
          ? await service.vread(type, id, version, gate)
          : await service.read(type, id, gate);
      return { resource: reply.body && subsetResource(reply.body, subset), response: { status: '200 OK' } };
    }
  }
}

function written(service: FhirService, resource: Resource, status: string): BundleEntry {
  const response: BundleEntryResponse = {
    status,
    location: `${service.fhirBase}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`,
    etag: `W/"${resource.meta?.versionId}"`,
    lastModified: resource.meta?.lastUpdated,
  };
  return { fullUrl: `${service.fhirBase}/${resource.resourceType}/${resource.id}`, resource, response };
}

/** Prefixes the failing entry to each issue's expression, so the client sees which entry broke. */
function atEntry(err: unknown, index: number): unknown {
  if (!(err instanceof FhirError)) return err;
  for (const issue of err.outcome.issue ?? []) {
    issue.expression = (issue.expression?.length ? issue.expression : ['']).map((e) => `Bundle.entry[${index}]` + (e ? `.resource.${e}` : ''));
  }
  return err;
}
