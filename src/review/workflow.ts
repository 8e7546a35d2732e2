// Review: plugs the workflow's rules into the one write pipeline (FhirService.hookWrites), so that
// they hold for every write of a Task, through the API or from the service.
import type { Config } from '../config.js';
import type { FhirService } from '../fhir/interactions.js';
import { dueDateOnOpening } from './due-dates.js';
import { checkTransition, TaskVersions } from './task-lifecycle.js';

const nothing = async (): Promise<undefined> => undefined;

export function installReviewWorkflow(service: FhirService, config: Config['review']): void {
  const versions = new TaskVersions(service);

  // In this order: a new case's due date; the status change; the version's record.
  service.hookWrites('Task', dueDateOnOpening(config.dueHours), nothing);
  service.hookWrites('Task', checkTransition, nothing);
  service.hookWrites('Task', (task, current) => versions.stamp(task, current), (task) => versions.record(task));
}
