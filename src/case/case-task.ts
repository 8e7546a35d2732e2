// Finding a case: its Task shares its request's id (see intake/open-case.ts), and every record of a
// case (an opinion, a question, a message) names the request in basedOn.
import type { Reference, Task } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';

/**
 * The case's Task of a request (`ServiceRequest/id`): read by key, since the case's Task shares its
 * request's id; searched for by `focus` only when that Task is not there.
 */
export async function caseTaskOf(repository: Repository, requestRef: string): Promise<Task | undefined> {
  const [own] = (await repository.readMany([`Task/${requestRef.split('/')[1]}`])) as Task[];
  if (own?.focus?.reference === requestRef) return own;
  return (await repository.referencing('Task', 'focus', [requestRef], 1))[0] as Task | undefined;
}

/** The request (`ServiceRequest/id`) a record of a case is based on. */
export function requestOfRecord(record: { basedOn?: Reference[] }): string | undefined {
  return record.basedOn?.map((r) => r.reference).find((r) => r?.startsWith('ServiceRequest/'));
}

/** The case's Task of a record based on its request (an opinion, a question, a message). */
export async function caseTaskOfRecord(repository: Repository, record: { basedOn?: Reference[] }): Promise<Task | undefined> {
  const request = requestOfRecord(record);
  return request ? caseTaskOf(repository, request) : undefined;
}
