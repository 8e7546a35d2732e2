// Synthetic patients whose records tell a clinical story, for the demo's referring EHR. Every name
// and value is invented. Each story seeds the chart and the EHR's own second-opinion order.
import { canonicalBase } from '../../src/conformance/artifacts.js';
import type { Binary, CodeableConcept, Reference, Resource, ServiceRequest } from '@medplum/fhirtypes';

/** Where a story's records are created: the built-in EHR's repository, or any FHIR server over HTTP (see fhirServerSink). */
export interface ChartSink {
  createResource<T extends Resource>(resource: T): Promise<T>;
}

/** A sink that POSTs each record to the FHIR server at `base` (HAPI FHIR, say), which gives it its id. */
export function fhirServerSink(base: string): ChartSink {
  return {
    createResource: async <T extends Resource>(resource: T): Promise<T> => {
      const response = await fetch(`${base}/${resource.resourceType}`, {
        method: 'POST',
        body: JSON.stringify(resource),
        headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      });
      if (!response.ok) throw new Error(`POST ${resource.resourceType} to the EHR answered ${response.status}`);
      return (await response.json()) as T;
    },
  };
}

export interface Story {
  title: string;
  patientId: string;
  /** The EHR's own second-opinion order, as the referring clinician wrote it. */
  order: ServiceRequest;
  /** The reviewer's answer to the referrer's question, and the opinion, for the demo to play. */
  answer: { question: string; reply: string; conclusion: string; concordance: string; recommendations: string[] };
}

const snomed = (code: string, display: string): CodeableConcept => ({ coding: [{ system: 'http://snomed.info/sct', code, display }], text: display });
const loinc = (code: string, display: string): CodeableConcept => ({ coding: [{ system: 'http://loinc.org', code, display }], text: display });
const icd10 = (code: string, display: string): CodeableConcept => ({ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code, display }], text: display });
// The EHR writes its orders to the service's published profile and category.
const canonical = canonicalBase();
const category = `${canonical}/CodeSystem/second-opinion-category`;
const profile = `${canonical}/StructureDefinition/second-opinion-request`;

async function binary(repo: ChartSink, contentType: string, text: string): Promise<string> {
  return (await repo.createResource<Binary>({ resourceType: 'Binary', contentType, data: Buffer.from(text).toString('base64') })).id as string;
}

/** Creates the resource; answers a reference to it (typed to fit any reference element). */
async function add<T extends Resource>(repo: ChartSink, resource: T): Promise<Reference<never>> {
  const created = await repo.createResource(resource);
  return { reference: `${created.resourceType}/${created.id}` };
}

function order(
  patient: Reference<never>,
  id: string,
  requester: Reference<never>,
  performerType: CodeableConcept,
  reason: CodeableConcept,
  supporting: Reference<never>[],
  question: string,
): ServiceRequest {
  return {
    resourceType: 'ServiceRequest',
    meta: { profile: [profile] },
    identifier: [{ system: 'https://ehr.example/orders', value: id }],
    status: 'active',
    intent: 'order',
    priority: 'routine',
    category: [{ coding: [{ system: category, code: 'second-opinion', display: 'Second opinion' }] }],
    code: snomed('103696004', 'Patient referral to specialist'),
    subject: patient,
    authoredOn: new Date().toISOString(),
    requester,
    performerType,
    reasonCode: [reason],
    supportingInfo: supporting,
    note: [{ text: question }],
  };
}

/** A breast cancer whose HER2 result decides the treatment. */
async function breastCancer(repo: ChartSink, orderId: string): Promise<Story> {
  const patient = await add(repo, { resourceType: 'Patient', name: [{ family: 'Example', given: ['Maria'] }], gender: 'female', birthDate: '1968-03-14' });
  const subject = patient;
  const referrer = await add(repo, { resourceType: 'Practitioner', name: [{ family: 'Referrer', given: ['Ines'], prefix: ['Dr'] }] });
  const diagnosis = icd10('C50.412', 'Malignant neoplasm of upper-outer quadrant of left female breast');
  const encounter = await add(repo, {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject,
    type: [snomed('11429006', 'Consultation')],
    period: { start: '2026-10-02T09:00:00Z', end: '2026-10-02T09:40:00Z' },
  });
  await add(repo, {
    resourceType: 'Condition',
    subject,
    code: diagnosis,
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    onsetDateTime: '2026-09-20',
    encounter,
  });
  await add(repo, {
    resourceType: 'ImagingStudy',
    status: 'available',
    subject,
    started: '2026-09-18T10:00:00Z',
    description: 'Mammography, left breast: 2.1 cm spiculated mass, BI-RADS 5',
  });
  await add(repo, {
    resourceType: 'Procedure',
    status: 'completed',
    subject,
    code: snomed('443497002', 'Excision biopsy of breast'),
    performedDateTime: '2026-09-24',
  });
  const her2 = await add(repo, {
    resourceType: 'Observation',
    status: 'final',
    subject,
    code: loinc('85319-2', 'HER2 [Presence] in Breast cancer specimen by Immune stain'),
    valueString: 'IHC 2+ (equivocal); ISH not done',
    effectiveDateTime: '2026-09-27',
  });
  await add(repo, {
    resourceType: 'Observation',
    status: 'final',
    subject,
    code: loinc('85337-4', 'Estrogen receptor Ag [Presence] in Breast cancer specimen by Immune stain'),
    valueString: 'Positive, 90% of tumour cells',
    effectiveDateTime: '2026-09-27',
  });
  await add(repo, {
    resourceType: 'Observation',
    status: 'final',
    subject,
    code: loinc('85319-2', 'Ki-67'),
    valueQuantity: { value: 25, unit: '%' },
    effectiveDateTime: '2026-09-27',
  });
  const pathologyText = await binary(
    repo,
    'text/plain',
    'Invasive ductal carcinoma, grade 2, 21 mm. ER 90%, PR 40%, HER2 IHC 2+ (equivocal). ISH recommended.',
  );
  const pathology = await add(repo, {
    resourceType: 'DiagnosticReport',
    status: 'final',
    subject,
    code: loinc('60567-5', 'Comprehensive pathology report panel'),
    result: [her2],
    conclusion: 'Invasive ductal carcinoma, HER2 equivocal.',
    presentedForm: [{ contentType: 'text/plain', url: `Binary/${pathologyText}`, title: 'Pathology report' }],
  });
  await add(repo, {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    subject,
    medicationCodeableConcept: snomed('386910003', 'Letrozole 2.5 mg oral tablet'),
    authoredOn: '2026-10-02',
  });
  await add(repo, {
    resourceType: 'AllergyIntolerance',
    patient: subject,
    code: snomed('764146007', 'Penicillin'),
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
  });
  await add(repo, {
    resourceType: 'CarePlan',
    status: 'active',
    intent: 'plan',
    subject,
    title: 'Lumpectomy, then adjuvant endocrine therapy; no HER2-targeted therapy planned',
  });
  const letter = await binary(
    repo,
    'text/plain',
    'Dear colleague, the HER2 result is equivocal and no ISH was done. We would value a second review before deciding on trastuzumab.',
  );
  await add(repo, {
    resourceType: 'DocumentReference',
    status: 'current',
    subject,
    description: 'Referral letter',
    content: [{ attachment: { contentType: 'text/plain', url: `Binary/${letter}`, title: 'Referral letter' } }],
  });
  const question = 'The HER2 result is equivocal (IHC 2+) without ISH. Is HER2-targeted therapy indicated?';
  return {
    title: 'Breast cancer with an equivocal HER2 result',
    patientId: patient.reference?.split('/')[1] as string,
    order: order(patient, orderId, referrer, snomed('394597005', 'Histopathology'), diagnosis, [pathology], question),
    answer: {
      question: 'Is tissue from the excision biopsy available for in-situ hybridisation?',
      reply: 'Yes: two paraffin blocks are at our pathology department and can be sent.',
      conclusion: 'HER2 positive on ISH (HER2/CEP17 ratio 2.6). The tumour is HER2 positive, not equivocal.',
      concordance: 'treatment-changed',
      recommendations: ['Add trastuzumab to the adjuvant plan.', 'Check LVEF by echocardiography before starting trastuzumab.'],
    },
  };
}

/** An aortic stenosis where surgery and a catheter valve are weighed. */
async function aorticStenosis(repo: ChartSink, orderId: string): Promise<Story> {
  const patient = await add(repo, { resourceType: 'Patient', name: [{ family: 'Sample', given: ['Jon'] }], gender: 'male', birthDate: '1950-06-02' });
  const subject = patient;
  const referrer = await add(repo, { resourceType: 'Practitioner', name: [{ family: 'Cardio', given: ['Lea'], prefix: ['Dr'] }] });
  const diagnosis = snomed('60573004', 'Aortic valve stenosis');
  await add(repo, {
    resourceType: 'Condition',
    subject,
    code: diagnosis,
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    onsetDateTime: '2024-05-01',
  });
  await add(repo, {
    resourceType: 'Condition',
    subject,
    code: icd10('N18.3', 'Chronic kidney disease, stage 3'),
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
  });
  await add(repo, {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject,
    type: [snomed('11429006', 'Consultation')],
  });
  const gradient = await add(repo, {
    resourceType: 'Observation',
    status: 'final',
    subject,
    code: loinc('79942-9', 'Aortic valve mean gradient by US'),
    valueQuantity: { value: 48, unit: 'mm[Hg]' },
    effectiveDateTime: '2026-10-10',
  });
  await add(repo, {
    resourceType: 'Observation',
    status: 'final',
    subject,
    code: loinc('10230-1', 'Left ventricular ejection fraction'),
    valueQuantity: { value: 55, unit: '%' },
    effectiveDateTime: '2026-10-10',
  });
  await add(repo, {
    resourceType: 'Procedure',
    status: 'completed',
    subject,
    code: snomed('433236007', 'Transthoracic echocardiography'),
    performedDateTime: '2026-10-10',
  });
  const echo = await add(repo, {
    resourceType: 'DiagnosticReport',
    status: 'final',
    subject,
    code: loinc('34552-0', 'Cardiac 2D echo panel'),
    result: [gradient],
    conclusion: 'Severe calcific aortic stenosis, AVA 0.8 cm2, preserved LVEF.',
  });
  await add(repo, {
    resourceType: 'MedicationStatement',
    status: 'active',
    subject,
    medicationCodeableConcept: snomed('320000009', 'Atorvastatin 20 mg oral tablet'),
  });
  await add(repo, {
    resourceType: 'Immunization',
    status: 'completed',
    patient: subject,
    vaccineCode: { text: 'Influenza vaccine 2026/27' },
    occurrenceDateTime: '2026-10-01',
  });
  await add(repo, { resourceType: 'CarePlan', status: 'active', intent: 'plan', subject, title: 'Heart team: surgical aortic valve replacement' });
  const question = 'At 76 with CKD stage 3, is surgical valve replacement still the better choice over TAVI?';
  return {
    title: 'Severe aortic stenosis: surgery or catheter valve',
    patientId: patient.reference?.split('/')[1] as string,
    order: order(patient, orderId, referrer, snomed('394579002', 'Cardiology'), diagnosis, [echo], question),
    answer: {
      question: 'Is there a recent CT angiogram of the aorta and iliac arteries?',
      reply: 'Not yet; it can be done next week.',
      conclusion: 'Severe symptomatic aortic stenosis; at 76 with CKD stage 3, TAVI is preferred over surgery if access is suitable.',
      concordance: 'treatment-changed',
      recommendations: ['CT angiography for TAVI planning.', 'Discuss TAVI at the heart team meeting.'],
    },
  };
}

/** Seeds the stories; answers them with the ids the EHR gave. */
export async function seedStories(repo: ChartSink): Promise<Story[]> {
  return [await breastCancer(repo, 'DEMO-0001'), await aorticStenosis(repo, 'DEMO-0002')];
}
