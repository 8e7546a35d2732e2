// The whole loop against HAPI FHIR, the reference server, as a hospital running it would see it: the
// chart is on HAPI, HAPI is registered as the institution's Endpoint, the EHR keeps an ordinary order
// there (no priority, the diagnosis only through reasonReference) and $submits it; the service pulls
// the chart with HAPI's $everything, following HAPI's own `_getpages` links, fetches the PDFs, routes
// the case by the Condition, and writes the signed opinion back into HAPI with conditional writes:
// a redelivery and an amendment leave one report. HAPI keeps its defaults throughout (60 s search
// cache, external references refused): what is checked on HAPI is read the way a person would.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { runHapi } from '../scripts/peer/hapi-fhir.js';
import { seedHapiChart, samplePdf, type HapiChart } from '../scripts/peer/hapi-chart.js';
import { startTestService, type TestService } from './harness.js';
import { businessStatus, createOrganization, registerInstitution, registerReviewer, specialty, taskWhen } from './review-cases.js';

const canonical = canonicalBase();
const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));
const finalExample = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'DiagnosticReport-final-concordant.json'), 'utf8'));

let hapi: string;
/** In front of HAPI (HAPI's links lead back through it): the institution's registered Endpoint, where answers can be lost. */
let proxy: FaultProxy;
let chart: HapiChart;
let service: TestService;
let institution: string;
let reviewer: string;

beforeAll(async () => {
  hapi = await runHapi();
  chart = await seedHapiChart(hapi);
  // Pages of 10: the chart's 30 records come in several pages, each fetched by HAPI's own `next` link.
  proxy = await startFaultProxy(hapi);
  // No polling: every call the service makes to HAPI here is one the test starts.
  service = await startTestService({
    RETRIEVAL_POLL_MS: '100',
    DELIVERY_POLL_MS: '100',
    RETRIEVAL_PAGE_SIZE: '10',
    OUTBOUND_RETRY_BASE_MS: '10',
    POLL_INTERVAL_MS: '0',
  });
  institution = await registerInstitution(service, 'HAPI Hospital', proxy.base);
  reviewer = await registerReviewer(service, {
    name: 'Oncologist',
    organizationId: await createOrganization(service, 'Second Opinion Centre'),
    specialty: specialty.oncology,
    capacity: 5,
  });
}, 10 * 60_000);
afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
});

/** HAPI, read as a person checks it: fresh (not its 60 s search cache). */
async function onHapi(query: string): Promise<any> {
  const response = await fetch(`${hapi}/${query}`, { headers: { accept: 'application/fhir+json', 'cache-control': 'no-cache' } });
  return response.json();
}
const entries = async (query: string): Promise<any[]> => ((await onHapi(query)).entry ?? []).map((e: any) => e.resource);

/** An order as an EHR keeps it on HAPI: no priority, no performerType, the diagnosis only as a reference to its Condition. */
async function orderOnHapi(orderId: string): Promise<string> {
  const { meta: _meta, priority: _priority, performerType: _performerType, reasonCode: _reasonCode, supportingInfo: _supportingInfo, ...order } = example;
  const response = await fetch(`${hapi}/ServiceRequest`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
    body: JSON.stringify({
      ...order,
      identifier: [{ system: 'https://hapi-hospital.example/orders', value: orderId }],
      subject: { reference: `Patient/${chart.patientId}` },
      requester: { reference: `Practitioner/${chart.referrerId}` },
      reasonReference: [{ reference: `Condition/${chart.conditionId}` }],
    }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

const submit = (serviceRequestId: string) =>
  service.fhir('/ServiceRequest/$submit', {
    body: {
      resourceType: 'Parameters',
      parameter: [
        { name: 'institution', valueReference: { reference: `Organization/${institution}` } },
        { name: 'serviceRequestId', valueString: serviceRequestId },
      ],
    },
  });

const asReviewer = () => ({ 'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: `PractitionerRole/${reviewer}` } }] }) });

describe('the whole loop against HAPI FHIR', () => {
  let taskId: string;
  let opinionId: string;
  let orderOnEhr: string;
  const opinionSystem = `${canonical}/opinion`;

  it('an ordinary order $submitted from HAPI is pulled by $everything across HAPI pages and routed by its Condition', async () => {
    orderOnEhr = await orderOnHapi('HAPI-1');
    const submitted = await submit(orderOnEhr);
    expect([submitted.status, submitted.status === 201 ? undefined : submitted.body]).toEqual([201, undefined]);
    expect(submitted.body.priority).toBeUndefined();
    taskId = submitted.body.id;
    const routed = await taskWhen(service, taskId, (t) => ['assigned', 'awaiting-assignment'].includes(businessStatus(t) ?? '') || t.status === 'failed');
    expect([routed.status, businessStatus(routed)]).toEqual(['received', 'assigned']);
    expect(routed.owner.reference).toBe(`PractitionerRole/${reviewer}`);

    const packet = await service.fhir(`/ServiceRequest/${routed.focus.reference.split('/')[1]}/$case-packet`);
    expect(packet.status).toBe(200);
    const kinds = (packet.body.entry as any[]).map((e) => e.resource.resourceType);
    expect(kinds.filter((k) => k === 'Observation')).toHaveLength(24);
    expect(kinds.filter((k) => k === 'Condition')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'Patient')).toHaveLength(1);
    expect(packet.body.entry.at(-1).resource.issue.at(-1).details.text).toBe('Attachments: 2 stored, 0 skipped');
    const report = packet.body.entry.find((e: any) => e.resource.resourceType === 'DiagnosticReport').resource;
    const pdf = await fetch(report.presentedForm[0].url, { headers: { authorization: `Bearer ${service.token}` } });
    expect(pdf.status).toBe(200);
    expect(Buffer.from(await pdf.arrayBuffer()).equals(samplePdf)).toBe(true);
  }, 120_000);

  it("a question reaches HAPI and its answer resumes the review; the signed opinion lands in HAPI once though HAPI's first answer is lost, the order there is completed, and the case ends opinion-delivered", async () => {
    const routed = (await service.fhir(`/Task/${taskId}`)).body;
    const accepted = await service.fhir(`/Task/${taskId}`, { method: 'PUT', body: { ...routed, status: 'accepted' }, headers: asReviewer() });
    expect(accepted.status).toBe(200);
    expect((await service.fhir(`/Task/${taskId}`, { method: 'PUT', body: { ...accepted.body, status: 'in-progress' }, headers: asReviewer() })).status).toBe(
      200,
    );
    // A question for the referrer: the case waits, the question reaches HAPI once, and the answer resumes the review.
    const referrer = (await service.fhir(`/${routed.focus.reference}`)).body.requester;
    const question = await service.fhir('/CommunicationRequest', {
      body: {
        resourceType: 'CommunicationRequest',
        status: 'active',
        subject: routed.for,
        basedOn: [routed.focus],
        requester: { reference: `PractitionerRole/${reviewer}` },
        recipient: [referrer],
        payload: [{ contentString: 'Was ISH done on the core biopsy?' }],
        authoredOn: new Date().toISOString(),
      },
      headers: asReviewer(),
    });
    expect(question.status).toBe(201);
    expect(businessStatus((await service.fhir(`/Task/${taskId}`)).body)).toBe('awaiting-information');
    for (
      const deadline = Date.now() + 60_000;
      (await entries(`CommunicationRequest?based-on=ServiceRequest/${orderOnEhr}`)).length === 0 && Date.now() < deadline;
    )
      await new Promise((r) => setTimeout(r, 500));
    const asked = await entries(`CommunicationRequest?based-on=ServiceRequest/${orderOnEhr}`);
    expect(asked.map((q) => [q.subject.reference, q.payload[0].contentString])).toEqual([[`Patient/${chart.patientId}`, 'Was ISH done on the core biopsy?']]);
    const answered = await service.fhir('/Communication', {
      body: {
        resourceType: 'Communication',
        status: 'completed',
        subject: routed.for,
        basedOn: [{ reference: `CommunicationRequest/${question.body.id}` }],
        payload: [{ contentString: 'Yes: ISH ratio 2.4.' }],
        sent: new Date().toISOString(),
      },
    });
    expect(answered.status).toBe(201);
    const resumed = (await service.fhir(`/Task/${taskId}`)).body;
    expect([resumed.status, businessStatus(resumed)]).toEqual(['in-progress', 'under-review']);
    // The delivery's transaction is done by HAPI but its answer never arrives: the retry must not make a second report.
    proxy.faults = [{ dropAnswer: true }];
    const opinion = await service.fhir('/DiagnosticReport', {
      body: {
        ...finalExample,
        subject: routed.for,
        basedOn: [routed.focus],
        conclusion: 'HER2 positive on ISH: add trastuzumab.',
        extension: [
          {
            url: `${canonical}/StructureDefinition/concordance`,
            valueCodeableConcept: { coding: [{ system: `${canonical}/CodeSystem/concordance`, code: 'treatment-changed' }] },
          },
        ],
      },
      headers: asReviewer(),
    });
    expect(opinion.status).toBe(201);
    opinionId = opinion.body.id;
    const done = await taskWhen(service, taskId, (t) => ['opinion-delivered', 'delivery-failed'].includes(businessStatus(t) ?? ''));
    expect([done.status, businessStatus(done)]).toEqual(['completed', 'opinion-delivered']);
    expect(proxy.faults).toHaveLength(0);

    const reports = await entries(`DiagnosticReport?identifier=${encodeURIComponent(`${opinionSystem}|${opinionId}`)}`);
    expect(reports).toHaveLength(1);
    expect(reports[0].subject.reference).toBe(`Patient/${chart.patientId}`);
    expect(reports[0].basedOn[0].reference).toBe(`ServiceRequest/${orderOnEhr}`);
    expect(reports[0].conclusion).toBe('HER2 positive on ISH: add trastuzumab.');
    const provenances = await entries(`Provenance?target=DiagnosticReport/${reports[0].id}`);
    expect(provenances).toHaveLength(1);
    expect(provenances[0].signature[0].data).toBeTruthy();
    const notices = await entries(`Communication?based-on=ServiceRequest/${orderOnEhr}`);
    expect(notices.map((n) => n.payload[0].contentString)).toEqual(['The second opinion is in.']);
    expect((await onHapi(`ServiceRequest/${orderOnEhr}`)).status).toBe('completed');
  }, 120_000);

  it('an amendment updates the one report in HAPI (a conditional update on our identifier) and tells the requester', async () => {
    const current = (await service.fhir(`/DiagnosticReport/${opinionId}`)).body;
    const amended = await service.fhir(`/DiagnosticReport/${opinionId}`, {
      method: 'PUT',
      body: { ...current, status: 'amended', conclusion: 'HER2 positive on ISH (amended): add trastuzumab and pertuzumab.' },
      headers: asReviewer(),
    });
    expect(amended.status).toBe(200);
    let reports: any[] = [];
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      reports = await entries(`DiagnosticReport?identifier=${encodeURIComponent(`${opinionSystem}|${opinionId}`)}`);
      if (reports[0]?.status === 'amended') break;
    }
    expect(reports).toHaveLength(1);
    expect([reports[0].status, reports[0].conclusion]).toEqual(['amended', 'HER2 positive on ISH (amended): add trastuzumab and pertuzumab.']);
    const notices = await entries(`Communication?based-on=ServiceRequest/${orderOnEhr}&_sort=_lastUpdated`);
    expect(notices.map((n) => n.payload[0].contentString)).toEqual(['The second opinion is in.', 'The second opinion has been amended.']);
  }, 120_000);

  it("the patient's next case, pushed, pulls the chart again without taking our written-back opinion in as a hospital record", async () => {
    const { meta: _meta, ...order } = example;
    const pushed = await service.fhir('/ServiceRequest', {
      body: {
        ...order,
        identifier: [{ system: 'https://hapi-hospital.example/orders', value: 'HAPI-2' }],
        subject: { reference: `${proxy.base}/Patient/${chart.patientId}` },
        supportingInfo: undefined,
        performerType: undefined,
      },
    });
    expect(pushed.status).toBe(201);
    const routed = await taskWhen(
      service,
      pushed.body.id,
      (t) => ['assigned', 'awaiting-assignment'].includes(businessStatus(t) ?? '') || t.status === 'failed',
    );
    expect(businessStatus(routed)).toBe('assigned');
    const packet = await service.fhir(`/ServiceRequest/${pushed.body.id}/$case-packet`);
    const reports = (packet.body.entry as any[]).map((e) => e.resource).filter((r) => r.resourceType === 'DiagnosticReport');
    // Our own opinion is linked as it is here; the hospital's only report is its pathology.
    expect(reports.filter((r) => r.id !== opinionId).map((r) => r.conclusion)).toEqual(['Invasive ductal carcinoma; HER2 equivocal (2+).']);
  }, 120_000);
});
