// Bad requests answer an OperationOutcome with the right status and leave the store unchanged.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type TestService } from './harness.js';

let service: TestService;
beforeAll(async () => {
  service = await startTestService({ MAX_BODY_BYTES: '20000' });
});
afterAll(async () => {
  await service?.stop();
});

async function patientCount(): Promise<number> {
  return (await service.fhir('/Patient?_summary=count')).body.total;
}

function expectOutcome(res: { status: number; body: { resourceType: string; issue: unknown[] } }, status: number): void {
  expect(res.status).toBe(status);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(res.body.issue.length).toBeGreaterThan(0);
  expect(JSON.stringify(res.body)).not.toMatch(/at .*\.js:\d+/); // never a stack trace
}

describe('errors are OperationOutcomes and change nothing', () => {
  it('malformed JSON: 400', async () => {
    const before = await patientCount();
    const res = await service.fhir('/Patient', { body: '{"resourceType": "Patient", ' });
    expectOutcome(res, 400);
    expect(await patientCount()).toBe(before);
  });

  it('unknown resource type: 404; unknown id: 404', async () => {
    expectOutcome(await service.fhir('/Spaceship/1'), 404);
    expectOutcome(await service.fhir('/Spaceship', { body: { resourceType: 'Spaceship' } }), 404);
    expectOutcome(await service.fhir('/Patient/does-not-exist'), 404);
    expectOutcome(await service.fhir('/Patient/does-not-exist/_history/1'), 404);
  });

  it('wrong Content-Type: 415', async () => {
    const before = await patientCount();
    const res = await service.fhir('/Patient', { body: '<Patient xmlns="http://hl7.org/fhir"/>', headers: { 'content-type': 'application/fhir+xml' } });
    expectOutcome(res, 415);
    expect(await patientCount()).toBe(before);
  });

  it('body too large: 413', async () => {
    const before = await patientCount();
    const big = { resourceType: 'Patient', name: [{ text: 'x'.repeat(30_000) }] };
    expectOutcome(await service.fhir('/Patient', { body: big }), 413);
    expect(await patientCount()).toBe(before);
  });

  it('invalid resource: 422 naming the element', async () => {
    const before = await patientCount();
    const unknownElement = await service.fhir('/Patient', { body: { resourceType: 'Patient', hairColour: 'red' } });
    expectOutcome(unknownElement, 422);
    expect(unknownElement.body.issue[0].expression).toEqual(['Patient.hairColour']);
    const badCode = await service.fhir('/Patient', { body: { resourceType: 'Patient', gender: 'robot' } });
    expectOutcome(badCode, 422);
    expect(badCode.body.issue[0].expression).toEqual(['Patient.gender']);
    const badDate = await service.fhir('/Patient', { body: { resourceType: 'Patient', birthDate: '02/04/1970' } });
    expectOutcome(badDate, 422);
    expect(badDate.body.issue[0].expression).toEqual(['Patient.birthDate']);
    const badStatus = await service.fhir('/ServiceRequest', {
      body: { resourceType: 'ServiceRequest', status: 'bogus', intent: 'order', subject: { reference: 'Patient/1' } },
    });
    expectOutcome(badStatus, 422);
    expect(badStatus.body.issue[0].expression).toEqual(['ServiceRequest.status']);
    const badContained = await service.fhir('/ServiceRequest', {
      body: {
        resourceType: 'ServiceRequest',
        status: 'active',
        intent: 'order',
        subject: { reference: '#p' },
        contained: [{ resourceType: 'Patient', id: 'p', gender: 'robot' }],
      },
    });
    expectOutcome(badContained, 422);
    expect(badContained.body.issue[0].expression).toEqual(['ServiceRequest.contained[0].gender']);
    const missingStatus = await service.fhir('/Observation', { body: { resourceType: 'Observation', code: { text: 'x' } } });
    expectOutcome(missingStatus, 422);
    expect(missingStatus.body.issue[0].expression).toEqual(['Observation.status']);
    expect(await patientCount()).toBe(before);
  });

  it('resourceType or id not matching the URL: 400, nothing stored', async () => {
    expectOutcome(await service.fhir('/Patient', { body: { resourceType: 'Organization', name: 'x' } }), 400);
    const res = await service.fhir('/Patient/abc', { method: 'PUT', body: { resourceType: 'Patient', id: 'xyz' } });
    expectOutcome(res, 400);
    expectOutcome(await service.fhir('/Patient/abc'), 404);
    expectOutcome(await service.fhir('/Patient/xyz'), 404);
  });

  it('an update with an invalid body leaves the stored version as it was', async () => {
    const created = (await service.fhir('/Patient', { body: { resourceType: 'Patient', gender: 'female' } })).body;
    const res = await service.fhir(`/Patient/${created.id}`, { method: 'PUT', body: { ...created, gender: 'robot' } });
    expectOutcome(res, 422);
    const read = await service.fhir(`/Patient/${created.id}`);
    expect(read.body.meta.versionId).toBe('1');
    expect(read.body.gender).toBe('female');
  });

  it('unsupported interaction: 405', async () => {
    expectOutcome(await service.fhir('/Patient/abc', { method: 'POST', body: { resourceType: 'Patient' } }), 405);
    expectOutcome(await service.fhir('/Patient/abc/$everything'), 405);
  });

  it('an operation refuses a URL parameter its OperationDefinition does not declare: 400 naming it', async () => {
    for (const [path, init] of [
      ['/Patient/$validate?colour=red', { body: { resourceType: 'Patient' } }],
      ['/$export?_type=Patient&colour=red', { headers: { prefer: 'respond-async' } }],
    ] as const) {
      const res = await service.fhir(path, init);
      expectOutcome(res, 400);
      expect([path, res.body.issue[0].expression]).toEqual([path, ['colour']]);
    }
  });

  it('unknown search parameter or bad value: 400 naming it', async () => {
    const unknown = await service.fhir('/Patient?shoe-size=42');
    expectOutcome(unknown, 400);
    expect(unknown.body.issue[0].expression).toEqual(['shoe-size']);
    const badDate = await service.fhir('/Patient?_lastUpdated=gtyesterday');
    expectOutcome(badDate, 400);
    expectOutcome(await service.fhir('/Patient?_count=many'), 400);
  });

  it('a malformed If-Match: 400', async () => {
    const created = (await service.fhir('/Patient', { body: { resourceType: 'Patient' } })).body;
    expectOutcome(await service.fhir(`/Patient/${created.id}`, { method: 'PUT', body: created, headers: { 'if-match': 'yesterday' } }), 400);
  });
});
