// Questions and answers of a case. A reviewer asks for more information with a CommunicationRequest
// (basedOn the case's ServiceRequest, or about its Task): a case in progress goes on-hold, awaiting
// information. The answer is a Communication basedOn that CommunicationRequest (replies to replies by
// inResponseTo); it completes the request, and when nothing asked is still open the case is back in
// progress, under review. Every question and answer is linked to its case's request, so that
// `Communication?based-on=ServiceRequest/{id}&_sort=sent` reads the whole thread in order.
import { Gate } from '../access/gate.js';
import type { Communication, CommunicationRequest, Reference, Resource, Task } from '@medplum/fhirtypes';
import { businessStatusOf } from '../case/business-status.js';
import { moveCase } from '../case/move.js';
import type { FhirService } from '../fhir/interactions.js';
import { conflict, unknownReference } from '../base/outcome.js';
import { parseSearch } from '../fhir/search/search.js';
import type { Cases } from './cases.js';

/** Told of each question put to the referring institution: where delivery to the institution plugs in. */
export type ReferrerListener = (request: CommunicationRequest, task: Task) => Promise<void>;

const closed = new Set<Task['status']>(['completed', 'cancelled', 'failed', 'rejected', 'entered-in-error']);

export class Questions {
  private readonly addressedToReferrer: ReferrerListener[] = [];

  constructor(
    private readonly service: FhirService,
    private readonly cases: Cases,
  ) {}

  /** Listens for questions addressed to the referring institution (its requester or its Organization). */
  onAddressedToReferrer(listener: ReferrerListener): void {
    this.addressedToReferrer.push(listener);
  }

  /** Before a CommunicationRequest is created: its case must still be open; it is linked to the case's request. */
  async beforeQuestion(resource: Resource, current: Resource | undefined): Promise<{ resource: Resource } | undefined> {
    const question = resource as CommunicationRequest;
    const task = current ? undefined : await this.cases.taskOf([...(question.basedOn ?? []), ...(question.about ?? [])]);
    if (!task) return undefined;
    if (closed.has(task.status)) {
      throw conflict(`Task/${task.id} is ${task.status}: its case takes no more questions`, 'Task.status');
    }
    return { resource: { ...question, basedOn: withReference(question.basedOn, task.focus) } };
  }

  /** After a CommunicationRequest write: an active question holds its case; one no longer active may release it. */
  async afterQuestion(resource: Resource): Promise<void> {
    const question = resource as CommunicationRequest;
    const task = await this.cases.taskOf(question.basedOn ?? []);
    if (!task) return;
    if (question.status !== 'active') {
      await this.resumeIfAnswered(task);
      return;
    }
    if (!(await this.wasActive(question))) {
      if (task.status === 'in-progress') await moveCase(this.service, task.id as string, 'awaiting-information', { status: 'on-hold' });
      await this.tellReferrer(question, task);
    }
  }

  /**
   * Before a Communication is created: the questions it answers must exist here; it is linked to the
   * case of what it answers or replies to (a reply may also be to a message kept elsewhere).
   */
  async beforeMessage(resource: Resource, current: Resource | undefined): Promise<{ resource: Resource } | undefined> {
    const message = resource as Communication;
    if (current) return undefined;
    const answered = await this.existing(message.basedOn, 'CommunicationRequest', 'Communication.basedOn');
    const repliedTo = await this.service.repository.readMany(references(message.inResponseTo, 'Communication'));
    const task = await this.cases.taskOf([...answered, ...repliedTo].flatMap((r) => (r as CommunicationRequest | Communication).basedOn ?? []));
    return task ? { resource: { ...message, basedOn: withReference(message.basedOn, task.focus) } } : undefined;
  }

  /** After a Communication is created: the questions it answers are completed (which may resume the case). */
  async afterMessage(resource: Resource): Promise<void> {
    const message = resource as Communication;
    if (message.meta?.versionId !== '1') return;
    const questions = (await this.service.repository.readMany(references(message.basedOn, 'CommunicationRequest'))) as CommunicationRequest[];
    for (const question of questions.filter((q) => q.status === 'active')) {
      await this.service.updateValidated({ ...question, status: 'completed' }, question.id as string, Gate.service);
    }
  }

  /** A case on hold for information goes back to review once none of its questions is still active. */
  private async resumeIfAnswered(task: Task): Promise<void> {
    if (task.status !== 'on-hold' || businessStatusOf(task) !== 'awaiting-information') return;
    const open = parseSearch('CommunicationRequest', { 'based-on': task.focus?.reference, status: 'active', _summary: 'count' });
    if (((await this.service.repository.search(open)).total ?? 0) === 0) {
      await moveCase(this.service, task.id as string, 'under-review', { status: 'in-progress' });
    }
  }

  private async wasActive(question: CommunicationRequest): Promise<boolean> {
    const version = Number(question.meta?.versionId);
    if (version <= 1) return false;
    const previous = (await this.service.repository.readVersion('CommunicationRequest', question.id as string, String(version - 1)).catch(() => undefined)) as
      CommunicationRequest | undefined;
    return previous?.status === 'active';
  }

  private async tellReferrer(question: CommunicationRequest, task: Task): Promise<void> {
    const request = await this.cases.requestOf(task);
    const referrer = await this.cases.referringOrganizations(task, request);
    const requester = this.cases.local(request?.requester);
    if (requester) referrer.add(requester);
    if (question.recipient?.some((r) => referrer.has(this.cases.local(r) ?? ''))) {
      for (const listener of this.addressedToReferrer) await listener(question, task);
    }
  }

  /** The resources of `type` the references point at; 422 naming the first that is not here. */
  private async existing(list: Reference[] | undefined, type: string, element: string): Promise<Resource[]> {
    const found: Resource[] = [];
    for (const [i, reference] of (list ?? []).entries()) {
      if (!reference.reference?.startsWith(`${type}/`)) continue;
      const [resource] = await this.service.repository.readMany([reference.reference]);
      if (!resource) {
        throw unknownReference(`${reference.reference.slice(0, 100)} is not known here`, `${element}[${i}]`);
      }
      found.push(resource);
    }
    return found;
  }
}

function references(list: Reference[] | undefined, type: string): string[] {
  return (list ?? []).map((r) => r.reference ?? '').filter((r) => r.startsWith(`${type}/`));
}

function withReference(list: Reference[] | undefined, reference: Reference | undefined): Reference[] | undefined {
  if (!reference?.reference || list?.some((r) => r.reference === reference.reference)) return list;
  return [...(list ?? []), { reference: reference.reference }];
}
