// A referring EHR sends a second-opinion request naming its patient; the service opens a case and
// pulls the patient's chart from the EHR's own FHIR server (a real one, over HTTP), once, completely.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { chartTypes, retrievalJobKind } from '../src/retrieval/retrieve-chart.js';
import { registerInstitution } from './review-cases.js';
import { startTestService, type TestService } from './harness.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));
const perType = 25; // 300 records over 12 kinds, plus the patient

let ehr: ReferringEhr;
let proxy: FaultProxy;
let service: TestService;
let patientId: string;
let pathologyId: string;

beforeAll(async () => {
  ehr = await startReferringEhr();
  patientId = await seedPatient(ehr.repo, perType);
  const pathology = await ehr.repo.createResource({
    resourceType: 'DiagnosticReport',
    status: 'final',
    code: { text: 'Pathology' },
    subject: { reference: `Patient/${patientId}` },
  });
  pathologyId = pathology.id;
  proxy = await startFaultProxy(ehr.base);
  // No polling of the EHR for orders: every request it sees here is the retrieval's (a poll once a minute fell into the 401 case's count on a slow run).
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', RETRIEVAL_PAGE_SIZE: '10', OUTBOUND_RETRY_BASE_MS: '10', POLL_INTERVAL_MS: '0' });
  // The EHR is reached directly and through the fault proxy: both addresses are registered.
  await registerInstitution(service, 'Referring Hospital', ehr.base);
  await registerInstitution(service, 'Referring Hospital (through the proxy)', proxy.base);
});
afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
  await ehr?.stop();
});

function requestFor(patient: string, orderId: string, base = ehr.base): Record<string, unknown> {
  return {
    ...example,
    identifier: [{ system: 'https://ehr.example/orders', value: orderId }],
    subject: { reference: `${base}/Patient/${patient}` },
    supportingInfo: [{ reference: `${base}/DiagnosticReport/${pathologyId}` }],
  };
}

async function taskOf(requestId: string, until: (task: any) => boolean): Promise<any> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = await service.fhir(`/Task?focus=ServiceRequest/${requestId}`);
    expect(found.body.total).toBe(1);
    const task = found.body.entry[0].resource;
    if (until(task) || Date.now() > deadline) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('push intake and chart retrieval', () => {
  it('opens one case per request and retrieves the whole chart, following every page', async () => {
    const headers = { 'if-none-exist': 'identifier=https://ehr.example/orders|PUSH-1' };
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'PUSH-1'), headers });
    expect(created.status).toBe(201);
    const again = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'PUSH-1'), headers });
    expect(again.status).toBe(200);

    const task = await taskOf(created.body.id, (t) => t.businessStatus.coding[0].code === 'awaiting-assignment');
    expect(task.status).toBe('received');
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment');
    expect(task.meta.profile[0]).toMatch(/second-opinion-task$/);
    const history = await service.fhir(`/Task/${task.id}/_history`);
    expect(
      history.body.entry
        .map((e: any) => e.resource.status)
        .reverse()
        .slice(0, 2),
    ).toEqual(['requested', 'received']);
    // The records came in; with no reviewer registered here, routing left the case in the queue.
    expect(
      history.body.entry
        .map((e: any) => e.resource.businessStatus.coding[0].code)
        .reverse()
        .slice(-2),
    ).toEqual(['records-ready', 'awaiting-assignment']);

    const patientRef = task.for.reference;
    const patient = await service.fhir(`/${patientRef}`);
    expect(patient.status).toBe(200);
    expect(patient.body.meta.source).toMatch(new RegExp(`^${ehr.base}/Patient/${patientId}`));
    for (const type of chartTypes) {
      const param = ['AllergyIntolerance', 'Immunization'].includes(type) ? 'patient' : 'subject';
      const found = await service.fhir(`/${type}?${param}=${patientRef}&_summary=count`);
      // DiagnosticReport: the seeded ones plus the pathology report the request points at
      expect([type, found.body.total]).toEqual([type, type === 'DiagnosticReport' ? perType + 1 : perType]);
    }
    const provenance = await service.fhir(`/Provenance?target=${patientRef}&_count=5`); // the retrieval's; each Task version has its own
    expect(provenance.body.total).toBe(1);
    expect(provenance.body.entry[0].resource.target).toHaveLength(1 + chartTypes.length * perType + 1);
    // Paged at 10 a page: 25 records a type take 3 pages.
    expect(ehr.requests.filter((r) => r.startsWith('GET /Observation?')).length).toBe(3);

    const packet = await service.fhir(`/ServiceRequest/${created.body.id}/$case-packet`);
    expect(packet.status).toBe(200);
    expect(packet.body.type).toBe('collection');
    const rest = packet.body.entry.map((e: any) => e.resource);
    const summary = rest.pop(); // the completeness summary closes the packet
    expect(packet.body.entry.length).toBe(3 + chartTypes.length * perType + 1 + 1); // the request, its Task, the Patient; the chart; the summary
    expect(summary.resourceType).toBe('OperationOutcome');
    expect(summary.issue.find((i: any) => i.expression[0] === 'Observation').details.text).toBe(`Observation: ${perType} retrieved`);
    expect(summary.issue.filter((i: any) => i.severity === 'warning')).toEqual([]);
    const kinds = rest.map((r: any) => r.resourceType);
    expect(kinds.slice(0, 3)).toEqual(['ServiceRequest', 'Task', 'Patient']);
    expect(kinds.filter((k: string) => k === 'Observation')).toHaveLength(perType);
    expect(kinds.filter((k: string) => k === 'DiagnosticReport')).toHaveLength(perType + 1);
  });

  it('a second pull of the same chart stores nothing twice', async () => {
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'PUSH-2') });
    const task = await taskOf(created.body.id, (t) => t.businessStatus.coding[0].code === 'awaiting-assignment');
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment');
    const observations = await service.fhir(`/Observation?subject=${task.for.reference}&_count=100`);
    expect(observations.body.total).toBe(perType);
    expect(observations.body.entry.every((e: any) => e.resource.meta.versionId === '1')).toBe(true);
    const job = await service.server.jobs.get(`${retrievalJobKind}:${created.body.id}`);
    expect(job?.state).toBe('done');
    expect(job?.progress).toMatchObject({ stored: 0 });
  });

  it('a re-pull asks only for what changed since the last one and adds just that', async () => {
    for (const value of [101, 102]) {
      await ehr.repo.createResource({
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'New result' },
        subject: { reference: `Patient/${patientId}` },
        valueQuantity: { value },
      });
    }
    const before = ehr.requests.length;
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'PUSH-3') });
    const task = await taskOf(created.body.id, (t) => t.businessStatus.coding[0].code === 'awaiting-assignment');
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment');
    const searches = ehr.requests.slice(before).filter((r) => r.startsWith('GET /Observation?'));
    expect(searches.length).toBeGreaterThan(0);
    expect(searches.every((r) => /_lastUpdated=gt/.test(decodeURIComponent(r)))).toBe(true);
    expect((await service.fhir(`/Observation?subject=${task.for.reference}&_summary=count`)).body.total).toBe(perType + 2);
    const job = await service.server.jobs.get(`${retrievalJobKind}:${created.body.id}`);
    expect(job?.progress).toMatchObject({ stored: 2 });
  });

  it('a retrieval run again (as after a crash before its end was recorded) keeps one Provenance, leaves a routed case where it is and routes one left unrouted', async () => {
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'PUSH-5') });
    const task = await taskOf(created.body.id, (t) => t.businessStatus.coding[0].code === 'awaiting-assignment');
    const provenances = async () => (await service.fhir(`/Provenance?target=${task.for.reference}&_summary=count`)).body.total;
    const before = await provenances();
    const jobId = `${retrievalJobKind}:${created.body.id}`;
    const { payload } = (await service.server.jobs.get(jobId)) as { payload: Record<string, unknown> };
    const runAgain = async () => {
      await service.server.jobs.remove(jobId);
      await service.server.jobs.enqueue(retrievalJobKind, jobId, payload);
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && (await service.server.jobs.get(jobId))?.state !== 'done';)
        await new Promise((r) => setTimeout(r, 100));
      expect((await service.server.jobs.get(jobId))?.state).toBe('done');
      return (await service.fhir(`/Task/${task.id}`)).body;
    };
    const routed = await runAgain();
    expect([routed.businessStatus.coding[0].code, routed.meta.versionId]).toEqual(['awaiting-assignment', task.meta.versionId]);
    // A crash between writing records-ready and routing the case leaves it records-ready, unrouted: the run again routes it.
    await service.server.database.connection
      .collection('Task')
      .updateOne({ _id: `Task/${task.id}` } as never, { $set: { 'resource.businessStatus.coding.0.code': 'records-ready' } });
    const rerouted = await runAgain();
    expect([rerouted.businessStatus.coding[0].code, Number(rerouted.meta.versionId)]).toEqual(['awaiting-assignment', Number(task.meta.versionId) + 2]);
    expect(await provenances()).toBe(before);
  });

  it('an opinion this service wrote back into the chart there is not pulled back as a record of the EHR', async () => {
    const opinionSystem = `${canonicalBase()}/opinion`;
    await ehr.repo.createResource({
      resourceType: 'DiagnosticReport',
      status: 'final',
      code: { text: 'Second opinion' },
      subject: { reference: `Patient/${patientId}` },
      identifier: [{ system: opinionSystem, value: 'an-earlier-opinion' }],
    });
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'PUSH-4') });
    const task = await taskOf(created.body.id, (t) => t.businessStatus.coding[0].code === 'awaiting-assignment');
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment');
    expect((await service.fhir(`/DiagnosticReport?identifier=${encodeURIComponent(`${opinionSystem}|an-earlier-opinion`)}&_summary=count`)).body.total).toBe(0);
    expect((await service.fhir(`/DiagnosticReport?subject=${task.for.reference}&_summary=count`)).body.total).toBe(perType + 1);
  });

  it('a patient the EHR does not know fails the case with a reason and tells the requester', async () => {
    const created = await service.fhir('/ServiceRequest', { body: requestFor('no-such-patient', 'PUSH-404') });
    expect(created.status).toBe(201);
    const task = await taskOf(created.body.id, (t) => t.status === 'failed');
    expect(task.status).toBe('failed');
    expect(task.statusReason.text).toMatch(/HTTP 404/);
    const notices = await service.fhir(`/Communication?based-on=ServiceRequest/${created.body.id}`);
    expect(notices.body.total).toBe(1);
    expect(notices.body.entry[0].resource.payload[0].contentString).toMatch(/HTTP 404/);
  });

  it('a request with a relative subject is stored without opening a case', async () => {
    const created = await service.fhir('/ServiceRequest', { body: { ...example, identifier: [{ system: 'https://ehr.example/orders', value: 'REL-1' }] } });
    expect(created.status).toBe(201);
    expect((await service.fhir(`/Task?focus=ServiceRequest/${created.body.id}`)).body.total).toBe(0);
    const packet = await service.fhir(`/ServiceRequest/${created.body.id}/$case-packet`);
    expect(packet.status).toBe(404);
    expect(packet.body.resourceType).toBe('OperationOutcome');
  });

  it('rides out 429s with Retry-After, 503 bursts and dropped connections, and still gets every record once', async () => {
    proxy.latencyMs = 2;
    proxy.every = 2;
    proxy.faults = [
      { status: 429, retryAfter: '1' },
      { status: 503 },
      { status: 503 },
      { drop: true },
      { status: 502 },
      { drop: true },
      { status: 429, retryAfter: '0' },
      { status: 500 },
    ];
    const started = Date.now();
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'FAULTS-1', proxy.base) });
    const task = await taskOf(created.body.id, (t) => t.businessStatus.coding[0].code === 'awaiting-assignment' || t.status === 'failed');
    expect(task.status).toBe('received');
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment');
    expect(proxy.injected).toBe(8);
    expect(proxy.faults).toHaveLength(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // the first Retry-After: 1 was waited out
    const observations = await service.fhir(`/Observation?subject=${task.for.reference}&_summary=count`);
    const onTheEhr = ((await (await fetch(`${ehr.base}/Observation?subject=Patient/${patientId}&_count=1000`)).json()) as { entry: unknown[] }).entry.length;
    expect(observations.body.total).toBe(onTheEhr);
  });

  it('a 403 from the EHR ends the retrieval at once: no retries, the case fails and the requester is told', async () => {
    proxy.latencyMs = 0;
    proxy.every = 0;
    proxy.faults = [{ status: 403 }];
    const before = ehr.requests.length;
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'FORBIDDEN-1', proxy.base) });
    const task = await taskOf(created.body.id, (t) => t.status === 'failed');
    expect(task.status).toBe('failed');
    expect(task.statusReason.text).toMatch(/HTTP 403/);
    // Nothing was asked again (the notice itself may travel to the EHR as a Communication).
    expect(ehr.requests.slice(before).filter((r) => r.startsWith('GET '))).toEqual([]);
    const notices = await service.fhir(`/Communication?based-on=ServiceRequest/${created.body.id}`);
    expect(notices.body.entry[0].resource.payload[0].contentString).toMatch(/HTTP 403/);
    // The notice travels to the EHR as well; let it arrive before the next test schedules its faults.
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && !ehr.requests.slice(before).includes('POST /');) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(ehr.requests.slice(before)).toContain('POST /');
  });

  it('a 401 from the EHR ends the retrieval at once: no retries, the case fails with the reason', async () => {
    proxy.latencyMs = 0;
    proxy.every = 0;
    proxy.faults = [{ status: 401 }];
    const before = ehr.requests.length;
    const created = await service.fhir('/ServiceRequest', { body: requestFor(patientId, 'AUTH-1', proxy.base) });
    const task = await taskOf(created.body.id, (t) => t.status === 'failed');
    expect(task.status).toBe('failed');
    expect(task.statusReason.text).toMatch(/HTTP 401/);
    expect([task.statusReason.coding[0].code, task.businessStatus.coding[0].code]).toEqual(['ehr-refused', 'records-unavailable']);
    expect(ehr.requests.slice(before).filter((r) => r.startsWith('GET '))).toEqual([]);
  });
});
