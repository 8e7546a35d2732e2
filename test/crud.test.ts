// An EHR creates, reads, updates, versions and deletes resources over FHIR REST.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type TestService } from './harness.js';

let service: TestService;
beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.stop();
});

const patient = {
  resourceType: 'Patient',
  identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5', value: 'MRN-1001' }],
  name: [{ family: 'Testpatient', given: ['Alex'] }],
  gender: 'female',
  birthDate: '1970-04-02',
};

describe('create, read, update, delete', () => {
  it('creates with 201, Location, ETag and server-assigned id and meta', async () => {
    const res = await service.fhir('/Patient', { body: patient });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(res.body.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(res.body.meta.versionId).toBe('1');
    expect(new Date(res.body.meta.lastUpdated).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('location')).toBe(`${service.base}/Patient/${res.body.id}/_history/1`);
    const read = await service.fhir(`/Patient/${res.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(res.body);
    expect(read.headers.get('etag')).toBe('W/"1"');
    expect(read.headers.get('last-modified')).toBe(new Date(res.body.meta.lastUpdated).toUTCString());
  });

  it('updates with a new version, keeps the old one for vread and history', async () => {
    const created = (await service.fhir('/Patient', { body: patient })).body;
    const updated = await service.fhir(`/Patient/${created.id}`, {
      method: 'PUT',
      body: { ...created, gender: 'other' },
      headers: { 'if-match': 'W/"1"' },
    });
    expect(updated.status).toBe(200);
    expect(updated.body.meta.versionId).toBe('2');
    expect(updated.body.gender).toBe('other');

    const v1 = await service.fhir(`/Patient/${created.id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBe('female');
    const v2 = await service.fhir(`/Patient/${created.id}/_history/2`);
    expect(v2.body.gender).toBe('other');

    const history = await service.fhir(`/Patient/${created.id}/_history`);
    expect(history.status).toBe(200);
    expect(history.body.type).toBe('history');
    expect(history.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId)).toEqual(['2', '1']);
  });

  it('refuses a stale If-Match with 412 and keeps the current version', async () => {
    const created = (await service.fhir('/Patient', { body: patient })).body;
    await service.fhir(`/Patient/${created.id}`, { method: 'PUT', body: { ...created, gender: 'male' } });
    const stale = await service.fhir(`/Patient/${created.id}`, {
      method: 'PUT',
      body: { ...created, gender: 'unknown' },
      headers: { 'if-match': 'W/"1"' },
    });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    const current = await service.fhir(`/Patient/${created.id}`);
    expect(current.body.gender).toBe('male');
    expect(current.body.meta.versionId).toBe('2');
  });

  it('lets one of several writers at once update a version: the others get 412 (If-Match) or a version of their own, none is lost', async () => {
    const created = (await service.fhir('/Patient', { body: patient })).body;
    const put = (birthDate: string, headers: Record<string, string> = {}) =>
      service.fhir(`/Patient/${created.id}`, { method: 'PUT', headers, body: { ...created, birthDate } });
    for (let round = 0; round < 4; round++) {
      const version = (await service.fhir(`/Patient/${created.id}`)).body.meta.versionId;
      const answers = await Promise.all(Array.from({ length: 5 }, (_, k) => put(`1970-0${round + 1}-0${k + 1}`, { 'if-match': `W/"${version}"` })));
      expect(answers.map((a) => a.status).sort()).toEqual([200, 412, 412, 412, 412]);
      const winner = answers.find((a) => a.status === 200)!;
      expect((await service.fhir(`/Patient/${created.id}`)).body).toEqual(winner.body);
    }
    // Without If-Match every write is kept as a version of its own (or refused with 409 when it cannot get one).
    const answers = await Promise.all(Array.from({ length: 5 }, (_, k) => put(`1980-01-0${k + 1}`)));
    const kept = answers.filter((a) => a.status === 200);
    expect(answers.every((a) => a.status === 200 || a.status === 409)).toBe(true);
    expect(new Set(kept.map((a) => a.body.meta.versionId)).size).toBe(kept.length);
    const history = await service.fhir(`/Patient/${created.id}/_history?_count=50`);
    expect(history.body.total).toBe(5 + kept.length);
    const dates = history.body.entry.map((e: any) => e.resource.birthDate);
    for (const answer of kept) expect(dates).toContain(answer.body.birthDate);
  });

  it('pages a history: the total of every version, newest first, next links to the last one', async () => {
    const created = (await service.fhir('/Patient', { body: { resourceType: 'Patient', birthDate: '1990-01-01' } })).body;
    const updated: string[] = [];
    for (let v = 2; v <= 7; v++) {
      const res = await service.fhir(`/Patient/${created.id}`, {
        method: 'PUT',
        body: { resourceType: 'Patient', id: created.id, birthDate: `1990-01-0${v}` },
      });
      updated.push(res.body.meta.lastUpdated);
    }
    const versions: string[][] = [];
    let next: string | undefined = `/Patient/${created.id}/_history?_count=3`;
    while (next) {
      const page: any = (await service.fhir(next)).body;
      expect(page.total).toBe(7);
      versions.push(page.entry.map((e: any) => e.resource.meta.versionId));
      next = page.link.find((l: any) => l.relation === 'next')?.url;
    }
    expect(versions).toEqual([['7', '6', '5'], ['4', '3', '2'], ['1']]);
    // _since counts what it keeps; _count=0 counts alone.
    const since = (await service.fhir(`/Patient/${created.id}/_history?_since=${encodeURIComponent(updated[3])}`)).body;
    expect([since.total, since.entry.map((e: any) => e.resource.meta.versionId)]).toEqual([3, ['7', '6', '5']]);
    const counted = (await service.fhir(`/Patient/${created.id}/_history?_count=0`)).body;
    expect([counted.total, counted.entry]).toEqual([7, undefined]);
    const wrong = await service.fhir(`/Patient/${created.id}/_history?_count=many`);
    expect([wrong.status, wrong.body.issue[0].expression]).toEqual([400, ['_count']]);
  });

  it('creates at a client-chosen id with PUT (201), then updates it (200)', async () => {
    const first = await service.fhir('/Organization/referring-hospital-1', {
      method: 'PUT',
      body: { resourceType: 'Organization', id: 'referring-hospital-1', name: 'General Hospital' },
    });
    expect(first.status).toBe(201);
    const second = await service.fhir('/Organization/referring-hospital-1', {
      method: 'PUT',
      body: { resourceType: 'Organization', id: 'referring-hospital-1', name: 'General Hospital East' },
    });
    expect(second.status).toBe(200);
    expect(second.body.meta.versionId).toBe('2');
  });

  it('deletes: read answers 410, history still shows every version', async () => {
    const created = (await service.fhir('/Patient', { body: patient })).body;
    const deleted = await service.fhir(`/Patient/${created.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    const read = await service.fhir(`/Patient/${created.id}`);
    expect(read.status).toBe(410);
    expect(read.body.issue[0].code).toBe('deleted');
    const history = await service.fhir(`/Patient/${created.id}/_history`);
    expect(history.body.entry).toHaveLength(2);
    expect(history.body.entry[0].request.method).toBe('DELETE');
    expect(history.body.entry[1].resource.id).toBe(created.id);
    const search = await service.fhir(`/Patient?_id=${created.id}`);
    expect(search.body.total).toBe(0);
  });

  it('honours Prefer: return=minimal', async () => {
    const res = await service.fhir('/Patient', { body: patient, headers: { prefer: 'return=minimal' } });
    expect(res.status).toBe(201);
    expect(res.body).toBeUndefined();
    expect(res.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
  });

  it('serves every clinical and workflow type the same way', async () => {
    const subject = { reference: `Patient/${(await service.fhir('/Patient', { body: patient })).body.id}` };
    for (const resource of [
      { resourceType: 'Condition', subject, code: { text: 'Invasive ductal carcinoma' } },
      { resourceType: 'Observation', status: 'final', code: { text: 'HER2' }, subject },
      {
        resourceType: 'Endpoint',
        status: 'active',
        connectionType: { code: 'hl7-fhir-rest' },
        payloadType: [{ text: 'FHIR' }],
        address: 'https://ehr.example/fhir',
      },
      { resourceType: 'CarePlan', status: 'active', intent: 'plan', subject },
    ]) {
      const res = await service.fhir(`/${resource.resourceType}`, { body: resource });
      expect(res.status).toBe(201);
    }
  });
});
