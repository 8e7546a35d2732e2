// Adversarial cases against the ownership model (src/access/ownership.ts): two referring institutions,
// North and South, each with its own EHR and case; a reviewer assigned North's case. South tries, as a
// hostile hospital would, to read or write North's patient through every path there is. One describe
// per class; each compares what South gets with what a record that does not exist gets.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { seedAttachments, seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startTestService, type FhirInit, type FhirResponse, type TestService } from './harness.js';
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

type Caller = 'north' | 'south' | 'reviewer' | 'coordinator' | 'analyst';

let service: TestService;
const ehrs: Record<'north' | 'south', ReferringEhr> = {} as never;
/** Each institution's case: its request (and Task) id and its patient as stored here (`Patient/x`). */
const cases = {} as Record<'north' | 'south', { request: string; patient: string; sourcePatient: string }>;
const tokens = {} as Record<Caller, string>;
let reviewerRole: string;
let reviewerPractitioner: string;

const as = (caller: Caller, p: string, init: FhirInit = {}): Promise<FhirResponse> => service.fhir(p, { ...init, token: tokens[caller] });
/** What a caller can compare between two answers: the status, the type, and the body byte for byte. */
const answer = (r: FhirResponse) => ({ status: r.status, type: r.headers.get('content-type'), body: JSON.stringify(r.body) });
const count = async (query: string): Promise<number> => (await service.fhir(`${query}${query.includes('?') ? '&' : '?'}_summary=count`)).body.total;

beforeAll(async () => {
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10', DELIVERY_POLL_MS: '200' });
  const centre = await createOrganization(service, 'Review Centre');
  reviewerRole = await registerReviewer(service, { name: 'Onc', organizationId: centre, specialty: specialty.oncology, capacity: 5 });
  reviewerPractitioner = (await service.fhir(`/PractitionerRole/${reviewerRole}`)).body.practitioner.reference;
  const organizations = {} as Record<'north' | 'south', string>;
  for (const [name, order, why] of [
    ['north', 'OWN-N', { performerType: undefined, ...reason(icd10cm, 'C50.911') }],
    ['south', 'OWN-S', { performerType: { coding: [{ system: snomed, code: specialty.histopathology }] } }],
  ] as const) {
    const ehr = await startReferringEhr();
    ehrs[name] = ehr;
    organizations[name] = await registerInstitution(service, `${name} hospital`, ehr.base);
    const sourcePatient = await seedPatient(ehr.repo, 1);
    await seedAttachments(ehr.repo, sourcePatient, [2048]);
    const task = await openCase(service, secondOpinionRequest(order, ehr.base, sourcePatient, why));
    cases[name] = { request: task.id, patient: task.for.reference, sourcePatient };
  }
  expect(businessStatus((await service.fhir(`/Task/${cases.north.request}`)).body)).toBe('assigned');
  const claims = {
    north: { subject: 'ehr-north', scope: 'system/*.*', role: 'referrer-system', institution: `Organization/${organizations.north}` },
    south: { subject: 'ehr-south', scope: 'system/*.*', role: 'referrer-system', institution: `Organization/${organizations.south}` },
    reviewer: { subject: 'dr-onc', scope: 'user/*.*', role: 'reviewer', fhirUser: reviewerPractitioner },
    coordinator: { subject: 'coordinator', scope: 'user/*.*', role: 'coordinator', fhirUser: 'Practitioner/coordinator' },
    analyst: { subject: 'analyst', scope: 'user/*.*', role: 'analyst' },
  } as const;
  for (const caller of Object.keys(claims) as Caller[]) tokens[caller] = await service.mintToken(claims[caller]);
  // Both charts are in before anything is tried.
  for (const name of ['north', 'south'] as const) {
    for (const deadline = Date.now() + 30_000; (await count(`/DocumentReference?subject=${cases[name].patient}`)) === 0 && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 200));
  }
}, 90_000);

afterAll(async () => {
  await service?.stop();
  for (const ehr of Object.values(ehrs)) await ehr?.stop();
});

/** A Task of South's own case naming North's patient, padded with 20 made-up references, as a hostile EHR would try. */
function forgedTask(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const padded = Array.from({ length: 20 }, (_, i) => ({ reference: `Observation/made-up-${i}` }));
  return {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    focus: { reference: `ServiceRequest/${cases.south.request}` },
    basedOn: padded,
    for: { reference: cases.north.patient },
    ...extra,
  };
}

describe('forged ownership through references', () => {
  it("South cannot place a Task on North's patient, however it pads the Task, nor open that patient to a reviewer of its choice", async () => {
    const before = await count(`/Task?patient=${cases.north.patient}`);
    const plain = await as('south', '/Task', { body: forgedTask({ basedOn: undefined }) });
    expect([plain.status, plain.body.issue?.[0].code, plain.body.issue?.[0].expression]).toEqual([404, 'not-found', ['Task.for']]);
    for (const extra of [{}, { owner: { reference: `PractitionerRole/${reviewerRole}` } }]) {
      const refused = await as('south', '/Task', { body: forgedTask(extra) });
      expect([refused.status, refused.body.issue?.[0].code]).toEqual([404, 'not-found']);
    }
    expect(await count(`/Task?patient=${cases.north.patient}`)).toBe(before);
  });

  it("South cannot write into North's chart: an Observation on North's patient is refused as one on no patient is", async () => {
    const observation = (subject: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'Planted' }, subject: { reference: subject } });
    const before = await count(`/Observation?subject=${cases.north.patient}`);
    const foreign = await as('south', '/Observation', { body: observation(cases.north.patient) });
    const missing = await as('south', '/Observation', { body: observation('Patient/no-such-patient') });
    expect(foreign.status).toBe(404);
    expect(foreign.body.issue[0].expression).toEqual(['Observation.subject']);
    expect(answer(foreign)).toEqual(answer(missing));
    expect(await count(`/Observation?subject=${cases.north.patient}`)).toBe(before);
    // North's own searches and its reviewer's see nothing of South's.
    expect((await as('reviewer', `/Observation?code:text=Planted`)).body.entry ?? []).toEqual([]);
  });

  it("a record may not join two institutions' records, even a coordinator's (422), and a record never moves to another institution", async () => {
    const note = {
      resourceType: 'Communication',
      status: 'completed',
      payload: [{ contentString: 'Joins two cases' }],
      basedOn: [{ reference: `ServiceRequest/${cases.north.request}` }, { reference: `ServiceRequest/${cases.south.request}` }],
    };
    const joined = await as('coordinator', '/Communication', { body: note });
    expect([joined.status, joined.body.issue[0].code]).toEqual([422, 'business-rule']);
    const own = await as('coordinator', '/Communication', { body: { ...note, basedOn: [note.basedOn[0]] } });
    expect(own.status).toBe(201);
    const moved = await as('coordinator', `/Communication/${own.body.id}`, { method: 'PUT', body: { ...own.body, basedOn: [note.basedOn[1]] } });
    expect(moved.status).toBe(422);
    expect((await as('south', `/Communication/${own.body.id}`)).status).toBe(404);
  });
});

describe('forged ownership through meta.source', () => {
  it("a record South writes is South's, whatever its meta.source claims", async () => {
    const claimed = await as('south', '/Patient', {
      body: { resourceType: 'Patient', meta: { source: `${ehrs.north.base}/Patient/${cases.north.sourcePatient}` }, name: [{ family: 'Claimed' }] },
    });
    expect(claimed.status).toBe(201);
    expect((await as('south', `/Patient/${claimed.body.id}`)).status).toBe(200);
    expect((await as('north', `/Patient/${claimed.body.id}`)).status).toBe(404);
    expect((await as('north', '/Patient?family=Claimed')).body.entry ?? []).toEqual([]);
  });
});

describe('forged ownership through contained resources and Bundle entries', () => {
  it("a contained resource naming North's patient is refused, naming the element", async () => {
    const body = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'Panel' },
      subject: { reference: cases.south.patient },
      contained: [{ resourceType: 'Observation', id: 'c1', status: 'final', code: { text: 'Hidden' }, subject: { reference: cases.north.patient } }],
      hasMember: [{ reference: '#c1' }],
    };
    const refused = await as('south', '/Observation', { body });
    expect([refused.status, refused.body.issue[0].expression]).toEqual([404, ['Observation.contained[0].subject']]);
  });

  it("a transaction with one entry naming North's patient stores nothing; one naming only what it creates is stored", async () => {
    const entries = (family: string, extra: unknown[]) => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:3f1c2a7e-0000-4000-8000-000000000001',
          resource: { resourceType: 'Patient', name: [{ family }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'Weight' },
            subject: { reference: 'urn:uuid:3f1c2a7e-0000-4000-8000-000000000001' },
          },
          request: { method: 'POST', url: 'Observation' },
        },
        ...extra,
      ],
    });
    const planted = {
      resource: { resourceType: 'Observation', status: 'final', code: { text: 'Planted' }, subject: { reference: cases.north.patient } },
      request: { method: 'POST', url: 'Observation' },
    };
    const refused = await as('south', '', { body: entries('Bundled', [planted]) });
    expect([refused.status, refused.body.issue[0].expression]).toEqual([404, ['Bundle.entry[2].resource.Observation.subject']]);
    expect(await count('/Patient?family=Bundled')).toBe(0);
    const stored = await as('south', '', { body: entries('Bundled', []) });
    expect(stored.status).toBe(200);
    expect(await count('/Patient?family=Bundled')).toBe(1);
  });

  it('keys no FHIR element has (__proto__, constructor) are refused at any depth, in a transaction as in a plain create', async () => {
    const patient = '{"resourceType":"Patient","name":[{"family":"Proto","__proto__":{"admin":true}}]}';
    const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":${patient},"request":{"method":"POST","url":"Patient"}}]}`;
    for (const [p, body] of [
      ['/Patient', patient],
      ['', bundle],
    ]) {
      const res = await fetch(`${service.base}${p}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${tokens.south}` },
      });
      expect([p, res.status]).toEqual([p, 400]);
      expect((await res.json()).issue[0].details.text).toMatch(/__proto__/);
    }
    expect(await count('/Patient?family=Proto')).toBe(0);
  });

  it('a conditional update in a transaction answers 400, as its REST form does (FHIR: a server without it answers 400)', async () => {
    const rest = await as('south', '/Patient?family=Nobody', { method: 'PUT', body: { resourceType: 'Patient' } });
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Patient', name: [{ family: 'Conditional' }] }, request: { method: 'PUT', url: 'Patient?family=Conditional' } }],
    };
    const inBundle = await as('south', '', { body: bundle });
    expect([rest.status, inBundle.status]).toEqual([400, 400]);
    expect(inBundle.body.issue[0].details.text).toBe(rest.body.issue[0].details.text);
    expect(await count('/Patient?family=Conditional')).toBe(0);
  });
});

describe("reads of another institution's records, through every path", () => {
  it("South gets nothing of North's case: read, vread, history, searches, _include, _revinclude, $case-packet, attachments", async () => {
    const north = cases.north;
    // Whatever it tried to write first.
    await as('south', '/Task', { body: forgedTask() });
    const packet = await as('south', `/ServiceRequest/${cases.south.request}/$case-packet`);
    expect(packet.status).toBe(200);
    expect(JSON.stringify(packet.body)).not.toContain(north.patient.split('/')[1]);
    for (const p of [
      `/${north.patient}`,
      `/${north.patient}/_history/1`,
      `/${north.patient}/_history`,
      `/Task/${north.request}`,
      `/ServiceRequest/${north.request}/$case-packet`,
    ]) {
      expect([p, (await as('south', p)).status]).toEqual([p, 404]);
    }
    for (const p of [
      `/Observation?subject=${north.patient}`,
      `/Task?_id=${north.request}`,
      `/Task?_id=${cases.south.request}&_include=Task:patient`,
      `/Patient?_id=${cases.south.patient.split('/')[1]}&_revinclude=Observation:subject`,
    ]) {
      const found = ((await as('south', p)).body.entry ?? []).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
      expect([p, found.filter((r: string) => r === north.patient || r === `Task/${north.request}`)]).toEqual([p, []]);
    }
    const attachment = await attachmentOf('reviewer', north.patient);
    const theirs = await fetch(attachment, { headers: { authorization: `Bearer ${tokens.south}` } });
    const none = await fetch(attachment.replace(/[0-9a-f]{32}$/, '0'.repeat(32)), { headers: { authorization: `Bearer ${tokens.south}` } });
    expect([theirs.status, await theirs.text()]).toEqual([none.status, await none.text()]);
  });
});

describe('existence oracles', () => {
  it("South's answers for North's records and for records that do not exist are byte for byte the same", async () => {
    const theirs = cases.north.patient.split('/')[1];
    const nobody = 'f'.repeat(32);
    const tries: [string, (id: string) => [string, FhirInit]][] = [
      ['read', (id) => [`/Patient/${id}`, {}]],
      ['vread', (id) => [`/Patient/${id}/_history/1`, {}]],
      ['history', (id) => [`/Patient/${id}/_history`, {}]],
      ['update', (id) => [`/Patient/${id}`, { method: 'PUT', body: { resourceType: 'Patient', id, name: [{ family: 'Overwritten' }] } }]],
      [
        'patch',
        (id) => [
          `/Patient/${id}`,
          {
            method: 'PATCH',
            body: [{ op: 'add', path: '/name/0', value: { family: 'Overwritten' } }],
            headers: { 'content-type': 'application/json-patch+json' },
          },
        ],
      ],
      ['delete', (id) => [`/Patient/${id}`, { method: 'DELETE' }]],
      ['reference', () => ['/Observation', { body: { resourceType: 'Observation', status: 'final', code: { text: 'Probe' } } }]],
    ];
    for (const [name, request] of tries) {
      const [pathTheirs, initTheirs] = request(theirs);
      const [pathNobody, initNobody] = request(nobody);
      if (name === 'reference') {
        (initTheirs.body as any).subject = { reference: `Patient/${theirs}` };
        (initNobody.body as any).subject = { reference: `Patient/${nobody}` };
      }
      const [a, b] = [await as('south', pathTheirs, initTheirs), await as('south', pathNobody, initNobody)];
      expect([name, answer(a)]).toEqual([name, answer(b)]);
      expect([name, a.status >= 400]).toEqual([name, true]);
    }
    // A PUT or PATCH to an unknown id made nothing, and North's patient is as it was.
    expect((await service.fhir(`/Patient/${nobody}`)).status).toBe(404);
    expect((await service.fhir(`/${cases.north.patient}`)).body.name?.[0]?.family).not.toBe('Overwritten');
  });

  it('the store id of a retrieved record cannot be computed from where it came from', async () => {
    const unkeyed = createHash('sha256').update(`${ehrs.north.base}/Patient/${cases.north.sourcePatient}`).digest('hex').slice(0, 32);
    expect(cases.north.patient).toMatch(/^Patient\/[0-9a-f]{32}$/);
    expect(cases.north.patient).not.toBe(`Patient/${unkeyed}`);
  });
});

describe('outbound calls go only to the case institution’s own registered server', () => {
  let other: Server;
  const seen: string[] = [];
  let otherBase: string;

  beforeAll(async () => {
    // A third institution's registered server: South must not be able to make the service call it.
    other = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Patient","id":"x"}');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}/fhir`;
    await registerInstitution(service, 'East hospital', otherBase);
  });
  afterAll(async () => {
    await new Promise((resolve) => other.close(resolve));
  });

  it("a request naming another institution's server is refused (422 at ServiceRequest.subject); a meta.source naming it places nothing there", async () => {
    const refused = await as('south', '/ServiceRequest', { body: secondOpinionRequest('OWN-X1', otherBase, 'x') });
    expect([refused.status, refused.body.issue[0].expression]).toEqual([422, ['ServiceRequest.subject']]);
    expect(JSON.stringify(refused.body)).not.toContain(otherBase);
    // Relative, with a meta.source naming East's server: the patient is on South's own server if anywhere.
    const relative = await as('south', '/ServiceRequest', {
      body: {
        ...secondOpinionRequest('OWN-X2', otherBase, 'x'),
        subject: { reference: `Patient/${cases.south.sourcePatient}` },
        meta: { source: `${otherBase}/ServiceRequest/1` },
      },
    });
    expect(relative.status).toBe(201);
    await new Promise((r) => setTimeout(r, 1500)); // time for any retrieval to have started
    expect(seen).toEqual([]);
  });
});

describe("case parties see their case's artefacts", () => {
  it("the assigned reviewer reads its case's attachments", async () => {
    const attachment = await attachmentOf('reviewer', cases.north.patient);
    expect((await fetch(attachment, { headers: { authorization: `Bearer ${tokens.reviewer}` } })).status).toBe(200);
    expect((await fetch(attachment, { headers: { authorization: `Bearer ${tokens.north}` } })).status).toBe(200);
  });

  it('the referrer and the reviewer read the Provenance that $verify names for the opinion; the other institution does not', async () => {
    const examples = path.join(defaultProfilesDir(), 'examples', 'valid');
    const example = JSON.parse(readFileSync(path.join(examples, 'DiagnosticReport-final-concordant.json'), 'utf8'));
    const opinion = {
      ...example,
      status: 'final',
      subject: { reference: cases.north.patient },
      basedOn: [{ reference: `ServiceRequest/${cases.north.request}` }],
      performer: [{ reference: reviewerPractitioner }],
    };
    const written = await as('reviewer', '/DiagnosticReport', { body: opinion });
    expect(written.status).toBe(201);
    const verified = await as('reviewer', `/DiagnosticReport/${written.body.id}/$verify`);
    const signature = verified.body.parameter.find((p: any) => p.name === 'signature').valueReference.reference;
    expect([(await as('reviewer', `/${signature}`)).status, (await as('north', `/${signature}`)).status, (await as('south', `/${signature}`)).status]).toEqual([
      200, 200, 404,
    ]);
  });
});

describe('exports', () => {
  it('a de-identified export keeps no pointer back to the institution: no source URL, no server address', async () => {
    const kickOff = await as('analyst', '/$export?_type=DocumentReference,DiagnosticReport,Patient', { headers: { prefer: 'respond-async' } });
    expect(kickOff.status).toBe(202);
    const status = kickOff.headers.get('content-location') as string;
    let manifest: any;
    for (const deadline = Date.now() + 30_000; !manifest && Date.now() < deadline;) {
      const polled = await fetch(status, { headers: { authorization: `Bearer ${tokens.analyst}` } });
      if (polled.status === 200) manifest = await polled.json();
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(manifest.output.length).toBeGreaterThan(0);
    const files = await Promise.all(
      manifest.output.map(async (o: any) => (await fetch(o.url, { headers: { authorization: `Bearer ${tokens.analyst}` } })).text()),
    );
    const text = files.join('\n');
    expect(text).toContain('DocumentReference');
    for (const base of [ehrs.north.base, ehrs.south.base]) expect(text).not.toContain(base);
  });
});

/** The URL of the first stored attachment of the patient's chart, as `caller` finds it. */
async function attachmentOf(caller: Caller, patient: string): Promise<string> {
  const documents = (await as(caller, `/DocumentReference?subject=${patient}`)).body.entry ?? [];
  const url = documents.map((e: any) => e.resource.content?.[0]?.attachment?.url).find((u: string | undefined) => u?.includes('/attachments/'));
  expect(url).toBeDefined();
  return url as string;
}
