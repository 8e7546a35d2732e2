// Names for the values outcome figures are broken down by, so that an analyst reads "Cardiology" and
// "Malignant neoplasm of breast", not 394579002 and C50.911: specialties by the displays the
// ConceptMap in profiles/ gives its targets, else by the display a registered reviewer's role carries;
// diagnoses by the ConceptMap's description of the most specific ICD-10-CM category it maps (or its
// SNOMED CT display); institutions by their Organization's name.
import type { CodeableConcept, ConceptMap, Organization, PractitionerRole } from '@medplum/fhirtypes';
import type { FhirService } from '../fhir/interactions.js';
import { parseSearch } from '../fhir/search/search.js';
import { icd10Ancestry } from '../review/specialties.js';
import type { Labels } from './report.js';
import { referenceTo } from '../base/ids.js';

const organizationReference = referenceTo('Organization');

const icd10cm = 'http://hl7.org/fhir/sid/icd-10-cm';
const snomed = 'http://snomed.info/sct';

export function labelsFrom(service: FhirService, map: ConceptMap): Labels {
  const groups = map.group ?? [];
  const specialties = new Map(
    groups.flatMap((g) =>
      (g.element ?? []).flatMap((e) => (e.target ?? []).filter((t) => t.code && t.display).map((t) => [t.code as string, t.display as string] as const)),
    ),
  );
  const categories = new Map(
    groups
      .filter((g) => g.source === icd10cm)
      .flatMap((g) => (g.element ?? []).map((e) => [e.code as string, e.target?.find((t) => t.comment)?.comment] as const)),
  );
  const disorders = new Map(
    groups
      .filter((g) => g.source === snomed)
      .flatMap((g) => (g.element ?? []).filter((e) => e.display).map((e) => [e.code as string, e.display as string] as const)),
  );
  const reasonLabel = (code: string): string | undefined =>
    disorders.get(code) ??
    icd10Ancestry(code)
      .map((c) => categories.get(c))
      .find(Boolean);

  return async (stratifier, values) => {
    if (stratifier === 'reason') return labelled(values, reasonLabel);
    if (stratifier === 'specialty') {
      const known = labelled(values, (v) => specialties.get(v));
      for (const value of values.filter((v) => !known.has(v) && /^[0-9]{6,18}$/.test(v))) {
        const display = await reviewerSpecialtyDisplay(service, value);
        if (display) known.set(value, display);
      }
      return known;
    }
    if (stratifier !== 'institution') return new Map();
    const organizations = (await service.repository.readMany(values.filter((v) => organizationReference.test(v)))) as Organization[];
    return new Map(organizations.filter((o) => o.name).map((o) => [`Organization/${o.id}`, o.name as string]));
  };
}

function labelled(values: string[], label: (value: string) => string | undefined): Map<string, string> {
  return new Map(values.flatMap((v) => (label(v) ? [[v, label(v) as string] as const] : [])));
}

/** A practice setting outside the ConceptMap (one a request asked for by performerType) is named as its reviewers' roles name it. */
async function reviewerSpecialtyDisplay(service: FhirService, code: string): Promise<string | undefined> {
  const { matches } = await service.repository.search(parseSearch('PractitionerRole', { specialty: `${snomed}|${code}`, _count: '20' }));
  const concepts = matches.flatMap((m): CodeableConcept[] => (m.resource as PractitionerRole).specialty ?? []);
  return concepts.flatMap((c) => c.coding ?? []).find((c) => c.code === code && c.display)?.display;
}
