// Benchmark: retrieval of one patient's chart (5,000 records over 13 types, page size 50, 2 ms added
// latency per request at the proxy) by the service, side by side on the same peer, proxy and
// database with two loops over fhir-kit-client pages: the naive one (one type after another, one
// insert per record) the service must beat, and a floor (4 types at a time, one insertMany per
// page, then one read back of everything; no validation, labelling, versions or Provenance) it
// should come close to. Reports time to a complete case packet and the service's peak memory (VmHWM).
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
import { createLogger } from '../../src/logger.js';
import { chartTypes, patientParameter } from '../../src/retrieval/retrieve-chart.js';
import { startFaultProxy } from '../peer/fault-proxy.js';
import { seedPatient, startReferringEhr } from '../peer/referring-ehr.js';
import { markdownTable, median, option } from './report.js';

const runs = option('runs', 3);
const records = option('records', 5000);
const pageSize = 50;
/** Types fetched at a time by the floor: the service's default RETRIEVAL_CONCURRENCY when the target was set. */
const floorConcurrency = 4;
const targets = { vsNaive: 3, vsFloor: 1.5, peakMb: 300 };
const say = (line: string): boolean => process.stdout.write(`${line}\n`);
/** CPU seconds a process has used (user and system), from /proc: clock ticks of 1/100 s. */
const cpuSecondsOf = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
/** CPU seconds this process (the peer, the proxy and the loops' clients) has used. */
const ownCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

const log = createLogger('warn');
const database = process.env.MONGODB_URI ? undefined : await startLocalServer(undefined, log);
const uri = database ? database.uri : String(process.env.MONGODB_URI);
const ehr = await startReferringEhr();
const perType = Math.ceil(records / chartTypes.length);
const patientId = await seedPatient(ehr.repo, perType);
const proxy = await startFaultProxy(ehr.base);
proxy.latencyMs = 2;
const expected = 1 + perType * chartTypes.length;
say(
  `peer: 1 patient with ${expected} records over ${chartTypes.length + 1} types; page size ${pageSize}; +2 ms a request; ${runs} runs; database ${database?.engine ?? 'MONGODB_URI'}`,
);

const signingKey = await newSigningKeyPem();
const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));

interface Run {
  seconds: number;
  count: number;
  /** CPU seconds used meanwhile by the service (if any) and by this process (peer, proxy, client); the database's aside. */
  cpu: number;
}

interface ServiceRun extends Run {
  /** From the POST to the Task saying the records are in. */
  readySeconds: number;
  peakMb: number;
  /** Resident memory once started, before the request: what retrieval's peak adds to. */
  startMb: number;
}

async function serviceRun(run: number): Promise<ServiceRun> {
  // A fresh database: jobs left by an earlier, interrupted benchmark would be taken up first.
  const previous = await mongoose.createConnection(uri, { dbName: `bench-service-${run}` }).asPromise();
  await previous.dropDatabase();
  await previous.close();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    MONGODB_URI: uri,
    DATABASE_NAME: `bench-service-${run}`,
    PORT: String(port),
    HOST: '127.0.0.1',
    BASE_URL: baseUrl,
    AUTH_SIGNING_KEY: signingKey,
    LOG_LEVEL: process.env.BENCH_SERVICE_LOG ?? 'warn',
    RETRIEVAL_PAGE_SIZE: String(pageSize),
    RETRIEVAL_POLL_MS: '50',
  };
  // The benchmark acts as an EHR system with a token the service accepts (signed with the key it was given).
  const token = await mintAccessToken(loadConfig({ BASE_URL: baseUrl, AUTH_SIGNING_KEY: signingKey }), {
    subject: 'bench',
    scope: 'system/*.*',
    role: 'admin',
  });
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ') ?? []), 'dist/src/main.js'], {
    env,
    stdio: ['ignore', process.env.BENCH_SERVICE_LOG ? 'inherit' : 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}/fhir`;
  const json = async (url: string, init: RequestInit = {}): Promise<any> => {
    const response = await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status}`);
    return response.json();
  };
  // A run that fails (or a retrieval that never ends) stops its service process too.
  const deadline = Date.now() + 300_000;
  try {
    while (
      !(await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error('the service did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The referring institution, registered as hospital IT registers one: its server is the proxy.
    const post = (type: string, body: object): Promise<any> =>
      json(`${base}/${type}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: type, ...body }) });
    const organization = await post('Organization', { name: 'Bench Hospital' });
    await post('Endpoint', {
      status: 'active',
      address: proxy.base,
      managingOrganization: { reference: `Organization/${organization.id}` },
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
      payloadType: [{ text: 'FHIR R4' }],
    });
    const startMb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    const started = performance.now();
    const cpuBefore = cpuSecondsOf(child.pid as number) + ownCpuSeconds();
    const created = await json(`${base}/ServiceRequest`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ ...example, subject: { reference: `${proxy.base}/Patient/${patientId}` }, supportingInfo: undefined }),
    });
    // Like an EHR: find the case's Task once, then watch it by id.
    const taskId = (await json(`${base}/Task?focus=ServiceRequest/${created.id}`)).entry[0].resource.id;
    for (;;) {
      const task = await json(`${base}/Task/${taskId}`);
      // Records in: routing has placed the case (no reviewers here, so in the queue).
      if (['records-ready', 'awaiting-assignment', 'assigned'].includes(task?.businessStatus?.coding?.[0]?.code)) break;
      if (task?.status === 'failed') throw new Error(`retrieval failed: ${task.statusReason?.text}`);
      if (Date.now() > deadline) throw new Error('retrieval did not end in time');
      await new Promise((r) => setTimeout(r, 50));
    }
    const readySeconds = (performance.now() - started) / 1000;
    // The packet holds the case's request and Task (at the request's id), the records and, last, its summary.
    const packet = await json(`${base}/ServiceRequest/${created.id}/$case-packet`);
    const seconds = (performance.now() - started) / 1000;
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const peakMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    const cpu = cpuSecondsOf(child.pid as number) + ownCpuSeconds() - cpuBefore;
    return {
      seconds,
      readySeconds,
      count: (packet.entry ?? []).filter(
        (e: { resource?: { id?: string; resourceType?: string } }) => e.resource?.id !== created.id && e.resource?.resourceType !== 'OperationOutcome',
      ).length,
      peakMb,
      startMb,
      cpu,
    };
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
  }
}

async function naiveRun(run: number): Promise<Run> {
  const connection = await mongoose.createConnection(uri, { dbName: `bench-naive-${run}` }).asPromise();
  const collection = connection.collection('records');
  const client = new Client({ baseUrl: proxy.base });
  const started = performance.now();
  const cpuBefore = ownCpuSeconds();
  let count = 0;
  await collection.insertOne(await client.read({ resourceType: 'Patient', id: patientId }));
  count++;
  for (const type of chartTypes) {
    const byPatient = patientParameter(type);
    let page = (await client.search({ resourceType: type, searchParams: { [byPatient]: `Patient/${patientId}`, _count: pageSize } })) as unknown as
      Bundle | undefined;
    while (page) {
      for (const entry of page.entry ?? []) {
        await collection.insertOne({ ...entry.resource });
        count++;
      }
      page = page.link?.some((l) => l.relation === 'next') ? ((await client.nextPage({ bundle: page as never })) as unknown as Bundle) : undefined;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = ownCpuSeconds() - cpuBefore;
  await connection.dropDatabase();
  await connection.close();
  return { seconds, count, cpu };
}

/**
 * The end-to-end floor: the same fetches, a few types at a time, each page stored with one
 * insertMany as it comes, then everything read back once; none of the service's own work.
 */
async function floorRun(run: number): Promise<Run> {
  const connection = await mongoose.createConnection(uri, { dbName: `bench-floor-${run}` }).asPromise();
  const collection = connection.collection('records');
  const client = new Client({ baseUrl: proxy.base });
  const started = performance.now();
  const cpuBefore = ownCpuSeconds();
  await collection.insertOne(await client.read({ resourceType: 'Patient', id: patientId }));
  const queue = [...chartTypes];
  await Promise.all(
    Array.from({ length: floorConcurrency }, async () => {
      for (let type = queue.shift(); type !== undefined; type = queue.shift()) {
        const byPatient = patientParameter(type);
        let page = (await client.search({ resourceType: type, searchParams: { [byPatient]: `Patient/${patientId}`, _count: pageSize } })) as unknown as
          Bundle | undefined;
        while (page) {
          const resources = (page.entry ?? []).map((e) => ({ ...e.resource }));
          if (resources.length) await collection.insertMany(resources);
          page = page.link?.some((l) => l.relation === 'next') ? ((await client.nextPage({ bundle: page as never })) as unknown as Bundle) : undefined;
        }
      }
    }),
  );
  let count = 0;
  for await (const _ of collection.find({}, { batchSize: 500 })) count++;
  const seconds = (performance.now() - started) / 1000;
  const cpu = ownCpuSeconds() - cpuBefore;
  await connection.dropDatabase();
  await connection.close();
  return { seconds, count, cpu };
}

const service: ServiceRun[] = [];
const naive: Run[] = [];
const floor: Run[] = [];
for (let run = 1; run <= runs; run++) {
  // Interleaved, so that a slow spell on the machine falls on all three alike, and in turn, so that
  // none always comes just after the service (whose database is still writing out what it stored).
  const order = [0, 1, 2].map((k) => (k + run - 1) % 3);
  let s: ServiceRun | undefined;
  let n: Run | undefined;
  let f: Run | undefined;
  for (const k of order) {
    if (k === 0) s = await serviceRun(run);
    else if (k === 1) n = await naiveRun(run);
    else f = await floorRun(run);
  }
  if (!s || !n || !f) throw new Error('a run was left out');
  service.push(s);
  naive.push(n);
  floor.push(f);
  say(
    `run ${run}: service ${s.seconds.toFixed(2)} s (records in at ${s.readySeconds.toFixed(2)} s; ${s.count} records, ${s.startMb.toFixed(0)} MB when started, peak ${s.peakMb.toFixed(0)} MB, CPU ${s.cpu.toFixed(2)} s), ` +
      `naive ${n.seconds.toFixed(2)} s (${n.count}, CPU ${n.cpu.toFixed(2)} s), floor ${f.seconds.toFixed(2)} s (${f.count}, CPU ${f.cpu.toFixed(2)} s)`,
  );
}
const cleanup = await mongoose.createConnection(uri).asPromise();
for (let run = 1; run <= runs; run++) await cleanup.useDb(`bench-service-${run}`).dropDatabase();
await cleanup.close();

const s = median(service.map((r) => r.seconds));
const ready = median(service.map((r) => r.readySeconds));
const n = median(naive.map((r) => r.seconds));
const f = median(floor.map((r) => r.seconds));
const peak = median(service.map((r) => r.peakMb));
const cpu = (of: Run[]): string => median(of.map((r) => r.cpu)).toFixed(2);
const rate = (count: number, seconds: number): string => Math.round(count / seconds).toLocaleString('en-US');
const rows = [
  [
    `service (paged, ${loadConfig({ RETRIEVAL_CONCURRENCY: process.env.RETRIEVAL_CONCURRENCY }).retrieval.concurrency} types at a time)`,
    String(service[0].count),
    s.toFixed(2),
    rate(service[0].count, s),
    `${(n / s).toFixed(2)}x`,
    `${(s / f).toFixed(2)}x`,
    cpu(service),
    `${peak.toFixed(0)} MB`,
  ],
  [
    'naive: one type at a time, insertOne per record',
    String(naive[0].count),
    n.toFixed(2),
    rate(naive[0].count, n),
    '1.00x',
    `${(n / f).toFixed(2)}x`,
    cpu(naive),
    '-',
  ],
  [
    `floor: ${floorConcurrency} types at a time, insertMany per page, read back`,
    String(floor[0].count),
    f.toFixed(2),
    rate(floor[0].count, f),
    `${(n / f).toFixed(2)}x`,
    '1.00x',
    cpu(floor),
    '-',
  ],
];
// Speed-up: the naive loop's time over this one's; to the floor: this one's time over the floor's.
// CPU: seconds used by the service and this process (peer, proxy, client), not the database: on a
// busy machine the times follow the CPU a run needs more than how well it overlaps.
const header = ['approach', 'records', 'seconds (median)', 'resources/s', 'speed-up vs naive', 'time vs floor', 'CPU s', 'peak RSS'];
say(`\n${markdownTable(header, rows)}`);
say(
  `\nservice: records in after ${ready.toFixed(2)} s (median), the case packet read after that; ${median(service.map((r) => r.startMb)).toFixed(0)} MB resident when started, before the request (median)`,
);
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
say(`${verdict(n / s >= targets.vsNaive)} speed-up over naive ${(n / s).toFixed(2)}x (target >= ${targets.vsNaive}x)`);
say(`${verdict(s / f <= targets.vsFloor)} service/floor ${(s / f).toFixed(2)}x (target <= ${targets.vsFloor}x)`);
say(`${verdict(peak < targets.peakMb)} peak RSS ${peak.toFixed(0)} MB (target < ${targets.peakMb} MB)`);
if ([...service, ...naive, ...floor].some((r) => r.count !== expected)) {
  say(`WARNING: expected ${expected} records in every run`);
}
await proxy.stop();
await ehr.stop();
await database?.stop();
