// _summary and _elements on reads and searches: a part of each resource, its mandatory elements kept,
// marked SUBSETTED, and refused when written back; and searches the server cannot answer (chained
// parameters, a reference to a type the parameter does not name) refused, not answered wrongly.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type FhirResponse, type TestService } from './harness.js';

let service: TestService;
let patientId: string;
let observationId: string;
const subsetted = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };
const patient = {
  resourceType: 'Patient',
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ada Subset</div>' },
  identifier: [{ system: 'https://hospital.example/mrn', value: 'SUB-1' }],
  name: [{ family: 'Subset', given: ['Ada'] }],
  gender: 'female',
  birthDate: '1971-05-06',
  _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1971-05-06T08:30:00Z' }] },
  maritalStatus: { text: 'Married' },
  deceasedBoolean: false,
};

beforeAll(async () => {
  service = await startTestService();
  patientId = (await service.fhir('/Patient', { body: patient })).body.id;
  observationId = (
    await service.fhir('/Observation', {
      body: {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'Haemoglobin' },
        subject: { reference: `Patient/${patientId}` },
        valueQuantity: { value: 13.2, unit: 'g/dL' },
        note: [{ text: 'fasting' }],
      },
    })
  ).body.id;
});
afterAll(async () => {
  await service?.stop();
});

const keys = (resource: Record<string, unknown>) => Object.keys(resource).sort();
const issueOf = (res: FhirResponse) => [res.status, res.body?.issue?.[0]?.code, res.body?.issue?.[0]?.expression];

describe('_summary and _elements on a read', () => {
  it('_summary=true keeps the summary elements and the mandatory ones, marked SUBSETTED, with the record’s ETag', async () => {
    const res = await service.fhir(`/Patient/${patientId}?_summary=true`);
    expect(res.status).toBe(200);
    expect(keys(res.body)).toEqual(['_birthDate', 'birthDate', 'deceasedBoolean', 'gender', 'id', 'identifier', 'meta', 'name', 'resourceType']);
    expect(res.body.meta.tag).toEqual([subsetted]);
    expect(res.headers.get('etag')).toBe('W/"1"');
  });

  it('_summary=text keeps the narrative, _summary=data all but the narrative', async () => {
    expect(keys((await service.fhir(`/Patient/${patientId}?_summary=text`)).body)).toEqual(['id', 'meta', 'resourceType', 'text']);
    const data = (await service.fhir(`/Patient/${patientId}?_summary=data`)).body;
    expect(keys(data)).toEqual(
      keys(patient)
        .filter((k) => k !== 'text')
        .concat('id', 'meta')
        .sort(),
    );
    expect(data.meta.tag).toEqual([subsetted]);
    // false, and no _summary at all: the whole record, unmarked.
    const whole = (await service.fhir(`/Patient/${patientId}?_summary=false`)).body;
    expect([keys(whole), whole.meta.tag]).toEqual([[...keys(patient), 'id', 'meta'].sort(), undefined]);
  });

  it('_elements keeps the elements named (a choice by its name without the type) and the mandatory ones', async () => {
    expect(keys((await service.fhir(`/Observation/${observationId}?_elements=subject`)).body)).toEqual([
      'code',
      'id',
      'meta',
      'resourceType',
      'status',
      'subject',
    ]);
    expect(keys((await service.fhir(`/Observation/${observationId}?_elements=Observation.value,note`)).body)).toEqual([
      'code',
      'id',
      'meta',
      'note',
      'resourceType',
      'status',
      'valueQuantity',
    ]);
    // vread too.
    expect(keys((await service.fhir(`/Patient/${patientId}/_history/1?_elements=gender`)).body)).toEqual(['gender', 'id', 'meta', 'resourceType']);
  });

  it('a wrong _summary or _elements answers 400 naming it', async () => {
    expect(issueOf(await service.fhir(`/Patient/${patientId}?_summary=short`))).toEqual([400, 'invalid', ['_summary']]);
    expect(issueOf(await service.fhir(`/Patient/${patientId}?_elements=na-me`))).toEqual([400, 'invalid', ['_elements']]);
    expect(issueOf(await service.fhir(`/Patient/${patientId}?_summary=true&_elements=name`))).toEqual([400, 'invalid', ['_elements']]);
    expect(issueOf(await service.fhir(`/Patient?_summary=true&_summary=text`))).toEqual([400, 'invalid', ['_summary']]);
  });
});

describe('_summary and _elements on a search', () => {
  it('cut every match and every included resource', async () => {
    const res = await service.fhir(`/Observation?subject=Patient/${patientId}&_include=Observation:subject&_elements=subject`);
    expect(res.status).toBe(200);
    const byType = Object.fromEntries(res.body.entry.map((e: any) => [e.resource.resourceType, e.resource]));
    expect(keys(byType.Observation)).toEqual(['code', 'id', 'meta', 'resourceType', 'status', 'subject']);
    expect(keys(byType.Patient)).toEqual(['id', 'meta', 'resourceType']);
    expect([byType.Observation.meta.tag, byType.Patient.meta.tag]).toEqual([[subsetted], [subsetted]]);
    // In a batch too: a read and a search, each cut as over REST.
    const batch = await service.fhir('/', {
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'GET', url: `Patient/${patientId}?_summary=text` } },
          { request: { method: 'GET', url: `Observation?subject=Patient/${patientId}&_elements=subject` } },
        ],
      },
    });
    expect(keys(batch.body.entry[0].resource)).toEqual(['id', 'meta', 'resourceType', 'text']);
    expect(keys(batch.body.entry[1].resource.entry[0].resource)).toEqual(['code', 'id', 'meta', 'resourceType', 'status', 'subject']);
    const summary = await service.fhir(`/Patient?_id=${patientId}&_summary=true`);
    expect(keys(summary.body.entry[0].resource)).not.toContain('maritalStatus');
    expect((await service.fhir('/Patient?_summary=count')).body.total).toBeGreaterThanOrEqual(1);
  });
});

describe('a part of a record is not written back as the whole', () => {
  it('a PUT, a create and a transaction of a SUBSETTED resource answer 422 at meta.tag, and change nothing', async () => {
    const part = (await service.fhir(`/Patient/${patientId}?_summary=true`)).body;
    expect(issueOf(await service.fhir(`/Patient/${patientId}`, { method: 'PUT', body: part }))).toEqual([422, 'business-rule', ['Patient.meta.tag']]);
    const { id: _id, ...copy } = part;
    expect(issueOf(await service.fhir('/Patient', { body: copy }))).toEqual([422, 'business-rule', ['Patient.meta.tag']]);
    const transaction = await service.fhir('/', {
      body: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: part, request: { method: 'PUT', url: `Patient/${patientId}` } }] },
    });
    expect(transaction.status).toBe(422);
    const stored = (await service.fhir(`/Patient/${patientId}`)).body;
    expect([stored.meta.versionId, stored.maritalStatus, stored.meta.tag]).toEqual(['1', { text: 'Married' }, undefined]);
  });
});

describe('searches the server cannot answer are refused, not answered wrongly', () => {
  it('chained parameters, in either form, answer 400', async () => {
    for (const query of ['subject.name=Subset', 'subject:Patient.name=Subset', 'patient.identifier=SUB-1']) {
      expect([query, ...issueOf(await service.fhir(`/Observation?${query}`))]).toEqual([query, 400, 'invalid', [query.split('=')[0]]]);
    }
  });

  it('a reference modifier naming a type the parameter does not refer to answers 400; one it does is searched', async () => {
    expect(issueOf(await service.fhir(`/Observation?subject:Medication=${patientId}`))).toEqual([400, 'invalid', ['subject']]);
    expect((await service.fhir(`/Observation?subject:Patient=${patientId}`)).body.entry.map((e: any) => e.resource.id)).toEqual([observationId]);
  });
});
