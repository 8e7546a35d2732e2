// Routing: when a case's records are in, the service assigns it to a reviewer of the specialty it
// needs (asked for, or read from the diagnosis through the ConceptMap), the least loaded with room,
// never one of the referring institution; otherwise it waits in a queue a coordinator works with $assign.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type TestService } from './harness.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';
import {
  businessStatus,
  capacityUrl,
  createOrganization,
  icd10cm,
  openCase,
  reason,
  registerInstitution,
  registerReviewer,
  secondOpinionRequest,
  snomed,
  specialty,
} from './review-cases.js';

let service: TestService;
let ehr: ReferringEhr;
let patientId: string;
let referringId: string;
const roles: Record<string, string> = {};
let orders = 0;

/** A request for this EHR's patient; no performerType unless `changes` bring one. */
const request = (changes: Record<string, unknown>) => secondOpinionRequest(`ROUTE-${++orders}`, ehr.base, patientId, { performerType: undefined, ...changes });
const owner = (task: any): string | undefined => task.owner?.reference;
const assign = (taskId: string, parameter: unknown[]) => service.fhir(`/Task/${taskId}/$assign`, { body: { resourceType: 'Parameters', parameter } });
const ownerParameter = (reference: string) => ({ name: 'owner', valueReference: { reference } });

beforeAll(async () => {
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10' });
  ehr = await startReferringEhr();
  patientId = await seedPatient(ehr.repo, 1);
  referringId = await registerInstitution(service, 'Referring Hospital', ehr.base);
  const centreA = await createOrganization(service, 'Review Centre A');
  const centreB = await createOrganization(service, 'Review Centre B');
  roles.histopathologist = await registerReviewer(service, { name: 'Histo', organizationId: centreA, specialty: specialty.histopathology, capacity: 2 });
  roles.oncologistA = await registerReviewer(service, { name: 'OncA', organizationId: centreA, specialty: specialty.oncology, capacity: 1 });
  roles.oncologistB = await registerReviewer(service, { name: 'OncB', organizationId: centreB, specialty: specialty.oncology, capacity: 2 });
  roles.referringCardiologist = await registerReviewer(service, { name: 'CardRef', organizationId: referringId, specialty: specialty.cardiology, capacity: 5 });
  roles.cardiologist = await registerReviewer(service, { name: 'Card', organizationId: centreB, specialty: specialty.cardiology, capacity: 1 });
  roles.neurologistWithoutCapacity = await registerReviewer(service, { name: 'Neuro', organizationId: centreA, specialty: specialty.neurology });
});
afterAll(async () => {
  await service?.stop();
  await ehr?.stop();
});

describe('routing a case whose records are ready', () => {
  it('goes by the specialty the request asks for (performerType), and the case opens with its due date', async () => {
    const task = await openCase(
      service,
      request({ performerType: { coding: [{ system: snomed, code: specialty.histopathology }] }, ...reason(icd10cm, 'C50.911') }),
    );
    expect([task.status, businessStatus(task), owner(task)]).toEqual(['received', 'assigned', `PractitionerRole/${roles.histopathologist}`]);
    expect(task.performerType).toEqual([{ coding: [{ system: snomed, code: specialty.histopathology }] }]);
    // routine: 14 days from the case's opening
    expect(Date.parse(task.restriction.period.end) - Date.parse(task.authoredOn)).toBe(14 * 24 * 3_600_000);
    const history = (await service.fhir(`/Task/${task.id}/_history`)).body.entry.map((e: any) => businessStatus(e.resource)).reverse();
    expect(history.slice(-2)).toEqual(['records-ready', 'assigned']);
  });

  it('reads the specialty from an ICD-10-CM diagnosis through the ConceptMap, and picks the least loaded with room', async () => {
    // C50.911 is mapped at its category, C50 (breast): medical oncology. A holds 1 case, B holds 2.
    const first = await openCase(service, request(reason(icd10cm, 'C50.911')));
    expect(owner(first)).toBe(`PractitionerRole/${roles.oncologistB}`); // both empty: the one with more room
    expect(first.performerType).toEqual([{ coding: [{ system: snomed, code: specialty.oncology }] }]);
    const second = await openCase(service, request(reason(icd10cm, 'C50.911')));
    expect(owner(second)).toBe(`PractitionerRole/${roles.oncologistA}`); // 0/1 against 1/2
    const third = await openCase(service, request(reason(icd10cm, 'C34.90')));
    expect(owner(third)).toBe(`PractitionerRole/${roles.oncologistB}`); // A is full
  });

  it('never goes over capacity: with every fitting reviewer full, the case waits unassigned', async () => {
    const task = await openCase(service, request(reason(icd10cm, 'C50.911')));
    expect([task.status, businessStatus(task), owner(task)]).toEqual(['received', 'awaiting-assignment', undefined]);
    for (const role of [roles.oncologistA, roles.oncologistB]) {
      const open = await service.fhir(`/Task?owner=PractitionerRole/${role}&status=received,accepted,in-progress,on-hold&_summary=count`);
      expect(open.body.total).toBe(role === roles.oncologistA ? 1 : 2);
    }
  });

  it('reads a SNOMED CT diagnosis through the ConceptMap, and never picks a reviewer of the referring institution', async () => {
    const first = await openCase(service, request(reason(snomed, '60573004'))); // aortic valve stenosis: cardiology
    expect(owner(first)).toBe(`PractitionerRole/${roles.cardiologist}`);
    // The only cardiologist with room now works for the institution the patient comes from.
    const second = await openCase(service, request(reason(snomed, '60573004')));
    expect([businessStatus(second), owner(second)]).toEqual(['awaiting-assignment', undefined]);
  });

  it('excludes the requester’s own organization as well', async () => {
    const clinic = await createOrganization(service, 'Requesting Clinic');
    const neurologist = await registerReviewer(service, { name: 'NeuroClinic', organizationId: clinic, specialty: specialty.neurology, capacity: 3 });
    const fromClinic = await openCase(service, request({ ...reason(icd10cm, 'G35'), requester: { reference: `Organization/${clinic}` } }));
    expect([businessStatus(fromClinic), owner(fromClinic)]).toEqual(['awaiting-assignment', undefined]);
    const fromElsewhere = await openCase(service, request(reason(icd10cm, 'G35')));
    expect(owner(fromElsewhere)).toBe(`PractitionerRole/${neurologist}`);
  });

  it('leaves a case no specialty can be found for in the queue, which a search lists', async () => {
    const task = await openCase(service, request(reason(icd10cm, 'Z00.00'))); // a general examination: no mapping
    expect([task.status, businessStatus(task), owner(task), task.performerType]).toEqual(['received', 'awaiting-assignment', undefined, undefined]);
    const queue = await service.fhir('/Task?business-status=awaiting-assignment&status=received&_count=100');
    expect(queue.body.entry.map((e: any) => e.resource.id)).toContain(task.id);
    expect(queue.body.entry.every((e: any) => e.resource.owner === undefined)).toBe(true);
  });
});

describe('a coordinator assigns and reassigns with $assign', () => {
  let queued: any;
  beforeAll(async () => {
    queued = await openCase(service, request(reason(icd10cm, 'Z00.00')));
    expect(businessStatus(queued)).toBe('awaiting-assignment');
  });

  it('assigns a queued case to the role named, then reassigns it; the status stays received', async () => {
    const centreC = await createOrganization(service, 'Review Centre C');
    const generalist = await registerReviewer(service, { name: 'Gen', organizationId: centreC, specialty: specialty.histopathology, capacity: 1 });
    const assigned = await assign(queued.id, [ownerParameter(`PractitionerRole/${roles.histopathologist}`)]);
    expect(assigned.status).toBe(200);
    expect([assigned.body.status, businessStatus(assigned.body), owner(assigned.body)]).toEqual([
      'received',
      'assigned',
      `PractitionerRole/${roles.histopathologist}`,
    ]);
    const reassigned = await assign(queued.id, [ownerParameter(`PractitionerRole/${generalist}`)]);
    expect(reassigned.status).toBe(200);
    expect(owner(reassigned.body)).toBe(`PractitionerRole/${generalist}`);
    const provenance = (await service.fhir(`/${reassigned.body.relevantHistory.at(-1).reference}`)).body;
    expect(provenance.activity.text).toBe(`Task owner PractitionerRole/${roles.histopathologist} -> PractitionerRole/${generalist}`);
  });

  it('refuses bad calls and unfit reviewers, naming what is wrong, and changes nothing', async () => {
    const before = (await service.fhir(`/Task/${queued.id}`)).body;
    const full = roles.oncologistA;
    const cases: [unknown, number, string][] = [
      [{ resourceType: 'Patient' }, 400, 'Parameters'],
      [{ resourceType: 'Parameters', parameter: [{ name: 'colour', valueString: 'red' }] }, 400, 'Parameters.parameter[0].name'],
      [{ resourceType: 'Parameters', parameter: [] }, 400, 'Parameters.parameter.owner'],
      [{ resourceType: 'Parameters', parameter: [{ name: 'owner', valueString: 'PractitionerRole/x' }] }, 400, 'Parameters.parameter[0].valueReference'],
      [{ resourceType: 'Parameters', parameter: [ownerParameter('Practitioner/someone')] }, 400, 'Parameters.parameter[0].valueReference'],
      [{ resourceType: 'Parameters', parameter: [ownerParameter('PractitionerRole/no-such-role')] }, 422, 'Parameters.parameter.owner'],
      [{ resourceType: 'Parameters', parameter: [ownerParameter(`PractitionerRole/${roles.referringCardiologist}`)] }, 422, 'Parameters.parameter.owner'],
      [{ resourceType: 'Parameters', parameter: [ownerParameter(`PractitionerRole/${full}`)] }, 422, 'Parameters.parameter.owner'],
      [{ resourceType: 'Parameters', parameter: [ownerParameter(`PractitionerRole/${roles.neurologistWithoutCapacity}`)] }, 422, 'Parameters.parameter.owner'],
    ];
    for (const [body, status, expression] of cases) {
      const refused = await service.fhir(`/Task/${queued.id}/$assign`, { body });
      expect([expression, refused.status, refused.body.resourceType, refused.body.issue[0].expression]).toEqual([
        expression,
        status,
        'OperationOutcome',
        [expression],
      ]);
    }
    // The same rules hold when the owner is written directly.
    const put = await service.fhir(`/Task/${queued.id}`, {
      method: 'PUT',
      body: { ...before, owner: { reference: `PractitionerRole/${roles.referringCardiologist}` } },
    });
    expect([put.status, put.body.issue[0].expression]).toEqual([422, ['Task.owner']]);
    expect((await service.fhir(`/Task/${queued.id}`)).body.meta.versionId).toBe(before.meta.versionId);
  });

  it('is refused once the reviewer has accepted the case, and for a case whose records are not in', async () => {
    const task = (await service.fhir(`/Task/${queued.id}`)).body;
    const accepted = await service.fhir(`/Task/${task.id}`, { method: 'PUT', body: { ...task, status: 'accepted' } });
    expect(accepted.status).toBe(200);
    const late = await assign(task.id, [ownerParameter(`PractitionerRole/${roles.histopathologist}`)]);
    expect([late.status, late.body.issue[0].expression]).toEqual([409, ['Task.status']]);

    const early = await service.fhir('/Task', {
      body: {
        resourceType: 'Task',
        status: 'received',
        intent: 'order',
        focus: task.focus,
        for: task.for,
        businessStatus: { coding: [{ system: task.businessStatus.coding[0].system, code: 'records-retrieving' }] },
      },
    });
    const tooEarly = await assign(early.body.id, [ownerParameter(`PractitionerRole/${roles.histopathologist}`)]);
    expect([tooEarly.status, tooEarly.body.issue[0].expression]).toEqual([409, ['Task.businessStatus']]);
    expect((await service.fhir(`/Task/${early.body.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('reviewers', () => {
  it('carry their capacity in the reviewer-capacity extension, as an unsigned integer', async () => {
    const organizationId = await createOrganization(service, 'Review Centre D');
    const refused = await service.fhir('/PractitionerRole', {
      body: {
        resourceType: 'PractitionerRole',
        organization: { reference: `Organization/${organizationId}` },
        extension: [{ url: capacityUrl, valueString: 'plenty' }],
      },
    });
    expect([refused.status, refused.body.issue[0].expression]).toEqual([422, ['PractitionerRole.extension[0].valueString']]);
    expect((await service.fhir(`/PractitionerRole?organization=Organization/${organizationId}&_summary=count`)).body.total).toBe(0);
  });
});

describe('orders as EHRs send them', () => {
  it('takes in an order without priority (optional in R4): no priority is made up, the case is due as routine', async () => {
    const { priority: _none, ...withoutPriority } = request({ performerType: { coding: [{ system: snomed, code: specialty.histopathology }] } });
    const task = await openCase(service, withoutPriority);
    expect(['assigned', 'awaiting-assignment']).toContain(businessStatus(task));
    expect('priority' in task).toBe(false);
    expect(Date.parse(task.restriction.period.end) - Date.parse(task.authoredOn)).toBe(14 * 24 * 3_600_000);
  });
});
