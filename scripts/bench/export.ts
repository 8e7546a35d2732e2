// Benchmark: a de-identified system-level Bulk Data export over HTTP of synthetic cases (each a
// Patient, a ServiceRequest, a Task and a final DiagnosticReport, seeded in bulk through the
// repository's createMany), against the identified export of the same store as the baseline, at
// 10,000 and at 100,000 cases: resources/s from the kick-off to the manifest (median of runs) and the
// service process's peak RSS sampled during the export, which stays flat as the store grows ten-fold.
// Run: npm run bench:export [-- --runs 3 --large-runs 3 --cases 100000 --small 10000]
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import mongoose from 'mongoose';
import type { Resource } from '@medplum/fhirtypes';
import { mintAccessToken, newSigningKeyPem } from '../../src/auth/access-tokens.js';
import { loadConfig } from '../../src/config.js';
import { freePort, startLocalServer } from '../../src/database/local-server.js';
import { createLogger } from '../../src/logger.js';
import { createModels } from '../../src/store/models.js';
import { Repository } from '../../src/store/repository.js';
import { markdownTable, median, option } from './report.js';

const runs = option('runs', 3);
/** Runs at the large size; each takes minutes on a 2-core machine. */
const largeRuns = option('large-runs', runs);
const largeCases = option('cases', 100_000);
const smallCases = option('small', 10_000);
const batch = 1000;
const databaseName = 'bench-export';
const say = (line: string): boolean => process.stdout.write(`${line}\n`);

const log = createLogger('warn');
const database = process.env.MONGODB_URI ? undefined : await startLocalServer(undefined, log);
const uri = database ? database.uri : String(process.env.MONGODB_URI);
const signingKey = await newSigningKeyPem();
const connection = await mongoose.createConnection(uri, { dbName: databaseName }).asPromise();
await connection.dropDatabase();
const repository = new Repository(createModels(connection), 'http://127.0.0.1');

/** The four resources of case `i`, with what a de-identified export must take out: names, identifiers, free text, dates. */
function caseOf(i: number): Resource[] {
  const patient = `Patient/bench-${i}`;
  const request = `ServiceRequest/bench-${i}`;
  const day = `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`;
  return [
    {
      resourceType: 'Patient',
      id: `bench-${i}`,
      identifier: [{ system: 'https://ehr.example/mrn', value: `MRN-${i}` }],
      name: [{ family: `Family${i}`, given: ['Synthetic'] }],
      gender: i % 2 ? 'female' : 'male',
      birthDate: `19${40 + (i % 60)}-06-15`,
      address: [{ city: 'Springfield', postalCode: String(10000 + (i % 90000)) }],
      telecom: [{ system: 'phone', value: `+1-555-${String(i % 10000).padStart(4, '0')}` }],
    },
    {
      resourceType: 'ServiceRequest',
      id: `bench-${i}`,
      identifier: [{ system: 'https://ehr.example/orders', value: `ORD-${i}` }],
      status: 'completed',
      intent: 'order',
      subject: { reference: patient },
      code: { coding: [{ system: 'http://snomed.info/sct', code: '103696004', display: 'Patient referral to specialist' }] },
      reasonCode: [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C50.911' }] }],
      authoredOn: `${day}T09:00:00Z`,
      note: [{ text: `Second opinion asked for case ${i}` }],
    },
    {
      resourceType: 'Task',
      id: `bench-${i}`,
      status: 'completed',
      intent: 'order',
      focus: { reference: request },
      for: { reference: patient },
      authoredOn: `${day}T09:05:00Z`,
      lastModified: `${day}T17:00:00Z`,
    },
    {
      resourceType: 'DiagnosticReport',
      id: `bench-${i}`,
      status: 'final',
      subject: { reference: patient },
      basedOn: [{ reference: request }],
      code: { coding: [{ system: 'http://loinc.org', code: '11526-1', display: 'Pathology study' }] },
      effectiveDateTime: `${day}T16:00:00Z`,
      issued: `${day}T17:00:00Z`,
      conclusion: `Opinion on case ${i}: concordant.`,
    },
  ] as Resource[];
}

/** Adds cases [from, to) to the store, a batch of each type at a time. */
async function seed(from: number, to: number): Promise<void> {
  const started = performance.now();
  for (let start = from; start < to; start += batch) {
    const cases = Array.from({ length: Math.min(batch, to - start) }, (_, k) => caseOf(start + k));
    for (let type = 0; type < 4; type++) {
      const taken = await repository.createMany(
        cases.map((c) => c[type]),
        {},
      );
      if (taken.length) throw new Error(`${taken.length} ids already taken: the benchmark database was not empty`);
    }
    const done = Math.min(start + batch, to);
    if (done % 10_000 === 0 || done === to)
      say(
        `  seeded ${done.toLocaleString('en-US')} cases (${Math.round(((done - from) * 4) / ((performance.now() - started) / 1000)).toLocaleString('en-US')} resources/s)`,
      );
  }
}

interface Run {
  seconds: number;
  resources: number;
  files: number;
  peakMb: number;
}

async function exportRun(deidentify: boolean): Promise<Run> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    MONGODB_URI: uri,
    DATABASE_NAME: databaseName,
    PORT: String(port),
    HOST: '127.0.0.1',
    BASE_URL: baseUrl,
    AUTH_SIGNING_KEY: signingKey,
    LOG_LEVEL: 'warn',
    EXPORT_POLL_MS: '100',
  };
  const role = deidentify ? 'analyst' : 'coordinator';
  const token = await mintAccessToken(
    loadConfig({ BASE_URL: baseUrl, AUTH_SIGNING_KEY: signingKey }),
    { subject: `bench-${role}`, scope: 'system/*.rs', role },
    3600,
  );
  const child: ChildProcess = spawn(process.execPath, ['dist/src/main.js'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const headers = { authorization: `Bearer ${token}` };
  try {
    while (
      !(await fetch(`${baseUrl}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      await new Promise((r) => setTimeout(r, 100));
    // Peak RSS while the export runs, sampled from /proc; VmHWM would also count start-up.
    let peakKb = 0;
    const sample = (): void => {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
      peakKb = Math.max(peakKb, kb);
    };
    const sampler = setInterval(sample, 50);
    const started = performance.now();
    const kickOff = await fetch(`${baseUrl}/fhir/$export?_type=Patient,ServiceRequest,Task,DiagnosticReport${deidentify ? '' : '&deidentify=false'}`, {
      headers: { ...headers, prefer: 'respond-async', accept: 'application/fhir+json' },
    });
    if (kickOff.status !== 202) throw new Error(`the kick-off answered ${kickOff.status}`);
    const statusUrl = kickOff.headers.get('content-location') as string;
    let manifest: { output: { count: number }[] } | undefined;
    while (!manifest) {
      const status = await fetch(statusUrl, { headers });
      if (status.status === 200) manifest = (await status.json()) as typeof manifest;
      else if (status.status !== 202) throw new Error(`the status answered ${status.status}`);
      else await new Promise((r) => setTimeout(r, 200));
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    sample();
    await fetch(statusUrl, { method: 'DELETE', headers });
    return { seconds, resources: manifest.output.reduce((n, o) => n + o.count, 0), files: manifest.output.length, peakMb: peakKb / 1024 };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const results: { cases: number; deidentify: boolean; runs: Run[] }[] = [];
async function measure(cases: number, runs: number): Promise<void> {
  for (const deidentify of [true, false]) {
    const done: Run[] = [];
    for (let run = 1; run <= runs; run++) {
      const r = await exportRun(deidentify);
      if (r.resources !== cases * 4) throw new Error(`expected ${cases * 4} resources, the manifest counts ${r.resources}`);
      say(
        `  ${deidentify ? 'de-identified' : 'identified'} run ${run}: ${r.seconds.toFixed(1)} s, ${r.resources} resources in ${r.files} files, peak RSS ${r.peakMb.toFixed(0)} MB`,
      );
      done.push(r);
    }
    results.push({ cases, deidentify, runs: done });
  }
}

say(`seeding ${smallCases.toLocaleString('en-US')} cases (4 resources each); database ${database?.engine ?? 'MONGODB_URI'}`);
await seed(0, smallCases);
await measure(smallCases, runs);
say(`seeding up to ${largeCases.toLocaleString('en-US')} cases`);
await seed(smallCases, largeCases);
await measure(largeCases, largeRuns);
await connection.dropDatabase();
await connection.close();

const rateOf = (r: { runs: Run[]; cases: number }): number => (r.cases * 4) / median(r.runs.map((x) => x.seconds));
const rows = results.map((r) => {
  const n = r.runs.length;
  const baseline = results.find((b) => b.cases === r.cases && !b.deidentify) as (typeof results)[number];
  return [
    r.deidentify ? 'de-identified (analyst)' : 'identified (baseline)',
    `${r.cases.toLocaleString('en-US')} (${n} run${n > 1 ? 's' : ''})`,
    (r.cases * 4).toLocaleString('en-US'),
    median(r.runs.map((x) => x.seconds)).toFixed(1),
    Math.round(rateOf(r)).toLocaleString('en-US'),
    `${(rateOf(r) / rateOf(baseline)).toFixed(2)}x`,
    `${median(r.runs.map((x) => x.peakMb)).toFixed(0)} MB`,
  ];
});
say(`\n${markdownTable(['export', 'cases', 'resources', 'seconds (median)', 'resources/s', 'vs identified', 'peak RSS (median)'], rows)}`);
const peak = (cases: number): number => median(results.filter((r) => r.cases === cases && r.deidentify)[0].runs.map((x) => x.peakMb));
say(
  `\nde-identified peak RSS at ${largeCases.toLocaleString('en-US')} cases vs ${smallCases.toLocaleString('en-US')}: ${(peak(largeCases) / peak(smallCases)).toFixed(2)}x`,
);
await database?.stop();
