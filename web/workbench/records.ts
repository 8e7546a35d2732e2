// Reading a chart's records for a person: when each happened, what it says in a line, which kind of
// the chart it belongs to, and the attachments it carries.
import type { Attachment, Resource } from '@medplum/fhirtypes';
import { text } from './cases.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The chart's kinds, in the order a reviewer reads them, and which record types each holds. */
export const kinds: { key: string; label: string; types: string[]; labs?: boolean }[] = [
  { key: 'problems', label: 'Problems', types: ['Condition'] },
  { key: 'medications', label: 'Medications', types: ['MedicationRequest', 'MedicationStatement', 'MedicationAdministration'] },
  { key: 'allergies', label: 'Allergies', types: ['AllergyIntolerance'] },
  { key: 'labs', label: 'Labs and findings', types: ['Observation'], labs: true },
  { key: 'reports', label: 'Imaging and pathology', types: ['DiagnosticReport', 'ImagingStudy'] },
  { key: 'procedures', label: 'Procedures', types: ['Procedure'] },
  { key: 'notes', label: 'Notes and letters', types: ['DocumentReference', 'Encounter', 'CarePlan', 'Immunization'] },
];

export function dateOf(record: Resource): string {
  const r = record as Any;
  return (
    r.effectiveDateTime ??
    r.effectivePeriod?.start ??
    r.onsetDateTime ??
    r.recordedDate ??
    r.performedDateTime ??
    r.performedPeriod?.start ??
    r.issued ??
    r.authoredOn ??
    r.started ??
    r.date ??
    r.occurrenceDateTime ??
    r.period?.start ??
    r.meta?.lastUpdated ??
    ''
  );
}

function valueOf(r: Any): string {
  if (r.valueQuantity) return `${r.valueQuantity.value} ${r.valueQuantity.unit ?? ''}`.trim();
  if (r.valueString) return r.valueString;
  if (r.valueCodeableConcept) return text(r.valueCodeableConcept);
  return '';
}

/** One line that says what the record is. */
export function summaryOf(record: Resource): string {
  const r = record as Any;
  const what =
    text(r.code) ||
    text(r.medicationCodeableConcept) ||
    text(r.vaccineCode) ||
    r.description ||
    r.title ||
    text(r.type?.[0]) ||
    r.content?.[0]?.attachment?.title ||
    record.resourceType;
  const value = valueOf(r) || r.conclusion || '';
  return value ? `${what}: ${value}` : what;
}

export interface Found {
  attachment: Attachment;
  record: Resource;
}

export function attachmentsOf(records: Resource[]): Found[] {
  return records.flatMap((record) => {
    const r = record as Any;
    const all: Attachment[] = [...(r.presentedForm ?? []), ...(r.content ?? []).map((c: Any) => c.attachment)];
    return all.filter((a) => a?.url).map((attachment) => ({ attachment, record }));
  });
}
