// A record the referring server sends that the service's own validation refuses (here an element FHIR
// does not have): the service does not store it, nor try again in vain. The case stops at once with
// its own coded reason, naming the element but never its value, and the requester is told.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';
import { retrievalJobKind } from '../src/retrieval/retrieve-chart.js';
import { startTestService, type TestService } from './harness.js';
import { registerInstitution, secondOpinionRequest, taskWhen } from './review-cases.js';

let service: TestService;
let ehr: ReferringEhr;

beforeAll(async () => {
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', RETRIEVAL_MAX_ATTEMPTS: '3', OUTBOUND_RETRY_BASE_MS: '10', POLL_INTERVAL_MS: '0' });
  ehr = await startReferringEhr();
  await registerInstitution(service, 'Lenient Hospital', ehr.base);
});
afterAll(async () => {
  await service?.stop();
  await ehr?.stop();
});

describe('a retrieved record our validation refuses', () => {
  it('stops the case with write-invalid at the first attempt, names the element, stores none of its page, and tells the requester', async () => {
    const patient = await seedPatient(ehr.repo, 2);
    // The peer stores what it is given; FHIR's Observation has no `colour`.
    await ehr.repo.createResource({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'Skin' },
      subject: { reference: `Patient/${patient}` },
      colour: 'pale-and-private',
    } as never);
    const created = await service.fhir('/ServiceRequest', { body: secondOpinionRequest('INVALID-1', ehr.base, patient) });
    expect(created.status).toBe(201);
    const task = await taskWhen(service, created.body.id, (t) => t.status === 'failed');
    expect([task.status, task.businessStatus.coding[0].code]).toEqual(['failed', 'records-unavailable']);
    expect(task.statusReason.coding[0]).toMatchObject({
      system: expect.stringMatching(/\/CodeSystem\/case-stop-reason$/),
      code: 'write-invalid',
      display: "Refused by the service's own validation",
    });
    expect(task.statusReason.text).toBe("Retrieval stopped: the service's own validation refused what it would store, at Observation.colour");
    // The job ends with its first attempt (it is marked so just after the Task).
    let job = await service.server.jobs.get(`${retrievalJobKind}:${created.body.id}`);
    for (const deadline = Date.now() + 10_000; job?.state === 'running' && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      job = await service.server.jobs.get(`${retrievalJobKind}:${created.body.id}`);
    }
    expect([job?.state, job?.attempts]).toEqual(['done', 1]);
    // The refused page is not stored; what came before it (the Patient) is.
    expect((await service.fhir(`/Observation?subject=${task.for.reference}&_summary=count`)).body.total).toBe(0);
    expect((await service.fhir(`/${task.for.reference}`)).status).toBe(200);
    const notices = await service.fhir(`/Communication?based-on=ServiceRequest/${created.body.id}`);
    expect(notices.body.entry.map((e: any) => e.resource.payload[0].contentString)).toEqual([task.statusReason.text]);
    expect(JSON.stringify(notices.body)).not.toContain('pale-and-private');
    const stopped = await service.fhir('/Task?business-status=records-unavailable&status=failed');
    expect(stopped.body.entry.map((e: any) => e.resource.id)).toContain(task.id);
  });
});
