// What a token's SMART scopes let it do: each FHIR interaction needs its letter (c create, r read and
// vread and instance history, u update, d delete, s search), v1 `.read`/`.write`/`.*` mean `.rs`,
// `.cud`, `.cruds`; operations need what they touch; a Bundle needs what every entry needs and is
// refused whole; included resources need reading. A refusal is 403 with an OperationOutcome naming
// the scope missing, and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AccessClaims } from '../src/auth/access-tokens.js';
import { startTestService, type FhirInit, type TestService } from './harness.js';

let service: TestService;
let patientId: string;
let requestId: string;

beforeAll(async () => {
  service = await startTestService();
  patientId = (await service.fhir('/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Scoped' }] } })).body.id;
  requestId = (
    await service.fhir('/ServiceRequest', {
      body: { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${patientId}` } },
    })
  ).body.id;
});
afterAll(async () => {
  await service?.stop();
});

// A coordinator sees every case, so what these tests tell apart is the scopes alone.
const system = (scope: string): AccessClaims => ({ subject: 'scoped-client', scope, role: 'coordinator' });

/** The status a request gets with a token holding `scope`; for a 403, the scopes its OperationOutcome names. */
async function attempt(scope: string, path: string, init: FhirInit = {}): Promise<{ status: number; needs?: string[]; body: any }> {
  const answer = await service.fhir(path, { ...init, token: await service.mintToken(system(scope)) });
  if (answer.status !== 403) return { status: answer.status, body: answer.body };
  expect(answer.body.issue.every((i: { code: string }) => i.code === 'forbidden')).toBe(true);
  expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm=".*", error="insufficient_scope", scope=".+"$/);
  return { status: 403, needs: answer.body.issue.map((i: { details: { text: string } }) => /scope (\S+)/.exec(i.details.text)?.[1]), body: answer.body };
}

const patient = { resourceType: 'Patient', name: [{ family: 'Written' }] };
const count = async (type: string): Promise<number> => (await service.fhir(`/${type}?_summary=count`)).body.total;

describe('SMART scopes', () => {
  it('v2 letters: .rs reads and searches but does not write', async () => {
    const scope = 'system/Patient.rs';
    expect((await attempt(scope, `/Patient/${patientId}`)).status).toBe(200);
    expect((await attempt(scope, `/Patient/${patientId}/_history/1`)).status).toBe(200);
    expect((await attempt(scope, `/Patient/${patientId}/_history`)).status).toBe(200);
    expect((await attempt(scope, '/Patient?name=Scoped')).status).toBe(200);
    expect((await attempt(scope, '/Patient/_search', { body: 'name=Scoped', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(
      200,
    );
    const before = await count('Patient');
    expect(await attempt(scope, '/Patient', { body: patient })).toMatchObject({ status: 403, needs: ['system/Patient.c'] });
    expect(await attempt(scope, `/Patient/${patientId}`, { method: 'PUT', body: { ...patient, id: patientId } })).toMatchObject({
      status: 403,
      needs: ['system/Patient.u'],
    });
    expect(await attempt(scope, `/Patient/${patientId}`, { method: 'DELETE' })).toMatchObject({ status: 403, needs: ['system/Patient.d'] });
    expect(await attempt(scope, '/Observation?_summary=count')).toMatchObject({ status: 403, needs: ['system/Observation.s'] });
    expect(await count('Patient')).toBe(before);
    expect((await service.fhir(`/Patient/${patientId}`)).body.meta.versionId).toBe('1');
  });

  it('v2 letters: .cu creates and updates but neither reads nor searches; .r reads but does not search', async () => {
    const created = await attempt('system/Patient.cu', '/Patient', { body: patient });
    expect(created.status).toBe(201);
    expect(
      (await attempt('system/Patient.cu', `/Patient/${created.body.id}`, { method: 'PUT', body: { ...patient, id: created.body.id, active: true } })).status,
    ).toBe(200);
    expect(await attempt('system/Patient.cu', `/Patient/${created.body.id}`)).toMatchObject({ status: 403, needs: ['system/Patient.r'] });
    // Other spellings of a read are reads: HEAD, and `_history` in capitals (express matches route literals in any case).
    expect((await service.fhir(`/Patient/${created.body.id}`, { method: 'HEAD', token: await service.mintToken(system('system/Patient.cu')) })).status).toBe(
      403,
    );
    expect(await attempt('system/Patient.cu', `/Patient/${created.body.id}/_HISTORY/1`)).toMatchObject({ status: 403, needs: ['system/Patient.r'] });
    expect((await attempt('system/Patient.r', `/Patient/${created.body.id}`)).status).toBe(200);
    expect(await attempt('system/Patient.r', '/Patient')).toMatchObject({ status: 403, needs: ['system/Patient.s'] });
    expect((await attempt('system/Patient.d', `/Patient/${created.body.id}`, { method: 'DELETE' })).status).toBe(200);
  });

  it('v1: .read is rs, .write is cud, .* and * types are everything; user/ scopes count, patient/ ones need a patient check not made here', async () => {
    expect((await attempt('system/Patient.read', '/Patient?name=Scoped')).status).toBe(200);
    expect((await attempt('system/Patient.read', '/Patient', { body: patient })).status).toBe(403);
    expect((await attempt('system/Patient.write', '/Patient', { body: patient })).status).toBe(201);
    expect((await attempt('system/Patient.write', `/Patient/${patientId}`)).status).toBe(403);
    expect((await attempt('system/*.read', '/Observation?_summary=count')).status).toBe(200);
    expect((await attempt('system/*.*', '/Observation', { body: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } })).status).toBe(201);
    expect((await attempt('user/Patient.read', `/Patient/${patientId}`)).status).toBe(200);
    expect(await attempt('user/Patient.read', '/Patient', { body: patient })).toMatchObject({ status: 403, needs: ['user/Patient.c'] });
    expect((await attempt('patient/*.read', `/Patient/${patientId}`)).status).toBe(403);
    expect((await attempt('system/Patient.rs?gender=female', `/Patient/${patientId}`)).status).toBe(403);
    expect((await attempt('openid fhirUser', '/Patient?_summary=count')).status).toBe(403);
  });

  it('operations need what they touch: $validate nothing more, $case-packet reads the request, $submit creates one; an unlisted one everything', async () => {
    const resource = { resourceType: 'Patient', name: [{ family: 'Checked' }] };
    expect((await attempt('system/Observation.r', '/Patient/$validate', { body: resource })).status).toBe(200);
    expect(await attempt('system/Observation.r', `/Patient/${patientId}/$validate`, { body: resource })).toMatchObject({
      status: 403,
      needs: ['system/Patient.r'],
    });
    expect(await attempt('system/Task.rs', `/ServiceRequest/${requestId}/$case-packet`)).toMatchObject({ status: 403, needs: ['system/ServiceRequest.r'] });
    // Encoded, the operation is the same operation.
    expect(await attempt('system/Task.rs', `/ServiceRequest/${requestId}/%24case-packet`)).toMatchObject({ status: 403, needs: ['system/ServiceRequest.r'] });
    expect((await attempt('system/ServiceRequest.r', `/ServiceRequest/${requestId}/$case-packet`)).status).toBe(404); // no case: its records were never retrieved
    const submit = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'institution', valueReference: { reference: 'Organization/none' } },
        { name: 'serviceRequestId', valueString: 'x' },
      ],
    };
    expect(await attempt('system/ServiceRequest.rs', '/ServiceRequest/$submit', { body: submit })).toMatchObject({
      status: 403,
      needs: ['system/ServiceRequest.c'],
    });
    expect(await attempt('system/ServiceRequest.rs', '/DiagnosticReport/x/$verify')).toMatchObject({ status: 403, needs: ['system/DiagnosticReport.r'] });
    expect(
      await attempt('system/DiagnosticReport.rs', '/DiagnosticReport/x/$redeliver', { method: 'POST', body: { resourceType: 'Parameters' } }),
    ).toMatchObject({ status: 403, needs: ['system/DiagnosticReport.u'] });
    const unlisted = await attempt('system/Patient.rs', `/Patient/${patientId}/$everything`);
    expect(unlisted.status).toBe(403);
    expect(unlisted.needs).toEqual(['system/Patient.c', 'system/Patient.u', 'system/Patient.d']);
    expect((await attempt('system/Patient.cruds', `/Patient/${patientId}/$everything`)).status).toBe(405);
  });

  it('a transaction with one entry outside the scopes is refused whole, naming the entry; so is a batch', async () => {
    const entries = [
      { fullUrl: 'urn:uuid:6a1c1f5e-0000-4000-8000-000000000001', resource: patient, request: { method: 'POST', url: 'Patient' } },
      {
        resource: {
          resourceType: 'Observation',
          status: 'final',
          code: { text: 'Bundled' },
          subject: { reference: 'urn:uuid:6a1c1f5e-0000-4000-8000-000000000001' },
        },
        request: { method: 'POST', url: 'Observation' },
      },
      {
        resource: { resourceType: 'Condition', subject: { reference: `Patient/${patientId}` }, code: { text: 'Outside' } },
        request: { method: 'POST', url: 'Condition' },
      },
      { request: { method: 'GET', url: `Patient/${patientId}` } },
    ];
    const scope = 'system/Patient.cr system/Observation.c';
    const before = await Promise.all(['Patient', 'Observation', 'Condition'].map(count));
    for (const type of ['transaction', 'batch']) {
      const refused = await attempt(scope, '', { body: { resourceType: 'Bundle', type, entry: entries } });
      expect(refused).toMatchObject({ status: 403, needs: ['system/Condition.c'] });
      expect(refused.body.issue[0].expression).toEqual(['Bundle.entry[2]']);
    }
    expect(await Promise.all(['Patient', 'Observation', 'Condition'].map(count))).toEqual(before);
    const allowed = await attempt(scope, '', { body: { resourceType: 'Bundle', type: 'transaction', entry: entries.filter((_, i) => i !== 2) } });
    expect(allowed.status).toBe(200);
    const needsEach = await attempt('system/Observation.c', '', {
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          ...entries.slice(0, 2),
          { request: { method: 'DELETE', url: `Patient/${patientId}` } },
          { request: { method: 'GET', url: 'Patient?name=Scoped' } },
        ],
      },
    });
    expect(needsEach.needs).toEqual(['system/Patient.c', 'system/Patient.d', 'system/Patient.s']);
  });

  it('included resources need reading: _include the types a reference can point at, _revinclude the referring type', async () => {
    const path = `/ServiceRequest?_id=${requestId}`;
    expect(await attempt('system/ServiceRequest.rs', `${path}&_include=ServiceRequest:subject:Patient`)).toMatchObject({
      status: 403,
      needs: ['system/Patient.r'],
    });
    expect((await attempt('system/ServiceRequest.rs system/Patient.r', `${path}&_include=ServiceRequest:subject:Patient`)).body.entry).toHaveLength(2);
    const untyped = await attempt('system/ServiceRequest.rs system/Patient.r', `${path}&_include=ServiceRequest:subject`);
    expect(untyped.status).toBe(403);
    expect(untyped.needs).toEqual(expect.arrayContaining(['system/Group.r', 'system/Device.r', 'system/Location.r']));
    expect(await attempt('system/ServiceRequest.rs', `${path}&_revinclude=Task:focus`)).toMatchObject({ status: 403, needs: ['system/Task.r'] });
    expect((await attempt('system/ServiceRequest.rs system/Task.r', `${path}&_revinclude=Task:focus`)).status).toBe(200);
  });

  it('what names no resource type is left to the interaction to refuse: never a 5xx, never echoed into a header', async () => {
    for (const path of ['/%0A', '/Pat%22ient/1', '/%0D%0AX-Injected:%201/1/_history', '/%E0%A4%A']) {
      const answer = await attempt('system/Patient.rs', path);
      expect([path, answer.status >= 400 && answer.status < 500]).toEqual([path, true]);
    }
    const bundle = await attempt('system/Patient.rs', '', {
      body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'http://[' } }] },
    });
    expect(bundle.status).toBe(400);
  });

  it('attachments need Binary read', async () => {
    const url = `${service.server.url}/attachments/${'0'.repeat(32)}`;
    const without = await fetch(url, { headers: { authorization: `Bearer ${await service.mintToken(system('system/DocumentReference.rs'))}` } });
    expect(without.status).toBe(403);
    expect((await without.json()).issue[0].details.text).toMatch(/system\/Binary\.r/);
    const withIt = await fetch(url, { headers: { authorization: `Bearer ${await service.mintToken(system('system/Binary.r'))}` } });
    expect(withIt.status).toBe(404);
  });
});
