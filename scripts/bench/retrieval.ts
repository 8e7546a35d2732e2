// Benchmark: retrieval of one patient's chart (5,000 records over 13 types, page size 50, 2 ms added
// latency per request at the proxy) by the service, against a naive sequential loop over
// fhir-kit-client pages that stores each record as it comes, side by side on the same peer and
// database. Reports time to a complete case packet and the service's peak memory (VmHWM).
// Run: npm run bench:retrieval [-- --runs 3 --records 5000]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mongoose from 'mongoose';
import { Client } from 'fhir-kit-client';
import type { Bundle } from '@medplum/fhirtypes';
import { mintAccessToken, newSigningKeyPem } from '../../src/auth/access-tokens.js';
import { loadConfig } from '../../src/config.js';
import { defaultProfilesDir } from '../../src/conformance/artifacts.js';
import { freePort, startLocalServer } from '../../src/database/local-server.js';
import { supportedParameters } from '../../src/fhir/search/parameters.js';
import { createLogger } from '../../src/logger.js';
import { chartTypes } from '../../src/retrieval/retrieve-chart.js';
import { startFaultProxy } from '../peer/fault-proxy.js';
import { seedPatient, startReferringEhr } from '../peer/referring-ehr.js';
import { markdownTable, median, option } from './report.js';

const runs = option('runs', 3);
const records = option('records', 5000);
const pageSize = 50;
const say = (line: string): boolean => process.stdout.write(`${line}\n`);

const log = createLogger('warn');
const database = process.env.MONGODB_URI ? undefined : await startLocalServer(undefined, log);
const uri = process.env.MONGODB_URI ?? (database?.uri as string);
const ehr = await startReferringEhr();
const perType = Math.ceil(records / chartTypes.length);
const patientId = await seedPatient(ehr.repo, perType);
const proxy = await startFaultProxy(ehr.base);
proxy.latencyMs = 2;
const expected = 1 + perType * chartTypes.length;
say(`peer: 1 patient with ${expected} records over ${chartTypes.length + 1} types; page size ${pageSize}; +2 ms a request; ${runs} runs; database ${database?.engine ?? 'MONGODB_URI'}`);

const signingKey = await newSigningKeyPem();
const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));

async function serviceRun(run: number): Promise<{ seconds: number; count: number; peakMb: number }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = { ...process.env, MONGODB_URI: uri, DATABASE_NAME: `bench-service-${run}`, PORT: String(port), HOST: '127.0.0.1', BASE_URL: baseUrl, AUTH_SIGNING_KEY: signingKey, LOG_LEVEL: process.env.BENCH_SERVICE_LOG ?? 'warn', RETRIEVAL_PAGE_SIZE: String(pageSize), RETRIEVAL_POLL_MS: '50' };
  // The benchmark acts as an EHR system with a token the service accepts (signed with the key it was given).
  const token = await mintAccessToken(loadConfig({ BASE_URL: baseUrl, AUTH_SIGNING_KEY: signingKey }), { subject: 'bench', scope: 'system/*.*', role: 'admin' });
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ') ?? []), 'dist/src/main.js'], { env, stdio: ['ignore', process.env.BENCH_SERVICE_LOG ? 'inherit' : 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}/fhir`;
  const json = async (url: string, init: RequestInit = {}): Promise<any> => {
    const response = await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status}`);
    return response.json();
  };
  while (!(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false))) await new Promise((r) => setTimeout(r, 100));
  const started = performance.now();
  const created = await json(`${base}/ServiceRequest`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ ...example, subject: { reference: `${proxy.base}/Patient/${patientId}` }, supportingInfo: [] }),
  });
  // Like an EHR: find the case's Task once, then watch it by id.
  const taskId = (await json(`${base}/Task?focus=ServiceRequest/${created.id}`)).entry[0].resource.id;
  for (;;) {
    const task = await json(`${base}/Task/${taskId}`);
    // Records in: routing has placed the case (no reviewers here, so in the queue).
    if (['records-ready', 'awaiting-assignment', 'assigned'].includes(task?.businessStatus?.coding?.[0]?.code)) break;
    if (task?.status === 'failed') throw new Error(`retrieval failed: ${task.statusReason?.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const packet = await json(`${base}/ServiceRequest/${created.id}/$case-packet`);
  const seconds = (performance.now() - started) / 1000;
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const peakMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return { seconds, count: packet.total + 1, peakMb };
}

async function naiveRun(run: number): Promise<{ seconds: number; count: number }> {
  const connection = await mongoose.createConnection(uri, { dbName: `bench-naive-${run}` }).asPromise();
  const collection = connection.collection('records');
  const client = new Client({ baseUrl: proxy.base });
  const started = performance.now();
  let count = 0;
  await collection.insertOne((await client.read({ resourceType: 'Patient', id: patientId })) as never);
  count++;
  for (const type of chartTypes) {
    const byPatient = supportedParameters(type).has('subject') ? 'subject' : 'patient';
    let page = (await client.search({ resourceType: type, searchParams: { [byPatient]: `Patient/${patientId}`, _count: pageSize } })) as unknown as Bundle | undefined;
    while (page) {
      for (const entry of page.entry ?? []) {
        await collection.insertOne({ ...entry.resource } as never);
        count++;
      }
      page = page.link?.some((l) => l.relation === 'next') ? ((await client.nextPage({ bundle: page as never })) as unknown as Bundle) : undefined;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  await connection.dropDatabase();
  await connection.close();
  return { seconds, count };
}

const service: { seconds: number; count: number; peakMb: number }[] = [];
const naive: { seconds: number; count: number }[] = [];
for (let run = 1; run <= runs; run++) {
  service.push(await serviceRun(run));
  naive.push(await naiveRun(run));
  say(`run ${run}: service ${service[run - 1].seconds.toFixed(2)} s (${service[run - 1].count} records, peak ${service[run - 1].peakMb.toFixed(0)} MB), naive ${naive[run - 1].seconds.toFixed(2)} s (${naive[run - 1].count} records)`);
}
const cleanup = await mongoose.createConnection(uri).asPromise();
for (let run = 1; run <= runs; run++) await cleanup.useDb(`bench-service-${run}`).dropDatabase();
await cleanup.close();

const s = median(service.map((r) => r.seconds));
const n = median(naive.map((r) => r.seconds));
const peak = median(service.map((r) => r.peakMb));
const rows = [
  ['service (paged, 4 types at a time, batched writes)', String(service[0].count), s.toFixed(2), Math.round(service[0].count / s).toLocaleString('en-US'), `${(n / s).toFixed(1)}x`, `${peak.toFixed(0)} MB`],
  ['naive sequential loop over fhir-kit-client pages', String(naive[0].count), n.toFixed(2), Math.round(naive[0].count / n).toLocaleString('en-US'), '1.0x', '-'],
];
const header = ['approach', 'records', 'seconds (median)', 'resources/s', 'vs naive', 'peak RSS'];
say(`\n${markdownTable(header, rows)}`);
say(`\nspeed-up ${(n / s).toFixed(1)}x (target >= 4x): ${n / s >= 4 ? 'met' : 'NOT met'}; peak memory ${peak.toFixed(0)} MB (target < 300 MB): ${peak < 300 ? 'met' : 'NOT met'}`);
if (service.some((r) => r.count !== expected) || naive.some((r) => r.count !== expected)) {
  say(`WARNING: expected ${expected} records in every run`);
}
await proxy.stop();
await ehr.stop();
await database?.stop();
