// One order's failure is that order's alone: a refused order is stored nowhere, names its real reason
// and element, blocks no later order of the institution (by $submit or by pull), and is taken in once
// the EHR corrects it. And an ordinary order, whichever optional R4 elements it carries, never stalls.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { ServiceRequest } from '@medplum/fhirtypes';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startTestService, type TestService } from './harness.js';
import { businessStatus, registerInstitution, taskWhen } from './review-cases.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));
const orders = 'https://isolation.example/orders';

let service: TestService;
let ehr: ReferringEhr;
let patientId: string;
let organizationId: string;
let endpointId: string;

beforeAll(async () => {
  ehr = await startReferringEhr();
  patientId = await seedPatient(ehr.repo, 1);
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10', POLL_INTERVAL_MS: '0' });
  organizationId = await registerInstitution(service, 'Isolation Hospital', ehr.base);
  endpointId = (await service.fhir(`/Endpoint?organization=Organization/${organizationId}`)).body.entry[0].resource.id;
});
afterAll(async () => {
  await service?.stop();
  await ehr?.stop();
});

/** An order on the EHR's own server, as its EHR keeps it. */
async function orderOnEhr(orderId: string, changes: Partial<ServiceRequest> = {}): Promise<ServiceRequest> {
  const { meta: _meta, ...body } = example;
  return ehr.repo.createResource({
    ...body,
    identifier: [{ system: orders, value: orderId }],
    subject: { reference: `Patient/${patientId}` },
    supportingInfo: undefined,
    ...changes,
  });
}

const submit = (serviceRequestId: string) =>
  service.fhir('/ServiceRequest/$submit', {
    body: {
      resourceType: 'Parameters',
      parameter: [
        { name: 'institution', valueReference: { reference: `Organization/${organizationId}` } },
        { name: 'serviceRequestId', valueString: serviceRequestId },
      ],
    },
  });
const storedWith = async (orderId: string): Promise<number> => (await service.fhir(`/ServiceRequest?identifier=${orders}|${orderId}`)).body.total;
const categoryCoding = example.category;

describe('one order, one fate', () => {
  it('$submit of an order whose category is text only is refused at ServiceRequest.category, stores nothing, and is taken in once corrected', async () => {
    const order = await orderOnEhr('TEXT-1', { category: [{ text: 'Second opinion' }] });
    const refused = await submit(order.id as string);
    expect(refused.status).toBe(422);
    expect(refused.body.issue[0].expression).toEqual(['ServiceRequest.category']);
    expect(await storedWith('TEXT-1')).toBe(0);

    await ehr.repo.updateResource({ ...order, category: categoryCoding });
    const accepted = await submit(order.id as string);
    expect(accepted.status).toBe(201);
    const task = await taskWhen(
      service,
      accepted.body.id,
      (t) => t.status === 'failed' || ['assigned', 'awaiting-assignment', 'records-ready'].includes(businessStatus(t) ?? ''),
    );
    expect(task.status).toBe('received');
  });

  it('a pull takes in the good orders beside a refused one, names the refused one, and takes it in once corrected', async () => {
    const bad = await orderOnEhr('PULL-BAD', { subject: { reference: 'Group/ward-7' } });
    await orderOnEhr('PULL-GOOD');
    const first = await service.fhir(`/Endpoint/${endpointId}/$notify`, { body: { resourceType: 'Parameters' } });
    expect(first.status).toBe(200);
    expect(first.body.issue[0].details.text).toMatch(/, 1 refused$/);
    expect(first.body.issue.slice(1).map((i: any) => [i.severity, i.expression[0], i.details.text.startsWith(`ServiceRequest/${bad.id} `)])).toEqual([
      ['warning', 'ServiceRequest.subject', true],
    ]);
    expect([await storedWith('PULL-GOOD'), await storedWith('PULL-BAD')]).toEqual([1, 0]);

    await ehr.repo.updateResource({ ...bad, subject: { reference: `Patient/${patientId}` } });
    const second = await service.fhir(`/Endpoint/${endpointId}/$notify`, { body: { resourceType: 'Parameters' } });
    expect(second.body.issue[0].details.text).toMatch(/, 0 refused$/);
    expect(await storedWith('PULL-BAD')).toBe(1);
  });
});

describe('ordinary orders as EHRs send them', () => {
  // The optional elements of a second-opinion request in R4, each present or absent.
  const optional = fc.record(
    {
      priority: fc.constantFrom('routine', 'urgent', 'asap', 'stat'),
      performerType: fc.constant(example.performerType),
      note: fc.constant(example.note),
      authoredOn: fc.constant(example.authoredOn),
      occurrenceDateTime: fc.constant('2026-12-24T10:00:00Z'),
      patientInstruction: fc.constant('Bring the slides.'),
    },
    { requiredKeys: [] },
  );

  it('each reaches records-ready (and is routed or queued) with no null written, by push', async () => {
    // The profile asks for the diagnosis questioned: as a code, as a reference to the EHR's Condition, or both.
    const condition = await ehr.repo.createResource({
      resourceType: 'Condition',
      subject: { reference: `Patient/${patientId}` },
      code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C50.911' }] },
    });
    const reason = fc.constantFrom<Partial<ServiceRequest>>(
      { reasonCode: example.reasonCode },
      { reasonReference: [{ reference: `Condition/${condition.id}` }] },
      { reasonCode: example.reasonCode, reasonReference: [{ reference: `Condition/${condition.id}` }] },
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(optional, reason, async (elements, why) => {
        const { meta: _meta, priority: _p, performerType: _pt, reasonCode: _rc, note: _n, authoredOn: _a, supportingInfo: _s, ...required } = example;
        const created = await service.fhir('/ServiceRequest', {
          body: {
            ...required,
            ...elements,
            ...why,
            identifier: [{ system: orders, value: `PROP-${++n}` }],
            subject: { reference: `${ehr.base}/Patient/${patientId}` },
          },
        });
        expect([created.status, created.status === 201 ? undefined : created.body]).toEqual([201, undefined]);
        const task = await taskWhen(
          service,
          created.body.id,
          (t) => t.status === 'failed' || ['assigned', 'awaiting-assignment', 'records-ready'].includes(businessStatus(t) ?? ''),
        );
        expect([task.status, businessStatus(task)]).toEqual(['received', expect.stringMatching(/^(assigned|awaiting-assignment|records-ready)$/)]);
        expect(JSON.stringify(task)).not.toContain('null');
      }),
      { numRuns: 12 },
    );
  }, 120_000);
});
