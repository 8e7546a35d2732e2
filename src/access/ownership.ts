// Whose a stored record is. Every version of patient data is stored with labels that decide who may
// see it: exactly one owning institution (`Organization/x`), and the case (`ServiceRequest/x`) and
// patient (`Patient/x`, and `chart|Patient/x` for the chart) it belongs to. The owner is decided by the
// server, never by what a body says:
// - a referring system's write: the institution in its token;
// - a record retrieval copied: the institution whose registered Endpoint the service fetched it from;
// - any other write (a reviewer's, a coordinator's, the workflow's): the institution of the records
//   it refers to, which the writer must be able to read (checkReferences), and which must all be one
//   institution's; a record never changes owner.
// A ServiceRequest is the referring EHR's order: its references point at the EHR's server, not here,
// so it inherits nothing from them; its patient is placed on a registered Endpoint of its owner.
// Labels are indexed, so a caller's reach narrows a search inside the database (see gate.ts).
import type { Resource, ServiceRequest } from '@medplum/fhirtypes';
import { businessRule } from '../base/outcome.js';
import { referencesWithPaths } from '../fhir/references.js';
import { namesPatientByUrl, patientAt } from '../intake/institutions.js';
import { localId } from '../retrieval/source-records.js';
import type { StoredResource } from '../store/models.js';
import type { Placement, Repository } from '../store/repository.js';
import { chartLabel, isInstitutionLabel, isPatientLabel } from './labels.js';
import { caseTypes, classOf } from './policy.js';

/** The owning institution of a stored record, as `Organization/x`. */
export const ownerOf = (doc: Pick<StoredResource, 'access'> | undefined): string | undefined => doc?.access?.find(isInstitutionLabel);

/** The institution a case belongs to: its request's owner, as stored (`Organization/x`). */
export async function caseOwner(repository: Repository, requestId: string): Promise<string | undefined> {
  return ownerOf(await repository.current('ServiceRequest', requestId));
}

export class Ownership {
  constructor(private readonly isSecondOpinion: (resource: Resource) => boolean) {}

  /**
   * The labels a version of `resource` is stored with, read from `store` (what it refers to, the
   * registered Endpoints); refuses (422) a record that would span institutions. The store's Labeller.
   */
  async labelsOf(resource: Resource, placement: Placement, store: Repository): Promise<string[]> {
    const type = resource.resourceType;
    if (classOf(type) !== 'patient-data') return [];
    const kept = ownerOf(placement.current);
    if (kept && placement.owner && kept !== placement.owner) throw spansInstitutions(type);
    const owner = kept ?? placement.owner;
    if (type === 'ServiceRequest' && !placement.retrieved)
      return this.requestLabels(store, resource, owner, placement.current?.resource as ServiceRequest | undefined);
    const { patients, anchors } = namedBy(resource);
    const labels = new Set(patients);
    const institutions = new Set(owner ? [owner] : []);
    if (!placement.retrieved) {
      // A new version that names the same records as the one it replaces keeps its labels: its owner
      // never changes, and what it refers to is where it was (a Task moving on is not read again).
      const current = placement.current;
      if (current?.resource && !current.deleted && current.access && sameRecords(namedBy(current.resource), { patients, anchors })) return current.access;
      for (const doc of await store.labelsOfMany([...anchors, ...patients])) {
        for (const label of doc.access ?? []) {
          if (isInstitutionLabel(label)) institutions.add(label);
          // A case's record is seen by its case, not by its patient's chart.
          else if (!(caseTypes.has(type) && label.startsWith('chart|'))) labels.add(label);
        }
      }
    }
    if (institutions.size > 1) throw spansInstitutions(type);
    // The chart, as opposed to a case's own records (an opinion is a DiagnosticReport too, but of its case).
    if (placement.retrieved || (!caseTypes.has(type) && type !== 'Provenance')) {
      for (const patient of patients) labels.add(chartLabel(patient));
    }
    return [...institutions, ...labels];
  }

  /**
   * A request's labels: itself, its owner, and its patient, placed on one of the owner's registered
   * servers. A second-opinion request naming its patient on any other server is refused before
   * anything is stored or called (the URL is not quoted back); one already stored keeps its place.
   */
  private async requestLabels(store: Repository, request: ServiceRequest, owner: string | undefined, current: ServiceRequest | undefined): Promise<string[]> {
    const labels = [`ServiceRequest/${request.id}`];
    const placed = await patientAt(store, request, owner);
    if (!placed && this.isSecondOpinion(request) && namesPatientByUrl(request) && current?.subject?.reference !== request.subject?.reference) {
      throw businessRule(
        "The request's patient is on a FHIR server that is not a registered, active Endpoint of the requesting institution; register the institution's endpoint first",
        'ServiceRequest.subject',
      );
    }
    if (placed) labels.push(`Patient/${localId(placed.ehrBase, 'Patient', placed.patientId)}`);
    const institution = owner ?? placed?.institution;
    return institution ? [institution, ...labels] : labels;
  }
}

/**
 * The records a resource's labels come from: the patients it names, and the records of patient data
 * it refers to (its anchors). Records about a case, and records about records (a Provenance), belong
 * where what they refer to is. A record's own history (a Task's relevantHistory) documents it and
 * belongs where it does: it anchors nothing (it is often written just after the record that names it).
 */
function namedBy(resource: Resource): { patients: string[]; anchors: string[] } {
  const type = resource.resourceType;
  const references = referencesWithPaths(resource)
    .map((r) => r.reference)
    .filter((r) => r !== `${type}/${resource.id}`);
  const patients = [...(type === 'Patient' ? [`Patient/${resource.id}`] : []), ...references.filter(isPatientLabel)];
  const anchors = references.filter(
    (r) => !isPatientLabel(r) && classOf(r.split('/')[0]) === 'patient-data' && (type === 'Provenance' || !r.startsWith('Provenance/')),
  );
  return { patients, anchors };
}

function sameRecords(a: { patients: string[]; anchors: string[] }, b: { patients: string[]; anchors: string[] }): boolean {
  const set = (named: { patients: string[]; anchors: string[] }) => [...new Set([...named.patients, ...named.anchors])].sort().join(' ');
  return set(a) === set(b);
}

function spansInstitutions(type: string) {
  return businessRule(`A ${type} belongs to one institution: it may not refer to records of another, nor move to another`, type);
}
