// Benchmark: the reviewer's workbench opening a case of 5,004 records, in a real headless Chromium,
// against the real service (embedded database, or MONGODB_URI) and the built-in referring EHR. A
// cardiologist signs in; the case is opened from the queue with a click, --runs times; each run times
// the first view (the patient, the questions, the diagnosis questioned) and the whole chart (its
// completeness summary), from the click. The target is the workbench issue's: the first view under
// 1 s on this machine.
// Run: npm run bench:workbench [-- --runs 7 --per-type 417]
import os from 'node:os';
import { createLogger } from '../../src/logger.js';
import { startLocalServer } from '../../src/database/local-server.js';
import { startTestService } from '../../test/harness.js';
import { createOrganization, openCase, registerInstitution, registerReviewer, secondOpinionRequest, specialty } from '../../test/review-cases.js';
import { createAccount, launchChromium, openFromQueue, signInAs } from '../../test/workbench-browser.js';
import { seedPatient, startReferringEhr } from '../peer/referring-ehr.js';
import { markdownTable, median, option } from './report.js';

const runs = option('runs', 7);
const perType = option('per-type', 417);
const targetMs = 1000;
const say = (line: string): boolean => process.stdout.write(`${line}\n`);
if (!(runs > 0 && perType > 0)) throw new Error('want --runs and --per-type above 0');

const localDatabase = process.env.MONGODB_URI ? undefined : await startLocalServer(undefined, createLogger('warn'));
process.env.MONGODB_URI ??= localDatabase?.uri;
const ehr = await startReferringEhr();
const service = await startTestService({ RETRIEVAL_POLL_MS: '100', RETRIEVAL_PAGE_SIZE: '500' });
const browser = await launchChromium();
try {
  const url = service.server.url;
  const patient = await seedPatient(ehr.repo, perType, 'Large');
  await registerInstitution(service, 'North Hospital', ehr.base);
  const centre = await createOrganization(service, 'Second Opinion Centre');
  const role = await registerReviewer(service, { name: 'Cardiologist', organizationId: centre, specialty: specialty.cardiology, capacity: 10 });
  const password = 'cardiologist password 1';
  await createAccount(service, { username: 'cardiologist', role: 'reviewer', fhirUser: `PractitionerRole/${role}`, password, name: 'Dr Carl Cardiologist' });
  say(`retrieving a chart of ${perType * 12} records from the referring EHR ...`);
  const task = await openCase(
    service,
    secondOpinionRequest('BENCH-LARGE-1', ehr.base, patient, {
      performerType: { coding: [{ system: 'http://snomed.info/sct', code: specialty.cardiology, display: 'Cardiology' }] },
    }),
  );
  if (task.owner?.reference !== `PractitionerRole/${role}`) throw new Error(`the case was not assigned to the cardiologist: ${task.status}`);

  const page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
  await signInAs(page, url, 'cardiologist', password);
  await openFromQueue(page, url, task.id); // a warm-up: the app's code, the first connection
  const firstView: number[] = [];
  const wholeChart: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const times = await openFromQueue(page, url, task.id);
    firstView.push(times.firstView);
    wholeChart.push(times.wholeChart);
    say(`run ${run}/${runs}: first view ${times.firstView} ms, whole chart ${times.wholeChart} ms`);
  }
  const records = (await page.textContent('.completeness strong')) ?? '?';
  const row = (what: string, values: number[], target?: number): string[] => [
    what,
    `${median(values)} ms`,
    values.join(', '),
    target ? `under ${target} ms` : '-',
    target ? `${(median(values) / target).toFixed(2)}x${median(values) < target ? ' (met)' : ' (missed)'}` : '-',
  ];
  say(`\ncase of ${records} records, ${runs} runs after a warm-up, load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs\n`);
  say(
    markdownTable(
      ['from the click to', `median of ${runs}`, 'runs (ms)', 'target', 'median vs target'],
      [row('the first view', firstView, targetMs), row('the whole chart', wholeChart)],
    ),
  );
} finally {
  await browser.close();
  await service.stop();
  await ehr.stop();
  await localDatabase?.stop();
}
