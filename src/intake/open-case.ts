// Intake: a second-opinion request that arrives becomes a case: a SecondOpinionTask
// (requested -> received, businessStatus records-retrieving) and a durable job that retrieves the
// patient's chart from the referring institution. Idempotent: one Task and one job per request.
import type { Reference, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { Gate } from '../access/gate.js';
import { caseOwner, ownerOf } from '../access/ownership.js';
import { businessStatusConcept } from '../case/business-status.js';
import { hasSecondOpinionCategory, profileMeta, type Conformance } from '../conformance/artifacts.js';
import type { CommittedWrite, FhirService } from '../fhir/interactions.js';
import { retrievalJobKind, type RetrievalPayload } from '../retrieval/retrieve-chart.js';
import { localId } from '../retrieval/source-records.js';
import type { JobQueue } from '../store/jobs.js';
import { isDuplicateKey } from '../store/repository.js';
import type { Institutions } from './institutions.js';
import { fhirId, resourceTypeName } from '../base/ids.js';

/** `Type/id` on the referring server. */
const sourceReference = new RegExp(String.raw`^${resourceTypeName}\/${fhirId}$`);

/** Once a request is created: a second-opinion request opens its case; `onQueued` hears of the retrieval job. */
export function caseOpener(service: FhirService, jobs: JobQueue, institutions: Institutions, onQueued: () => void) {
  return async (resource: Resource, write: CommittedWrite): Promise<void> => {
    if (!write.created || resource.resourceType !== 'ServiceRequest' || !hasSecondOpinionCategory(service.conformance, resource)) {
      return;
    }
    if (await openCase(service, jobs, institutions, resource, ownerOf(write))) onQueued();
  };
}

/** A second-opinion request is one case per EHR identifier, by whichever path and however often it comes. */
export function requestIdentity(conformance: Conformance) {
  return (resource: Resource): string | undefined => {
    if (resource.resourceType !== 'ServiceRequest' || !hasSecondOpinionCategory(conformance, resource)) return undefined;
    const identifier = resource.identifier?.find((i) => i.value);
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
    ...(request.requester ? { requester: request.requester } : {}),
    authoredOn: new Date().toISOString(),
    businessStatus: businessStatusConcept(statusSystem, 'records-retrieving'),
  };
  // The case's Task shares its request's id: one Task per request, found again without a search.
  let current: Task;
  try {
    current = (await service.createValidated(task, gate, { id: request.id })).resource as Task;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    current = (await service.repository.read('Task', request.id as string)) as Task;
  }
  if (current.status === 'requested') {
    current = (await service.updateValidated({ ...current, status: 'received' }, current.id as string, gate)).resource as Task;
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

/** `Type/id` on the referring server for each reference that points there. */
function sourceReferences(ehrBase: string, references: Reference[]): string[] {
  return references
    .map((r) => r.reference ?? '')
    .map((r) => (r.startsWith(`${ehrBase}/`) ? r.slice(ehrBase.length + 1) : r))
    .filter((r) => sourceReference.test(r));
}
