// Routing: a case whose records are ready goes to a reviewer of the specialty it needs, the least
// loaded among those with room (open cases / capacity), never one of the referring institution. It
// stays received: the owner (a PractitionerRole) accepts it. No match: it waits unassigned, with
// businessStatus awaiting-assignment, for a coordinator's $assign. The diagnosis is read wherever R4
// lets an order carry it: performerType, reasonCode, and the records reasonReference names.
import type { CodeableConcept, PractitionerRole, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { businessStatusOf, canMove, movesInto } from '../case/business-status.js';
import { moveCase } from '../case/move.js';
import type { FhirService } from '../fhir/interactions.js';
import { businessRule, conflict } from '../base/outcome.js';
import type { Cases } from './cases.js';
import type { Candidate, Reviewers } from './reviewers.js';
import type { Specialties } from './specialties.js';
import { referenceTo } from '../base/ids.js';

const roleReference = referenceTo('PractitionerRole');

export class Routing {
  /** Assignments one at a time, so two cases never both take a reviewer's last place (within this process). */
  private assigning: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly service: FhirService,
    private readonly cases: Cases,
    private readonly specialties: Specialties,
    private readonly reviewers: Reviewers,
  ) {}

  /** Once the chart is in: a received case whose records are ready, and that has no owner, is routed. */
  async routeWhenRecordsReady(taskId: string): Promise<void> {
    const [task] = (await this.service.repository.readMany([`Task/${taskId}`])) as Task[];
    if (task?.status === 'received' && !task.owner && businessStatusOf(task) === 'records-ready') {
      await this.route(taskId);
    }
  }

  /** Assigns the case to the best-fitting reviewer, or queues it as awaiting-assignment. */
  route(taskId: string): Promise<Task> {
    return this.serially(async () => {
      const task = (await this.service.repository.read('Task', taskId)) as Task;
      const request = await this.cases.requestOf(task);
      const wanted = request ? this.specialties.wantedBy(await this.withReasonsResolved(request)) : [];
      const performerType: CodeableConcept[] = wanted.map((coding) => ({ coding: [coding] }));
      const chosen = wanted.length ? leastLoaded(await this.eligible(await this.reviewers.withSpecialty(wanted), task, request)) : undefined;
      return chosen
        ? moveCase(this.service, taskId, 'assigned', { owner: { reference: `PractitionerRole/${chosen.role.id}` }, performerType })
        : moveCase(this.service, taskId, 'awaiting-assignment', wanted.length ? { performerType } : {});
    });
  }

  /** The request with the diagnoses of the records its reasonReference names (from the retrieved chart) added to its reasonCode. */
  private async withReasonsResolved(request: ServiceRequest): Promise<ServiceRequest> {
    if (!request.reasonReference?.length) return request;
    const records = await this.cases.recordsNamedBy(request, request.reasonReference);
    return { ...request, reasonCode: [...(request.reasonCode ?? []), ...records.flatMap(diagnosesOf)] };
  }

  /** $assign: a coordinator gives the case to the role named, whatever its specialty. */
  assign(taskId: string, roleRef: string): Promise<Task> {
    return this.serially(async () => {
      const task = (await this.service.repository.read('Task', taskId)) as Task;
      if (task.status !== 'received') {
        throw conflict(`Task/${taskId} is ${task.status}: a case is assigned before its reviewer accepts it`, 'Task.status');
      }
      // Where a coordinator may (re)assign a case: its records are in and no reviewer has accepted it.
      if (!canMove(businessStatusOf(task), 'assigned')) {
        const assignable = ['assigned', ...movesInto('assigned')].join(', ');
        throw conflict(`Task/${taskId} is assigned once its records are ready (businessStatus ${assignable})`, 'Task.businessStatus');
      }
      if (task.owner?.reference !== roleRef) await this.checkAssignable(task, roleRef, 'Parameters.parameter.owner');
      return moveCase(this.service, taskId, 'assigned', { owner: { reference: roleRef } });
    });
  }

  /** Before a Task write: a new owner is held to the same rules as $assign, whoever writes it. */
  async checkOwnerChange(resource: Resource, current: Resource | undefined): Promise<undefined> {
    const [task, before] = [resource as Task, current as Task | undefined];
    const owner = task.owner?.reference;
    if (before && owner && owner !== before.owner?.reference) {
      await this.checkAssignable(task, owner, 'Task.owner');
    }
    return undefined;
  }

  /** Refuses (422, naming `expression`) a role that is not an active reviewer with room, or belongs to the referring institution. */
  async checkAssignable(task: Task, roleRef: string, expression: string): Promise<void> {
    const refusal = (text: string) => businessRule(text, expression);
    const [role] = roleReference.test(roleRef) ? ((await this.service.repository.readMany([roleRef])) as PractitionerRole[]) : [];
    if (!role || role.active === false) throw refusal(`${roleRef.slice(0, 100)} is not an active reviewer's PractitionerRole`);
    const [candidate] = await this.eligible([await this.reviewers.candidate(role)], task, await this.cases.requestOf(task), (text) => {
      throw refusal(text);
    });
    if (candidate.openCases >= candidate.capacity) {
      throw refusal(`${roleRef} has no room: ${candidate.openCases} open case(s), capacity ${candidate.capacity}`);
    }
  }

  /** The candidates outside the referring institution; `refuse` is told of one that is not. */
  private async eligible(candidates: Candidate[], task: Task, request: ServiceRequest | undefined, refuse?: (text: string) => void): Promise<Candidate[]> {
    const referring = await this.cases.referringOrganizations(task, request);
    return candidates.filter((c) => {
      const organization = this.cases.local(c.role.organization);
      if (organization && referring.has(organization)) {
        refuse?.(`PractitionerRole/${c.role.id} belongs to the referring institution`);
        return false;
      }
      return true;
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.assigning.then(work, work);
    this.assigning = run.catch(() => undefined);
    return run;
  }
}

/** The diagnoses a record that an order names as its reason carries. */
function diagnosesOf(record: Resource): CodeableConcept[] {
  switch (record.resourceType) {
    case 'Condition':
      return record.code ? [record.code] : [];
    case 'Observation':
      return [record.valueCodeableConcept, record.code].filter((c): c is CodeableConcept => !!c);
    case 'DiagnosticReport':
      return record.conclusionCode ?? [];
    default:
      return [];
  }
}

/** The candidate with room and the lowest share of its capacity in use; then the most room; then by id. */
export function leastLoaded(candidates: Candidate[]): Candidate | undefined {
  return candidates
    .filter((c) => c.openCases < c.capacity)
    .sort(
      (a, b) =>
        a.openCases / a.capacity - b.openCases / b.capacity ||
        b.capacity - b.openCases - (a.capacity - a.openCases) ||
        (a.role.id as string).localeCompare(b.role.id as string),
    )[0];
}
