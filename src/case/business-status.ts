// Where the work on a case stands: the codes of profiles/CodeSystem-task-business-status.json, and the
// moves the service itself makes between them (moveCase refuses any other). A reviewer or coordinator
// writing the Task through the API sets the reviewing codes (under-review, opinion-final) as the
// CodeSystem describes; those writes are held to the Task.status table (task-status.ts), not this one.
import type { CodeableConcept, Task } from '@medplum/fhirtypes';

export const businessStatuses = [
  'records-retrieving',
  'records-ready',
  'records-unavailable',
  'awaiting-assignment',
  'assigned',
  'under-review',
  'awaiting-information',
  'opinion-final',
  'delivery-pending',
  'opinion-delivered',
  'delivery-failed',
] as const;

export type BusinessStatus = (typeof businessStatuses)[number];

/** A move the stage may make from whatever code the case has, an API client's included. */
const fromAnywhere = 'any';

/**
 * For each code, where the service moves a case to it from. A new case starts at records-retrieving
 * (intake); nothing moves it back there. Moving to the code the case already has is always allowed.
 */
const reachedFrom: Record<BusinessStatus, readonly BusinessStatus[] | typeof fromAnywhere> = {
  'records-retrieving': [],
  // Retrieval, run again after a crash, never undoes routing.
  'records-ready': ['records-retrieving'],
  // Retrieval stopped: refused, or given up after its attempts.
  'records-unavailable': fromAnywhere,
  // Routing found no reviewer who fits.
  'awaiting-assignment': ['records-ready'],
  // Routing, or a coordinator's $assign (again, before the reviewer accepts).
  assigned: ['records-ready', 'awaiting-assignment'],
  // The answers to every question the reviewer asked are in.
  'under-review': ['awaiting-information'],
  // The reviewer asked the referrer (the Task.status table decides whether the case may go on hold).
  'awaiting-information': fromAnywhere,
  // Set by the reviewer through the API; the service moves a finalised opinion to delivery-pending.
  'opinion-final': [],
  // An opinion finalised or amended, a delivery retried or due again ($redeliver).
  'delivery-pending': fromAnywhere,
  'opinion-delivered': fromAnywhere,
  'delivery-failed': fromAnywhere,
};

export function isBusinessStatus(code: string | undefined): code is BusinessStatus {
  return (businessStatuses as readonly string[]).includes(code ?? '');
}

/** The case's code as it stands; undefined for a Task with none, or with a code not of the CodeSystem. */
export function businessStatusOf(task: Pick<Task, 'businessStatus'> | undefined): BusinessStatus | undefined {
  const code = task?.businessStatus?.coding?.[0]?.code;
  return isBusinessStatus(code) ? code : undefined;
}

/** Whether the service may move a case from `from` (undefined: no known code) to `to`. */
export function canMove(from: BusinessStatus | undefined, to: BusinessStatus): boolean {
  const sources = reachedFrom[to];
  return from === to || sources === fromAnywhere || (from !== undefined && sources.includes(from));
}

/** The codes the service moves a case to `to` from, for a refusal that says what would have been allowed. */
export function movesInto(to: BusinessStatus): readonly BusinessStatus[] | 'any' {
  return reachedFrom[to];
}

/** The code as a CodeableConcept of the CodeSystem at `system`. */
export function businessStatusConcept(system: string | undefined, code: BusinessStatus): CodeableConcept {
  return { coding: [{ system, code }] };
}
