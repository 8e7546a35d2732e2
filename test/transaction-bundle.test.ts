// A transaction Bundle is all or nothing, also for what the workflow writes beside its entries (a
// Task's Provenance) and when the database itself refuses a write midway; what its writes start (a
// second-opinion request's case) starts once it has committed, and never when it fails.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { seedPatient, startReferringEhr } from '../scripts/peer/referring-ehr.js';
import { startTestService, type TestService } from './harness.js';
import { businessStatus, registerInstitution, secondOpinionRequest } from './review-cases.js';

let service: TestService;
beforeAll(async () => {
  // Room for a body that holds a record over MongoDB's 16 MB document limit.
  service = await startTestService({ MAX_BODY_BYTES: String(40 * 1024 * 1024) });
});
afterAll(async () => {
  await service?.stop();
});

const count = async (query: string): Promise<number> => (await service.fhir(`${query}${query.includes('?') ? '&' : '?'}_summary=count`)).body.total;

describe('a transaction Bundle whose last entry fails leaves nothing stored', () => {
  it('a Task it created goes, and so does the Provenance the workflow wrote of it', async () => {
    const patient = (await service.fhir('/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Atomic' }] } })).body;
    const [tasks, provenances] = [await count('/Task'), await count('/Provenance')];
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:6f1c1f7e-0000-4000-8000-000000000001',
          resource: { resourceType: 'Task', status: 'requested', intent: 'order', for: { reference: `Patient/${patient.id}` } },
          request: { method: 'POST', url: 'Task' },
        },
        // Written on a version the Patient is not at: 412, after the Task and its Provenance were written.
        { resource: { ...patient, gender: 'other' }, request: { method: 'PUT', url: `Patient/${patient.id}`, ifMatch: 'W/"7"' } },
      ],
    };
    const res = await service.fhir('', { body: bundle });
    expect([res.status, res.body.resourceType]).toEqual([412, 'OperationOutcome']);
    expect([await count('/Task'), await count('/Provenance')]).toEqual([tasks, provenances]);
    expect((await service.fhir(`/Patient/${patient.id}`)).body.meta.versionId).toBe('1');
  });

  it('a record the database refuses (over 16 MB) undoes the entries written before it', async () => {
    const existing = (await service.fhir('/Patient', { body: { resourceType: 'Patient', gender: 'female' } })).body;
    const before = await count('/Patient');
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:6f1c1f7e-0000-4000-8000-000000000002',
          resource: { resourceType: 'Patient', name: [{ family: 'Toolarge' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        { resource: { ...existing, gender: 'male' }, request: { method: 'PUT', url: `Patient/${existing.id}` } },
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'a note too large to store' },
            subject: { reference: 'urn:uuid:6f1c1f7e-0000-4000-8000-000000000002' },
            note: [{ text: 'x'.repeat(17 * 1024 * 1024) }],
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    const res = await service.fhir('', { body: bundle });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(await count('/Patient')).toBe(before);
    expect(await count('/Patient?family=Toolarge')).toBe(0);
    const current = (await service.fhir(`/Patient/${existing.id}`)).body;
    expect([current.gender, current.meta.versionId]).toEqual(['female', '1']);
    expect((await service.fhir(`/Patient/${existing.id}/_history`)).body.total).toBe(1);
  });
});

describe('a transaction Bundle with a second-opinion request opens its case once the Bundle has committed', () => {
  it('the committed Bundle is answered with the case open and its chart asked for; a failed one opens none', async () => {
    const ehr = await startReferringEhr();
    try {
      await registerInstitution(service, 'Bundling Hospital', ehr.base);
      const sourcePatient = await seedPatient(ehr.repo, 1);
      const requestEntry = (order: string) => ({
        resource: secondOpinionRequest(order, ehr.base, sourcePatient),
        request: { method: 'POST', url: 'ServiceRequest' },
      });
      const patient = (await service.fhir('/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Bundled' }] } })).body;
      const tasks = await count('/Task');
      const failed = await service.fhir('', {
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [requestEntry('BUNDLED-1'), { resource: patient, request: { method: 'PUT', url: `Patient/${patient.id}`, ifMatch: 'W/"7"' } }],
        },
      });
      expect(failed.status).toBe(412);
      expect(await count('/ServiceRequest?identifier=https://ehr.example/orders|BUNDLED-1')).toBe(0);
      expect(await count('/Task')).toBe(tasks);

      const committed = await service.fhir('', { body: { resourceType: 'Bundle', type: 'transaction', entry: [requestEntry('BUNDLED-2')] } });
      expect(committed.status).toBe(200);
      const requestId = /ServiceRequest\/([^/]+)/.exec(String(committed.body.entry[0].response.location))?.[1];
      // Read at once: the case was opened before the Bundle was answered, and its chart is asked for.
      const task = (await service.fhir(`/Task/${requestId}`)).body;
      expect([task.resourceType, task.focus?.reference]).toEqual(['Task', `ServiceRequest/${requestId}`]);
      expect(['records-retrieving', 'records-ready', 'assigned', 'awaiting-assignment']).toContain(businessStatus(task));
      for (const deadline = Date.now() + 20_000; !ehr.requests.some((r) => r.includes(sourcePatient)) && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(ehr.requests.filter((r) => r.includes(sourcePatient)).length).toBeGreaterThan(0);
    } finally {
      await ehr.stop();
    }
  });
});
