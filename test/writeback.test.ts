// The opinion: drafted, finalised (rendered, signed, delivered into the patient's chart on the
// referring EHR exactly once, even through outages and lost answers), verified, and amended.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { registerInstitution } from './review-cases.js';
import { startTestService, type TestService } from './harness.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const examples = path.join(defaultProfilesDir(), 'examples', 'valid');
const request = JSON.parse(readFileSync(path.join(examples, 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));
const draft = JSON.parse(readFileSync(path.join(examples, 'DiagnosticReport-preliminary.json'), 'utf8'));
const finalExample = JSON.parse(readFileSync(path.join(examples, 'DiagnosticReport-final-concordant.json'), 'utf8'));
const canonical = canonicalBase();
const opinionSystem = `${canonical}/opinion`;
const orders = 'https://ehr.example/orders';

let ehr: ReferringEhr;
let proxy: FaultProxy;
let service: TestService;
let patientId: string;

beforeAll(async () => {
  // The EHR lets the service write into the chart but not change its orders.
  ehr = await startReferringEhr({ refuses: (method, p) => (method === 'PUT' && p.startsWith('/ServiceRequest/') ? 405 : undefined) });
  patientId = await seedPatient(ehr.repo, 2);
  proxy = await startFaultProxy(ehr.base);
  service = await startTestService({
    RETRIEVAL_POLL_MS: '100',
    DELIVERY_POLL_MS: '100',
    DELIVERY_RETRY_BASE_MS: '50',
    DELIVERY_RETRY_MAX_MS: '200',
    OUTBOUND_RETRY_BASE_MS: '10',
  });
  await registerInstitution(service, 'Referring Hospital', proxy.base);
});
afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
  await ehr?.stop();
});

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const taskOf = (requestId: string) => service.fhir(`/Task/${requestId}`).then((r) => r.body);
const businessStatus = (task: any): string => task.businessStatus.coding[0].code;
/** Records in and routed (here to the queue: no reviewers are registered). */
const recordsIn = (task: any): boolean => ['assigned', 'awaiting-assignment'].includes(businessStatus(task));

/** A case whose records are in, with its order also on the EHR; answers the request's id and the Task. */
async function openCase(orderId: string): Promise<{ requestId: string; task: any }> {
  await ehr.repo.createResource({
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    identifier: [{ system: orders, value: orderId }],
    subject: { reference: `Patient/${patientId}` },
    code: request.code,
  });
  const created = await service.fhir('/ServiceRequest', {
    body: {
      ...request,
      identifier: [{ system: orders, value: orderId }],
      subject: { reference: `${proxy.base}/Patient/${patientId}` },
      supportingInfo: undefined,
    },
  });
  expect(created.status).toBe(201);
  const task = await until(() => taskOf(created.body.id), recordsIn);
  expect(recordsIn(task)).toBe(true);
  return { requestId: created.body.id, task };
}

function opinion(requestId: string, task: any, status: string, conclusion: string): Record<string, unknown> {
  const base = status === 'preliminary' ? draft : finalExample;
  return { ...base, status, subject: { reference: task.for.reference }, basedOn: [{ reference: `ServiceRequest/${requestId}` }], conclusion };
}

const chartOpinions = async (orderId: string) => {
  const all = (await (await fetch(`${ehr.base}/DiagnosticReport?patient=Patient/${patientId}&_count=1000`)).json()).entry.map((e: any) => e.resource);
  const orderRef = (r: any) => JSON.stringify(r.basedOn ?? []).includes(orderId);
  return all.filter((r: any) => r.identifier?.some((i: any) => i.system === opinionSystem) && orderRef(r));
};

describe('the signed opinion and its write-back', () => {
  it('a final opinion is rendered, signed, and lands in the chart once, with its Provenance and a notice', async () => {
    const { requestId, task } = await openCase('WB-1');
    const drafted = await service.fhir('/DiagnosticReport', { body: opinion(requestId, task, 'preliminary', 'Draft: likely concordant.') });
    expect(drafted.status).toBe(201);
    expect(drafted.body.presentedForm).toBeUndefined(); // a draft is neither rendered nor signed
    const id = drafted.body.id;
    const finalised = await service.fhir(`/DiagnosticReport/${id}`, {
      method: 'PUT',
      body: { ...opinion(requestId, task, 'final', 'Invasive ductal carcinoma <confirmed> & HER2 positive.'), id },
    });
    expect(finalised.status).toBe(200);
    const rendering = finalised.body.presentedForm.find((a: any) => a.title === 'Second opinion (as signed by the service)');
    const html = Buffer.from(rendering.data, 'base64').toString();
    expect(html).toContain('Invasive ductal carcinoma &lt;confirmed&gt; &amp; HER2 positive.');
    expect(html).not.toContain('<confirmed>');

    const delivered = await until(
      () => taskOf(requestId),
      (t) => businessStatus(t) === 'opinion-delivered',
    );
    expect(businessStatus(delivered)).toBe('opinion-delivered');
    // The EHR refuses changes to its orders: recorded on the Task, not retried.
    expect(delivered.note.at(-1).text).toMatch(/ServiceRequest status not updated: refused .*HTTP 405/);
    expect(ehr.requests.filter((r) => r.startsWith('PUT /ServiceRequest/')).length).toBe(1);

    const inChart = await chartOpinions('WB-1');
    expect(inChart).toHaveLength(1);
    expect(inChart[0].conclusion).toBe('Invasive ductal carcinoma <confirmed> & HER2 positive.');
    expect(inChart[0].subject.reference).toBe(`Patient/${patientId}`);
    expect(inChart[0].basedOn[0].identifier).toEqual({ system: orders, value: 'WB-1' });
    expect(inChart[0].extension.find((e: any) => e.url.endsWith('/concordance')).valueCodeableConcept.coding[0].code).toBe('concordant');
    const provenances = (await (await fetch(`${ehr.base}/Provenance?_count=1000`)).json()).entry.map((e: any) => e.resource);
    const signed = provenances.filter((p: any) => p.target?.[0]?.reference === `DiagnosticReport/${inChart[0].id}`);
    expect(signed).toHaveLength(1);
    expect(signed[0].signature[0].sigFormat).toBe('application/jose');
    const notices = (await (await fetch(`${ehr.base}/Communication?subject=Patient/${patientId}&_count=1000`)).json()).entry ?? [];
    expect(notices.filter((e: any) => e.resource.payload?.[1]?.contentReference?.reference === `DiagnosticReport/${inChart[0].id}`)).toHaveLength(1);

    // The signature: valid for the content as stored; the public key is in the JWKS.
    const verified = await service.fhir(`/DiagnosticReport/${id}/$verify`);
    expect(verified.status).toBe(200);
    const params = Object.fromEntries(verified.body.parameter.map((p: any) => [p.name, p.valueBoolean ?? p.valueString ?? p.valueReference?.reference]));
    expect(params.valid).toBe(true);
    const jwks = (await (await fetch(`${service.server.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(params.keyId);
    const local = await service.fhir(`/${params.signature}`);
    expect(local.body.target[0].reference).toBe(`DiagnosticReport/${id}/_history/${finalised.body.meta.versionId}`);

    // Changed behind the API's back, the content no longer matches its signature.
    await service.server.database.connection
      .collection('DiagnosticReport')
      .updateOne({ _id: `DiagnosticReport/${id}` } as never, { $set: { 'resource.conclusion': 'Benign.' } });
    const tampered = await service.fhir(`/DiagnosticReport/${id}/$verify`);
    expect(tampered.body.parameter.find((p: any) => p.name === 'valid').valueBoolean).toBe(false);
    await service.server.database.connection
      .collection('DiagnosticReport')
      .updateOne({ _id: `DiagnosticReport/${id}` } as never, { $set: { 'resource.conclusion': 'Invasive ductal carcinoma <confirmed> & HER2 positive.' } });
  });

  it('a final opinion changes only by amendment; the amendment replaces the chart copy and keeps the earlier version here', async () => {
    const { requestId, task } = await openCase('WB-2');
    const created = await service.fhir('/DiagnosticReport', { body: opinion(requestId, task, 'final', 'Concordant.') });
    expect(created.status).toBe(201);
    const id = created.body.id;
    await until(
      () => taskOf(requestId),
      (t) => businessStatus(t) === 'opinion-delivered',
    );

    for (const status of ['final', 'preliminary']) {
      const refused = await service.fhir(`/DiagnosticReport/${id}`, { method: 'PUT', body: { ...opinion(requestId, task, status, 'Changed quietly.'), id } });
      expect([status, refused.status]).toEqual([status, 409]);
      expect(refused.body.issue[0].expression).toEqual(['DiagnosticReport.status']);
    }
    expect((await service.fhir(`/DiagnosticReport/${id}`)).body.meta.versionId).toBe('1');

    const amended = await service.fhir(`/DiagnosticReport/${id}`, {
      method: 'PUT',
      body: { ...opinion(requestId, task, 'amended', 'Concordant; add a cardiac work-up before trastuzumab.'), id },
    });
    expect(amended.status).toBe(200);
    const redelivered = await until(
      () => taskOf(requestId),
      (t) => businessStatus(t) === 'opinion-delivered' && t.note?.some((n: any) => n.text.includes('version 2')),
    );
    expect(redelivered.note.at(-1).text).toMatch(/version 2 delivered/);
    const inChart = await chartOpinions('WB-2');
    expect(inChart).toHaveLength(1);
    expect(inChart[0].status).toBe('amended');
    expect(inChart[0].conclusion).toMatch(/cardiac work-up/);
    const earlier = await service.fhir(`/DiagnosticReport/${id}/_history/1`);
    expect([earlier.body.status, earlier.body.conclusion]).toEqual(['final', 'Concordant.']);
    expect((await service.fhir(`/DiagnosticReport/${id}/$verify`)).body.parameter[0].valueBoolean).toBe(true);
  });

  it("the reviewer's recommendation to see the patient reaches the chart as one proposed ServiceRequest, kept one through amendments and withdrawn by one that drops it", async () => {
    const { requestId, task } = await openCase('WB-7');
    const followUp = (code: string, reason: string) => ({
      url: `${canonical}/StructureDefinition/follow-up`,
      extension: [
        { url: 'kind', valueCoding: { system: `${canonical}/CodeSystem/follow-up`, code } },
        { url: 'reason', valueString: reason },
      ],
    });
    const withFollowUp = (status: string, conclusion: string, code: string, reason: string) => {
      const body = opinion(requestId, task, status, conclusion);
      return { ...body, extension: [...(body.extension as object[]), followUp(code, reason)] };
    };
    const refused = await service.fhir('/DiagnosticReport', { body: withFollowUp('final', 'Concordant.', 'telepathy', 'x') });
    expect([refused.status, refused.body.issue.map((i: any) => i.expression?.[0])]).toEqual([422, ['DiagnosticReport.extension[1].extension']]);

    const created = await service.fhir('/DiagnosticReport', { body: withFollowUp('final', 'Concordant.', 'video', 'to discuss the adjuvant treatment') });
    expect(created.status).toBe(201);
    const html = Buffer.from(created.body.presentedForm.find((a: any) => a.title === 'Second opinion (as signed by the service)').data, 'base64').toString();
    expect(html).toContain('See the patient (Video consultation): to discuss the adjuvant treatment');
    await until(
      () => taskOf(requestId),
      (t) => businessStatus(t) === 'opinion-delivered',
    );
    const proposals = async () =>
      (
        (await (await fetch(`${ehr.base}/ServiceRequest?identifier=${encodeURIComponent(`${canonical}/follow-up|${created.body.id}`)}`)).json()).entry ?? []
      ).map((e: any) => e.resource);
    const [inChart] = await chartOpinions('WB-7');
    const [proposal, ...more] = await proposals();
    expect(more).toHaveLength(0);
    expect([proposal.intent, proposal.status, proposal.code.coding[0].code, proposal.note[0].text]).toEqual([
      'proposal',
      'active',
      'video',
      'to discuss the adjuvant treatment',
    ]);
    expect(proposal.subject.reference).toBe(`Patient/${patientId}`);
    expect(proposal.basedOn[0].identifier).toEqual({ system: orders, value: 'WB-7' });
    expect(proposal.reasonReference[0].reference).toBe(`DiagnosticReport/${inChart.id}`);

    const amended = await service.fhir(`/DiagnosticReport/${created.body.id}`, {
      method: 'PUT',
      body: { ...withFollowUp('amended', 'Concordant; see the patient first.', 'in-person', 'to examine the axilla'), id: created.body.id },
    });
    expect(amended.status).toBe(200);
    await until(
      () => taskOf(requestId),
      (t) => businessStatus(t) === 'opinion-delivered' && t.note?.some((n: any) => n.text.includes('version 2')),
    );
    const after = await proposals();
    expect(after.map((p: any) => [p.id, p.code.coding[0].code, p.note[0].text])).toEqual([[proposal.id, 'in-person', 'to examine the axilla']]);

    // Amended again without it: the proposal there is withdrawn (revoked), still one.
    const withdrawn = await service.fhir(`/DiagnosticReport/${created.body.id}`, {
      method: 'PUT',
      body: { ...opinion(requestId, task, 'amended', 'Concordant; no need to see the patient.'), id: created.body.id },
    });
    expect(withdrawn.status).toBe(200);
    await until(
      () => taskOf(requestId),
      (t) => businessStatus(t) === 'opinion-delivered' && t.note?.some((n: any) => n.text.includes('version 3')),
    );
    expect((await proposals()).map((p: any) => [p.id, p.status])).toEqual([[proposal.id, 'revoked']]);
  });

  it('rides out an EHR that is down for a while, and a lost answer, with exactly one copy in the chart', async () => {
    const { requestId, task } = await openCase('WB-3');
    proxy.every = 0;
    const before = ehr.requests.length;
    proxy.faults = [{ status: 503 }, { status: 503 }, { drop: true }, { status: 503 }, { status: 502 }, { dropAnswer: true }, { status: 503 }];
    const created = await service.fhir('/DiagnosticReport', { body: opinion(requestId, task, 'final', 'Diagnosis changed: DCIS, not invasive.') });
    expect(created.status).toBe(201);
    const done = await until(
      () => taskOf(requestId),
      (t) => ['opinion-delivered', 'delivery-failed'].includes(businessStatus(t)),
    );
    expect(businessStatus(done)).toBe('opinion-delivered');
    expect(proxy.faults).toHaveLength(0);
    // The EHR did the transaction more than once (its first answer was lost), yet holds one copy.
    expect(ehr.requests.slice(before).filter((r) => r === 'POST /').length).toBeGreaterThanOrEqual(2);
    const inChart = await chartOpinions('WB-3');
    expect(inChart).toHaveLength(1);
    expect(inChart[0].conclusion).toBe('Diagnosis changed: DCIS, not invasive.');
  });

  it('completes a case in progress whose opinion was stored but whose own completion a crash lost', async () => {
    const { requestId, task } = await openCase('WB-9');
    proxy.every = 0;
    proxy.faults = Array.from({ length: 50 }, () => ({ status: 503 })); // the delivery waits while the crash is staged
    const created = await service.fhir('/DiagnosticReport', { body: opinion(requestId, task, 'final', 'Concordant.') });
    expect(created.status).toBe(201);
    // As a process killed just after storing the opinion leaves it: the reviewer's case still in progress.
    const stored = (await service.fhir(`/Task/${task.id}`)).body;
    const inProgress = {
      ...stored,
      status: 'in-progress',
      owner: { reference: 'PractitionerRole/crashed-reviewer' },
      businessStatus: { coding: [{ ...stored.businessStatus.coding[0], code: 'under-review' }] },
    };
    await service.server.database.connection.collection('Task').updateOne({ _id: `Task/${task.id}` } as never, { $set: { resource: inProgress } });
    proxy.faults = [];
    const done = await until(
      () => taskOf(requestId),
      (t) => ['opinion-delivered', 'delivery-failed'].includes(businessStatus(t)),
    );
    expect([done.status, businessStatus(done)]).toEqual(['completed', 'opinion-delivered']);
  });

  it('a message or question to the referrer reaches the EHR once; one between people here stays here', async () => {
    const { requestId, task } = await openCase('WB-6');
    const message = (recipient: string, text: string) => ({
      resourceType: 'Communication',
      status: 'completed',
      subject: { reference: task.for.reference },
      basedOn: [{ reference: `ServiceRequest/${requestId}` }],
      recipient: [{ reference: recipient }],
      sent: new Date().toISOString(),
      payload: [{ contentString: text }],
    });
    const toReferrer = await service.fhir('/Communication', { body: message(request.requester.reference, 'Could you send the paraffin blocks for ISH?') });
    expect(toReferrer.status).toBe(201);
    const internal = await service.fhir('/Communication', { body: message('Practitioner/a-colleague-here', 'Internal: please double-check the scoring.') });
    expect(internal.status).toBe(201);
    const delivered = async () => {
      const all = (await (await fetch(`${ehr.base}/Communication?subject=Patient/${patientId}&_count=1000`)).json()).entry ?? [];
      return all.map((e: any) => e.resource).filter((c: any) => c.identifier?.some((i: any) => i.system === `${canonical}/communication`));
    };
    const there = await until(delivered, (list) => list.some((c: any) => c.payload[0].contentString.includes('paraffin')));
    const copies = there.filter((c: any) => c.identifier[0].value.startsWith(toReferrer.body.id));
    expect(copies).toHaveLength(1);
    expect(copies[0].recipient).toEqual([{ reference: request.requester.reference }]);
    expect(copies[0].basedOn[0].identifier).toEqual({ system: orders, value: 'WB-6' });
    expect(copies[0].subject.reference).toBe(`Patient/${patientId}`);
    await new Promise((r) => setTimeout(r, 500));
    expect((await delivered()).some((c: any) => c.payload[0].contentString.startsWith('Internal'))).toBe(false);

    // A reviewer's question to the referrer travels the same way, as a CommunicationRequest.
    const question = await service.fhir('/CommunicationRequest', {
      body: {
        resourceType: 'CommunicationRequest',
        status: 'active',
        subject: { reference: task.for.reference },
        basedOn: [{ reference: `ServiceRequest/${requestId}` }],
        recipient: [{ reference: request.requester.reference }],
        payload: [{ contentString: 'Is there a recent CT angiogram?' }],
      },
    });
    expect(question.status).toBe(201);
    const asked = async () =>
      ((await (await fetch(`${ehr.base}/CommunicationRequest?subject=Patient/${patientId}&_count=100`)).json()).entry ?? []).map((e: any) => e.resource);
    const there2 = await until(asked, (list) => list.some((q: any) => q.identifier?.[0]?.value?.startsWith(question.body.id)));
    const copiesOfQuestion = there2.filter((q: any) => q.identifier?.[0]?.value?.startsWith(question.body.id));
    expect(copiesOfQuestion).toHaveLength(1);
    expect(copiesOfQuestion[0]).toMatchObject({
      status: 'active',
      recipient: [{ reference: request.requester.reference }],
      payload: [{ contentString: 'Is there a recent CT angiogram?' }],
    });
  });

  it('bad input to the opinion operations answers an OperationOutcome and changes nothing', async () => {
    const { requestId, task } = await openCase('WB-4');
    const drafted = await service.fhir('/DiagnosticReport', { body: opinion(requestId, task, 'preliminary', 'Draft.') });
    const notSigned = await service.fhir(`/DiagnosticReport/${drafted.body.id}/$verify`);
    expect(notSigned.status).toBe(400);
    expect(notSigned.body.issue[0].expression).toEqual(['DiagnosticReport.status']);
    const notOwed = await service.fhir(`/DiagnosticReport/${drafted.body.id}/$redeliver`, { method: 'POST' });
    expect(notOwed.status).toBe(404);
    const amendDraft = await service.fhir(`/DiagnosticReport/${drafted.body.id}`, {
      method: 'PUT',
      body: { ...opinion(requestId, task, 'amended', 'x'), id: drafted.body.id },
    });
    expect(amendDraft.status).toBe(409);
    expect((await service.fhir(`/DiagnosticReport/${drafted.body.id}`)).body.meta.versionId).toBe('1');
    expect(await chartOpinions('WB-4')).toHaveLength(0);
  });
});

describe('a delivery that cannot get through', () => {
  let impatient: TestService;
  beforeAll(async () => {
    impatient = await startTestService({
      RETRIEVAL_POLL_MS: '100',
      DELIVERY_POLL_MS: '100',
      DELIVERY_RETRY_BASE_MS: '50',
      DELIVERY_RETRY_MAX_MS: '100',
      DELIVERY_GIVE_UP_MS: '800',
      OUTBOUND_RETRY_BASE_MS: '10',
    });
    await registerInstitution(impatient, 'Referring Hospital', proxy.base);
  });
  afterAll(async () => {
    proxy.faults = [];
    await impatient?.stop();
  });

  it('gives up after the configured time, shows in a search, and goes through on $redeliver', async () => {
    const created = await impatient.fhir('/ServiceRequest', {
      body: {
        ...request,
        identifier: [{ system: orders, value: 'WB-5' }],
        subject: { reference: `${proxy.base}/Patient/${patientId}` },
        supportingInfo: undefined,
      },
    });
    const requestId = created.body.id;
    const task = await until(() => impatient.fhir(`/Task/${requestId}`).then((r) => r.body), recordsIn);
    proxy.every = 0;
    proxy.faults = Array.from({ length: 1000 }, () => ({ status: 503 }));
    const report = await impatient.fhir('/DiagnosticReport', { body: opinion(requestId, task, 'final', 'Treatment changed: add radiotherapy.') });
    const failed = await until(
      () => impatient.fhir(`/Task/${requestId}`).then((r) => r.body),
      (t) => businessStatus(t) === 'delivery-failed',
    );
    expect(businessStatus(failed)).toBe('delivery-failed');
    expect(failed.note.at(-1).text).toMatch(/failed after \d+ attempt\(s\): .*HTTP 503/);
    const listed = await impatient.fhir('/Task?business-status=delivery-failed');
    expect(listed.body.entry.map((e: any) => e.resource.id)).toContain(requestId);
    expect(await chartOpinions('WB-5')).toHaveLength(0);

    proxy.faults = [];
    const again = await impatient.fhir(`/DiagnosticReport/${report.body.id}/$redeliver`, { method: 'POST' });
    expect(again.status).toBe(202);
    const delivered = await until(
      () => impatient.fhir(`/Task/${requestId}`).then((r) => r.body),
      (t) => businessStatus(t) === 'opinion-delivered',
    );
    expect(businessStatus(delivered)).toBe('opinion-delivered');
    expect(await chartOpinions('WB-5')).toHaveLength(1);
    const twice = await impatient.fhir(`/DiagnosticReport/${report.body.id}/$redeliver`, { method: 'POST' });
    expect(twice.status).toBe(409);
  });
});
