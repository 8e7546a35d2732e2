// The one way a stage moves a case: its Task's status, businessStatus, statusReason and the other
// elements a move sets (owner, performerType, a note), in one write of the Task as it is now. The
// version's Provenance is written by the Task's version hook (versions.ts), as for every Task write.
import type { Task } from '@medplum/fhirtypes';
import { Gate } from '../access/gate.js';
import type { FhirService } from '../fhir/interactions.js';
import { conflict, FhirError } from '../base/outcome.js';
import { businessStatusConcept, businessStatusOf, canMove, movesInto, type BusinessStatus } from './business-status.js';

/** What a move sets beside the businessStatus. */
export type CaseChange = Pick<Partial<Task>, 'status' | 'statusReason' | 'owner' | 'performerType' | 'note'>;

/** The code to move to, or one decided on each read of the Task (undefined leaves the code as it is). */
export type MoveTo = BusinessStatus | ((task: Task) => Promise<BusinessStatus | undefined>);

const attempts = 5;

/**
 * Moves the case on the Task as it is now: when another write (routing, a reviewer) got in between
 * the read and the write, it reads again and applies the move to that. A decided code undefined, with
 * no other change, leaves the Task unwritten. A move the table does not allow answers 409.
 */
export async function moveCase(service: FhirService, taskId: string, to: MoveTo, change: CaseChange = {}): Promise<Task> {
  for (let attempt = 1; ; attempt++) {
    const task = (await service.repository.read('Task', taskId)) as Task;
    const from = businessStatusOf(task);
    const decided = typeof to === 'string' ? to : await to(task);
    if (decided === undefined && !Object.keys(change).length) return task;
    if (decided !== undefined && !canMove(from, decided)) {
      const allowed = movesInto(decided);
      throw conflict(
        `Task/${taskId} does not move from businessStatus ${from ?? 'none'} to ${decided} (only from ${[allowed].flat().join(', ') || 'nowhere'})`,
        'Task.businessStatus',
      );
    }
    const system = task.businessStatus?.coding?.[0]?.system;
    const next: Task = {
      ...task,
      ...change,
      businessStatus: decided ? businessStatusConcept(system, decided) : { coding: [{ system, code: task.businessStatus?.coding?.[0]?.code }] },
      lastModified: new Date().toISOString(),
    };
    try {
      return (await service.updateValidated(next, taskId, Gate.service, `W/"${task.meta?.versionId}"`)).resource as Task;
    } catch (err) {
      if (!(err instanceof FhirError && err.status === 412) || attempt >= attempts) throw err;
    }
  }
}
