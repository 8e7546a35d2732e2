// How a record from a referring institution is kept here: under an id derived from where it came
// from (so a re-pull finds it again and never duplicates it), with its references rewritten the same
// way, and with `meta.source` naming the source URL and the source's version.
import { createHash } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import { mapReferences } from '../fhir/references.js';
import type { Repository } from '../store/repository.js';

/** The local id of `type/id` on the FHIR server at `ehrBase`: the same every time, 32 hex characters. */
export function localId(ehrBase: string, type: string, id: string): string {
  return createHash('sha256').update(`${ehrBase.replace(/\/+$/, '')}/${type}/${id}`).digest('hex').slice(0, 32);
}

/** A reference as it appears on the source (relative or absolute under its base) -> the local `Type/id`. */
export function localReference(ehrBase: string, reference: string): string | undefined {
  const base = ehrBase.replace(/\/+$/, '') + '/';
  const relative = reference.startsWith(base) ? reference.slice(base.length) : reference;
  const match = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/.*)?$/.exec(relative);
  return match ? `${match[1]}/${localId(ehrBase, match[1], match[2])}` : undefined;
}

export type ImportOutcome = 'stored' | 'unchanged';

/** Stores one source record; a record whose source version is already here is left as it is. */
export async function importRecord(repository: Repository, ehrBase: string, record: Resource): Promise<ImportOutcome> {
  const type = record.resourceType;
  const sourceId = record.id as string;
  const id = localId(ehrBase, type, sourceId);
  const version = record.meta?.versionId;
  const source = `${ehrBase.replace(/\/+$/, '')}/${type}/${sourceId}${version ? `/_history/${version}` : ''}`;
  const current = await repository.current(type, id);
  if (current?.resource?.meta?.source === source && !current.deleted) {
    return 'unchanged';
  }
  const local = mapReferences(record, (reference) => localReference(ehrBase, reference));
  await repository.update({ ...local, id, meta: { source } } as Resource);
  return 'stored';
}
