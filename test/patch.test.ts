// PATCH with a JSON Patch (RFC 6902): applied to the current version and written as an update, so
// that every check of an update applies (validation, If-Match, the rules of the record's type); a
// patch that fails, or whose result is invalid, changes nothing and says which operation failed
// without quoting the record.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type FhirResponse, type TestService } from './harness.js';

let service: TestService;
beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.stop();
});

const jsonPatch = { 'content-type': 'application/json-patch+json' };
const patch = (path: string, operations: unknown, headers: Record<string, string> = {}) =>
  service.fhir(path, { method: 'PATCH', body: operations, headers: { ...jsonPatch, ...headers } });
const issueOf = (res: FhirResponse) => [res.status, res.body?.issue?.[0]?.code, res.body?.issue?.[0]?.expression];

async function newPatient(): Promise<any> {
  const created = await service.fhir('/Patient', {
    body: { resourceType: 'Patient', name: [{ family: 'Patchwork', given: ['Ann'] }], gender: 'female', birthDate: '1960-03-04' },
  });
  expect(created.status).toBe(201);
  return created.body;
}

describe('PATCH with a JSON Patch', () => {
  it('applies add, replace, remove and test as one new version, with its ETag, as a read then shows', async () => {
    const { id } = await newPatient();
    const res = await patch(`/Patient/${id}`, [
      { op: 'test', path: '/gender', value: 'female' },
      { op: 'replace', path: '/birthDate', value: '1960-03-05' },
      { op: 'add', path: '/name/0/given/-', value: 'Beth' },
      { op: 'remove', path: '/gender' },
    ]);
    expect([res.status, res.headers.get('etag'), res.body.meta.versionId]).toEqual([200, 'W/"2"', '2']);
    const read = (await service.fhir(`/Patient/${id}`)).body;
    expect([read.birthDate, read.name[0].given, read.gender]).toEqual(['1960-03-05', ['Ann', 'Beth'], undefined]);
    expect((await service.fhir(`/Patient/${id}/_history`)).body.total).toBe(2);
  });

  it('honours If-Match: the current version applies, a stale one answers 412 and changes nothing', async () => {
    const { id } = await newPatient();
    const stale = await patch(`/Patient/${id}`, [{ op: 'replace', path: '/gender', value: 'male' }], { 'if-match': 'W/"7"' });
    expect(issueOf(stale)[0]).toBe(412);
    const current = await patch(`/Patient/${id}`, [{ op: 'replace', path: '/gender', value: 'male' }], { 'if-match': 'W/"1"' });
    expect([current.status, current.body.gender]).toEqual([200, 'male']);
  });

  it('a failed test, a missing path or an invalid result answers 422 naming the operation, not the stored values, and changes nothing', async () => {
    const { id } = await newPatient();
    const failedTest = await patch(`/Patient/${id}`, [
      { op: 'replace', path: '/gender', value: 'male' },
      { op: 'test', path: '/birthDate', value: '1999-01-01' },
    ]);
    expect(issueOf(failedTest)).toEqual([422, 'business-rule', ['Patient']]);
    expect(failedTest.body.issue[0].details.text).toContain('operation 1 (test /birthDate)');
    expect(JSON.stringify(failedTest.body)).not.toContain('1960-03-04');
    expect(issueOf(await patch(`/Patient/${id}`, [{ op: 'remove', path: '/telecom/0' }]))).toEqual([422, 'business-rule', ['Patient']]);
    const invalid = await patch(`/Patient/${id}`, [{ op: 'replace', path: '/gender', value: 'robot' }]);
    expect(issueOf(invalid)).toEqual([422, 'structure', ['Patient.gender']]);
    const renamed = await patch(`/Patient/${id}`, [{ op: 'replace', path: '/id', value: 'another' }]);
    expect(issueOf(renamed)).toEqual([422, 'business-rule', ['Patient.id']]);
    const read = (await service.fhir(`/Patient/${id}`)).body;
    expect([read.meta.versionId, read.gender, read.birthDate]).toEqual(['1', 'female', '1960-03-04']);
  });

  it('a body that is not a JSON Patch answers 400, another patch format 415, an unknown record 404', async () => {
    const { id } = await newPatient();
    for (const body of [
      { op: 'replace', path: '/gender', value: 'male' },
      [],
      [{ op: 'rename', path: '/gender' }],
      [{ op: 'replace', path: '/gender' }],
      [{ op: 'move', path: '/x' }],
    ]) {
      expect([JSON.stringify(body), ...issueOf(await patch(`/Patient/${id}`, body))]).toEqual([JSON.stringify(body), 400, 'invalid', undefined]);
    }
    const fhirPathPatch = await service.fhir(`/Patient/${id}`, { method: 'PATCH', body: { resourceType: 'Parameters', parameter: [] } });
    expect(issueOf(fhirPathPatch)[0]).toBe(415);
    expect(fhirPathPatch.body.issue[0].details.text).toContain('application/json-patch+json');
    expect(issueOf(await patch('/Patient/no-such-patient', [{ op: 'replace', path: '/gender', value: 'male' }]))[0]).toBe(404);
    expect((await service.fhir(`/Patient/${id}`)).body.meta.versionId).toBe('1');
  });

  it('needs the update scope: a token that may read and search Patients alone is refused (403) and changes nothing', async () => {
    const { id } = await newPatient();
    const reader = await service.mintToken({ subject: 'reader', scope: 'system/Patient.rs', role: 'admin' });
    const refused = await patch(`/Patient/${id}`, [{ op: 'replace', path: '/gender', value: 'male' }], { authorization: `Bearer ${reader}` });
    expect(refused.status).toBe(403);
    expect((await service.fhir(`/Patient/${id}`)).body.gender).toBe('female');
  });

  it('follows the rules of the type: an AuditEvent is never patched (405)', async () => {
    const some = (await service.fhir('/AuditEvent?_count=1')).body.entry[0].resource;
    expect(issueOf(await patch(`/AuditEvent/${some.id}`, [{ op: 'replace', path: '/outcome', value: '4' }]))[0]).toBe(405);
  });

  it('the CapabilityStatement offers patch and its format', async () => {
    const capability = (await service.fhir('/metadata')).body;
    expect(capability.patchFormat).toEqual(['application/json-patch+json']);
    const patient = capability.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(patient.interaction.map((i: any) => i.code)).toContain('patch');
  });
});
