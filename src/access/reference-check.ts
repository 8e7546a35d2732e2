// A write may name only records its writer may read: checked before anything is stored.
import type { Resource } from '@medplum/fhirtypes';
import { notFound } from '../base/outcome.js';
import { referencesWithPaths } from '../fhir/references.js';
import type { StoredResource } from '../store/models.js';
import type { Repository } from '../store/repository.js';
import type { Gate } from './gate.js';
import { classOf } from './policy.js';

/**
 * Every reference to patient data a write brings (contained resources' too) must name a record the writer may read,
 * or one the same transaction creates (`writing`); what the stored version (`current`) already named
 * stays. A missing record and another institution's answer the same 404, naming the element but not
 * the record, so a write cannot tell them apart. The workflow's own writes (the service's gate) and a
 * request's references (on the EHR's server, see ownership.ts) are not checked here.
 */
export async function checkReferences(
  repository: Repository,
  gate: Gate,
  resource: Resource,
  writing: ReadonlySet<string>,
  current?: StoredResource,
): Promise<void> {
  const type = resource.resourceType;
  if (gate.isService || classOf(type) !== 'patient-data' || type === 'ServiceRequest') return;
  const kept = new Set(current?.resource ? referencesWithPaths(current.resource).map((r) => r.reference) : []);
  // The directory (institutions, reviewers, Measures) is everyone's to read and places nothing: not checked.
  const named = referencesWithPaths(resource).filter(
    ({ reference }) =>
      reference !== `${type}/${resource.id}` && !writing.has(reference) && !kept.has(reference) && classOf(reference.split('/')[0]) !== 'directory',
  );
  if (!named.length) return;
  const stored = new Map((await repository.labelsOfMany(named.map((n) => n.reference))).map((d) => [d._id, d]));
  for (const { reference, path } of named) {
    const doc = stored.get(reference);
    if (!doc || !(await gate.sees(reference.split('/')[0], doc.access))) throw notFound(`The record ${type}.${path} refers to is not known`, `${type}.${path}`);
  }
}
