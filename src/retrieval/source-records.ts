// How a record from a referring institution is kept here: under an id derived from where it came
// from (so a re-pull finds it again and never duplicates it), with its references rewritten the same
// way, and with `meta.source` naming the source URL and the source's version. The id is a keyed hash
// (HMAC-SHA256 with the deployment's RECORD_ID_KEY): the same every time, yet not computable by anyone
// who knows only where the record came from.
import { createHmac } from 'node:crypto';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { unprocessable } from '../base/outcome.js';
import { mapReferences } from '../fhir/references.js';
import type { Repository } from '../store/repository.js';
import { relativeReference } from '../base/ids.js';

let recordIdKey: Buffer | undefined;

/** Sets the key local ids are made with, once at start-up: every process on one database must use the same key. */
export function useRecordIdKey(key: Buffer): void {
  recordIdKey = key;
}

/** The local id of `type/id` on the FHIR server at `ehrBase`: the same every time, 32 hex characters. */
export function localId(ehrBase: string, type: string, id: string): string {
  if (!recordIdKey) throw new Error('The record id key was not set at start-up');
  return createHmac('sha256', recordIdKey)
    .update(`${ehrBase.replace(/\/+$/, '')}/${type}/${id}`)
    .digest('hex')
    .slice(0, 32);
}

/** `Type` and `id` of a reference on the source server (relative, or absolute under its base); else undefined. */
export function sourcePath(ehrBase: string, reference: string): { type: string; id: string } | undefined {
  const base = ehrBase.replace(/\/+$/, '') + '/';
  const relative = reference.startsWith(base) ? reference.slice(base.length) : reference;
  const match = relativeReference.exec(relative);
  return match ? { type: match[1], id: match[2] } : undefined;
}

/** A reference as it appears on the source (relative or absolute under its base) -> the local `Type/id`. */
export function localReference(ehrBase: string, reference: string): string | undefined {
  const path = sourcePath(ehrBase, reference);
  return path ? `${path.type}/${localId(ehrBase, path.type, path.id)}` : undefined;
}

/** The source URL of a record's version: what a stored copy is compared by. */
function sourceOf(base: string, type: string, record: Resource): string {
  const version = record.meta?.versionId;
  return `${base}/${type}/${record.id}${version ? `/_history/${version}` : ''}`;
}

/** The records not already stored here at the same source version. */
export async function notYetStored(repository: Repository, ehrBase: string, type: string, records: Resource[]): Promise<Resource[]> {
  const base = ehrBase.replace(/\/+$/, '');
  const stored = await repository.readMany(records.map((r) => `${type}/${localId(ehrBase, type, r.id as string)}`));
  const known = new Set(stored.map((r) => r.meta?.source));
  return records.filter((r) => !known.has(sourceOf(base, type, r)));
}

export interface ImportCounts {
  stored: number;
  unchanged: number;
  /** The local `Type/id` of each record of the page, in order. */
  keys: string[];
}

/** The issues that refuse a record as this service would store it (its structure); [] when it may be stored. */
export type RecordCheck = (record: Resource) => OperationOutcomeIssue[];

/**
 * Stores a page of source records of one type, as `owner`'s (the institution whose server they came
 * from): new ones are inserted together, records whose source version is already here are left
 * alone, changed ones get a new version. A page with a record `check` refuses stores nothing and
 * throws the 422 its issues make, naming the element.
 */
export async function importRecords(
  repository: Repository,
  ehrBase: string,
  type: string,
  records: Resource[],
  owner: string,
  check: RecordCheck,
): Promise<ImportCounts> {
  const placement = { owner, retrieved: true };
  const base = ehrBase.replace(/\/+$/, '');
  // Records of a page mostly name the same few others (their patient, an encounter): each is hashed once.
  const mappedReferences = new Map<string, string | undefined>();
  const toLocal = (reference: string): string | undefined => {
    if (!mappedReferences.has(reference)) mappedReferences.set(reference, localReference(ehrBase, reference));
    return mappedReferences.get(reference);
  };
  const local = records.map((record) => {
    const mapped = mapReferences(record, toLocal);
    return { ...mapped, id: localId(ehrBase, type, record.id as string), meta: { source: sourceOf(base, type, record) } };
  });
  const issues = local.flatMap(check);
  if (issues.length) throw unprocessable(issues);
  // Insert first: on a first pull that is the whole work, one round trip a page. Records already
  // here come back as taken ids, read back together and compared with what is stored.
  const taken = await repository.createMany(local, placement);
  const storedSources = new Map(
    (await repository.readManyStored(taken.map((r) => `${type}/${r.id}`))).map((doc) => [doc.resource?.id, doc.resource?.meta?.source]),
  );
  let unchanged = 0;
  for (const record of taken) {
    // Deleted here, or at another source version: a new version.
    if (storedSources.get(record.id) === record.meta?.source) unchanged++;
    else await repository.update(record, undefined, undefined, placement);
  }
  return { stored: records.length - unchanged, unchanged, keys: local.map((r) => `${type}/${r.id}`) };
}
