// The reviewers' workbench in a real headless Chromium, against the real service, database and the
// built-in referring EHR: a pathologist signs in, works the breast cancer case from the queue to the
// delivered opinion (reading the HER2 report PDF, asking the referrer, who answers as the EHR), by
// keyboard where a person would; a coordinator assigns an unassigned case; another reviewer's case
// is refused (the API answered 404 and the page says so); sign-in refusals. axe-core checks every
// page; screenshots are kept in test-artifacts/workbench and the main ones in docs/workbench.
/// <reference lib="dom" />
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { Binary, Reference } from '@medplum/fhirtypes';
import { startTestService, type TestService } from './harness.js';
import {
  businessStatus,
  createOrganization,
  openCase,
  registerInstitution,
  registerReviewer,
  secondOpinionRequest,
  specialty,
  taskWhen,
} from './review-cases.js';
import { pdfOf } from './pdf-report.js';
import { createAccount, launchChromium, openFromQueue, signInAs } from './workbench-browser.js';
import { seedStories, type Story } from '../scripts/peer/stories.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const artifacts = path.resolve('test-artifacts/workbench');
const docs = path.resolve('docs/workbench');
const password = { path: 'pathologist password 1', cardio: 'cardiologist password 1', coord: 'coordinator password 1' };

let service: TestService;
let ehr: ReferringEhr;
let browser: Browser;
let url: string;
let north: string;
const roles: Record<string, string> = {};
const tasks: Record<string, any> = {};
let breast: Story;

/** The story's order, pushed to the service as its EHR does, naming the patient on the EHR. */
async function push(story: Story): Promise<any> {
  const { id: _id, meta: _meta, ...order } = story.order;
  return openCase(service, {
    ...order,
    subject: { reference: `${ehr.base}/Patient/${story.patientId}` },
    supportingInfo: story.order.supportingInfo?.map((r) => ({ reference: `${ehr.base}/${r.reference}` })),
  });
}

beforeAll(async () => {
  browser = await launchChromium();
  mkdirSync(artifacts, { recursive: true });
  mkdirSync(docs, { recursive: true });
  ehr = await startReferringEhr();
  const stories = await seedStories(ehr.repo);
  breast = stories[0];
  // The HER2 report as the pathology lab sent it: a PDF.
  const pdf = await ehr.repo.createResource<Binary>({
    resourceType: 'Binary',
    contentType: 'application/pdf',
    data: pdfOf([
      'Pathology report: HER2 immunohistochemistry',
      'Specimen: left breast, excision biopsy',
      'HER2 IHC score 2+ (equivocal)',
      'ISH: not performed',
    ]).toString('base64'),
  });
  await ehr.repo.createResource({
    resourceType: 'DiagnosticReport',
    status: 'final',
    subject: { reference: `Patient/${breast.patientId}` },
    code: { text: 'HER2 immunohistochemistry report' },
    effectiveDateTime: '2026-09-28',
    conclusion: 'HER2 IHC 2+ (equivocal)',
    presentedForm: [{ contentType: 'application/pdf', url: `Binary/${pdf.id}`, title: 'HER2 report (PDF)' }],
  });
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', DELIVERY_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10', RETRIEVAL_PAGE_SIZE: '500' });
  url = service.server.url;
  north = await registerInstitution(service, 'North Hospital', ehr.base);
  const centre = await createOrganization(service, 'Second Opinion Centre');
  roles.path = await registerReviewer(service, { name: 'Pathologist', organizationId: centre, specialty: specialty.histopathology, capacity: 10 });
  roles.cardio = await registerReviewer(service, { name: 'Cardiologist', organizationId: centre, specialty: specialty.cardiology, capacity: 10 });
  const coordinator = await service.fhir('/Practitioner', { body: { resourceType: 'Practitioner', name: [{ family: 'Coordinator', given: ['Cora'] }] } });
  for (const account of [
    { username: 'pathologist', role: 'reviewer', fhirUser: `PractitionerRole/${roles.path}`, password: password.path, name: 'Dr Petra Pathologist' },
    { username: 'cardiologist', role: 'reviewer', fhirUser: `PractitionerRole/${roles.cardio}`, password: password.cardio, name: 'Dr Carl Cardiologist' },
    { username: 'coordinator', role: 'coordinator', fhirUser: `Practitioner/${coordinator.body.id}`, password: password.coord, name: 'Cora Coordinator' },
  ]) {
    await createAccount(service, account);
  }
  tasks.breast = await push(breast);
  tasks.heart = await push(stories[1]);
  // A neurology question no reviewer here takes: it waits unassigned for a coordinator.
  const other = await seedPatient(ehr.repo, 2, 'Unrouted');
  tasks.unassigned = await openCase(
    service,
    secondOpinionRequest('WB-NEURO-1', ehr.base, other, {
      performerType: { coding: [{ system: 'http://snomed.info/sct', code: specialty.neurology, display: 'Neurology' }] },
    }),
  );
  // A long chart: 417 records of each of 12 kinds, for the cardiologist.
  const large = await seedPatient(ehr.repo, 417, 'Large');
  tasks.large = await openCase(
    service,
    secondOpinionRequest('WB-LARGE-1', ehr.base, large, {
      performerType: { coding: [{ system: 'http://snomed.info/sct', code: specialty.cardiology, display: 'Cardiology' }] },
    }),
  );
  expect([businessStatus(tasks.breast), businessStatus(tasks.heart), businessStatus(tasks.unassigned), businessStatus(tasks.large)]).toEqual([
    'assigned',
    'assigned',
    'awaiting-assignment',
    'assigned',
  ]);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await service?.stop();
  await ehr?.stop();
});

async function newPage(): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { page, errors };
}

/** No serious or critical accessibility violation on the page as it is. */
async function checkAccessibility(page: Page, name: string): Promise<void> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await (globalThis as any).axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
      .map((v: any) => `${v.id}: ${v.help} (${v.nodes.map((n: any) => n.target.join(' ')).join(', ')})`);
  });
  expect({ page: name, violations }).toEqual({ page: name, violations: [] });
}

async function shot(page: Page, name: string, keep = false): Promise<void> {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (keep) copyFileSync(file, path.join(docs, `${name}.png`));
}

/** Presses Tab until `selector` has the focus (at most `limit` times): the page is usable by keyboard. */
async function tabTo(page: Page, selector: string, limit = 60): Promise<void> {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  throw new Error(`${selector} cannot be reached with the Tab key`);
}

describe('the workbench', () => {
  it('a pathologist signs in, opens the breast cancer case, reads the HER2 PDF, asks, gets the answer, signs a discordant opinion with a follow-up, sees it delivered', async () => {
    const { page, errors } = await newPage();
    await page.goto(`${url}/workbench/`);
    await page.waitForSelector('input[name="password"]');
    await checkAccessibility(page, 'sign-in');
    await shot(page, 'sign-in', true);
    // Keyboard only from here to the case: the sign-in form, the queue, the case link.
    await page.keyboard.type('pathologist');
    await page.keyboard.press('Tab');
    await page.keyboard.type(password.path);
    await page.keyboard.press('Enter');
    await page.waitForSelector('table.queue[data-loaded="true"]');
    expect(page.url()).toBe(`${url}/workbench/`);
    // My cases: the breast cancer only, with age and sex but no name.
    const rows = await page.$$eval('table.queue tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.task));
    expect(rows).toEqual([tasks.breast.id]);
    const row = await page.textContent(`tr[data-task="${tasks.breast.id}"]`);
    expect(row).toContain('F, 58 y');
    expect(row).toContain('HER2');
    expect(row).not.toContain('Maria');
    expect(await page.textContent('[data-count="open"] strong')).toBe('1');
    await checkAccessibility(page, 'queue');
    await shot(page, 'queue', true);

    await tabTo(page, `tr[data-task="${tasks.breast.id}"] a`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('article.case[data-loaded="true"]');
    expect(await page.textContent('article.case h1')).toContain('Maria Example');
    expect(await page.textContent('.questions')).toContain('Is HER2-targeted therapy indicated?');
    expect(await page.textContent('.questions')).toContain('C50.412');
    await page.waitForSelector('.completeness');
    expect(await page.getAttribute('.completeness', 'data-missing')).toBe('MedicationStatement Immunization');
    await tabTo(page, '#start-review');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-task-status="in-progress"]');
    await checkAccessibility(page, 'case');
    await shot(page, 'case', true);

    // The HER2 report, as a PDF rendered inline.
    await page.click('button[data-view="attachments"]');
    await page.click('button[data-title="HER2 report (PDF)"]');
    await page.waitForSelector('.pdf canvas[data-rendered="true"]');
    expect(await page.textContent('.pdf canvas')).toContain('HER2 IHC score 2+ (equivocal)');
    await checkAccessibility(page, 'attachment');
    await shot(page, 'her2-report');
    await page.click('button[data-view="labs"]');
    await page.waitForSelector('.lab');
    await page.click('button[data-view="timeline"]');
    await page.waitForSelector('.timeline li');
    await shot(page, 'timeline');

    // The conversation: a question; the case waits; the referrer answers as the EHR.
    // By keyboard: to the conversation, the question, send.
    await tabTo(page, '.tabs a[href$="/conversation"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#conversation-title');
    await tabTo(page, '#question');
    await page.keyboard.type('Was ISH done on the biopsy, and can the blocks be sent?');
    await tabTo(page, '#send-question');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-hold="true"]');
    const held = await taskWhen(service, tasks.breast.id, (t) => t.status === 'on-hold');
    expect(businessStatus(held)).toBe('awaiting-information');
    const [asked] = (await service.fhir(`/CommunicationRequest?based-on=ServiceRequest/${tasks.breast.focus.reference.split('/')[1]}`)).body.entry.map(
      (e: any) => e.resource,
    );
    expect(asked.requester.reference).toBe(`PractitionerRole/${roles.path}`);
    const ehrToken = await service.mintToken({ subject: 'north-ehr', scope: 'system/*.cruds', role: 'referrer-system', institution: `Organization/${north}` });
    const answer = await service.fhir('/Communication', {
      token: ehrToken,
      body: {
        resourceType: 'Communication',
        status: 'completed',
        subject: asked.subject,
        basedOn: [{ reference: `CommunicationRequest/${asked.id}` }],
        sender: asked.recipient?.[0] as Reference,
        sent: new Date().toISOString(),
        payload: [{ contentString: 'No ISH was done; the blocks are on their way.' }],
      },
    });
    expect(answer.status).toBe(201);
    await page.waitForSelector('.thread li[data-kind="answer"]:has-text("blocks are on their way")', { timeout: 15_000 });
    await page.waitForSelector('[data-hold="true"]', { state: 'detached', timeout: 15_000 });
    await checkAccessibility(page, 'conversation');
    await shot(page, 'conversation', true);

    // The opinion: discordant, with a follow-up to see the patient; preview; preliminary; then signed.
    await page.click('.tabs a:has-text("Opinion")');
    await page.waitForSelector('#conclusion');
    await page.fill('#conclusion', 'HER2 positive on ISH (HER2/CEP17 ratio 2.6): the tumour is HER2 positive, not equivocal.');
    await page.check('input[name="concordance"][value="treatment-changed"]');
    await page.fill('#recommendation-0', 'Add trastuzumab to the adjuvant treatment.');
    await page.selectOption('#see-patient', 'video');
    await page.fill('#see-why', 'to discuss HER2-targeted therapy');
    expect(await page.textContent('[data-preview="concordance"]')).toBe('Treatment changed');
    await page.click('button:has-text("Save as preliminary")');
    await page.waitForSelector('[role="status"]:has-text("Saved as preliminary")');
    await checkAccessibility(page, 'opinion');
    await shot(page, 'opinion', true);
    // Finalising by keyboard: the button, then the confirmation.
    await tabTo(page, '#finalise');
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog[open]');
    await checkAccessibility(page, 'confirmation');
    await shot(page, 'confirmation');
    await tabTo(page, '#sign-and-send', 5);
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-verify="true"]', { timeout: 15_000 });
    await page.waitForSelector('[data-delivery="opinion-delivered"]', { timeout: 20_000 });
    await page.waitForSelector('[data-fact="status"]:has-text("Opinion delivered")');
    await shot(page, 'delivered', true);
    // In the patient's chart at the EHR: the signed opinion with the follow-up recommendation.
    const onEhr = await (await fetch(`${ehr.base}/DiagnosticReport?subject=Patient/${breast.patientId}&_count=100`)).json();
    const delivered = onEhr.entry.map((e: any) => e.resource).find((r: any) => r.conclusion?.startsWith('HER2 positive on ISH'));
    expect(delivered.extension.map((e: any) => e.valueString ?? e.valueCodeableConcept?.coding?.[0]?.code)).toEqual(
      expect.arrayContaining(['treatment-changed', 'Add trastuzumab to the adjuvant treatment.']),
    );
    // And the recommendation to see the patient as a proposal the hospital can schedule.
    const proposed = await (await fetch(`${ehr.base}/ServiceRequest?subject=Patient/${breast.patientId}&intent=proposal`)).json();
    expect(
      (proposed.entry ?? []).map((e: any) => [
        e.resource.status,
        e.resource.code.coding[0].code,
        e.resource.note?.[0]?.text,
        e.resource.reasonReference?.[0]?.reference,
      ]),
    ).toEqual([['active', 'video', 'to discuss HER2-targeted therapy', `DiagnosticReport/${delivered.id}`]]);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 180_000);

  it("a reviewer cannot open another reviewer's case: the API answers 404 and the page says so", async () => {
    const { page, errors } = await newPage();
    await signInAs(page, url, 'cardiologist', password.cardio);
    const answered: number[] = [];
    page.on('response', (r) => r.url().endsWith(`/fhir/Task/${tasks.breast.id}`) && answered.push(r.status()));
    await page.goto(`${url}/workbench/#/case/${tasks.breast.id}`);
    await page.waitForSelector('[data-refused="not-found"]');
    expect(answered).toEqual([404]);
    expect(await page.textContent('[data-refused] h1')).toBe('This case is not open to you');
    expect(await page.textContent('body')).not.toContain('Maria');
    await checkAccessibility(page, 'refused');
    await shot(page, 'not-yours');
    expect(errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('opens a case of 5,004 records (how fast: npm run bench:workbench); the timeline keeps only the rows in view in the page', async () => {
    const { page, errors } = await newPage();
    await signInAs(page, url, 'cardiologist', password.cardio);
    // How long it took is recorded, not judged here: npm run bench:workbench measures it, median of several runs.
    const { firstView, wholeChart } = await openFromQueue(page, url, tasks.large.id);
    writeFileSync(
      path.join(artifacts, 'first-view-5004-records.txt'),
      `case of 5,004 records, ms (one run): first view ${firstView}; whole chart ${wholeChart}\n`,
    );
    expect(await page.textContent('.completeness strong')).toBe('5004');
    await page.click('button[data-view="timeline"]');
    await page.waitForSelector('.timeline li');
    expect(await page.getAttribute('.timeline ul', 'data-total')).toBe('5004');
    expect(await page.locator('.timeline li').count()).toBeLessThan(60);
    await page.evaluate(() => {
      const timeline = document.querySelector('.timeline') as HTMLElement;
      timeline.scrollTop = timeline.scrollHeight;
    });
    await page.waitForSelector('.timeline li[aria-posinset="5004"]');
    expect(await page.locator('.timeline li').count()).toBeLessThan(60);
    await checkAccessibility(page, 'timeline');
    await shot(page, 'timeline-5004');
    expect(errors).toEqual([]);
    await page.context().close();
  }, 120_000);

  it('a coordinator sees every case and the unassigned one, and assigns it', async () => {
    const { page, errors } = await newPage();
    await signInAs(page, url, 'coordinator', password.coord);
    expect(await page.textContent('h1')).toBe('All cases');
    expect(await page.textContent('[data-count="unassigned"] strong')).toBe('1');
    expect(await page.textContent('[data-count="open"] strong')).toBe('3'); // the breast cancer case is finished
    await page.selectOption('select[name="owner"]', 'unassigned');
    const rows = await page.$$eval('table.queue tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.task));
    expect(rows).toEqual([tasks.unassigned.id]);
    await checkAccessibility(page, 'coordinator queue');
    await shot(page, 'coordinator-queue', true);
    await page.selectOption(`#assign-${tasks.unassigned.id}`, `PractitionerRole/${roles.path}`);
    await page.click(`tr[data-task="${tasks.unassigned.id}"] button:has-text("Assign")`);
    await page.waitForSelector('[data-count="unassigned"] strong:has-text("0")');
    const assigned = (await service.fhir(`/Task/${tasks.unassigned.id}`)).body;
    expect([assigned.owner.reference, businessStatus(assigned)]).toEqual([`PractitionerRole/${roles.path}`, 'assigned']);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('refuses a wrong password on the page, and signing out ends the session', async () => {
    const { page } = await newPage();
    await page.goto(`${url}/workbench/`);
    await page.waitForSelector('input[name="password"]');
    await page.fill('#username', 'pathologist');
    await page.fill('#password', 'not the password');
    await page.click('button[type="submit"]');
    await page.waitForSelector('#refusal');
    expect(await page.textContent('#refusal')).toBe('The user name or the password is not right');
    await checkAccessibility(page, 'sign-in refused');
    await page.fill('#password', password.path);
    await page.click('button[type="submit"]');
    await page.waitForSelector('table.queue[data-loaded="true"]');
    await page.click('header.top button:has-text("Sign out")');
    await page.waitForSelector('button[name="logout"]');
    await page.click('button[name="logout"]');
    await page.waitForSelector('input[name="password"]');
    expect(await page.evaluate(() => sessionStorage.getItem('workbench.session'))).toBeNull();
    await page.context().close();
  }, 60_000);
});
