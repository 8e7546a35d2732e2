// Review: plugs the workflow's rules into the one write pipeline (FhirService.hookWrites), so that
// they hold for every write of a Task, a question or a message, through the API or from the service.
// What a write starts next (routing, a case on hold or resumed) is the case pipeline's (case/pipeline.ts).
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

export function installReviewWorkflow(service: FhirService, institutions: Institutions, config: Config['review']): ReviewWorkflow {
  const map = service.conformance.conceptMaps.get(`${service.conformance.canonical}/ConceptMap/diagnosis-to-specialty`);
  if (!map) throw new Error('profiles/: the diagnosis-to-specialty ConceptMap is required for routing');
  const cases = new Cases(service, institutions);
  const routing = new Routing(service, cases, new Specialties(map), new Reviewers(service));
  const versions = new TaskVersions(service);
  const questions = new Questions(service, cases);

  // A Task write: a new case's due date is set, the status change checked, the version stamped (and
  // its Provenance written after it), and a new owner held to $assign's rules.
  service.hookWrites('Task', { order: 100, before: dueDateOnOpening(config.dueHours) });
  service.hookWrites('Task', { order: 200, before: checkTransition });
  service.hookWrites('Task', {
    order: 300,
    before: (task, current) => versions.stamp(task, current),
    after: (task, previous) => versions.record(task, previous),
  });
  service.hookWrites('Task', { order: 400, before: (task, current) => routing.checkOwnerChange(task, current) });
  // A question or a message: its case must be open, and it is linked to the case's request.
  service.hookWrites('CommunicationRequest', { order: 100, before: (question, current) => questions.beforeQuestion(question, current) });
  service.hookWrites('Communication', { order: 100, before: (message, current) => questions.beforeMessage(message, current) });
  return { routing, questions };
}
