// Benchmark: the service as its store grows. Seeds --small (1,000) and then, continuing, --large
// (20,000) second-opinion cases (a ServiceRequest and its Task each) and at each size measures over
// HTTP, as an EHR calls the service: p50/p99 of a search by identifier, a page of the work queue
// (Task?status=), a conditional create (If-None-Exist on the identifier) and a read; and the create
// throughput at concurrency 16 beside the raw driver inserting documents of the same shape into a
// scratch collection on the same server. Prints the query plans behind the searches as well.
// The measured creates open real cases, whose charts the service retrieves from a referring EHR peer
// in the background; that work is let finish before each burst and each size. Every writing run adds
// its creates to the store, hence one run by default (the reading runs always see the exact size).
// Run: npm run bench:scale [-- --small 1000 --large 20000 --runs 1 --samples 200 --creates 800 --keep 0 --declared-indexes 0 --burst-profile 0]
// (--keep 1 leaves the database for inspection; --declared-indexes 1 builds the indexes models.ts declares first;
// --burst-profile 1 prints where the burst's time inside the database went, by operation.)
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type mongoose from 'mongoose';
import type { ServiceRequest, Task } from '@medplum/fhirtypes';
import { mintAccessToken, newSigningKeyPem, TokenIssuer } from '../../src/auth/access-tokens.js';
import { BearerVerifier } from '../../src/auth/bearer.js';
import { Gate } from '../../src/access/gate.js';
import { loadRecordIdKey } from '../../src/retrieval/record-id-key.js';
import { loadConfig } from '../../src/config.js';
import { defaultProfilesDir, hasSecondOpinionCategory, loadConformance } from '../../src/conformance/artifacts.js';
import { openDatabase } from '../../src/database/connect.js';
import { freePort, startLocalServer } from '../../src/database/local-server.js';
import { buildSort } from '../../src/store/search/query.js';
import { parseSearch, type QueryParams } from '../../src/fhir/search/search.js';
import { caseOpener } from '../../src/intake/open-case.js';
import { clinicalResourceTypes } from '../../src/base/resource-types.js';
import { chartTypes } from '../../src/retrieval/retrieve-chart.js';
import { createLogger } from '../../src/logger.js';
import { installReviewWorkflow } from '../../src/review/workflow.js';
import { buildService } from '../../src/service.js';
import type { JobQueue } from '../../src/store/jobs.js';
import { createModels } from '../../src/store/models.js';
import { seedPatient, startReferringEhr } from '../peer/referring-ehr.js';
import { markdownTable, median, option, percentile } from './report.js';

const small = option('small', 1000);
const large = option('large', 20_000);
const runs = option('runs', 1);
const samples = option('samples', 200);
const creates = option('creates', 800);
const keep = option('keep', 0) === 1;
const declaredIndexes = option('declared-indexes', 0) === 1;
const burstProfile = option('burst-profile', 0) === 1;
/** What a case's retrieval writes: left out of the documents the raw baseline inserts for a create. */
const retrievalCollections = new Set([...clinicalResourceTypes, ...chartTypes, 'cursors']);
const seedBatch = 1000;
const concurrency = 16;
const warmUp = 20;
const say = (line: string): boolean => process.stdout.write(`${line}\n`);
/** The machine's load beside the figures: other work on it shows in every latency. */
const load = (): string => `load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`;
if (!(small >= 20 && large > small && samples > 0 && creates > 0 && runs > 0))
  throw new Error('want 20 <= --small < --large, and --samples, --creates, --runs above 0');

const log = createLogger('warn');
const localDatabase = process.env.MONGODB_URI ? undefined : await startLocalServer(undefined, log);
const uri = process.env.MONGODB_URI ?? localDatabase?.uri;
const databaseName = `bench-scale-${Date.now().toString(36)}`;
const orderSystem = 'https://ehr.example/orders';
const example = JSON.parse(
  readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'),
) as ServiceRequest;

// The referring institution's FHIR server: the measured creates open real cases, whose charts the
// service then retrieves from here in the background, as it would in production.
const ehr = await startReferringEhr();
const patients: string[] = [];
for (let i = 0; i < 20; i++) patients.push(await seedPatient(ehr.repo, 1, `Scale${i}`));
const requestFor = (order: number): ServiceRequest => ({
  ...example,
  identifier: [{ system: orderSystem, value: `SCALE-${order}` }],
  subject: { reference: `${ehr.base}/Patient/${patients[order % patients.length]}` },
  supportingInfo: undefined,
});

const signingKey = await newSigningKeyPem();
const port = await freePort();
const baseUrl = `http://127.0.0.1:${port}`;
const fhirBase = `${baseUrl}/fhir`;
const config = loadConfig({
  MONGODB_URI: uri,
  DATABASE_NAME: databaseName,
  PORT: String(port),
  HOST: '127.0.0.1',
  BASE_URL: baseUrl,
  AUTH_SIGNING_KEY: signingKey,
  LOG_LEVEL: 'warn',
});
// An admin EHR client, with a token the service accepts (signed with the key it was given), valid for the whole run.
const token = await mintAccessToken(config, { subject: 'bench-scale', scope: 'system/*.*', role: 'admin' }, 6 * 3600);

let child: ChildProcess | undefined;
let seedingDatabase: Awaited<ReturnType<typeof openDatabase>> | undefined;
let failed = false;
try {
  child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ') ?? []), 'dist/src/main.js'], {
    env: {
      ...process.env,
      MONGODB_URI: uri,
      DATABASE_NAME: databaseName,
      PORT: String(port),
      HOST: '127.0.0.1',
      BASE_URL: baseUrl,
      AUTH_SIGNING_KEY: signingKey,
      LOG_LEVEL: process.env.BENCH_SERVICE_LOG ?? 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
    },
    stdio: ['ignore', process.env.BENCH_SERVICE_LOG ? 'inherit' : 'ignore', 'inherit'],
  });
  await ready(child);
  say(
    `service pid ${child.pid} on ${baseUrl}, database ${databaseName} on ${localDatabase?.engine ?? uri}; ${runs} run(s), ${samples} samples an operation, ${creates} creates at c=${concurrency}`,
  );

  // The referring institution, registered as hospital IT registers one.
  const organization = await fhir('POST', '/Organization', { resourceType: 'Organization', name: 'Scale Hospital' });
  await fhir('POST', '/Endpoint', {
    resourceType: 'Endpoint',
    status: 'active',
    address: ehr.base,
    managingOrganization: { reference: `Organization/${organization.id}` },
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
    payloadType: [{ text: 'FHIR R4' }],
  });

  // Seeding runs in this process on a connection opened the service's way (openDatabase: the same
  // indexes, or lack of them, as the service makes). The first cases (one per patient) go through the
  // service's whole write pipeline: FhirService.createValidated with its labeller and intake's case
  // opener, whose Task passes the review workflow's hooks. Every other case is bulk-inserted through
  // Repository.createMany (the store's own prepare and labeller) as a copy of those: its request varies
  // in identifier and patient, and its Task is its patient's template Task focused on it. Bulk Tasks are
  // stored at version 1 without the two Provenances and the history entry the pipeline writes beside
  // them, which no measured query reads. Seeded cases get no retrieval job: their charts are not
  // measured, and 20,000 retrievals from the peer would otherwise run beside the measurements.
  seedingDatabase = await openDatabase(config, log);
  const db = seedingDatabase.connection.db as mongoose.mongo.Db;
  const conformance = loadConformance();
  const models = createModels(seedingDatabase.connection);
  if (declaredIndexes) {
    // Diagnostic: the indexes models.ts declares, which the service (autoIndex off) never builds.
    await Promise.all(['ServiceRequest', 'Task'].map((type) => models.resources(type).createIndexes()));
  }
  const { service: seeding, institutions } = buildService(models, conformance, baseUrl, undefined);
  loadRecordIdKey(config, log);
  installReviewWorkflow(seeding, institutions, config.review);
  const noRetrieval = { enqueue: async () => undefined } as unknown as JobQueue;
  seeding.onCommitted(
    'ServiceRequest',
    caseOpener(seeding, noRetrieval, institutions, () => undefined),
  );

  /** The requests stored so far: their ids and order numbers (the identifier's value is SCALE-<order>). */
  const stored: { id: string; order: number }[] = [];
  let nextOrder = 0;
  const templates: Task[] = [];
  for (let i = 0; i < patients.length; i++) {
    const order = nextOrder++;
    const { resource } = await seeding.createValidated(requestFor(order), Gate.service);
    stored.push({ id: resource.id as string, order });
    templates.push((await seeding.repository.read('Task', resource.id as string)) as Task);
  }
  // The queue is searched by the status intake leaves a new case's Task in.
  const queueStatus = templates[0].status;

  async function seedTo(size: number): Promise<void> {
    const started = performance.now();
    const count = size - stored.length;
    for (let done = 0; done < count;) {
      const batch = Array.from({ length: Math.min(seedBatch, count - done) }, () => nextOrder++);
      const requests = batch.map((order) => ({ ...(seeding.validResource('ServiceRequest', requestFor(order)) as ServiceRequest), id: randomUUID() }));
      const tasks = requests.map((request, i): Task => {
        const template = templates[batch[i] % patients.length];
        return {
          ...template,
          id: request.id,
          focus: { reference: `ServiceRequest/${request.id}` },
          relevantHistory: template.relevantHistory?.map(() => ({ reference: `Provenance/${randomUUID()}` })),
        };
      });
      if ((await seeding.repository.createMany(requests, {})).length || (await seeding.repository.createMany(tasks, {})).length)
        throw new Error('a seeded id was taken');
      stored.push(...requests.map((r, i) => ({ id: r.id, order: batch[i] })));
      done += batch.length;
      if (stored.length % 5000 < seedBatch) say(`  ${stored.length.toLocaleString('en-US')} cases stored`);
    }
    const seconds = (performance.now() - started) / 1000;
    if (count > 0)
      say(
        `seeded ${count.toLocaleString('en-US')} cases in ${seconds.toFixed(1)} s (${Math.round(count / seconds)} a second); ${stored.length.toLocaleString('en-US')} stored`,
      );
  }

  const timed = async (work: () => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
  const pick = (): { id: string; order: number } => stored[Math.floor(Math.random() * stored.length)];
  const searchByIdentifier = async (): Promise<void> => {
    const { order } = pick();
    const bundle = await fhir('GET', `/ServiceRequest?identifier=${encodeURIComponent(`${orderSystem}|SCALE-${order}`)}`);
    if (bundle.total !== 1) throw new Error(`identifier SCALE-${order} found ${bundle.total} times`);
  };
  const queuePage = async (): Promise<void> => {
    const bundle = await fhir('GET', `/Task?status=${queueStatus}&_count=10`);
    if (bundle.entry?.length !== 10) throw new Error(`Task?status=${queueStatus} answered ${bundle.entry?.length ?? 0} entries`);
  };
  const read = async (): Promise<void> => {
    await fhir('GET', `/ServiceRequest/${pick().id}`);
  };
  const create = async (): Promise<void> => {
    const order = nextOrder++;
    const created = await fhir(
      'POST',
      '/ServiceRequest',
      requestFor(order),
      { 'if-none-exist': `identifier=${encodeURIComponent(`${orderSystem}|SCALE-${order}`)}` },
      [201],
    );
    stored.push({ id: created.id, order });
  };
  const latencies = async (work: () => Promise<void>): Promise<number[]> => {
    for (let i = 0; i < warmUp; i++) await work();
    const times: number[] = [];
    for (let i = 0; i < samples; i++) times.push(await timed(work));
    return times;
  };
  const scratch = db.collection('bench_raw_inserts');
  /** Raw driver inserts of the stored request's document as the service wrote it, under new keys. */
  const rawInserts = async (): Promise<number> => {
    const template = await db.collection('ServiceRequest').findOne({ deleted: false });
    const seconds =
      (await timed(() =>
        inParallel(creates, concurrency, async (i) => {
          await scratch.insertOne({
            ...template,
            _id: `ServiceRequest/raw-${i}` as never,
            id: `raw-${i}`,
            idx: { ...template?.idx, identifier: [`RAW-${i}`, `${orderSystem}|RAW-${i}`] },
          });
        }),
      )) / 1000;
    await scratch.drop();
    return creates / seconds;
  };
  /** Waits until the retrieval jobs the measured creates queued are done, so the next figures are not measured beside them. */
  const settle = async (): Promise<void> => {
    const started = performance.now();
    while ((await db.collection('jobs').countDocuments({})) > 0) {
      if (performance.now() - started > 600_000) throw new Error('retrieval jobs still queued after 10 minutes');
      await new Promise((r) => setTimeout(r, 500));
    }
    const seconds = (performance.now() - started) / 1000;
    if (seconds > 1) say(`  waited ${seconds.toFixed(0)} s for the cases' chart retrievals to finish`);
  };

  /**
   * The database operations of one create, as the server's profiler records them (every operation on
   * the benchmark's database from the request until the outcome ledger has counted the case, but the
   * workers' idle claims; the claim of the case's retrieval job and any of its first steps are in),
   * and the documents it left written: what the raw-driver baseline inserts for each create.
   */
  /** The server's profiler, from now on, on an empty profile (with --burst-profile 1, over the burst too). */
  const startProfiling = async (): Promise<void> => {
    await db.command({ profile: 0 });
    await db
      .collection('system.profile')
      .drop()
      .catch(() => undefined);
    await db.command({ profile: 2 });
  };
  /** Where the burst's time inside the database went, by operation. */
  const printProfile = async (): Promise<void> => {
    await db.command({ profile: 0 });
    const byOp = new Map<string, { count: number; ms: number }>();
    for (const entry of await db.collection('system.profile').find({}).toArray()) {
      const command = entry.command ?? {};
      const key = `${entry.op === 'command' ? Object.keys(command)[0] : entry.op} ${String(entry.ns).slice(databaseName.length + 1)}`;
      const sum = byOp.get(key) ?? { count: 0, ms: 0 };
      byOp.set(key, { count: sum.count + 1, ms: sum.ms + Number(entry.millis ?? 0) });
    }
    const rows = [...byOp].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25);
    say(`\nthe burst's time inside the database by operation (profiler, ${creates} creates):`);
    say(
      markdownTable(
        ['operation collection', 'count', 'ms in all', 'ms each'],
        rows.map(([k, v]) => [k, String(v.count), v.ms.toFixed(0), (v.ms / v.count).toFixed(2)]),
      ),
    );
  };

  const profileCreate = async (): Promise<{ commands: Map<string, number>; written: Map<string, Record<string, unknown>[]>; serverMs: number }> => {
    await settle();
    await startProfiling();
    await create();
    // The outcome ledger counts the new case after the answer: the profile goes on until it has.
    const caseId = stored.at(-1)?.id as never;
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
      const look = { comment: 'bench' }; // left out of the count below
      if ((await db.collection('outcome_cases').findOne({ _id: caseId }, look)) && !(await db.collection('outcome_changes').findOne({ _id: caseId }, look)))
        break;
    }
    await db.command({ profile: 0 });
    const commands = new Map<string, number>();
    let serverMs = 0;
    const touched = new Map<string, Set<unknown>>();
    for (const entry of await db.collection('system.profile').find({}).toArray()) {
      const collection = String(entry.ns).slice(databaseName.length + 1);
      const command = entry.command ?? {};
      const name = entry.op === 'command' ? Object.keys(command)[0] : entry.op;
      // The workers' claims that found nothing to do (retrieval jobs, deliveries owed) are not the create's,
      // nor are the change feed's reads of what was written (a database-wide stream's getMore).
      if ((name === 'findAndModify' && entry.nMatched === 0) || command.comment === 'bench' || collection === '$cmd.aggregate') continue;
      commands.set(`${name} ${collection}`, (commands.get(`${name} ${collection}`) ?? 0) + 1);
      serverMs += Number(entry.millis ?? 0);
      const ids =
        entry.op === 'insert'
          ? (command.documents ?? []).map((d: { _id: unknown }) => d._id)
          : ['update', 'findAndModify'].includes(name)
            ? [command.q?._id ?? command.query?._id]
            : [];
      for (const id of ids.filter((i: unknown) => typeof i === 'string')) touched.set(collection, new Set([...(touched.get(collection) ?? []), id]));
    }
    const written = new Map<string, Record<string, unknown>[]>();
    // The case's retrieval may have begun meanwhile: the chart's records and cursors are its, not the create's.
    for (const [collection, ids] of touched)
      if (!retrievalCollections.has(collection))
        written.set(
          collection,
          await db
            .collection(collection)
            .find({ _id: { $in: [...ids] as never[] } })
            .toArray(),
        );
    await settle();
    return { commands, written, serverMs };
  };
  /**
   * Where one create's time goes, each part timed alone here (median of `samples`, one at a time): an
   * HTTP round trip to the service (GET /healthz: express, no token), the access token's check, the
   * request's validation, its labels (the Endpoint lookup among them), a database round trip (ping),
   * set beside one sequential case create; the profiler adds the create's operations and their time
   * inside the database.
   */
  const createCost = async (): Promise<Record<string, number>> => {
    const verifier = new BearerVerifier(await TokenIssuer.load(config), undefined);
    const body = seeding.validResource('ServiceRequest', requestFor(0));
    const owner = (await db.collection('ServiceRequest').findOne({ deleted: false, access: /^Organization\// }))?.access?.find((a: string) =>
      a.startsWith('Organization/'),
    );
    const medianOf = async (work: () => Promise<unknown>): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < samples; i++) times.push(await timed(work));
      return median(times);
    };
    return {
      http: await medianOf(() => fetch(`${baseUrl}/healthz`).then((r) => r.text())),
      auth: await medianOf(() => verifier.verify(token)),
      validation: await medianOf(async () => seeding.validResource('ServiceRequest', requestFor(0))),
      labels: await medianOf(() => seeding.repository.labelsFor({ ...body, id: randomUUID() }, { owner })),
      ping: await medianOf(() => db.command({ ping: 1 })),
    };
  };
  /** Raw driver inserts, at c=16, of the documents one create wrote (each under a new key, one insert a document, all at once): `creates` times. */
  const rawCaseInserts = async (written: Map<string, Record<string, unknown>[]>): Promise<number> => {
    const documents = [...written].flatMap(([collection, docs]) => docs.map((doc) => ({ collection, doc })));
    const seconds =
      (await timed(() =>
        inParallel(creates, concurrency, async (i) => {
          await Promise.all(
            documents.map(({ collection, doc }) => db.collection(`bench_raw_${collection}`).insertOne({ ...doc, _id: `${String(doc._id)}#${i}` as never })),
          );
        }),
      )) / 1000;
    await Promise.all([...written.keys()].map((collection) => db.collection(`bench_raw_${collection}`).drop()));
    return creates / seconds;
  };
  /** A create of a plain ServiceRequest (not a second opinion: no case, no workflow), beside raw inserts of its stored document. */
  const plainCreates = async (): Promise<{ service: number; raw: number }> => {
    const plain = (order: number): ServiceRequest => ({ ...requestFor(order), meta: undefined, category: undefined });
    if (hasSecondOpinionCategory(conformance, plain(0))) throw new Error('the plain request is still a second-opinion request');
    const ids: string[] = [];
    const service =
      creates /
      ((await timed(() =>
        inParallel(creates, concurrency, async () => {
          ids.push((await fhir('POST', '/ServiceRequest', plain(nextOrder++), {}, [201])).id);
        }),
      )) /
        1000);
    const template = await db.collection('ServiceRequest').findOne({ _id: `ServiceRequest/${ids[0]}` as never });
    const raw =
      creates /
      ((await timed(() =>
        inParallel(creates, concurrency, async (i) => {
          await scratch.insertOne({ ...template, _id: `ServiceRequest/plain-raw-${i}` as never });
        }),
      )) /
        1000);
    await scratch.drop();
    // They are no cases: taken out again, so that the store keeps its size in cases.
    await db.collection('ServiceRequest').deleteMany({ _id: { $in: ids.map((id) => `ServiceRequest/${id}`) as never[] } });
    return { service, raw };
  };

  type Op = 'identifier' | 'queue' | 'create' | 'read';
  type Figures = Record<Op, { p50: number; p99: number }> & {
    throughput: number;
    raw: number;
    rawCase: number;
    plain: number;
    plainRaw: number;
    operationsPerCreate: number;
    profiled: Awaited<ReturnType<typeof profileCreate>>;
    cost: Awaited<ReturnType<typeof createCost>>;
    storedBefore: number;
    storedAfter: number;
  };
  const figure = (times: number[]) => ({ p50: percentile(times, 50), p99: percentile(times, 99) });
  /** The database's operation count (serverStatus opcounters: the whole server's, so it wants a server to itself); NaN where it keeps none. */
  const operations = async (): Promise<number> => {
    const { opcounters: o } = await db
      .admin()
      .command({ serverStatus: 1 })
      .catch(() => ({ opcounters: undefined }));
    return o ? o.insert + o.query + o.update + o.delete + o.getmore + o.command : NaN;
  };

  // The reading runs come first, on a store of exactly `size` cases; the writing runs then add theirs.
  async function measure(size: number): Promise<Figures> {
    await seedTo(size);
    await settle();
    const storedBefore = stored.length;
    const reading: Pick<Figures, 'identifier' | 'queue' | 'read'>[] = [];
    for (let run = 1; run <= runs; run++) {
      reading.push({ identifier: figure(await latencies(searchByIdentifier)), queue: figure(await latencies(queuePage)), read: figure(await latencies(read)) });
      const r = reading.at(-1)!;
      say(
        `${size.toLocaleString('en-US')} reading run ${run}: search by identifier p50 ${ms(r.identifier.p50)}, queue page p50 ${ms(r.queue.p50)}, read p50 ${ms(r.read.p50)} (${load()})`,
      );
    }
    const profiled = await profileCreate();
    const cost = await createCost();
    const writing: Pick<Figures, 'create' | 'throughput' | 'raw' | 'rawCase' | 'plain' | 'plainRaw' | 'operationsPerCreate'>[] = [];
    for (let run = 1; run <= runs; run++) {
      const created = figure(await latencies(create));
      await settle();
      const before = await operations();
      if (burstProfile) await startProfiling();
      const throughput = creates / ((await timed(() => inParallel(creates, concurrency, create))) / 1000);
      if (burstProfile) await printProfile();
      // Counted over the burst: each create's own work, and whatever of its case's retrieval ran meanwhile.
      const operationsPerCreate = ((await operations()) - before) / creates;
      await settle();
      const raw = await rawInserts();
      const rawCase = await rawCaseInserts(profiled.written);
      const { service: plain, raw: plainRaw } = await plainCreates();
      writing.push({ create: created, throughput, raw, rawCase, plain, plainRaw, operationsPerCreate });
      say(
        `${size.toLocaleString('en-US')} writing run ${run}: create p50 ${ms(created.p50)}, ${Math.round(throughput)} creates/s (${operationsPerCreate.toFixed(1)} database operations each) vs raw ${Math.round(raw)} inserts/s ` +
          `and ${Math.round(rawCase)}/s of a case's documents; plain creates ${Math.round(plain)}/s vs raw ${Math.round(plainRaw)}/s; ${stored.length.toLocaleString('en-US')} stored (${load()})`,
      );
    }
    const mid = <K extends Op>(list: Record<K, { p50: number; p99: number }>[], op: K) => ({
      p50: median(list.map((r) => r[op].p50)),
      p99: median(list.map((r) => r[op].p99)),
    });
    return {
      identifier: mid(reading, 'identifier'),
      queue: mid(reading, 'queue'),
      read: mid(reading, 'read'),
      create: mid(writing, 'create'),
      throughput: median(writing.map((r) => r.throughput)),
      raw: median(writing.map((r) => r.raw)),
      operationsPerCreate: median(writing.map((r) => r.operationsPerCreate)),
      rawCase: median(writing.map((r) => r.rawCase)),
      plain: median(writing.map((r) => r.plain)),
      plainRaw: median(writing.map((r) => r.plainRaw)),
      profiled,
      cost,
      storedBefore,
      storedAfter: stored.length,
    };
  }

  /** How the database answers the queries the service runs for these searches (Repository.search: a page, and the total). */
  async function plans(): Promise<void> {
    const { order } = pick();
    const searches: [string, string, QueryParams, number][] = [
      [`ServiceRequest?identifier=…|SCALE-${order}`, 'ServiceRequest', { identifier: `${orderSystem}|SCALE-${order}` }, 20],
      [`Task?status=${queueStatus}&_count=10`, 'Task', { status: queueStatus, _count: '10' }, 10],
    ];
    for (const [label, type, query, count] of searches) {
      const search = parseSearch(type, query);
      const filter = seeding.repository.filterOf(search);
      const page = await db
        .collection(type)
        .find(filter, { projection: { resource: 1, idx: 1, access: 1 } })
        .sort(buildSort(search))
        .limit(count)
        .explain('executionStats');
      const total = await db
        .collection(type)
        .aggregate([{ $match: filter }, { $group: { _id: 1, n: { $sum: 1 } } }])
        .explain('executionStats');
      say(`  ${label}: filter ${JSON.stringify(filter)}`);
      say(`    page:  ${planOf(page)}`);
      say(`    total: ${planOf(total)}`);
      // What the engine does, beside what its explain says: the driver's time for the page as it is, and
      // for the page read from where its last answer ended (Repository.search, store/page-windows.ts).
      const read = (where: object) =>
        db
          .collection(type)
          .find(where, { projection: { resource: 1, idx: 1, access: 1, lastUpdated: 1 } })
          .sort(buildSort(search))
          .limit(count + 1)
          .toArray();
      const boundary = (await read(filter)).at(-1)?.lastUpdated as Date;
      const since = { ...filter, lastUpdated: { $gte: boundary } };
      const driverMs = async (where: object): Promise<number> => {
        const times: number[] = [];
        for (let i = 0; i < 5; i++) times.push(await timed(() => read(where)));
        return median(times);
      };
      say(
        `    driver, find+sort+limit ${count + 1}: ${ms(await driverMs(filter))} as it is; ${ms(await driverMs(since))} with lastUpdated >= the page's last (${(await read(since)).length} returned)`,
      );
    }
    for (const type of ['ServiceRequest', 'Task'])
      say(`  indexes on ${type}: ${(await db.collection(type).indexes()).map((i) => JSON.stringify(i.key)).join(' ')}`);
  }

  const atSmall = await measure(small);
  say(`query plans at ${atSmall.storedAfter.toLocaleString('en-US')} requests:`);
  await plans();
  const atLarge = await measure(large);
  say(`query plans at ${atLarge.storedAfter.toLocaleString('en-US')} requests:`);
  await plans();
  const memory = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const peakMb = Number(/VmHWM:\s+(\d+)/.exec(memory)?.[1] ?? 0) / 1024;

  const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
  const documentsOf = (f: Figures): number => [...f.profiled.written.values()].reduce((n, d) => n + d.length, 0);
  const commandsOf = (f: Figures): number => [...f.profiled.commands.values()].reduce((n, c) => n + c, 0);
  const latencyRow = (name: string, op: Op, target: string): string[] => [
    name,
    ms(atSmall[op].p50),
    ms(atSmall[op].p99),
    ms(atLarge[op].p50),
    ms(atLarge[op].p99),
    ratio(atLarge[op].p50, atSmall[op].p50),
    target,
  ];
  const perSecond = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`;
  const sizeLabel = (f: Figures): string => f.storedBefore.toLocaleString('en-US');
  const rows = [
    latencyRow('search ServiceRequest?identifier=system|value', 'identifier', '<= 1.5x; p50 < 20 ms'),
    latencyRow(`search Task?status=${queueStatus}&_count=10`, 'queue', '<= 1.5x'),
    latencyRow('create ServiceRequest (If-None-Exist), opens a case', 'create', '<= 1.5x'),
    latencyRow('read ServiceRequest/{id}', 'read', '<= 1.5x'),
    [
      'create throughput, c=16, service over HTTP (opens a case)',
      perSecond(atSmall.throughput),
      '-',
      perSecond(atLarge.throughput),
      '-',
      ratio(atLarge.throughput, atSmall.throughput),
      '>= 1/1.5x',
    ],
    [
      `raw driver, c=16: the ${documentsOf(atSmall)} documents a case's create wrote, one insert each`,
      perSecond(atSmall.rawCase),
      '-',
      perSecond(atLarge.rawCase),
      '-',
      ratio(atLarge.rawCase, atSmall.rawCase),
      '-',
    ],
    ['service / raw driver, same documents', ratio(atSmall.throughput, atSmall.rawCase), '-', ratio(atLarge.throughput, atLarge.rawCase), '-', '-', '>= 0.40x'],
    ['raw driver, c=16: the stored request alone, one insert', perSecond(atSmall.raw), '-', perSecond(atLarge.raw), '-', ratio(atLarge.raw, atSmall.raw), '-'],
    [
      'service / raw driver, request alone',
      ratio(atSmall.throughput, atSmall.raw),
      '-',
      ratio(atLarge.throughput, atLarge.raw),
      '-',
      '-',
      '(as the issue worded it)',
    ],
    ['plain create (no case), c=16, service over HTTP', perSecond(atSmall.plain), '-', perSecond(atLarge.plain), '-', ratio(atLarge.plain, atSmall.plain), '-'],
    [
      'raw driver, c=16: that stored document, one insert',
      perSecond(atSmall.plainRaw),
      '-',
      perSecond(atLarge.plainRaw),
      '-',
      ratio(atLarge.plainRaw, atSmall.plainRaw),
      '-',
    ],
    ['service / raw driver, plain create', ratio(atSmall.plain, atSmall.plainRaw), '-', ratio(atLarge.plain, atLarge.plainRaw), '-', '-', '>= 0.40x'],
    ['database operations of one case create (profiler)', String(commandsOf(atSmall)), '-', String(commandsOf(atLarge)), '-', '-', '-'],
    [
      'database operations a create, c=16 (opcounters, with retrieval)',
      atSmall.operationsPerCreate.toFixed(1),
      '-',
      atLarge.operationsPerCreate.toFixed(1),
      '-',
      '-',
      '-',
    ],
  ];
  const header = [
    'operation',
    `p50 @${sizeLabel(atSmall)}`,
    `p99 @${sizeLabel(atSmall)}`,
    `p50 @${sizeLabel(atLarge)}`,
    `p99 @${sizeLabel(atLarge)}`,
    'p50 large/small',
    'target',
  ];
  say(`\n${markdownTable(header, rows)}`);
  say(`\nthe database operations of one case create at ${sizeLabel(atLarge)} (profiler; operation collection: count):`);
  say(
    `  ${[...atLarge.profiled.commands]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ')}`,
  );
  say(`  documents it left written (the raw baseline's inserts): ${[...atLarge.profiled.written].map(([c, d]) => `${c} ${d.length}`).join(', ')}`);
  const costRow = (name: string, of: (f: Figures) => string): string[] => [name, of(atSmall), of(atLarge)];
  const costs = [
    costRow('case create, sequential (p50)', (f) => ms(f.create.p50)),
    costRow('HTTP round trip to the service (GET /healthz)', (f) => ms(f.cost.http)),
    costRow('access token check', (f) => ms(f.cost.auth)),
    costRow("the request's validation", (f) => ms(f.cost.validation)),
    costRow("the request's labels (its Endpoint among them)", (f) => ms(f.cost.labels)),
    costRow('database operations of the create (profiler)', (f) => String(commandsOf(f))),
    costRow('their time inside the database (profiler)', (f) => ms(f.profiled.serverMs)),
    costRow('one database round trip (ping)', (f) => ms(f.cost.ping)),
    costRow('operations x round trip', (f) => ms(commandsOf(f) * f.cost.ping)),
  ];
  say(`\nwhere one case create's time goes (each part timed alone, median of ${samples}):\n`);
  say(markdownTable(['part', `@${sizeLabel(atSmall)}`, `@${sizeLabel(atLarge)}`], costs));
  say(
    `\nrequests stored: ${sizeLabel(atSmall)} -> ${atSmall.storedAfter.toLocaleString('en-US')} while measuring the small size, ${sizeLabel(atLarge)} -> ${atLarge.storedAfter.toLocaleString('en-US')} at the large (the measured creates add cases); service peak RSS ${peakMb.toFixed(0)} MB\n`,
  );
  const verdict = (ok: boolean, what: string): boolean => say(`${ok ? 'PASS' : 'MISS'}  ${what}`);
  for (const [name, op] of [
    ['search by identifier', 'identifier'],
    ['work-queue page', 'queue'],
    ['conditional create', 'create'],
    ['read', 'read'],
  ] as const) {
    verdict(
      atLarge[op].p50 <= 1.5 * atSmall[op].p50,
      `${name} p50 at ${sizeLabel(atLarge)} within 1.5x of ${sizeLabel(atSmall)} (${ratio(atLarge[op].p50, atSmall[op].p50)})`,
    );
  }
  verdict(
    atLarge.throughput * 1.5 >= atSmall.throughput,
    `create throughput at ${sizeLabel(atLarge)} within 1.5x of ${sizeLabel(atSmall)} (${ratio(atLarge.throughput, atSmall.throughput)})`,
  );
  verdict(
    atSmall.identifier.p50 < 20 && atLarge.identifier.p50 < 20,
    `search by identifier p50 under 20 ms (${ms(atSmall.identifier.p50)}, ${ms(atLarge.identifier.p50)})`,
  );
  verdict(
    atSmall.throughput >= 0.4 * atSmall.rawCase && atLarge.throughput >= 0.4 * atLarge.rawCase,
    `case create throughput at c=16 at least 40% of the raw driver inserting the same documents (${ratio(atSmall.throughput, atSmall.rawCase)}, ${ratio(atLarge.throughput, atLarge.rawCase)})`,
  );
  verdict(
    atSmall.plain >= 0.4 * atSmall.plainRaw && atLarge.plain >= 0.4 * atLarge.plainRaw,
    `plain create throughput at c=16 at least 40% of raw inserts of its document (${ratio(atSmall.plain, atSmall.plainRaw)}, ${ratio(atLarge.plain, atLarge.plainRaw)})`,
  );
} catch (err) {
  failed = true;
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
} finally {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
  }
  if (seedingDatabase) {
    if (keep) say(`database ${databaseName} kept`);
    else await seedingDatabase.connection.dropDatabase().catch(() => undefined);
    await seedingDatabase.close();
  }
  await ehr.stop();
  await localDatabase?.stop();
}
process.exit(failed ? 1 : 0);

/** A FHIR call as the admin EHR client; throws unless it answers one of `expect`. */
async function fhir(method: string, route: string, body?: unknown, headers: Record<string, string> = {}, expect = [200, 201]): Promise<any> {
  const response = await fetch(`${fhirBase}${route}`, {
    method,
    headers: { accept: 'application/fhir+json', authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/fhir+json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!expect.includes(response.status)) throw new Error(`${method} ${route} answered ${response.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

async function ready(service: ChildProcess): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    if (
      await fetch(`${baseUrl}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    if (service.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the service did not start on ${baseUrl}`);
}

/** Runs `work(0..total-1)` with at most `width` at a time. */
async function inParallel(total: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, total) }, async () => {
      while (next < total) await work(next++);
    }),
  );
}

function ms(value: number): string {
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ms`;
}

/** An explain's winning plan, outermost stage first, with what it examined. */
function planOf(e: Record<string, any>): string {
  const planner = e.queryPlanner ?? e.stages?.[0]?.$cursor?.queryPlanner;
  const stats = e.executionStats ?? e.stages?.[0]?.$cursor?.executionStats;
  const stages: string[] = [];
  for (let node = planner?.winningPlan; node; node = node.inputStage ?? node.inputStages?.[0] ?? node.queryPlan) {
    stages.push(`${node.stage}${node.indexName ? `(${node.indexName})` : ''}`);
  }
  if (!stages.length) return JSON.stringify(e).slice(0, 400);
  return `${stages.join(' <- ')}; keys examined ${stats?.totalKeysExamined ?? '?'}, documents examined ${stats?.totalDocsExamined ?? '?'}, returned ${stats?.nReturned ?? '?'}`;
}
