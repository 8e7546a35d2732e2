// Questions and answers: the reviewer of a case in progress asks the referrer for more information
// (a CommunicationRequest) and the case goes on hold; the answers (Communications based on the
// questions) bring it back into review once nothing asked is still open. The thread reads in order.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CommunicationRequest } from '@medplum/fhirtypes';
import { startTestService, type TestService } from './harness.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';
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

let service: TestService;
let ehr: ReferringEhr;
let patientId: string;
let reviewer: string;
let orders = 0;
const toReferrer: string[] = [];

beforeAll(async () => {
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10' });
  ehr = await startReferringEhr();
  patientId = await seedPatient(ehr.repo, 1);
  await registerInstitution(service, 'Referring Hospital', ehr.base);
  reviewer = await registerReviewer(service, {
    name: 'Onc',
    organizationId: await createOrganization(service, 'Review Centre'),
    specialty: specialty.oncology,
    capacity: 10,
  });
  service.server.review.questions.onAddressedToReferrer(async (question: CommunicationRequest) => {
    toReferrer.push(question.id as string);
  });
});
afterAll(async () => {
  await service?.stop();
  await ehr?.stop();
});

/** The reviewer names itself on its writes (FHIR's X-Provenance header). */
const asReviewer = () => ({ 'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: `PractitionerRole/${reviewer}` } }] }) });

/** A case routed to the reviewer, accepted and started by them. */
async function caseInProgress(): Promise<any> {
  const routed = await openCase(
    service,
    secondOpinionRequest(`QA-${++orders}`, ehr.base, patientId, { performerType: undefined, ...reason(icd10cm, 'C50.911') }),
  );
  expect(routed.owner.reference).toBe(`PractitionerRole/${reviewer}`);
  const headers = asReviewer();
  const accepted = await service.fhir(`/Task/${routed.id}`, { method: 'PUT', body: { ...routed, status: 'accepted' }, headers });
  const underReview = { coding: [{ system: routed.businessStatus.coding[0].system, code: 'under-review' }] };
  const started = await service.fhir(`/Task/${routed.id}`, {
    method: 'PUT',
    body: { ...accepted.body, status: 'in-progress', businessStatus: underReview },
    headers,
  });
  expect(started.status).toBe(200);
  return started.body;
}

function question(task: any, text: string, link: Record<string, unknown>): Record<string, unknown> {
  return {
    resourceType: 'CommunicationRequest',
    status: 'active',
    subject: task.for,
    requester: { reference: `PractitionerRole/${reviewer}` },
    recipient: [{ reference: 'Practitioner/example-referrer' }],
    payload: [{ contentString: text }],
    authoredOn: new Date().toISOString(),
    ...link,
  };
}

function answer(task: any, text: string, sent: string, link: Record<string, unknown>): Record<string, unknown> {
  return {
    resourceType: 'Communication',
    status: 'completed',
    subject: task.for,
    sender: { reference: 'Practitioner/example-referrer' },
    recipient: [{ reference: `PractitionerRole/${reviewer}` }],
    payload: [{ contentString: text }],
    sent,
    ...link,
  };
}

describe('asking for more information', () => {
  it('puts the case on hold until every question is answered, then back under review; the thread reads in order', async () => {
    const task = await caseInProgress();
    const requestRef = task.focus.reference;
    const first = await service.fhir('/CommunicationRequest', {
      body: question(task, 'Please send the HER2 FISH report.', { basedOn: [{ reference: requestRef }] }),
    });
    expect(first.status).toBe(201);
    let current = (await service.fhir(`/Task/${task.id}`)).body;
    expect([current.status, businessStatus(current)]).toEqual(['on-hold', 'awaiting-information']);
    expect(toReferrer).toContain(first.body.id);

    // A second question, about the Task: it is linked to the case's request as well.
    const second = await service.fhir('/CommunicationRequest', {
      body: question(task, 'Which chemotherapy was given?', { about: [{ reference: `Task/${task.id}` }] }),
    });
    expect(second.body.basedOn).toEqual([{ reference: requestRef }]);
    expect((await service.fhir(`/CommunicationRequest?based-on=${requestRef}&status=active`)).body.total).toBe(2);

    const firstAnswer = await service.fhir('/Communication', {
      body: answer(task, 'FISH report attached.', '2026-11-25T10:05:00Z', { basedOn: [{ reference: `CommunicationRequest/${first.body.id}` }] }),
    });
    expect(firstAnswer.status).toBe(201);
    expect(firstAnswer.body.basedOn).toEqual([{ reference: `CommunicationRequest/${first.body.id}` }, { reference: requestRef }]);
    expect((await service.fhir(`/CommunicationRequest/${first.body.id}`)).body.status).toBe('completed');
    current = (await service.fhir(`/Task/${task.id}`)).body;
    expect([current.status, businessStatus(current)]).toEqual(['on-hold', 'awaiting-information']); // one question is still open

    // The answer to the second question arrives, replying to the first answer too; sent earlier than it.
    const secondAnswer = await service.fhir('/Communication', {
      body: answer(task, 'Four cycles of AC.', '2026-11-25T10:01:00Z', {
        basedOn: [{ reference: `CommunicationRequest/${second.body.id}` }],
        inResponseTo: [{ reference: `Communication/${firstAnswer.body.id}` }],
      }),
    });
    expect(secondAnswer.status).toBe(201);
    current = await taskWhen(service, task.id, (t) => t.status === 'in-progress');
    expect([current.status, businessStatus(current)]).toEqual(['in-progress', 'under-review']);

    const thread = await service.fhir(`/Communication?based-on=${requestRef}&_sort=sent`);
    expect(thread.body.entry.map((e: any) => e.resource.id)).toEqual([secondAnswer.body.id, firstAnswer.body.id]);
    const statuses = (await service.fhir(`/Task/${task.id}/_history`)).body.entry.map((e: any) => e.resource.status).reverse();
    expect(statuses.slice(-3)).toEqual(['in-progress', 'on-hold', 'in-progress']);
  });

  it('a question that is not addressed to the referrer holds the case without telling the referrer', async () => {
    const task = await caseInProgress();
    const internal = await service.fhir('/CommunicationRequest', {
      body: {
        ...question(task, 'Second pathologist: please review slide 3.', { basedOn: [{ reference: task.focus.reference }] }),
        recipient: [{ reference: `PractitionerRole/${reviewer}` }],
      },
    });
    expect(internal.status).toBe(201);
    expect(businessStatus((await service.fhir(`/Task/${task.id}`)).body)).toBe('awaiting-information');
    expect(toReferrer).not.toContain(internal.body.id);
    // Withdrawn (revoked), it no longer holds the case.
    const revoked = await service.fhir(`/CommunicationRequest/${internal.body.id}`, { method: 'PUT', body: { ...internal.body, status: 'revoked' } });
    expect(revoked.status).toBe(200);
    expect((await service.fhir(`/Task/${task.id}`)).body.status).toBe('in-progress');
  });

  it('refuses an answer to a question that does not exist, and a question on a closed case, storing nothing', async () => {
    const task = await caseInProgress();
    const messages = async () => (await service.fhir('/Communication?_summary=count')).body.total;
    const questions = async () => (await service.fhir('/CommunicationRequest?_summary=count')).body.total;
    const [messagesBefore, questionsBefore] = [await messages(), await questions()];
    const orphan = await service.fhir('/Communication', {
      body: answer(task, 'An answer to nothing.', '2026-11-25T11:00:00Z', {
        basedOn: [{ reference: task.focus.reference }, { reference: 'CommunicationRequest/never-asked' }],
      }),
    });
    // A question that was never asked is not known, like any record a write names that is not there.
    expect([orphan.status, orphan.body.issue[0].expression]).toEqual([404, ['Communication.basedOn[1]']]);

    const completed = await service.fhir(`/Task/${task.id}`, {
      method: 'PUT',
      body: { ...task, status: 'completed', businessStatus: { coding: [{ system: task.businessStatus.coding[0].system, code: 'opinion-final' }] } },
    });
    expect(completed.status).toBe(200);
    const late = await service.fhir('/CommunicationRequest', { body: question(task, 'One more thing?', { basedOn: [{ reference: task.focus.reference }] }) });
    expect([late.status, late.body.issue[0].expression]).toEqual([409, ['Task.status']]);
    expect([await messages(), await questions()]).toEqual([messagesBefore, questionsBefore]);
  });
});
