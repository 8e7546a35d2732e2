// A referring server that keeps failing (503s past every retry): the retrieval job gives up after its
// attempts, and the case says so. The Task fails with the reason and the requester is told; nothing
// waits in records-retrieving for ever.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';
import { startTestService, type TestService } from './harness.js';
import { registerInstitution, secondOpinionRequest, taskWhen } from './review-cases.js';

let service: TestService;
let ehr: ReferringEhr;
let proxy: FaultProxy;

beforeAll(async () => {
  service = await startTestService({
    RETRIEVAL_POLL_MS: '100',
    RETRIEVAL_MAX_ATTEMPTS: '2',
    OUTBOUND_RETRY_ATTEMPTS: '1',
    OUTBOUND_RETRY_BASE_MS: '10',
    OUTBOUND_CALL_TIMEOUT_MS: '500',
    POLL_INTERVAL_MS: '0',
  });
  ehr = await startReferringEhr();
  proxy = await startFaultProxy(ehr.base);
  await registerInstitution(service, 'Failing Hospital', proxy.base);
});
afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
  await ehr?.stop();
});

describe('a retrieval that keeps failing', () => {
  it('gives up after its attempts: the Task fails with the reason, and the requester is told', async () => {
    const patient = await seedPatient(ehr.repo, 1);
    proxy.faults = Array.from({ length: 1000 }, () => ({ status: 503 }));
    const created = await service.fhir('/ServiceRequest', { body: secondOpinionRequest('GIVE-UP-1', proxy.base, patient) });
    expect(created.status).toBe(201);
    const task = await taskWhen(service, created.body.id, (t) => t.status === 'failed');
    expect(task.status).toBe('failed');
    expect(task.statusReason.text).toMatch(/^Retrieval gave up after 2 attempts: .*503/);
    expect(task.statusReason.coding[0]).toMatchObject({ system: expect.stringMatching(/\/CodeSystem\/case-stop-reason$/), code: 'ehr-unavailable' });
    // Visible where cases are looked for: a search by business status finds it.
    expect(task.businessStatus.coding[0].code).toBe('records-unavailable');
    const stopped = await service.fhir('/Task?business-status=records-unavailable&status=failed');
    expect(stopped.body.entry.map((e: any) => e.resource.id)).toContain(task.id);
    const notices = await service.fhir(`/Communication?based-on=ServiceRequest/${created.body.id}`);
    expect(notices.body.entry.map((e: any) => e.resource.payload[0].contentString)).toEqual([task.statusReason.text]);
    proxy.faults = [];
  });

  it('a server that takes each call and keeps the answer: every call is abandoned after OUTBOUND_CALL_TIMEOUT_MS, and the case gives up the same way', async () => {
    const patient = await seedPatient(ehr.repo, 1);
    proxy.answerLatencyMs = 3000;
    try {
      const created = await service.fhir('/ServiceRequest', { body: secondOpinionRequest('GIVE-UP-2', proxy.base, patient) });
      expect(created.status).toBe(201);
      const task = await taskWhen(service, created.body.id, (t) => t.status === 'failed');
      expect(task.statusReason.text).toMatch(/^Retrieval gave up after 2 attempts: .*no answer after 1 attempts$/);
      expect(task.businessStatus.coding[0].code).toBe('records-unavailable');
    } finally {
      proxy.answerLatencyMs = 0;
    }
  });
});
