// Intake: a second-opinion request that arrives becomes a case: a SecondOpinionTask
// (requested -> received, businessStatus records-retrieving) and a durable job that retrieves the
// patient's chart from the referring institution. Idempotent: one Task and one job per request.
import type { Reference, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { Gate } from '../access/gate.js';
import { caseOwner, ownerOf } from '../access/ownership.js';
import { hasSecondOpinionCategory, profileMeta } from '../conformance/artifacts.js';
import type { FhirService } from '../fhir/interactions.js';
import { retrievalJobKind, type RetrievalPayload } from '../retrieval/retrieve-chart.js';
import { localId } from '../retrieval/source-records.js';
import type { JobQueue } from '../store/jobs.js';
import { isDuplicateKey, type Repository } from '../store/repository.js';
import type { Institutions } from './institutions.js';

export function caseOpener(service: FhirService, jobs: JobQueue, institutions: Institutions, onQueued: () => void) {
  return async (resource: Resource, access: string[]): Promise<void> => {
    if (resource.resourceType !== 'ServiceRequest' || !hasSecondOpinionCategory(service.conformance, resource)) {
      return;
    }
    if (await openCase(service, jobs, institutions, resource, ownerOf({ access }))) onQueued();
  };
}

/** A second-opinion request is one case per EHR identifier, by whichever path and however often it comes. */
export function requestIdentity(service: FhirService) {
  return (resource: Resource): string | undefined => {
    if (resource.resourceType !== 'ServiceRequest' || !hasSecondOpinionCategory(service.conformance, resource)) return undefined;
    const identifier = (resource as ServiceRequest).identifier?.find((i) => i.value);
    return identifier
      ? `identifier=${encodeURIComponent(identifier.system ? `${identifier.system}|${identifier.value}` : (identifier.value as string))}`
      : undefined;
  };
}

/**
 * Opens the case of a stored second-opinion request whose patient can be placed on a referring FHIR
 * server (see Institutions.patientOf); answers undefined when it cannot.
 */
export async function openCase(
  service: FhirService,
  jobs: JobQueue,
  institutions: Institutions,
  request: ServiceRequest,
  /** The request's owner, when its write has just stored it. */
  stored?: string,
): Promise<Task | undefined> {
  // The case is its request's institution's, and its chart comes only from that institution's server.
  const owner = stored ?? (await caseOwner(service.repository, request.id as string));
  const patient = await institutions.patientOf(request, owner);
  if (!patient) {
    return undefined;
  }
  const gate = Gate.system(owner);
  const { ehrBase, patientId } = patient;
  const { conformance } = service;
  const statusSystem = [...conformance.codeSystems.values()].find((cs) => cs.id === 'task-business-status')?.url;
  const task: Task = {
    resourceType: 'Task',
    meta: profileMeta(conformance, 'Task'),
    status: 'requested',
    intent: 'order',
    ...(request.priority ? { priority: request.priority } : {}),
    focus: { reference: `ServiceRequest/${request.id}` },
    for: { reference: `Patient/${localId(ehrBase, 'Patient', patientId)}` },
    ...(request.requester ? { requester: request.requester as Task['requester'] } : {}),
    authoredOn: new Date().toISOString(),
    businessStatus: { coding: [{ system: statusSystem, code: 'records-retrieving' }] },
  };
  // The case's Task shares its request's id: one Task per request, found again without a search.
  let current: Task;
  try {
    current = (await service.createChecked(service.checkedBody('Task', task), gate, { id: request.id })).resource as Task;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    current = (await service.repository.read('Task', request.id as string)) as Task;
  }
  if (current.status === 'requested') {
    current = (await service.updateChecked(service.checkedBody('Task', { ...current, status: 'received' }), current.id as string, gate)).resource as Task;
  }
  const payload: RetrievalPayload = {
    ehrBase,
    patientId,
    serviceRequestId: request.id as string,
    taskId: current.id as string,
    references: sourceReferences(ehrBase, [...(request.reasonReference ?? []), ...(request.supportingInfo ?? [])]),
  };
  await jobs.enqueue(retrievalJobKind, `${retrievalJobKind}:${request.id}`, payload as unknown as Record<string, unknown>);
  return current;
}

/**
 * The case's Task of a request (`ServiceRequest/id`): read by key, since the case's Task shares its
 * request's id (see openCase); searched for by `focus` only when that Task is not there.
 */
export async function caseTaskOf(repository: Repository, requestRef: string): Promise<Task | undefined> {
  const [own] = (await repository.readMany([`Task/${requestRef.split('/')[1]}`])) as Task[];
  if (own?.focus?.reference === requestRef) return own;
  return (await repository.referencing('Task', 'focus', [requestRef], 1))[0] as Task | undefined;
}

/** `Type/id` on the referring server for each reference that points there. */
function sourceReferences(ehrBase: string, references: Reference[]): string[] {
  return references
    .map((r) => r.reference ?? '')
    .map((r) => (r.startsWith(`${ehrBase}/`) ? r.slice(ehrBase.length + 1) : r))
    .filter((r) => /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(r));
}
