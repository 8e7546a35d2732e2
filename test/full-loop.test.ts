// The whole loop, as the review workflow issue draws it: an EHR asks, the service pulls the chart, a
// specialist is assigned, a question goes to the referrer and its answer comes back, the opinion is
// signed and lands in the patient's chart at the EHR exactly once, though the EHR is down for a while.
// (The crash in the middle of that delivery is test/writeback-restart.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startTestService, type TestService } from './harness.js';
import {
  businessStatus,
  createOrganization,
  icd10cm,
  openCase,
  reason,
  registerInstitution,
  registerReviewer,
  secondOpinionRequest,
  specialty,
  taskWhen,
} from './review-cases.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { seedAttachments, seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const finalExample = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'DiagnosticReport-final-concordant.json'), 'utf8'));
const canonical = canonicalBase();

let service: TestService;
let ehr: ReferringEhr;
let proxy: FaultProxy;
let patientId: string;
let reviewer: string;

beforeAll(async () => {
  ehr = await startReferringEhr();
  patientId = await seedPatient(ehr.repo, 20);
  await seedAttachments(ehr.repo, patientId, [2000]);
  proxy = await startFaultProxy(ehr.base);
  service = await startTestService({
    RETRIEVAL_POLL_MS: '100',
    DELIVERY_POLL_MS: '100',
    DELIVERY_RETRY_BASE_MS: '100',
    DELIVERY_RETRY_MAX_MS: '400',
    OUTBOUND_RETRY_BASE_MS: '10',
  });
  await registerInstitution(service, 'Referring Hospital', proxy.base);
  reviewer = await registerReviewer(service, {
    name: 'Oncologist',
    organizationId: await createOrganization(service, 'Second Opinion Centre'),
    specialty: specialty.oncology,
    capacity: 3,
  });
});
afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
  await ehr?.stop();
});

/** The reviewer names itself on its writes (FHIR's X-Provenance header). */
const headersOf = () => ({ 'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: `PractitionerRole/${reviewer}` } }] }) });
const onEhr = async (query: string): Promise<any[]> => ((await (await fetch(`${ehr.base}/${query}`)).json()).entry ?? []).map((e: any) => e.resource);

describe('the whole loop', () => {
  it('request, retrieval, assignment, a question and its answer, the signed opinion, the write-back through an outage', async () => {
    // 1. The EHR asks; the chart is pulled; routing finds the oncologist through the diagnosis code.
    const routed = await openCase(service, secondOpinionRequest('LOOP-1', proxy.base, patientId, { performerType: undefined, ...reason(icd10cm, 'C50.911') }));
    expect(businessStatus(routed)).toBe('assigned');
    expect(routed.owner.reference).toBe(`PractitionerRole/${reviewer}`);
    const requestId = routed.focus.reference.split('/')[1];
    const packet = await service.fhir(`/ServiceRequest/${requestId}/$case-packet`);
    expect(packet.body.entry.length).toBe(3 + 12 * 20 + 2 + 1); // the request, its Task, the Patient; 20 of each kind, the letter and the report with its rendering; the summary
    expect(packet.body.entry.at(-1).resource.issue.at(-1).details.text).toBe('Attachments: 2 stored, 0 skipped');

    // 2. The reviewer accepts and starts; asks the referrer; the Task waits; the question reaches the EHR.
    const accepted = await service.fhir(`/Task/${routed.id}`, { method: 'PUT', body: { ...routed, status: 'accepted' }, headers: headersOf() });
    const started = await service.fhir(`/Task/${routed.id}`, { method: 'PUT', body: { ...accepted.body, status: 'in-progress' }, headers: headersOf() });
    expect(started.status).toBe(200);
    const request = (await service.fhir(`/ServiceRequest/${requestId}`)).body;
    const question = await service.fhir('/CommunicationRequest', {
      body: {
        resourceType: 'CommunicationRequest',
        status: 'active',
        subject: routed.for,
        basedOn: [{ reference: `ServiceRequest/${requestId}` }],
        requester: { reference: `PractitionerRole/${reviewer}` },
        recipient: [request.requester],
        payload: [{ contentString: 'Was ISH done on the biopsy?' }],
      },
      headers: headersOf(),
    });
    expect(question.status).toBe(201);
    const waiting = await taskWhen(service, routed.id, (t) => t.status === 'on-hold');
    expect([waiting.status, businessStatus(waiting)]).toEqual(['on-hold', 'awaiting-information']);
    const asked = await (async () => {
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        const found = (await onEhr(`CommunicationRequest?subject=Patient/${patientId}`)).filter(
          (q) => q.payload?.[0]?.contentString === 'Was ISH done on the biopsy?',
        );
        if (found.length) return found;
      }
      return [];
    })();
    expect(asked).toHaveLength(1);

    // 3. The referrer answers; the case is back under review, and the thread reads in order.
    const answer = await service.fhir('/Communication', {
      body: {
        resourceType: 'Communication',
        status: 'completed',
        subject: routed.for,
        basedOn: [{ reference: `CommunicationRequest/${question.body.id}` }],
        sender: request.requester,
        recipient: [{ reference: `PractitionerRole/${reviewer}` }],
        sent: new Date().toISOString(),
        payload: [{ contentString: 'No; blocks can be sent.' }],
      },
    });
    expect(answer.status).toBe(201);
    const resumed = await taskWhen(service, routed.id, (t) => t.status === 'in-progress');
    expect([resumed.status, businessStatus(resumed)]).toEqual(['in-progress', 'under-review']);
    const thread = await service.fhir(`/Communication?based-on=ServiceRequest/${requestId}&_sort=sent`);
    expect(thread.body.entry.map((e: any) => e.resource.payload[0].contentString)).toContain('No; blocks can be sent.');

    // 4. The opinion is finalised while the EHR is down for a while; it lands once, signed; the case completes.
    proxy.every = 0;
    proxy.faults = [{ status: 503 }, { status: 503 }, { drop: true }, { status: 503 }, { status: 503 }, { status: 502 }];
    const opinion = await service.fhir('/DiagnosticReport', {
      body: {
        ...finalExample,
        subject: routed.for,
        basedOn: [{ reference: `ServiceRequest/${requestId}` }],
        conclusion: 'HER2 positive on ISH: add trastuzumab.',
        extension: [
          {
            url: `${canonical}/StructureDefinition/concordance`,
            valueCodeableConcept: { coding: [{ system: `${canonical}/CodeSystem/concordance`, code: 'treatment-changed' }] },
          },
        ],
      },
      headers: headersOf(),
    });
    expect(opinion.status).toBe(201);
    const done = await taskWhen(service, routed.id, (t) => ['opinion-delivered', 'delivery-failed'].includes(businessStatus(t) ?? ''));
    expect([done.status, businessStatus(done)]).toEqual(['completed', 'opinion-delivered']);
    expect(proxy.faults).toHaveLength(0);
    const chart = (await onEhr(`DiagnosticReport?patient=Patient/${patientId}&_count=1000`)).filter((r) =>
      r.identifier?.some((i: any) => i.value === opinion.body.id),
    );
    expect(chart).toHaveLength(1);
    expect(chart[0].conclusion).toBe('HER2 positive on ISH: add trastuzumab.');
    expect(chart[0].extension.find((e: any) => e.url.endsWith('/concordance')).valueCodeableConcept.coding[0].code).toBe('treatment-changed');
    const verified = await service.fhir(`/DiagnosticReport/${opinion.body.id}/$verify`);
    expect(verified.body.parameter.find((p: any) => p.name === 'valid').valueBoolean).toBe(true);
  }, 90_000);
});
