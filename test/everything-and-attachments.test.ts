// A referring EHR whose CapabilityStatement offers Patient/$everything is asked for the chart that
// way; attachments given by URL are fetched up to the size limit and kept, the rest say why not.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { chartTypes } from '../src/retrieval/retrieve-chart.js';
import { registerInstitution } from './review-cases.js';
import { startTestService, type TestService } from './harness.js';
import { seedAttachments, seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));
const perType = 5;
const maxBytes = 2000;
/** Where a case stands once its records are in and routing has placed it. */
const recordsIn = ['assigned', 'awaiting-assignment'];
const retrievalExtension = `${canonicalBase()}/StructureDefinition/attachment-retrieval`;

let ehr: ReferringEhr;
let service: TestService;
let patientId: string;
let binaryIds: string[];

beforeAll(async () => {
  ehr = await startReferringEhr({ everything: true });
  patientId = await seedPatient(ehr.repo, perType);
  binaryIds = await seedAttachments(ehr.repo, patientId, [1000, 3000]);
  await ehr.repo.createResource({
    resourceType: 'DocumentReference',
    status: 'current',
    subject: { reference: `Patient/${patientId}` },
    description: 'Letter kept elsewhere',
    content: [{ attachment: { contentType: 'application/pdf', url: 'https://documents.elsewhere.example/letter.pdf' } }],
  });
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', RETRIEVAL_PAGE_SIZE: '7', RETRIEVAL_ATTACHMENT_MAX_BYTES: String(maxBytes) });
  await registerInstitution(service, 'Referring Hospital', ehr.base);
});
afterAll(async () => {
  await service?.stop();
  await ehr?.stop();
});

async function readyTask(orderId: string): Promise<any> {
  const created = await service.fhir('/ServiceRequest', {
    body: {
      ...example,
      identifier: [{ system: 'https://ehr.example/orders', value: orderId }],
      subject: { reference: `${ehr.base}/Patient/${patientId}` },
      supportingInfo: undefined,
    },
  });
  expect(created.status).toBe(201);
  for (const deadline = Date.now() + 30_000; ;) {
    const task = (await service.fhir(`/Task/${created.body.id}`)).body;
    if (recordsIn.includes(task.businessStatus.coding[0].code) || task.status === 'failed' || Date.now() > deadline) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const letter = (documents: any[], description: string) => documents.find((d) => d.description === description).content[0].attachment;
const retrieval = (attachment: any) =>
  Object.fromEntries(attachment.extension.find((e: any) => e.url === retrievalExtension).extension.map((e: any) => [e.url, Object.values(e)[1]]));

describe('a referring EHR that offers Patient/$everything', () => {
  it('is asked for the chart with $everything, page by page, instead of one search per record type', async () => {
    const task = await readyTask('EVERYTHING-1');
    expect(recordsIn).toContain(task.businessStatus.coding[0].code);
    const calls = ehr.requests.filter((r) => r.includes('$everything'));
    // 5 records of each of 12 kinds, 3 letters, 1 report and the Patient, 7 a page
    expect(calls.length).toBe(Math.ceil((1 + chartTypes.length * perType + 4) / 7));
    expect(ehr.requests.some((r) => /^GET \/(Observation|Condition)\?/.test(r))).toBe(false);
    for (const type of chartTypes) {
      const param = ['AllergyIntolerance', 'Immunization'].includes(type) ? 'patient' : 'subject';
      const found = await service.fhir(`/${type}?${param}=${task.for.reference}&_summary=count`);
      const extra = type === 'DocumentReference' ? 3 : type === 'DiagnosticReport' ? 1 : 0;
      expect([type, found.body.total]).toEqual([type, perType + extra]);
    }
  });

  it('keeps attachments up to the limit, serves them, and records the others as skipped with the reason', async () => {
    const task = await readyTask('EVERYTHING-2');
    const documents = (await service.fhir(`/DocumentReference?subject=${task.for.reference}&_count=50`)).body.entry.map((e: any) => e.resource);

    const small = letter(documents, 'Scanned letter 1');
    expect(retrieval(small)).toEqual({ status: 'stored', source: `${ehr.base}/Binary/${binaryIds[0]}` });
    expect(small.url).toMatch(new RegExp(`^${service.server.url}/attachments/[0-9a-f]{32}$`));
    expect(small.size).toBe(1000);
    const content = await fetch(small.url, { headers: { authorization: `Bearer ${service.token}` } });
    expect(content.status).toBe(200);
    expect(content.headers.get('content-type')).toBe('application/pdf');
    expect(Buffer.from(await content.arrayBuffer()).equals(Buffer.alloc(1000, 1))).toBe(true);

    const large = letter(documents, 'Scanned letter 2');
    expect(retrieval(large)).toEqual({ status: 'skipped', source: `${ehr.base}/Binary/${binaryIds[1]}`, reason: `larger than ${maxBytes} bytes (3000)` });
    expect(large.url).toBe(`${ehr.base}/Binary/${binaryIds[1]}`);

    const elsewhere = letter(documents, 'Letter kept elsewhere');
    expect(retrieval(elsewhere)).toMatchObject({ status: 'skipped', reason: 'not a Binary on the institution’s FHIR server' });
    expect(elsewhere.url).toBe('https://documents.elsewhere.example/letter.pdf');

    const histology = (await service.fhir(`/DiagnosticReport?subject=${task.for.reference}&_count=50`)).body.entry
      .map((e: any) => e.resource)
      .find((r: any) => r.presentedForm);
    expect(retrieval(histology.presentedForm[0]).status).toBe('stored');
    expect(await (await fetch(histology.presentedForm[0].url, { headers: { authorization: `Bearer ${service.token}` } })).text()).toMatch(
      /invasive ductal carcinoma/,
    );

    const packet = await service.fhir(`/ServiceRequest/${task.focus.reference.split('/')[1]}/$case-packet`);
    const summary = packet.body.entry.at(-1).resource.issue.find((i: any) => i.expression[0] === 'Attachment');
    expect(summary.severity).toBe('warning');
    expect(summary.details.text).toMatch(/^Attachments: 2 stored, 2 skipped/);
  });

  it('a re-pull asks $everything only for what changed and fetches no attachment twice', async () => {
    const before = ehr.requests.length;
    await ehr.repo.createResource({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'New result' },
      subject: { reference: `Patient/${patientId}` },
    });
    const task = await readyTask('EVERYTHING-3');
    expect(recordsIn).toContain(task.businessStatus.coding[0].code);
    const calls = ehr.requests.slice(before);
    expect(calls.filter((r) => r.includes('$everything')).every((r) => /_since=/.test(r))).toBe(true);
    expect(calls.filter((r) => r.startsWith('GET /Binary/'))).toEqual([]);
    expect((await service.fhir(`/Observation?subject=${task.for.reference}&_summary=count`)).body.total).toBe(perType + 1);
  });

  it('an attachment id that is not stored answers 404 with an OperationOutcome', async () => {
    const missing = await fetch(`${service.server.url}/attachments/${'0'.repeat(32)}`, { headers: { authorization: `Bearer ${service.token}` } });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect((await fetch(`${service.server.url}/attachments/..%2F..%2Fetc`, { headers: { authorization: `Bearer ${service.token}` } })).status).toBe(404);
  });
});
