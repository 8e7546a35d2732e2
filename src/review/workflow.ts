// Review: plugs the workflow's rules into the one write pipeline (FhirService.hookWrites), so that
// they hold for every write of a Task, a question or a message, through the API or from the service.
import type { Config } from '../config.js';
import type { FhirService } from '../fhir/interactions.js';
import type { Institutions } from '../intake/institutions.js';
import { Cases } from './cases.js';
import { dueDateOnOpening } from './due-dates.js';
import { Questions } from './questions.js';
import { Reviewers } from './reviewers.js';
import { Routing } from './routing.js';
import { Specialties } from './specialties.js';
import { checkTransition } from '../case/task-status.js';
import { TaskVersions } from '../case/versions.js';

export interface ReviewWorkflow {
  routing: Routing;
  questions: Questions;
}

const nothing = async (): Promise<undefined> => undefined;

export function installReviewWorkflow(service: FhirService, institutions: Institutions, config: Config['review']): ReviewWorkflow {
  const map = service.conformance.conceptMaps.get(`${service.conformance.canonical}/ConceptMap/diagnosis-to-specialty`);
  if (!map) throw new Error('profiles/: the diagnosis-to-specialty ConceptMap is required for routing');
  const cases = new Cases(service, institutions);
  const routing = new Routing(service, cases, new Specialties(map), new Reviewers(service));
  const versions = new TaskVersions(service);
  const questions = new Questions(service, cases);

  // In this order: a new case's due date; the status change; the version's record; the owner, and routing after the write.
  service.hookWrites('Task', dueDateOnOpening(config.dueHours), nothing);
  service.hookWrites('Task', checkTransition, nothing);
  service.hookWrites(
    'Task',
    (task, current) => versions.stamp(task, current),
    (task) => versions.record(task),
  );
  service.hookWrites(
    'Task',
    (task, current) => routing.checkOwnerChange(task, current),
    (task) => routing.routeWhenRecordsReady(task),
  );
  service.hookWrites(
    'CommunicationRequest',
    (question, current) => questions.beforeQuestion(question, current),
    (question) => questions.afterQuestion(question),
  );
  service.hookWrites(
    'Communication',
    (message, current) => questions.beforeMessage(message, current),
    (message) => questions.afterMessage(message),
  );
  return { routing, questions };
}
