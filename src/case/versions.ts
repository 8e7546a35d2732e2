// Every version of a case's Task records when it was written (Task.lastModified) and by whom (a
// Provenance per version, listed in Task.relevantHistory), whoever wrote it: the API or a stage.
import { randomUUID } from 'node:crypto';
import type { Resource, Task } from '@medplum/fhirtypes';
import { Gate } from '../access/gate.js';
import { currentAgent } from '../fhir/actor.js';
import type { FhirService } from '../fhir/interactions.js';
import { agentAs, provenanceOfWrite } from '../fhir/provenance.js';

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

  /** `replaced`: the version this one replaced, as the write read it (undefined for a create, or over a deletion). */
  async record(resource: Resource, replaced: Resource | undefined): Promise<void> {
    const task = resource as Task;
    const provenanceId = task.relevantHistory?.at(-1)?.reference?.split('/')[1];
    const version = Number(task.meta?.versionId);
    if (!provenanceId) return;
    const previous = replaced as Task | undefined;
    const provenance = provenanceOfWrite({
      target: [`Task/${task.id}/_history/${version}`],
      recorded: task.lastModified as string,
      operation: previous ? 'UPDATE' : 'CREATE',
      text: describeChange(previous, task),
      agent: [agentAs('author', currentAgent())],
      ...(previous ? { entity: [{ role: 'revision', what: { reference: `Task/${task.id}/_history/${version - 1}` } }] } : {}),
    });
    await this.service.createValidated(provenance, Gate.service, { id: provenanceId });
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
