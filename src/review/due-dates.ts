// When a case is due: set once, when its Task is created, from the priority of the request
// (REVIEW_DUE_*_HOURS), into Task.restriction.period.end, where the `due` search parameter finds it.
import type { Resource, Task } from '@medplum/fhirtypes';
import type { Config } from '../config.js';

type DueHours = Config['review']['dueHours'];

/** Before a Task is created: gives it a due date by its priority, unless it brings its own. */
export function dueDateOnOpening(dueHours: DueHours) {
  return async (resource: Resource, current: Resource | undefined): Promise<{ resource: Resource } | undefined> => {
    const task = resource as Task;
    if (current || task.restriction?.period?.end) return undefined;
    const end = dueDate(task, dueHours);
    return { resource: { ...task, restriction: { ...task.restriction, period: { ...task.restriction?.period, end } } } as Task };
  };
}

/** The case's opening (authoredOn, else now) plus the hours its priority allows; routine when it has none. */
export function dueDate(task: Task, dueHours: DueHours): string {
  const opened = task.authoredOn ? Date.parse(task.authoredOn) : Date.now();
  const hours = dueHours[task.priority ?? 'routine'];
  return new Date(opened + hours * 3_600_000).toISOString();
}
