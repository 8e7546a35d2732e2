// What write-back leaves on a referring institution's server, each kind under an identifier system of
// its own, and how a record there is known again as one of ours (a later retrieval must not take it in).
import type { Identifier, Resource } from '@medplum/fhirtypes';

const writtenBackKinds = ['opinion', 'opinion-notice', 'follow-up', 'communication', 'communication-request'] as const;

export function writtenBackSystem(canonical: string, kind: (typeof writtenBackKinds)[number]): string {
  return `${canonical}/${kind}`;
}

/** Whether a record on a referring server is one this service wrote back there: its original is here already. */
export function isWrittenBack(record: Resource, canonical: string): boolean {
  const systems = writtenBackKinds.map((kind) => writtenBackSystem(canonical, kind));
  return ((record as { identifier?: Identifier[] }).identifier ?? []).some((i) => !!i.system && systems.includes(i.system));
}
