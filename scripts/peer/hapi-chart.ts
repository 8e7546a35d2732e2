// A synthetic patient chart on a HAPI FHIR server, written as one transaction the way an EHR's
// interface engine loads it: the patient, the diagnosis in question (a Condition), a run of lab
// Observations, the pathology report with its PDF (a Binary), and a referral letter pointing at the
// same kind of PDF. Ids are HAPI's own, except the Binaries' (PUT, so the attachments can name them).
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';

export interface HapiChart {
  patientId: string;
  /** The Condition holding the diagnosis (ICD-10-CM C50.911). */
  conditionId: string;
  /** The referring physician (a Practitioner), who orders the second opinion. */
  referrerId: string;
  /** How many records of the chart point at the patient (the Patient itself not counted). */
  records: number;
}

/** A small PDF, as bytes a viewer opens. */
export const samplePdf = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);

/** Seeds the chart at `base` (a HAPI FHIR base URL); answers the ids it got. */
export async function seedHapiChart(base: string, observations = 24): Promise<HapiChart> {
  const tag = randomUUID().slice(0, 8);
  const patient = `urn:uuid:${randomUUID()}`;
  const condition = `urn:uuid:${randomUUID()}`;
  const referrer = `urn:uuid:${randomUUID()}`;
  const subject = { reference: patient };
  const pdf = (name: string): BundleEntry => ({
    resource: { resourceType: 'Binary', id: `${name}-${tag}`, contentType: 'application/pdf', data: samplePdf.toString('base64') },
    request: { method: 'PUT', url: `Binary/${name}-${tag}` },
  });
  const post = (fullUrl: string, resource: Resource): BundleEntry => ({ fullUrl, resource, request: { method: 'POST', url: resource.resourceType } });
  const entries: BundleEntry[] = [
    pdf('pathology'),
    pdf('letter'),
    post(patient, {
      resourceType: 'Patient',
      identifier: [{ system: 'https://hospital.example/mrn', value: `MRN-${tag}` }],
      name: [{ family: 'Synthetic', given: ['Hapi'] }],
      gender: 'female',
      birthDate: '1970-04-02',
    }),
    post(referrer, { resourceType: 'Practitioner', name: [{ family: 'Referrer', given: ['Synthetic'] }] }),
    post(condition, {
      resourceType: 'Condition',
      subject,
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: {
        coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C50.911', display: 'Malignant neoplasm of unspecified site of right female breast' }],
      },
    }),
    ...Array.from({ length: observations }, (_, i) =>
      post(`urn:uuid:${randomUUID()}`, {
        resourceType: 'Observation',
        status: 'final',
        subject,
        code: { coding: [{ system: 'http://loinc.org', code: '2857-1' }], text: 'PSA' },
        effectiveDateTime: new Date(Date.UTC(2026, 0, 1 + i)).toISOString(),
        valueQuantity: { value: 1 + i / 10, unit: 'ng/mL' },
      }),
    ),
    post(`urn:uuid:${randomUUID()}`, {
      resourceType: 'DiagnosticReport',
      status: 'final',
      subject,
      code: { text: 'Breast biopsy pathology' },
      conclusion: 'Invasive ductal carcinoma; HER2 equivocal (2+).',
      presentedForm: [{ contentType: 'application/pdf', url: `Binary/pathology-${tag}`, title: 'Pathology report' }],
    }),
    post(`urn:uuid:${randomUUID()}`, {
      resourceType: 'DocumentReference',
      status: 'current',
      subject,
      type: { text: 'Referral letter' },
      content: [{ attachment: { contentType: 'application/pdf', url: `Binary/letter-${tag}`, title: 'Referral letter' } }],
    }),
  ];
  const response = await fetch(base, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries } satisfies Bundle),
  });
  const answer = (await response.json()) as Bundle;
  if (!response.ok) throw new Error(`HAPI FHIR refused the chart: HTTP ${response.status} ${JSON.stringify(answer).slice(0, 500)}`);
  // The transaction-response answers each entry in the request's order, with the location it got.
  const idAt = (index: number) => (answer.entry?.[index]?.response?.location ?? '').split('/')[1];
  return { patientId: idAt(2), referrerId: idAt(3), conditionId: idAt(4), records: observations + 3 };
}
