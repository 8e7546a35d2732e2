// Outcome analytics, as an analyst sees them: cases from two institutions are driven to delivered
// opinions with different concordance, specialties and questions; the figures (JSON, CSV, the
// MeasureReport of $evaluate-measure and the analytics page in a real Chromium) count each once,
// move a count when an opinion is amended, and are refused to roles that may not see them.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium } from 'playwright-core';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { fhirFetch, startTestService, type TestService } from './harness.js';
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
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const finalExample = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'DiagnosticReport-final-concordant.json'), 'utf8'));
const canonical = canonicalBase();
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const month = new Date().toISOString().slice(0, 7);

let service: TestService;
let ehr: ReferringEhr;
let proxy: FaultProxy;
let north: string;
let south: string;
const opinions: Record<string, string> = {};

const concordance = (code: string) => [
  { url: `${canonical}/StructureDefinition/concordance`, valueCodeableConcept: { coding: [{ system: `${canonical}/CodeSystem/concordance`, code }] } },
];

/** The assigned reviewer accepts and starts the case. */
async function start(task: any): Promise<any> {
  const accepted = await service.fhir(`/Task/${task.id}`, { method: 'PUT', body: { ...task, status: 'accepted' } });
  const started = await service.fhir(`/Task/${task.id}`, { method: 'PUT', body: { ...accepted.body, status: 'in-progress' } });
  expect(started.status).toBe(200);
  return started.body;
}

/** The reviewer signs an opinion of `code`; answers once it is in the referring chart. */
async function deliver(task: any, code: string): Promise<string> {
  const requestId = task.focus.reference.split('/')[1];
  const opinion = await service.fhir('/DiagnosticReport', {
    body: { ...finalExample, subject: task.for, basedOn: [{ reference: `ServiceRequest/${requestId}` }], extension: concordance(code) },
  });
  expect(opinion.status).toBe(201);
  const done = await taskWhen(service, task.id, (t) => ['opinion-delivered', 'delivery-failed'].includes(businessStatus(t) ?? ''));
  expect(businessStatus(done)).toBe('opinion-delivered');
  return opinion.body.id;
}

const outcomes = (query: string, token = service.token) => fhirFetch(`${service.base.replace(/\/fhir$/, '')}/analytics/outcomes?${query}`, { token });
const stratum = (report: any, stratifier: string, value: string) => report.strata.find((s: any) => s.stratifier === stratifier && s.value === value);

beforeAll(async () => {
  ehr = await startReferringEhr();
  proxy = await startFaultProxy(ehr.base);
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', DELIVERY_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10' });
  north = await registerInstitution(service, 'North Hospital', ehr.base);
  south = await registerInstitution(service, 'South Hospital', proxy.base); // the same EHR at another address: another institution
  const centre = await createOrganization(service, 'Second Opinion Centre');
  await registerReviewer(service, { name: 'Oncologist', organizationId: centre, specialty: specialty.oncology, capacity: 10 });
  await registerReviewer(service, { name: 'Cardiologist', organizationId: centre, specialty: specialty.cardiology, capacity: 10 });
  const patientId = await seedPatient(ehr.repo, 1);
  const breast = (order: string, base: string) => secondOpinionRequest(order, base, patientId, { performerType: undefined, ...reason(icd10cm, 'C50.911') });

  // North: two breast cancers, concordant and diagnosis-changed (amended below to treatment-changed).
  const [one, two] = [await openCase(service, breast('OUT-1', ehr.base)), await openCase(service, breast('OUT-2', ehr.base))];
  opinions.one = await deliver(await start(one), 'concordant');
  opinions.two = await deliver(await start(two), 'diagnosis-changed');
  // South: an aortic stenosis with a question on the way, minor discrepancy; and a breast cancer still waiting.
  const three = await start(
    await openCase(service, secondOpinionRequest('OUT-3', proxy.base, patientId, { performerType: undefined, ...reason(icd10cm, 'I35.0') })),
  );
  const question = await service.fhir('/CommunicationRequest', {
    body: {
      resourceType: 'CommunicationRequest',
      status: 'active',
      subject: three.for,
      basedOn: [three.focus],
      payload: [{ contentString: 'Is there an echo from this year?' }],
    },
  });
  expect(question.status).toBe(201);
  await taskWhen(service, three.id, (t) => t.status === 'on-hold');
  await service.fhir('/Communication', {
    body: {
      resourceType: 'Communication',
      status: 'completed',
      subject: three.for,
      basedOn: [{ reference: `CommunicationRequest/${question.body.id}` }],
      payload: [{ contentString: 'Yes, attached.' }],
    },
  });
  opinions.three = await deliver(await taskWhen(service, three.id, (t) => t.status === 'in-progress'), 'minor-discrepancy');
  const four = await openCase(service, breast('OUT-4', proxy.base));
  // The fourth case was due yesterday.
  const overdue = await service.fhir(`/Task/${four.id}`, {
    method: 'PUT',
    body: { ...four, restriction: { period: { end: new Date(Date.now() - 86_400_000).toISOString() } } },
  });
  expect(overdue.status).toBe(200);

  // The amendment moves the second case from diagnosis-changed to treatment-changed, once however often it is sent.
  const current = (await service.fhir(`/DiagnosticReport/${opinions.two}`)).body;
  for (let i = 0; i < 2; i++) {
    const latest = (await service.fhir(`/DiagnosticReport/${opinions.two}`)).body;
    const amended = await service.fhir(`/DiagnosticReport/${opinions.two}`, {
      method: 'PUT',
      body: { ...current, meta: latest.meta, status: 'amended', extension: concordance('treatment-changed') },
    });
    expect(amended.status).toBe(200);
    await taskWhen(service, two.id, (t) => businessStatus(t) === 'opinion-delivered');
  }
  // A Task written again unchanged (a retried write) counts nothing new.
  const delivered = (await service.fhir(`/Task/${one.id}`)).body;
  expect((await service.fhir(`/Task/${one.id}`, { method: 'PUT', body: delivered })).status).toBe(200);
  // The counters follow the writes a moment later.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const all = stratum((await outcomes(`periodStart=${month}&periodEnd=${month}`)).body, 'all', 'all');
    if (
      all.opened === 4 &&
      all.delivered === 3 &&
      all.waiting === 1 &&
      all.overdue === 1 &&
      all.concordance['treatment-changed'].count === 1 &&
      all.informationRequests.total === 1
    )
      break;
  }
}, 180_000);
afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
  await ehr?.stop();
});

describe('outcome figures', () => {
  it('count each case once, by specialty, institution, reason, chapter and month, with Wilson intervals', async () => {
    const { status, body: report } = await outcomes(`periodStart=${month}&periodEnd=${month}&by=specialty,institution,reason,chapter,month`);
    expect(status).toBe(200);
    const all = stratum(report, 'all', 'all');
    expect([all.opened, all.delivered, all.waiting, all.overdue]).toEqual([4, 3, 1, 1]);
    expect(Object.fromEntries(Object.entries(all.concordance).map(([code, s]: [string, any]) => [code, s.count]))).toEqual({
      concordant: 1,
      'minor-discrepancy': 1,
      'diagnosis-changed': 0,
      'treatment-changed': 1,
    });
    // Wilson score 95% interval of 1 in 3, by hand: (0.0615, 0.7923).
    expect(all.concordance.concordant.share).toBeCloseTo(1 / 3, 10);
    expect(all.concordance.concordant.ci95[0]).toBeCloseTo(0.0615, 4);
    expect(all.concordance.concordant.ci95[1]).toBeCloseTo(0.7923, 4);
    expect(all.concordance['diagnosis-changed'].ci95[0]).toBe(0);
    expect(all.informationRequests).toMatchObject({ total: 1, perCase: 1 / 3 });
    expect(all.turnaroundHours.median).toBeGreaterThan(0);
    expect(all.turnaroundHours.median).toBeLessThanOrEqual(all.turnaroundHours.p90);
    expect(report.turnaroundHistogram.reduce((n: number, b: any) => n + b.count, 0)).toBe(3);

    expect([stratum(report, 'specialty', specialty.oncology).delivered, stratum(report, 'specialty', specialty.cardiology).delivered]).toEqual([2, 1]);
    expect(stratum(report, 'specialty', specialty.oncology).waiting).toBe(1);
    expect(stratum(report, 'institution', `Organization/${north}`)).toMatchObject({ label: 'North Hospital', opened: 2, delivered: 2, waiting: 0 });
    expect(stratum(report, 'institution', `Organization/${south}`)).toMatchObject({ label: 'South Hospital', opened: 2, delivered: 1, waiting: 1, overdue: 1 });
    expect(stratum(report, 'reason', 'C50.911').concordance['treatment-changed'].count).toBe(1);
    expect([stratum(report, 'chapter', 'II (C00-D49)').delivered, stratum(report, 'chapter', 'IX (I00-I99)').delivered]).toEqual([2, 1]);
    expect(stratum(report, 'month', month)).toMatchObject({ opened: 4, delivered: 3 });
    expect(JSON.stringify(report)).not.toMatch(/Patient\//); // de-identified
  });

  it('are the same as CSV', async () => {
    const response = await fetch(
      `${service.base.replace(/\/fhir$/, '')}/analytics/outcomes?periodStart=${month}&periodEnd=${month}&by=institution&format=csv`,
      { headers: { authorization: `Bearer ${service.token}` } },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    const [header, ...rows] = (await response.text())
      .trim()
      .split('\r\n')
      .map((line) => line.split(','));
    const row = (value: string) => Object.fromEntries(header.map((name, i) => [name, rows.find((r) => r[3] === value)?.[i]]));
    expect(row('all')).toMatchObject({
      stratifier: 'all',
      opened: '4',
      delivered: '3',
      concordant_count: '1',
      waiting: '1',
      overdue: '1',
      information_requests: '1',
    });
    expect(Number(row('all').concordant_ci95_high)).toBeCloseTo(0.7923, 4);
    expect(row(`Organization/${north}`)).toMatchObject({ label: 'North Hospital', delivered: '2' });
  });

  it('are a MeasureReport from Measure/{id}/$evaluate-measure, with strata', async () => {
    const measure = await service.fhir('/Measure/opinion-concordance');
    expect(measure.body.url).toBe(`${canonical}/Measure/opinion-concordance`);
    const { status, body: report } = await service.fhir(`/Measure/opinion-concordance/$evaluate-measure?periodStart=${month}&periodEnd=${month}`);
    expect(status).toBe(200);
    expect(report).toMatchObject({ resourceType: 'MeasureReport', status: 'complete', type: 'summary', measure: `${canonical}/Measure/opinion-concordance` });
    const concordant = report.group.find((g: any) => g.id === 'concordant');
    const count = (populations: any[], code: string) => populations.find((p) => p.code.coding[0].code === code).count;
    expect([count(concordant.population, 'denominator'), count(concordant.population, 'numerator')]).toEqual([3, 1]);
    // Rounded as a reader wants it (4 decimals), not 0.3333333333333333.
    expect(concordant.measureScore.value).toBe(0.3333);
    expect(concordant.extension[0]).toMatchObject({ url: `${canonical}/StructureDefinition/wilson-interval` });
    expect(concordant.extension[0].valueRange.low.value).toBeCloseTo(0.0615, 4);
    // Every stratifier the Measure defines, as FHIR's $evaluate-measure reports them.
    expect(concordant.stratifier.map((s: any) => s.code[0].text)).toEqual(['specialty', 'institution', 'reason', 'chapter', 'month']);
    const oncology = concordant.stratifier[0].stratum.find((s: any) => s.value.text === specialty.oncology);
    expect([count(oncology.population, 'denominator'), count(oncology.population, 'numerator')]).toEqual([2, 1]);

    const backlog = await service.fhir('/Measure/case-backlog/$evaluate-measure', {
      body: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'periodStart', valueDate: `${month}-01` },
          { name: 'periodEnd', valueDate: `${month}-28` },
        ],
      },
    });
    expect(backlog.body.group.map((g: any) => [g.id, g.measureScore.value])).toEqual([
      ['waiting', 1],
      ['overdue', 1],
    ]);
    expect(backlog.body.group[0].stratifier.map((s: any) => s.code[0].text)).toEqual(['specialty', 'institution', 'reason', 'chapter', 'month']);
    const perCase = await service.fhir(`/Measure/information-requests/$evaluate-measure?periodStart=${month}&periodEnd=${month}`);
    expect(perCase.body.group[0].measureScore).toEqual({ value: 0.3333, unit: 'requests per case', system: 'http://unitsofmeasure.org', code: '1' });
    const turnaround = await service.fhir(`/Measure/opinion-turnaround/$evaluate-measure?periodStart=${month}&periodEnd=${month}`);
    expect(turnaround.body.group.map((g: any) => g.id)).toEqual(['turnaround-median', 'turnaround-p90', 'turnaround-p99']);
    expect(turnaround.body.group[0].measureScore.unit).toBe('h');
  });

  it('answer 400 naming the parameter that is wrong', async () => {
    const expression = async (response: Promise<{ status: number; body: any }>) => {
      const { status, body } = await response;
      return [status, body.resourceType, body.issue?.[0]?.expression?.[0]];
    };
    expect(await expression(outcomes('periodStart=2026-13'))).toEqual([400, 'OperationOutcome', 'periodStart']);
    expect(await expression(outcomes('periodStart=2026-02-30'))).toEqual([400, 'OperationOutcome', 'periodStart']);
    expect(await expression(outcomes('periodStart=2026-06&periodEnd=2026-01'))).toEqual([400, 'OperationOutcome', 'periodStart']);
    expect(await expression(outcomes('by=specialty,colour'))).toEqual([400, 'OperationOutcome', 'by']);
    expect(await expression(outcomes('format=xml'))).toEqual([400, 'OperationOutcome', 'format']);
    expect(await expression(outcomes('periodEnd=2026&periodEnd=2027'))).toEqual([400, 'OperationOutcome', 'periodEnd']);
    expect(await expression(outcomes('patient=1'))).toEqual([400, 'OperationOutcome', 'patient']);
    expect(await expression(service.fhir(`/Measure/opinion-concordance/$evaluate-measure?periodStart=${month}`))).toEqual([
      400,
      'OperationOutcome',
      'Parameters.parameter.periodEnd',
    ]);
    expect(
      await expression(service.fhir(`/Measure/opinion-concordance/$evaluate-measure?periodStart=${month}&periodEnd=${month}&stratifier=specialty`)),
    ).toEqual([400, 'OperationOutcome', 'stratifier']);
    expect(await expression(service.fhir(`/Measure/opinion-concordance/$evaluate-measure?periodStart=soon&periodEnd=${month}`))).toEqual([
      400,
      'OperationOutcome',
      'Parameters.parameter.periodStart',
    ]);
  });

  it('are for analysts, coordinators and admins with a token', async () => {
    const analyst = await service.mintToken({ subject: 'analyst-1', scope: 'user/Measure.read', role: 'analyst' });
    const coordinator = await service.mintToken({ subject: 'coordinator-1', scope: 'user/Measure.rs', role: 'coordinator' });
    const reviewer = await service.mintToken({ subject: 'reviewer-1', scope: 'user/*.*', role: 'reviewer', fhirUser: 'PractitionerRole/x' });
    const referrer = await service.mintToken({ subject: 'ehr-1', scope: 'system/*.*', role: 'referrer-system', institution: `Organization/${north}` });
    const analystWithoutScope = await service.mintToken({ subject: 'analyst-2', scope: 'user/Task.read', role: 'analyst' });
    const evaluate = `/Measure/opinion-concordance/$evaluate-measure?periodStart=${month}&periodEnd=${month}`;
    expect((await outcomes('', analyst)).status).toBe(200);
    expect((await outcomes('', coordinator)).status).toBe(200);
    expect((await service.fhir(evaluate, { token: analyst })).status).toBe(200);
    for (const token of [reviewer, referrer]) {
      const refused = await outcomes('', token);
      expect([refused.status, refused.body.issue[0].code]).toEqual([403, 'forbidden']);
      expect((await service.fhir(evaluate, { token })).status).toBe(403);
    }
    expect((await outcomes('', analystWithoutScope)).status).toBe(403);
    expect((await outcomes('', null as unknown as string)).status).toBe(401);
    expect((await service.fhir(evaluate, { token: null })).status).toBe(401);
  });
});

describe('the analytics page', () => {
  it('signs the analyst in as the workbench does (PKCE), then shows in a real Chromium the figures the API answers, by name; keeps a screenshot in docs/', async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(
        `Chromium is needed for this test and is not at ${chromiumPath}: npm test installs it as root on Debian (scripts/chromium.ts); else apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
    }
    const analyst = await service.mintToken({ subject: 'analyst-1', scope: 'user/Measure.read', role: 'analyst' });
    const { body: report } = await outcomes('by=specialty,institution,reason,chapter,month', analyst);
    const origin = service.base.replace(/\/fhir$/, '');
    const passwords = { analyst: 'outcomes-analyst-password', reviewer: 'outcomes-reviewer-password' };
    for (const [username, fhirUser] of [
      ['analyst', 'Practitioner/analyst-1'],
      ['reviewer', 'PractitionerRole/reviewer-1'],
    ] as const) {
      const made = await fetch(`${origin}/auth/accounts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${service.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ username, role: username, fhirUser, password: passwords[username] }),
      });
      expect(made.status).toBe(201);
    }
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      const analytics = `${origin}/analytics`;
      await page.goto(analytics);
      // Not signed in yet: the sign-in button, nothing else.
      await page.waitForSelector('#sign-in:not([hidden])');
      expect(await page.isHidden('#outcomes')).toBe(true);
      // The service's own sign-in page: a wrong password is refused there, the right one comes back here.
      await page.click('#sign-in button[type="submit"]');
      await page.waitForSelector('input[name="password"]');
      await page.fill('#username', 'analyst');
      await page.fill('#password', 'not the password');
      await page.click('button[type="submit"]');
      await page.waitForSelector('#refusal');
      await page.fill('#password', passwords.analyst);
      await page.click('button[type="submit"]');
      await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
      expect(errors).toEqual([]);
      // No code and no token in the URL; the token, in this tab only, is the analyst's and reads Measures only.
      expect(page.url()).toBe(analytics);
      const session = await page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem('analytics.session')));
      const claims = JSON.parse(Buffer.from(session.accessToken.split('.')[1], 'base64url').toString());
      expect([claims.sub, claims.role, claims.scope]).toEqual(['analyst', 'analyst', 'user/Measure.rs']);

      // The default period is the README's twelve months: this month and the eleven before it.
      const now = new Date();
      const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 11, 1)).toISOString().slice(0, 10);
      expect([await page.inputValue('input[name="periodStart"]'), report.periodStart]).toEqual([start, start]);
      const all = stratum(report, 'all', 'all');
      for (const figure of ['opened', 'delivered', 'waiting', 'overdue']) {
        expect(await page.textContent(`#summary [data-figure="${figure}"]`)).toBe(String(all[figure]));
      }
      for (const s of report.strata) {
        const row = `#strata tr[data-stratum="${s.stratifier}|${s.value}"]`;
        expect(await page.textContent(`${row} [data-figure="delivered"]`)).toBe(String(s.delivered));
        expect(await page.getAttribute(`${row} [data-figure="concordance-concordant"]`, 'data-count')).toBe(String(s.concordance.concordant.count));
        expect(await page.textContent(`${row} [data-figure="waiting"]`)).toBe(String(s.waiting));
      }
      // Codes by name, from the ConceptMap in profiles/: specialties and the diagnoses questioned.
      const label = (stratifier: string, value: string) => page.textContent(`#strata tr[data-stratum="${stratifier}|${value}"] [data-figure="label"]`);
      expect(await label('specialty', specialty.oncology)).toBe(`Medical oncology ${specialty.oncology}`);
      expect(await label('specialty', specialty.cardiology)).toBe(`Cardiology ${specialty.cardiology}`);
      expect(await label('reason', 'C50.911')).toBe('Malignant neoplasm of breast C50.911');
      expect(await label('institution', `Organization/${north}`)).toBe('North Hospital');

      const chart = (id: string) =>
        page.evaluate((canvas) => {
          const drawn = (globalThis as any).Chart.getChart(canvas);
          return { labels: drawn.data.labels, data: drawn.data.datasets[0].data, intervals: drawn.data.datasets[0].intervals };
        }, id);
      // Turnaround in whole bins a person plans by; every delivered opinion in one of them.
      const turnaround = await chart('turnaround-chart');
      expect(turnaround.labels).toEqual(['≤ 1 h', '1–4 h', '4–12 h', '12–24 h', '1–2 days', '2–3 days', '3–7 days', '1–2 weeks', '2–4 weeks', '> 4 weeks']);
      expect(turnaround.data.reduce((a: number, b: number) => a + b, 0)).toBe(all.delivered);
      expect(turnaround.data[0]).toBe(all.delivered); // the test's cases take seconds
      // Cases by month: every month of the period, this one last.
      const volume = await chart('volume-chart');
      expect([volume.labels.length, volume.labels[0], volume.labels.at(-1), volume.data.at(-1)]).toEqual([12, start.slice(0, 7), month, all.opened]);
      // Each specialty's concordant share, drawn with its Wilson interval.
      const concordant = await chart('concordance-chart');
      const bySpecialty = report.strata.filter((s: any) => s.stratifier === 'specialty' && s.delivered > 0);
      expect(concordant.labels).toEqual(bySpecialty.map((s: any) => s.label));
      expect(concordant.data).toEqual(bySpecialty.map((s: any) => s.concordance.concordant.share));
      expect(concordant.intervals).toEqual(bySpecialty.map((s: any) => s.concordance.concordant.ci95));
      // Each chart drew something: a canvas with pixels that are not blank.
      for (const id of ['concordance-chart', 'turnaround-chart', 'volume-chart']) {
        const painted = await page.$eval(`#${id}`, (canvas: any) =>
          Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data as number[]).some((v, i) => i % 4 === 3 && v > 0),
        );
        expect(painted).toBe(true);
      }
      mkdirSync('docs', { recursive: true });
      await page.screenshot({ path: 'docs/analytics.png', fullPage: true });
      expect(statSync('docs/analytics.png').size).toBeGreaterThan(10_000);

      // The sign-in lasts the tab: a reload shows the figures again; "Sign out" ends the session.
      await page.reload();
      await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
      await page.click('#sign-out');
      await page.waitForSelector('button[name="logout"]');
      await page.click('button[name="logout"]');
      await page.waitForSelector('#sign-in:not([hidden])');
      expect(page.url()).toBe(analytics);
      expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('analytics.session'))).toBeNull();

      // A reviewer signs in, and the page says the figures are not theirs to see.
      const other = await browser.newPage();
      await other.goto(analytics);
      await other.click('#sign-in button[type="submit"]');
      await other.waitForSelector('input[name="password"]');
      await other.fill('#username', 'reviewer');
      await other.fill('#password', passwords.reviewer);
      await other.click('button[type="submit"]');
      await other.waitForSelector('#period .status:has-text("Outcome figures are for the analyst, coordinator and admin roles")', { timeout: 15_000 });
      expect(await other.isVisible('#summary [data-figure]')).toBe(false);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
