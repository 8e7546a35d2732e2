// The Bulk Data kick-off (`$export` at system level, on Patient, on a Group): checks the parameters
// and the caller's right to what it asks for, queues a durable job, answers 202 with its status URL.
import { randomUUID } from 'node:crypto';
import type { OperationDefinition } from '@medplum/fhirtypes';
import { classOf, mayExportIdentified } from '../access/policy.js';
import { allows, neededScope } from '../auth/scopes.js';
import type { Reply } from '../fhir/interactions.js';
import { badRequest, forbidden, informational, methodNotAllowed } from '../base/outcome.js';
import { isStoredResourceType, storedResourceTypes } from '../base/resource-types.js';
import type { Invocation } from '../operations/operation.js';
import { readParameters } from '../operations/parameters.js';
import type { JobQueue } from '../store/jobs.js';
import { type BulkExportOptions, callerKey, exportJobKind, type ExportPayload, statusUrl } from './job.js';
import { compartmentTypes, typeFilters } from './query.js';
import { parseElements } from './subset.js';

/** `_outputFormat` values that all mean FHIR NDJSON. */
const outputFormats = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
const kickOffParameters = new Set(['_type', '_since', '_outputFormat', '_typeFilter', '_elements', 'deidentify']);
const instant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The kick-off (for a role the gate let call it): checks the parameters, queues the job, answers 202 with its status URL; `queued` wakes the worker. */
export async function kickOff(
  { service, definition, type, id, query: url, headers, gate, method, body }: Invocation,
  jobs: JobQueue,
  options: BulkExportOptions,
  queued: () => void,
): Promise<Reply> {
  const caller = gate.principal;
  const level = !type ? 'system' : type === 'Patient' && !id ? 'patient' : type === 'Group' && id ? 'group' : undefined;
  if (!level) throw methodNotAllowed('$export is called at system level, on Patient (every patient) or on a Group instance');
  if (!caller) throw forbidden('Bulk export needs a caller with the analyst, coordinator or admin role');
  if (!/\brespond-async\b/.test(String(headers.prefer ?? ''))) throw badRequest('Bulk export is asynchronous: send "Prefer: respond-async"', 'Prefer');
  const query = method === 'POST' ? parametersOf(definition, body, url) : url;
  for (const name of Object.keys(query)) {
    if (!kickOffParameters.has(name)) throw badRequest(`$export does not support the parameter "${name.slice(0, 40)}"`, name);
  }
  const given = (name: string): string[] =>
    [query[name]]
      .flat()
      .filter((v) => v !== undefined)
      .map(String);
  const single = (name: string): string | undefined => {
    const values = given(name);
    if (values.length > 1) throw badRequest(`${name} is given more than once`, name);
    return values[0];
  };
  const format = single('_outputFormat');
  if (format !== undefined && !outputFormats.includes(format)) throw badRequest(`_outputFormat must be one of ${outputFormats.join(', ')}`, '_outputFormat');
  const since = single('_since');
  if (since !== undefined && (!instant.test(since) || Number.isNaN(Date.parse(since))))
    throw badRequest('_since must be an instant, e.g. 2026-01-01T00:00:00Z', '_since');
  const deidentifyParam = single('deidentify');
  if (deidentifyParam !== undefined && deidentifyParam !== 'true' && deidentifyParam !== 'false') throw badRequest('deidentify is true or false', 'deidentify');
  const deidentify = deidentifyParam !== 'false';
  if (!deidentify && !mayExportIdentified(caller.role))
    throw forbidden('Identified export is not allowed for this role: leave out deidentify=false', 'deidentify');

  const group = type === 'Group' ? (id as string) : undefined;
  // The audit trail is the admins' to read, through its own API, never in an export.
  const exportable = (level === 'system' ? storedResourceTypes : compartmentTypes()).filter((t) => classOf(t) !== 'audit');
  const asked = given('_type')
    .flatMap((v) => v.split(','))
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of asked) {
    if (!isStoredResourceType(t)) throw badRequest(`_type names "${t.slice(0, 40)}", which is not a resource type served here`, '_type');
    if (!exportable.includes(t)) throw badRequest(`_type names ${t}, which has no resources in a patient's compartment`, '_type');
  }
  const types = asked.length ? [...new Set(asked)] : [...exportable];
  const filters = typeFilters(given('_typeFilter'), types);
  const elements = parseElements(given('_elements'), types);
  const missing = types.filter((t) => !allows(caller.scopes, t, 'r'));
  if (missing.length)
    throw forbidden(
      `This export needs the scope ${neededScope(caller.scopes, missing[0], 'r')} (or a wider one), which the access token does not grant`,
      '_type',
    );
  if (group) await service.repository.read('Group', group); // 404 or 410 before any job

  const jobId = randomUUID();
  // The kick-off's URL: a POST's parameters are in its body.
  const search = new URLSearchParams(Object.entries(url).flatMap(([k, v]) => [v].flat().map((x): [string, string] => [k, String(x)])));
  const payload: ExportPayload = {
    caller: callerKey(caller),
    types,
    ...(since ? { since } : {}),
    ...(group ? { group } : {}),
    ...(level === 'patient' ? { patients: true } : {}),
    ...(Object.keys(filters).length ? { typeFilters: filters } : {}),
    ...(elements.length ? { elements } : {}),
    deidentify,
    request: `${service.fhirBase}${group ? `/Group/${group}` : level === 'patient' ? '/Patient' : ''}/$export${search.size ? `?${search.toString()}` : ''}`,
  };
  await jobs.enqueue(exportJobKind, jobId, payload as unknown as Record<string, unknown>);
  queued();
  return {
    status: 202,
    headers: { 'Content-Location': statusUrl(options, jobId) },
    body: informational(`The export is under way; poll ${statusUrl(options, jobId)}`),
  };
}

/** A POST kick-off's Parameters body (checked against the OperationDefinition) as the query it stands for. */
function parametersOf(definition: OperationDefinition, body: unknown, url: Record<string, unknown>): Record<string, string[]> {
  const inUrl = Object.keys(url)[0];
  if (inUrl !== undefined) throw badRequest('A POST kick-off takes its parameters in its Parameters body, not in the URL', inUrl.slice(0, 40));
  const query: Record<string, string[]> = {};
  for (const [name, parameters] of readParameters(definition, body)) {
    query[name] = parameters.map((p) => String(p.valueString ?? p.valueInstant ?? p.valueBoolean));
  }
  return query;
}
