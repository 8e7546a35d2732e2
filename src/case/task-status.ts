// The Task is the workflow: its status moves only as FHIR's Task state machine allows, on every write
// (the API's and the service's own). Where the work stands (businessStatus) has its own table beside
// this one, in business-status.ts.
import type { Resource, Task } from '@medplum/fhirtypes';
import { businessRule, conflict } from '../base/outcome.js';

type Status = Task['status'];

/** FHIR R4's Task state machine (task.html#statemachine); entered-in-error corrects a mistake from any state. */
const legalNext: Record<Status, Status[]> = {
  draft: ['requested', 'cancelled'],
  requested: ['received', 'accepted', 'rejected', 'cancelled'],
  received: ['accepted', 'rejected', 'cancelled', 'failed'],
  accepted: ['ready', 'in-progress', 'cancelled', 'failed'],
  ready: ['in-progress', 'cancelled', 'failed'],
  'in-progress': ['on-hold', 'completed', 'failed', 'cancelled'],
  'on-hold': ['in-progress', 'cancelled', 'failed'],
  completed: [],
  rejected: [],
  cancelled: [],
  failed: [],
  'entered-in-error': [],
};

/** Statuses in which someone has taken the work on: there must be an owner to have done so. */
const taken = new Set<Status>(['accepted', 'ready', 'in-progress', 'on-hold', 'completed']);

/** Cases still being worked on: they count against their reviewer's capacity. */
export const openStatuses: Status[] = ['received', 'accepted', 'ready', 'in-progress', 'on-hold'];

export function isLegalTransition(from: Status, to: Status): boolean {
  return from === to || legalNext[from].includes(to) || (to === 'entered-in-error' && from !== to);
}

/** Before a Task write: refuses a status change FHIR does not allow, or work taken on by nobody. */
export async function checkTransition(resource: Resource, current: Resource | undefined): Promise<undefined> {
  const [task, before] = [resource as Task, current as Task | undefined];
  if (!before || before.status === task.status) return undefined;
  if (!isLegalTransition(before.status, task.status)) {
    const allowed = legalNext[before.status].join(', ') || 'none: it is final';
    throw conflict(`Task/${task.id} cannot go from ${before.status} to ${task.status} (from ${before.status}: ${allowed})`, 'Task.status');
  }
  if (taken.has(task.status) && !task.owner) {
    throw businessRule(`A Task that is ${task.status} has an owner: the reviewer who took it on`, 'Task.owner');
  }
  return undefined;
}
