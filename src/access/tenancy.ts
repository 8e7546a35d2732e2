// Whose a stored record is: every version of patient data is labelled, when it is written, with the
// references of the anchors that decide who may see it: its referring institution (`Organization/x`),
// its case (`ServiceRequest/x`, for the request and the workflow records about it) and its patient
// (`Patient/x`, for the chart). Labels are kept beside the resource (StoredResource.access) and
// indexed, so a caller's reach narrows a search inside the database (see gate.ts).
import type { Endpoint, Resource, ServiceRequest } from '@medplum/fhirtypes';
import { referencesIn } from '../fhir/references.js';
import type { Institutions } from '../intake/institutions.js';
import { localId } from '../retrieval/source-records.js';
import type { Repository } from '../store/repository.js';
import { caseTypes, classOf } from './policy.js';

/** How many other referenced records a record inherits its labels from, at most (a Provenance's targets). */
const inheritedAtMost = 20;
const endpointsFreshMs = 5_000;

export const isInstitutionLabel = (label: string): boolean => label.startsWith('Organization/');
export const isCaseLabel = (label: string): boolean => label.startsWith('ServiceRequest/');
export const isPatientLabel = (label: string): boolean => label.startsWith('Patient/');
/** The label of a record of a patient's chart (not of a case): a reviewer of any of the patient's cases sees it. */
export const chartLabel = (patient: string): string => `chart|${patient}`;

export class Tenancy {
  private endpoints?: { read: number; list: Promise<Endpoint[]> };

  constructor(
    private readonly repository: Repository,
    private readonly institutions: Institutions,
  ) {}

  /** Endpoints change rarely; a registration is seen within a few seconds (at once in this process, see forgetEndpoints). */
  forgetEndpoints(): void {
    this.endpoints = undefined;
  }

  /** The labels of a resource about to be stored; `owner` places a record that names no institution of its own. */
  async labelsOf(resource: Resource, owner?: string): Promise<string[]> {
    const type = resource.resourceType;
    if (classOf(type) !== 'patient-data') return [];
    const labels = new Set<string>();
    const references = referencesIn(resource);
    if (type === 'ServiceRequest') {
      labels.add(`ServiceRequest/${resource.id}`);
      const placed = await this.institutions.patientOf(resource as ServiceRequest);
      if (placed) {
        labels.add(`Patient/${localId(placed.ehrBase, 'Patient', placed.patientId)}`);
        const institution = await this.institutionAt(placed.ehrBase);
        if (institution) labels.add(institution);
      }
    } else {
      // The patients the record names itself (or is).
      const own = [...(type === 'Patient' ? [`Patient/${resource.id}`] : []), ...references.filter(isPatientLabel)];
      for (const patient of own) labels.add(patient);
      if (resource.meta?.source) {
        // A chart record copied from an institution: its source and its patient say all, with no read
        // (retrieval labels thousands of records a minute).
        const institution = await this.institutionAt(resource.meta.source);
        if (institution) labels.add(institution);
      } else {
        // Records about a case, and records about records (a Provenance), are where what they refer to is.
        const anchors = references.filter((r) => !isPatientLabel(r) && classOf(r.split('/')[0]) === 'patient-data');
        for (const doc of await this.repository.readManyStored([...anchors, ...own].slice(0, inheritedAtMost))) {
          // A case's record is seen by its case, not by its patient's chart.
          for (const label of doc.access ?? []) if (!(caseTypes.has(type) && label.startsWith('chart|'))) labels.add(label);
        }
      }
      // The chart, as opposed to a case's own records (an opinion is a DiagnosticReport too, but of its case).
      if (resource.meta?.source || (!caseTypes.has(type) && type !== 'Provenance')) {
        for (const patient of own) labels.add(chartLabel(patient));
      }
    }
    if (owner && ![...labels].some(isInstitutionLabel)) labels.add(owner);
    return [...labels];
  }

  /** The institution whose registered FHIR server `url` is on (or under), as `Organization/x`. */
  async institutionAt(url: string): Promise<string | undefined> {
    const now = Date.now();
    if (!this.endpoints || now - this.endpoints.read > endpointsFreshMs) {
      this.endpoints = { read: now, list: this.institutions.activeEndpoints() };
    }
    const endpoint = this.institutions.endpointAmong(await this.endpoints.list, url);
    return endpoint?.managingOrganization?.reference;
  }
}
