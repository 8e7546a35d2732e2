// The Task is the workflow: its status moves only as FHIR's Task state machine allows, on every write
// (the API's and the service's own), and every version records when it was written (Task.lastModified)
// and by whom (a Provenance per version, listed in Task.relevantHistory).
import { Gate } from '../access/gate.js';
import { randomUUID } from 'node:crypto';
import type { Provenance, Resource, Task } from '@medplum/fhirtypes';
import { currentAgent } from '../fhir/actor.js';
import type { FhirService } from '../fhir/interactions.js';
import { conflict, unprocessable } from '../fhir/outcome.js';

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
    throw unprocessable([
      {
        severity: 'error',
        code: 'business-rule',
        details: { text: `A Task that is ${task.status} has an owner: the reviewer who took it on` },
        expression: ['Task.owner'],
      },
    ]);
  }
  return undefined;
}

/**
 * Keeps the record of every Task version: before the write, stamps lastModified and lists the
 * version's Provenance in relevantHistory (the server's list, whatever the client sent); after it,
 * writes that Provenance. A crash between the two writes leaves the version pointing at a Provenance
 * that was never written (the version itself, and its lastModified, are kept).
 */
export class TaskVersions {
  constructor(private readonly service: FhirService) {}

  async stamp(resource: Resource, current: Resource | undefined): Promise<{ resource: Resource }> {
    const task = resource as Task;
    const history = (current as Task | undefined)?.relevantHistory ?? [];
    return {
      resource: { ...task, lastModified: new Date().toISOString(), relevantHistory: [...history, { reference: `Provenance/${randomUUID()}` }] } as Task,
    };
  }

  async record(resource: Resource): Promise<void> {
    const task = resource as Task;
    const provenanceId = task.relevantHistory?.at(-1)?.reference?.split('/')[1];
    const version = Number(task.meta?.versionId);
    if (!provenanceId) return;
    const previous =
      version > 1
        ? ((await this.service.repository.readVersion('Task', task.id as string, String(version - 1)).catch(() => undefined)) as Task | undefined)
        : undefined;
    const provenance: Provenance = {
      resourceType: 'Provenance',
      target: [{ reference: `Task/${task.id}/_history/${version}` }],
      recorded: task.lastModified as string,
      activity: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: previous ? 'UPDATE' : 'CREATE' }],
        text: describeChange(previous, task),
      },
      agent: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }] }, ...currentAgent() }],
      ...(previous ? { entity: [{ role: 'revision', what: { reference: `Task/${task.id}/_history/${version - 1}` } }] } : {}),
    };
    await this.service.createChecked(this.service.checkedBody('Provenance', provenance), Gate.service, { id: provenanceId });
  }
}

/** What a version changed in the workflow: status, businessStatus, owner. */
function describeChange(previous: Task | undefined, task: Task): string {
  const code = (t: Task | undefined): string => t?.businessStatus?.coding?.[0]?.code ?? 'none';
  if (!previous) return `Task created: status ${task.status}, businessStatus ${code(task)}`;
  const changes = [
    previous.status !== task.status ? `status ${previous.status} -> ${task.status}` : '',
    code(previous) !== code(task) ? `businessStatus ${code(previous)} -> ${code(task)}` : '',
    previous.owner?.reference !== task.owner?.reference ? `owner ${previous.owner?.reference ?? 'none'} -> ${task.owner?.reference ?? 'none'}` : '',
  ].filter(Boolean);
  return changes.length ? `Task ${changes.join('; ')}` : 'Task updated';
}
