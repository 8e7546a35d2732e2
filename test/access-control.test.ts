// Access control: two referring institutions each send a case; a reviewer is assigned one of them.
// Each role, through each interaction, on its own tenant's case and on the other's, gets exactly the
// answer the table says; another tenant's record is 404 (never 403), searches and _include see only
// what the caller may read, writes into another tenant change nothing, and every attempt is audited.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';
import type { AccessClaims } from '../src/auth/access-tokens.js';
import { startTestService, type FhirResponse, type TestService } from './harness.js';
import {
  businessStatus,
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

type Role = 'referrer' | 'reviewer' | 'coordinator' | 'analyst' | 'admin';
type Tenant = 'own' | 'other';

let service: TestService;
const ehrs: ReferringEhr[] = [];
/** Case N (north, assigned to the reviewer) is every caller's "own"; case S (south, someone else's) the "other". */
const cases = {} as Record<Tenant, { request: string; patient: string; communication: string }>;
const tokens = {} as Record<Role, string>;
let reviewerPractitioner: string;
let northId: string;

const as = (role: Role, path: string, init: { method?: string; body?: unknown } = {}): Promise<FhirResponse> =>
  service.fhir(path, { ...init, token: tokens[role] });

const communicationOf = (request: string) => ({
  resourceType: 'Communication',
  status: 'completed',
  basedOn: [{ reference: `ServiceRequest/${request}` }],
  payload: [{ contentString: 'Note for the access-control test' }],
});

/** Retries `probe` until it answers something, for records written just after a response (the audit trail). */
async function eventually<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (const deadline = Date.now() + 5_000; ;) {
    const found = await probe();
    if (found !== undefined || Date.now() > deadline) return found as T;
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10' });
  const centre = await createOrganization(service, 'Review Centre');
  const reviewerRole = await registerReviewer(service, { name: 'Onc', organizationId: centre, specialty: specialty.oncology, capacity: 5 });
  await registerReviewer(service, { name: 'Histo', organizationId: centre, specialty: specialty.histopathology, capacity: 5 });
  reviewerPractitioner = (await service.fhir(`/PractitionerRole/${reviewerRole}`)).body.practitioner.reference;
  for (const [tenant, name, order, why] of [
    ['own', 'North Hospital', 'ACL-N', { performerType: undefined, ...reason(icd10cm, 'C50.911') }],
    ['other', 'South Hospital', 'ACL-S', { performerType: { coding: [{ system: snomed, code: specialty.histopathology }] } }],
  ] as const) {
    const ehr = await startReferringEhr();
    ehrs.push(ehr);
    const organization = await registerInstitution(service, name, ehr.base);
    if (tenant === 'own') northId = organization;
    const task = await openCase(service, secondOpinionRequest(order, ehr.base, await seedPatient(ehr.repo, 1), why));
    expect(businessStatus(task)).toBe('assigned');
    const communication = await service.fhir('/Communication', { body: communicationOf(task.id) });
    expect(communication.status).toBe(201);
    cases[tenant] = { request: task.id, patient: task.for.reference, communication: communication.body.id };
  }
  const claims: Record<Role, AccessClaims> = {
    referrer: { subject: 'ehr-north', scope: 'system/*.*', role: 'referrer-system', institution: `Organization/${northId}` },
    reviewer: { subject: 'dr-onc', scope: 'user/*.*', role: 'reviewer', fhirUser: reviewerPractitioner },
    coordinator: { subject: 'coordinator', scope: 'user/*.*', role: 'coordinator', fhirUser: 'Practitioner/coordinator' },
    analyst: { subject: 'analyst', scope: 'user/*.*', role: 'analyst' },
    admin: { subject: 'admin', scope: 'system/*.*', role: 'admin' },
  };
  for (const role of Object.keys(claims) as Role[]) tokens[role] = await service.mintToken(claims[role]);
}, 60_000);

afterAll(async () => {
  await service?.stop();
  for (const ehr of ehrs) await ehr.stop();
});

/** Each interaction, on the case of one tenant: what it sends, and how to tell its answer. */
const interactions: Record<string, (tenant: Tenant) => Promise<number>> = {
  read: async (t) => (await as(current, `/Task/${cases[t].request}`)).status,
  vread: async (t) => (await as(current, `/Task/${cases[t].request}/_history/1`)).status,
  history: async (t) => (await as(current, `/Task/${cases[t].request}/_history`)).status,
  'read chart': async (t) => (await as(current, `/${cases[t].patient}`)).status,
  // A search answers 200 either way; what it finds is the point: 1 for a case the caller sees, 0 otherwise.
  search: async (t) => {
    const found = await as(current, `/Task?_id=${cases[t].request}`);
    return found.status === 200 ? 200 + found.body.total : found.status;
  },
  create: async (t) => {
    const created = await as(current, '/Communication', { body: communicationOf(cases[t].request) });
    return created.status;
  },
  update: async (t) => {
    const stored = (await service.fhir(`/Communication/${cases[t].communication}`)).body;
    return (await as(current, `/Communication/${stored.id}`, { method: 'PUT', body: { ...stored, meta: undefined, status: 'completed' } })).status;
  },
  delete: async (t) => {
    const made = await service.fhir('/Communication', { body: communicationOf(cases[t].request) });
    return (await as(current, `/Communication/${made.body.id}`, { method: 'DELETE' })).status;
  },
  operation: async (t) => (await as(current, `/ServiceRequest/${cases[t].request}/$case-packet`)).status,
};
let current: Role = 'admin';

// role: [read, vread, history, read chart, search, create, update, delete, operation], own | other.
// search: 201 = 200 with one match, 200 = 200 with none.
const expected: Record<Role, Record<Tenant, number[]>> = {
  referrer: { own: [200, 200, 200, 200, 201, 201, 200, 403, 200], other: [404, 404, 404, 404, 200, 404, 404, 403, 404] },
  reviewer: { own: [200, 200, 200, 200, 201, 201, 200, 403, 200], other: [404, 404, 404, 404, 200, 404, 404, 403, 404] },
  coordinator: { own: [200, 200, 200, 200, 201, 201, 200, 200, 200], other: [200, 200, 200, 200, 201, 201, 200, 200, 200] },
  analyst: { own: [403, 403, 403, 403, 403, 403, 403, 403, 403], other: [403, 403, 403, 403, 403, 403, 403, 403, 403] },
  admin: { own: [200, 200, 200, 200, 201, 201, 200, 200, 200], other: [200, 200, 200, 200, 201, 201, 200, 200, 200] },
};

describe('the role x interaction x tenant matrix', () => {
  for (const role of Object.keys(expected) as Role[]) {
    it(`${role}: each interaction on its own tenant's case and on the other's`, async () => {
      current = role;
      const answers: Record<Tenant, number[]> = { own: [], other: [] };
      for (const tenant of ['own', 'other'] as Tenant[]) {
        for (const run of Object.values(interactions)) answers[tenant].push(await run(tenant));
      }
      expect(answers).toEqual(expected[role]);
    });
  }
});

describe('what a restricted caller sees', () => {
  it("a referring system's searches hold its own institution's records only, totals included", async () => {
    for (const [path, own] of [
      ['/Task', cases.own.request],
      ['/ServiceRequest', cases.own.request],
      ['/Patient', cases.own.patient.split('/')[1]],
    ] as const) {
      const found = await as('referrer', path);
      expect([path, found.body.total, found.body.entry.map((e: any) => e.resource.id)]).toEqual([path, 1, [own]]);
    }
  });

  it('a reviewer sees the cases assigned to them and the charts of their patients, nothing else', async () => {
    const tasks = await as('reviewer', '/Task');
    expect(tasks.body.entry.map((e: any) => e.resource.id)).toEqual([cases.own.request]);
    const observations = await as('reviewer', '/Observation?_count=100');
    expect(observations.body.total).toBeGreaterThan(0);
    expect(new Set(observations.body.entry.map((e: any) => e.resource.subject.reference))).toEqual(new Set([cases.own.patient]));
    // The chart's reports are the patient's (seen by the patient); an opinion would be its case's.
    const reports = async (t: Tenant) => (await as('reviewer', `/DiagnosticReport?subject=${cases[t].patient}`)).body.total;
    expect(await reports('own')).toBeGreaterThan(0);
    expect(await reports('other')).toBe(0);
    expect((await service.fhir(`/DiagnosticReport?subject=${cases.other.patient}`)).body.total).toBeGreaterThan(0);
  });

  it('_include and _revinclude never bring in what the caller may not read', async () => {
    // No record spans two institutions: even an admin's naming both cases is refused.
    const provenance = await service.fhir('/Provenance', {
      body: {
        resourceType: 'Provenance',
        recorded: new Date().toISOString(),
        target: [{ reference: `Task/${cases.own.request}` }, { reference: `Task/${cases.other.request}` }],
        agent: [{ who: { display: 'admin' } }],
      },
    });
    expect([provenance.status, provenance.body.issue?.[0].code]).toEqual([422, 'business-rule']);
    // An order's references are the EHR's own, never checked here: naming the other tenant's patient there brings nothing in.
    const order = await as('referrer', '/ServiceRequest', {
      body: { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: cases.other.patient } },
    });
    expect(order.status).toBe(201);
    const viaInclude = await as('referrer', `/ServiceRequest?_id=${order.body.id}&_include=ServiceRequest:subject`);
    expect(viaInclude.body.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.id}`)).toEqual([`ServiceRequest/${order.body.id}`]);
    const viaRevinclude = await as('reviewer', `/ServiceRequest?_revinclude=Communication:based-on&_count=50`);
    const bases = viaRevinclude.body.entry.filter((e: any) => e.resource.resourceType === 'Communication').map((e: any) => e.resource.basedOn[0].reference);
    expect(bases.length).toBeGreaterThan(0);
    expect(new Set(bases)).toEqual(new Set([`ServiceRequest/${cases.own.request}`]));
  });

  it("a write into another tenant's case answers 404 and stores nothing, even inside a transaction", async () => {
    const before = (await service.fhir(`/Communication?based-on=ServiceRequest/${cases.other.request}&_summary=count`)).body.total;
    const single = await as('referrer', '/Communication', { body: communicationOf(cases.other.request) });
    expect([single.status, single.body.issue[0].code]).toEqual([404, 'not-found']);
    const bundle = await as('reviewer', '', {
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: communicationOf(cases.own.request), request: { method: 'POST', url: 'Communication' } },
          { resource: communicationOf(cases.other.request), request: { method: 'POST', url: 'Communication' } },
        ],
      },
    });
    expect(bundle.status).toBe(404);
    expect(bundle.body.issue[0].expression[0]).toMatch(/^Bundle\.entry\[1\]/);
    expect((await service.fhir(`/Communication?based-on=ServiceRequest/${cases.other.request}&_summary=count`)).body.total).toBe(before);
  });

  it("naming a case that does not exist answers as naming another tenant's does, so the answer tells nothing; a transaction may name what it creates", async () => {
    for (const role of ['referrer', 'reviewer'] as const) {
      const other = await as(role, '/Communication', { body: communicationOf(cases.other.request) });
      const missing = await as(role, '/Communication', { body: communicationOf('no-such-case') });
      expect([role, missing.status, missing.body.issue[0].code, missing.body.issue[0].details]).toEqual([
        role,
        other.status,
        other.body.issue[0].code,
        other.body.issue[0].details,
      ]);
    }
    expect((await service.fhir('/Communication?based-on=ServiceRequest/no-such-case&_summary=count')).body.total).toBe(0);
    // A note and the request it is about, created together: the note names the request before it is stored.
    const created = await as('referrer', '', {
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:5b0c6a3e-0d1c-4a8e-9a51-3f0f4a1b2c3d',
            resource: {
              resourceType: 'Communication',
              status: 'completed',
              basedOn: [{ reference: 'urn:uuid:0e7f3c52-6a7b-4c0e-8d1f-2a3b4c5d6e7f' }],
              payload: [{ contentString: 'A note' }],
            },
            request: { method: 'POST', url: 'Communication' },
          },
          {
            fullUrl: 'urn:uuid:0e7f3c52-6a7b-4c0e-8d1f-2a3b4c5d6e7f',
            resource: { resourceType: 'ServiceRequest', status: 'draft', intent: 'proposal', subject: { reference: cases.own.patient } },
            request: { method: 'POST', url: 'ServiceRequest' },
          },
        ],
      },
    });
    expect([created.status, created.body.entry?.map((e: any) => e.response.status)]).toEqual([200, ['201 Created', '201 Created']]);
  });

  it('a referring system cannot submit or poll for another institution', async () => {
    const endpoint = (await service.fhir(`/Endpoint?organization=Organization/${northId}`)).body.entry[0].resource;
    expect((await as('referrer', `/Endpoint/${endpoint.id}/$notify`, { body: { resourceType: 'Parameters' } })).status).toBe(200);
    const southEndpoint = (await service.fhir('/Endpoint?_count=10')).body.entry.map((e: any) => e.resource).find((e: any) => e.address === ehrs[1].base);
    expect((await as('referrer', `/Endpoint/${southEndpoint.id}/$notify`, { body: { resourceType: 'Parameters' } })).status).toBe(404);
    const submit = await as('referrer', '/ServiceRequest/$submit', {
      body: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'institution', valueReference: { reference: southEndpoint.managingOrganization.reference } },
          { name: 'serviceRequestId', valueString: 'x' },
        ],
      },
    });
    expect([submit.status, submit.body.issue[0].expression]).toEqual([400, ['Parameters.parameter.institution']]);
  });
});

describe('who the records say acted', () => {
  it("a reviewer's write is recorded as the reviewer's, whatever X-Provenance claims; a coordinator may name another", async () => {
    const task = (await as('reviewer', `/Task/${cases.own.request}`)).body;
    const claim = { 'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: 'Practitioner/someone-else' } }] }) };
    const accepted = await service.fhir(`/Task/${task.id}`, { method: 'PUT', body: { ...task, status: 'accepted' }, headers: claim, token: tokens.reviewer });
    expect(accepted.status).toBe(200);
    const provenance = (await service.fhir(`/${accepted.body.relevantHistory.at(-1).reference}`)).body;
    expect(provenance.agent[0].who).toEqual({ reference: reviewerPractitioner });
    const other = (await service.fhir(`/Task/${cases.other.request}`)).body;
    const byCoordinator = await service.fhir(`/Task/${other.id}`, {
      method: 'PUT',
      body: { ...other, status: 'accepted' },
      headers: claim,
      token: tokens.coordinator,
    });
    expect((await service.fhir(`/${byCoordinator.body.relevantHistory.at(-1).reference}`)).body.agent[0].who).toEqual({
      reference: 'Practitioner/someone-else',
    });
  });
});

describe('the audit trail', () => {
  const audit = (query: string) => service.fhir(`/AuditEvent?${query}`, { token: tokens.admin });

  it('records a read with who, what, which patient, from where and the outcome; a refusal too', async () => {
    const since = new Date().toISOString();
    expect((await as('reviewer', `/Task/${cases.own.request}`)).status).toBe(200);
    expect((await as('reviewer', `/Task/${cases.other.request}`)).status).toBe(404);
    // Events are written as their answers finish: wait for both (an earlier request's may land in between).
    const events = await eventually(async () => {
      const found = (await audit(`agent=${reviewerPractitioner}&date=ge${since}&_count=50`)).body.entry?.map((e: any) => e.resource) ?? [];
      const names = (e: any, task: string) => e.entity?.some((x: any) => x.what?.reference === `Task/${task}`);
      return found.some((e: any) => names(e, cases.own.request)) && found.some((e: any) => names(e, cases.other.request)) ? found : undefined;
    });
    expect(events).toBeDefined();
    const granted = events.find((e: any) => e.outcome === '0' && e.entity?.some((x: any) => x.what?.reference === `Task/${cases.own.request}`));
    expect(granted).toMatchObject({
      type: { code: 'rest' },
      subtype: [{ code: 'read' }],
      action: 'R',
      agent: [
        {
          who: { reference: reviewerPractitioner },
          altId: 'dr-onc',
          requestor: true,
          role: [{ coding: [{ code: 'reviewer' }] }],
          network: { address: expect.stringMatching(/127\.0\.0\.1/) },
        },
      ],
    });
    expect(granted.entity).toContainEqual(expect.objectContaining({ what: { reference: cases.own.patient }, role: expect.objectContaining({ code: '1' }) }));
    const refused = events.find((e: any) => e.outcome === '4' && e.entity?.some((x: any) => x.what?.reference === `Task/${cases.other.request}`));
    expect(refused).toMatchObject({ outcomeDesc: '404 Not Found', entity: [{ what: { reference: `Task/${cases.other.request}` } }] });
  });

  it('admins search it by patient, agent, date and outcome', async () => {
    const since = new Date().toISOString();
    await as('referrer', `/${cases.own.patient}`);
    await as('analyst', `/${cases.own.patient}`);
    // Wait on the entries, not the total: the two are counted apart, and an event can land in between.
    const byPatient = await eventually(async () => {
      const found = await audit(`patient=${cases.own.patient}&date=ge${since}`);
      return (found.body.entry?.length ?? 0) >= 2 ? found.body : undefined;
    });
    expect(byPatient.entry.map((e: any) => e.resource.outcome).sort()).toEqual(['0', '4']);
    const refusals = await audit(`outcome=4&date=ge${since}&altid=analyst`);
    expect(refusals.body.total).toBe(1);
    expect((await audit(`date=lt2000-01-01`)).body.total).toBe(0);
  });

  it('is append-only and read by admins alone', async () => {
    const some = (await audit('_count=1')).body.entry[0].resource;
    for (const [method, path, body] of [
      ['POST', '/AuditEvent', { ...some, id: undefined }],
      ['PUT', `/AuditEvent/${some.id}`, some],
      ['DELETE', `/AuditEvent/${some.id}`, undefined],
    ] as const) {
      const answer = await service.fhir(path, { method, body, token: tokens.admin });
      expect([method, answer.status, answer.body.issue[0].code]).toEqual([method, 405, 'not-supported']);
    }
    for (const role of ['referrer', 'reviewer', 'coordinator', 'analyst'] as Role[]) {
      expect([role, (await as(role, '/AuditEvent')).status]).toEqual([role, 403]);
    }
    const again = await service.fhir(`/AuditEvent/${some.id}`, { token: tokens.admin });
    expect(again.body.meta.versionId).toBe('1');
  });

  it('records refused tokens: a missing or expired token at the API, a bad assertion at the token endpoint', async () => {
    const since = new Date().toISOString();
    const expired = await service.mintToken({ subject: 'late', scope: 'system/*.*', role: 'admin' }, -120);
    expect((await service.fhir('/Task', { token: expired })).status).toBe(401);
    expect((await service.fhir('/Task', { token: null })).status).toBe(401);
    const token = await fetch(`${service.server.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: 'not.a.jwt',
        client_id: 'nobody',
      }),
    });
    expect([400, 401]).toContain(token.status);
    const events = await eventually(async () => {
      const found = await audit(`outcome=4&date=ge${since}&_count=20`);
      return found.body.total >= 3 ? found.body.entry.map((e: any) => e.resource) : undefined;
    });
    expect(
      events.filter((e: any) => e.type.code === 'rest' && e.outcomeDesc === '401 Unauthorized' && e.agent[0].who.display === 'unauthenticated client'),
    ).toHaveLength(2);
    expect(events.find((e: any) => e.type.code === '110114')).toMatchObject({ outcome: '4', agent: [{ altId: 'nobody' }] });
  });
});
