// The service scaled out: three processes on one database, behind a load balancer that sends each
// call to the next process. One referring EHR sends fifty cases at once, some requests twice to two
// processes; the charts are pulled, the cases routed, accepted and answered, and the opinions written
// back. Half way through, one process is killed (SIGKILL) in the middle of a retrieval, with calls
// and deliveries under way, and a replacement is started. In the end every request is one case,
// every job ran to completion once, every opinion is in the chart once, and the outcome figures
// count each case exactly once.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose, { type Connection } from 'mongoose';
import { newSigningKeyPem } from '../src/auth/access-tokens.js';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { freePort } from '../src/database/local-server.js';
import { chartTypes, retrievalJobKind } from '../src/retrieval/retrieve-chart.js';
import { spawnedFhir, spawnService, type FhirInit, type FhirResponse, type TestService } from './harness.js';
import { businessStatus, createOrganization, icd10cm, reason, registerInstitution, registerReviewer, secondOpinionRequest, specialty } from './review-cases.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const finalExample = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'DiagnosticReport-final-concordant.json'), 'utf8'));
const canonical = canonicalBase();
const cases = 50;
const perType = 2;
const concordanceCodes = ['concordant', 'minor-discrepancy', 'diagnosis-changed', 'treatment-changed'];
const orders = 'https://ehr.example/orders';
const opinionIds = 'https://reviewer.example/opinions';
const databaseName = `test-multi-${randomUUID().slice(0, 8)}`;

/** Case `i`: every fifth an aortic stenosis (cardiology), the others breast cancers (oncology); concordance in turn. */
const caseOf = (i: number) => ({
  order: `MP-${i}`,
  reasonCode: i % 5 === 0 ? 'I35.0' : 'C50.911',
  concordance: concordanceCodes[i % concordanceCodes.length],
  /** Sent twice at once to two processes (1), or again to another process once the case is routed (6). */
  duplicate: i % 10 === 1 ? 'at-once' : i % 10 === 6 ? 'later' : undefined,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Instance {
  port: number;
  child: ChildProcess;
  fhir: TestService['fhir'];
  alive: boolean;
}

let env: Record<string, string>;
const instances: Instance[] = [];
let ehr: ReferringEhr;
let proxy: FaultProxy;
let database: Connection;
let patients: string[];
let turn = 0;
/** Calls sent again to another process because the one they went to died under them. */
let resent = 0;
/** Reviewers' Task writes refused with 412 because the Task had changed since they read it. */
let staleWrites = 0;

async function startInstance(): Promise<Instance> {
  const port = await freePort();
  const child = await spawnService(port, env);
  const instance = { port, child, fhir: spawnedFhir(port), alive: true };
  instances.push(instance);
  return instance;
}

/**
 * The load balancer: each call goes to the next live process (not `avoid`); a call cut off by the
 * crash is sent to the next one, as a client retries a 502 (every write here is idempotent).
 */
async function call(path: string, init?: FhirInit, avoid?: Instance): Promise<FhirResponse & { via: Instance }> {
  for (let attempt = 1; ; attempt++) {
    const live = instances.filter((i) => i.alive && i !== avoid);
    const via = live[turn++ % live.length];
    try {
      return { ...(await via.fhir(path, init)), via };
    } catch (err) {
      if (attempt >= 5) throw err;
      resent++;
      await sleep(100);
    }
  }
}

/** Every Task, as the last poll saw it (one search every 400 ms, not one read per case). */
const tasks = new Map<string, any>();
let watching = true;
async function watchTasks(): Promise<void> {
  while (watching) {
    const found = await call('/Task?_count=1000').catch(() => undefined);
    for (const entry of found?.body?.entry ?? []) tasks.set(entry.resource.id, entry.resource);
    await sleep(400);
  }
}

/** When every case must have come through: the machine is small and may be busy, so one deadline for all rather than one per step. */
let deadline = Infinity;

async function taskWhen(id: string, done: (task: any) => boolean, what: string): Promise<any> {
  while (Date.now() < deadline) {
    await sleep(100);
    const task = tasks.get(id);
    if (task && done(task)) return task;
  }
  throw new Error(`Task/${id} never ${what}: its versions are ${await versionsOf(id)}`);
}

/** A Task's story, oldest version first: `status/businessStatus` of each. */
async function versionsOf(id: string): Promise<string> {
  const history = await call(`/Task/${id}/_history?_count=100`);
  return (
    ((history.body?.entry ?? []) as any[])
      .map((e) => `${e.resource.status}/${businessStatus(e.resource)}`)
      .reverse()
      .join(' -> ') || `none (${history.status})`
  );
}

/** The reviewer moves its Task on, on the version it read; a 412 (the Task changed meanwhile) reads it again. */
async function moveTask(id: string, status: string, owner: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const task = (await call(`/Task/${id}`)).body;
    if (task.status === status) return;
    const put = await call(`/Task/${id}`, {
      method: 'PUT',
      body: { ...task, status },
      headers: {
        'if-match': `W/"${task.meta.versionId}"`,
        'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: owner } }] }),
      },
    });
    if (put.status === 200) return;
    if (put.status !== 412) throw new Error(`Task/${id} -> ${status} answered ${put.status}: ${JSON.stringify(put.body).slice(0, 300)}`);
    staleWrites++;
  }
  throw new Error(`Task/${id} could not be moved to ${status}: it kept changing`);
}

let opinionsPosted = 0;

/** One case, the whole loop: the EHR asks, the case is routed, the reviewer accepts, starts and signs; the opinion comes back. */
async function driveCase(i: number): Promise<{ requestId: string; opinionId: string }> {
  const { order, reasonCode, concordance, duplicate } = caseOf(i);
  const request = secondOpinionRequest(order, proxy.base, patients[i % patients.length], { performerType: undefined, ...reason(icd10cm, reasonCode) });
  const post = (avoid?: Instance) =>
    call('/ServiceRequest', { body: request, headers: { 'if-none-exist': `identifier=${encodeURIComponent(`${orders}|${order}`)}` } }, avoid);
  let requestId: string;
  if (duplicate === 'at-once') {
    // Two processes take the same request at the same moment (two calls in one turn go to two processes): one case, one created answer.
    const answers = await Promise.all([post(), post()]);
    if (
      answers[0].body.id !== answers[1].body.id ||
      answers.filter((a) => a.status === 201).length > 1 ||
      answers.some((a) => ![200, 201].includes(a.status))
    ) {
      throw new Error(`${order} sent twice at once answered ${answers.map((a) => `${a.status} ${a.body.id}`).join(' and ')}`);
    }
    requestId = answers[0].body.id;
  } else {
    const created = await post();
    if (![200, 201].includes(created.status)) throw new Error(`${order} answered ${created.status}: ${JSON.stringify(created.body).slice(0, 300)}`);
    requestId = created.body.id;
    if (duplicate === 'later') {
      await taskWhen(requestId, (t) => businessStatus(t) === 'assigned', 'was assigned');
      const again = await post(created.via);
      if (again.status !== 200 || again.body.id !== requestId)
        throw new Error(`${order} sent again answered ${again.status} ${again.body.id}, not 200 ${requestId}`);
    }
  }
  const assigned = await taskWhen(requestId, (t) => businessStatus(t) === 'assigned' || ['failed', 'rejected', 'cancelled'].includes(t.status), 'was assigned');
  if (businessStatus(assigned) !== 'assigned') throw new Error(`Task/${requestId} ended ${assigned.status}/${businessStatus(assigned)} before assignment`);
  const owner = assigned.owner.reference;
  await moveTask(requestId, 'accepted', owner);
  await moveTask(requestId, 'in-progress', owner);
  const opinion = await call('/DiagnosticReport', {
    body: {
      ...finalExample,
      identifier: [{ system: opinionIds, value: order }],
      subject: assigned.for,
      basedOn: [{ reference: `ServiceRequest/${requestId}` }],
      conclusion: `Second opinion on ${order}.`,
      extension: [
        {
          url: `${canonical}/StructureDefinition/concordance`,
          valueCodeableConcept: { coding: [{ system: `${canonical}/CodeSystem/concordance`, code: concordance }] },
        },
      ],
    },
    headers: {
      'if-none-exist': `identifier=${encodeURIComponent(`${opinionIds}|${order}`)}`,
      'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: owner } }] }),
    },
  });
  if (![200, 201].includes(opinion.status))
    throw new Error(`the opinion on ${order} answered ${opinion.status}: ${JSON.stringify(opinion.body).slice(0, 300)}`);
  opinionsPosted++;
  await taskWhen(requestId, (t) => ['opinion-delivered', 'delivery-failed'].includes(businessStatus(t) ?? ''), 'had its opinion delivered').catch(
    async (err: Error) => {
      const copies = (await onEhr('DiagnosticReport?_count=1000')).filter((r) =>
        r.identifier?.some((id: any) => id.system === `${canonical}/opinion` && id.value === opinion.body.id),
      );
      throw new Error(`${err.message}; copies of its opinion on the EHR: ${copies.length}`);
    },
  );
  return { requestId, opinionId: opinion.body.id };
}

/**
 * Half way (half the opinions signed), one process dies mid-work, holding a retrieval. A process is
 * frozen first (SIGSTOP) and killed only if, frozen, it still holds a running retrieval (a job's owner
 * names its process id); otherwise it is let go on and another is tried. The balancer notices a
 * moment later; a replacement comes up beside the other two.
 */
async function crashOne(): Promise<{ killed: string; inFlight: Record<string, number> }> {
  while (opinionsPosted < cases / 2) await sleep(20);
  const jobs = database.collection('jobs');
  const heldBy = (pid: number | undefined) => jobs.countDocuments({ kind: retrievalJobKind, state: 'running', owner: { $regex: `/${pid}/` } });
  for (const until = Date.now() + 30_000; ; await sleep(10)) {
    if (Date.now() > until) throw new Error('no process was seen holding a retrieval for 30 s');
    const held = await jobs.findOne({ kind: retrievalJobKind, state: 'running' });
    const candidate = instances.find((i) => i.alive && String(held?.owner).includes(`/${i.child.pid}/`));
    if (!candidate) continue;
    candidate.child.kill('SIGSTOP');
    await sleep(200); // writes it had sent land; it sends no more
    if ((await heldBy(candidate.child.pid)) === 0) {
      candidate.child.kill('SIGCONT');
      continue;
    }
    const inFlight = {
      retrievalsRunning: await jobs.countDocuments({ kind: retrievalJobKind, state: 'running' }),
      retrievalsHeldByTheKilled: await heldBy(candidate.child.pid),
      retrievalsPending: await jobs.countDocuments({ kind: retrievalJobKind, state: 'pending' }),
      deliveriesOwed: await database.collection('outbox_due').countDocuments({}),
    };
    const killed = `port ${candidate.port}, pid ${candidate.child.pid}, at ${new Date().toISOString()}`;
    candidate.child.kill('SIGKILL');
    await new Promise((r) => (candidate.child.exitCode !== null || candidate.child.signalCode !== null ? r(undefined) : candidate.child.once('exit', r)));
    candidate.alive = false;
    await startInstance();
    return { killed, inFlight };
  }
}

const onEhr = async (query: string): Promise<any[]> => ((await (await fetch(`${ehr.base}/${query}`)).json()).entry ?? []).map((e: any) => e.resource);
const count = async (query: string): Promise<number> => {
  const found = await call(`${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  if (found.status !== 200) throw new Error(`${query} answered ${found.status}`);
  return found.body.total;
};

beforeAll(async () => {
  ehr = await startReferringEhr();
  proxy = await startFaultProxy(ehr.base);
  proxy.latencyMs = 20; // the EHR is a network away: retrievals and deliveries take a while
  patients = [];
  for (const family of ['North', 'South', 'East']) patients.push(await seedPatient(ehr.repo, perType, family));
  database = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: databaseName }).asPromise();
  env = {
    DATABASE_NAME: databaseName,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    POLL_INTERVAL_MS: '0',
    // Every process signs opinions with the same key, as a deployment behind a balancer must.
    OPINION_SIGNING_KEY: await newSigningKeyPem('ES256'),
    RETRIEVAL_POLL_MS: '100',
    RETRIEVAL_LEASE_MS: '5000',
    DELIVERY_POLL_MS: '100',
    DELIVERY_LEASE_MS: '5000',
    DELIVERY_RETRY_BASE_MS: '100',
    DELIVERY_RETRY_MAX_MS: '1000',
    OUTBOUND_RETRY_BASE_MS: '10',
  };
  await Promise.all([startInstance(), startInstance(), startInstance()]);
  const front = { fhir: (path: string, init?: FhirInit) => call(path, init) };
  await registerInstitution(front, 'Referring Hospital', proxy.base);
  const centre = await createOrganization(front, 'Second Opinion Centre');
  // Room for every case twice over, so that routing never queues one.
  for (const [name, code, capacity] of [
    ['Oncologist A', specialty.oncology, 25],
    ['Oncologist B', specialty.oncology, 25],
    ['Oncologist C', specialty.oncology, 25],
    ['Cardiologist', specialty.cardiology, 20],
  ] as const) {
    await registerReviewer(front, { name, organizationId: centre, specialty: code, capacity });
  }
}, 120_000);

afterAll(async () => {
  watching = false;
  for (const instance of instances) {
    if (instance.child.exitCode === null && instance.child.signalCode === null) {
      const exited = new Promise((r) => instance.child.once('exit', r));
      instance.child.kill('SIGKILL');
      await exited;
    }
  }
  await database?.dropDatabase().catch(() => undefined);
  await database?.close();
  await proxy?.stop();
  await ehr?.stop();
});

describe('three service processes on one database', () => {
  it('take fifty cases through the whole loop, survive losing one process, and do every piece of work once', async () => {
    const started = Date.now();
    deadline = started + 160_000;
    const months = [new Date().toISOString().slice(0, 7)];
    const watcher = watchTasks();
    const crash = crashOne();
    // The cases arrive over a few seconds, so that later ones are still being retrieved when the crash comes.
    const driven = await Promise.allSettled(Array.from({ length: cases }, (_, i) => sleep(i * 150).then(() => driveCase(i))));
    const { killed, inFlight } = await crash;
    months.push(new Date().toISOString().slice(0, 7));
    const failures = driven.flatMap((d, i) => (d.status === 'rejected' ? [`case ${i}: ${(d.reason as Error).message}`] : []));
    console.log(
      `${cases} cases in ${((Date.now() - started) / 1000).toFixed(1)} s; killed the process on ${killed} with ${JSON.stringify(inFlight)}; ${resent} call(s) sent again, ${staleWrites} stale Task write(s)`,
    );
    expect(failures).toEqual([]);
    const done = driven.map((d) => (d as PromiseFulfilledResult<{ requestId: string; opinionId: string }>).value);

    // One request per order, one case (Task) per request, one opinion per case.
    expect(await count('/ServiceRequest')).toBe(cases);
    expect(await count('/Task')).toBe(cases);
    for (const [i, { requestId }] of done.entries()) {
      expect([i, await count(`/ServiceRequest?identifier=${encodeURIComponent(`${orders}|${caseOf(i).order}`)}`)]).toEqual([i, 1]);
      expect([i, await count(`/Task?focus=ServiceRequest/${requestId}`)]).toEqual([i, 1]);
      expect([i, await count(`/DiagnosticReport?based-on=ServiceRequest/${requestId}`)]).toEqual([i, 1]);
    }

    // Every case completed with its opinion delivered, and each step of its Task taken once: one
    // retrieval completed (records-ready), one routing, one delivery recorded.
    for (const [i, { requestId }] of done.entries()) {
      const task = (await call(`/Task/${requestId}`)).body;
      expect([i, task.status, businessStatus(task)]).toEqual([i, 'completed', 'opinion-delivered']);
      const versions = (await call(`/Task/${requestId}/_history?_count=100`)).body.entry.map((e: any) => e.resource);
      const entered = (code: string) => versions.filter((v: any, n: number) => businessStatus(v) === code && businessStatus(versions[n + 1]) !== code).length;
      expect([i, entered('records-ready'), entered('assigned'), entered('opinion-delivered')]).toEqual([i, 1, 1, 1]);
    }

    // Each retrieval job ended once, done; none is left to do; each wrote one Provenance of the chart it kept.
    const endedJobs = await database.collection('jobs_ended').find({ kind: retrievalJobKind }).toArray();
    expect(endedJobs.map((j) => j.state).sort()).toEqual(Array(cases).fill('done'));
    expect(new Set(endedJobs.map((j) => j._id)).size).toBe(cases);
    expect(await database.collection('jobs').countDocuments({ kind: retrievalJobKind })).toBe(0);
    // The retrieval the killed process held was taken up by another once its lease ran out.
    expect(endedJobs.filter((j) => j.attempts > 1).length).toBeGreaterThanOrEqual(1);
    const localPatients = [...new Set(done.map(({ requestId }) => tasks.get(requestId).for.reference as string))];
    expect(localPatients).toHaveLength(patients.length);
    let retrievalProvenances = 0;
    for (const patient of localPatients) retrievalProvenances += await count(`/Provenance?target=${patient}`);
    expect(retrievalProvenances).toBe(cases);
    // The charts, pulled by many cases in several processes at once, hold each record of the EHR once,
    // and none of the opinions written back there meanwhile (their originals are here).
    for (const patient of localPatients) {
      for (const type of chartTypes) {
        const param = ['AllergyIntolerance', 'Immunization'].includes(type) ? 'patient' : 'subject';
        const pulled = (await call(`/${type}?${param}=${patient}&_count=1000`)).body.entry.map((e: any) => e.resource).filter((r: any) => r.meta.source);
        expect([patient, type, new Set(pulled.map((r: any) => r.meta.source)).size, pulled.length]).toEqual([patient, type, perType, perType]);
      }
    }

    // The EHR's charts: each opinion once, with its own conclusion, and one notice of it.
    const reports = (await onEhr('DiagnosticReport?_count=1000')).filter((r) => r.identifier?.some((id: any) => id.system === `${canonical}/opinion`));
    const notices = (await onEhr('Communication?_count=1000')).filter((c) => c.identifier?.some((id: any) => id.system === `${canonical}/opinion-notice`));
    for (const [i, { opinionId }] of done.entries()) {
      const copies = reports.filter((r) => r.identifier.some((id: any) => id.system === `${canonical}/opinion` && id.value === opinionId));
      expect([i, copies.length, copies[0]?.conclusion]).toEqual([i, 1, `Second opinion on ${caseOf(i).order}.`]);
      expect([i, notices.filter((c) => c.identifier.some((id: any) => id.value.startsWith(`${opinionId}-`))).length]).toEqual([i, 1]);
    }
    expect(reports).toHaveLength(cases);
    const retried = await database.collection('DiagnosticReport').countDocuments({ 'outbox.attempts': { $gt: 1 } });
    console.log(
      `${ehr.requests.filter((r) => r === 'POST /').length} delivery transaction(s) posted to the EHR for ${cases} opinions; ${retried} delivery(ies) attempted more than once`,
    );
    // Signed with the one key of the deployment: any process verifies what any other signed.
    for (const { opinionId } of done.slice(0, 3)) {
      const verified = await call(`/DiagnosticReport/${opinionId}/$verify`);
      expect(verified.body.parameter.find((p: any) => p.name === 'valid').valueBoolean).toBe(true);
    }

    // The outcome figures count each case once. They follow the writes a moment later (and what the
    // killed process left half-counted is finished by the replacement), so they are read once settled.
    const [periodStart, periodEnd] = [months[0], months.at(-1) as string];
    const analyst = instances.find((i) => i.alive) as Instance;
    const outcomes = async () =>
      (await analyst.fhir(`http://127.0.0.1:${analyst.port}/analytics/outcomes?periodStart=${periodStart}&periodEnd=${periodEnd}&by=specialty`)).body;
    const all = (report: any) => report.strata.find((s: any) => s.stratifier === 'all');
    for (const until = Date.now() + 20_000; Date.now() < until; await sleep(250)) {
      const figures = all(await outcomes());
      if (
        figures.opened >= cases &&
        figures.delivered >= cases &&
        figures.waiting === 0 &&
        (await database.collection('outcome_changes').countDocuments({})) === 0
      )
        break;
    }
    await sleep(1000); // anything still to be counted twice would be counted by now
    const report = await outcomes();
    const expected = Object.fromEntries(
      concordanceCodes.map((code) => [code, Array.from({ length: cases }, (_, i) => caseOf(i).concordance).filter((c) => c === code).length]),
    );
    const figures = all(report);
    expect([figures.opened, figures.delivered, figures.waiting, figures.overdue]).toEqual([cases, cases, 0, 0]);
    expect(Object.fromEntries(Object.entries(figures.concordance).map(([code, s]: [string, any]) => [code, s.count]))).toEqual(expected);
    expect(report.turnaroundHistogram.reduce((n: number, b: any) => n + b.count, 0)).toBe(cases);
    const bySpecialty = (code: string) => report.strata.find((s: any) => s.stratifier === 'specialty' && s.value === code);
    expect([bySpecialty(specialty.oncology).delivered, bySpecialty(specialty.cardiology).delivered]).toEqual([cases - cases / 5, cases / 5]);
    const measure = (await call(`/Measure/opinion-concordance/$evaluate-measure?periodStart=${periodStart}&periodEnd=${periodEnd}`)).body;
    const concordant = measure.group.find((g: any) => g.id === 'concordant');
    const population = (code: string) => concordant.population.find((p: any) => p.code.coding[0].code === code).count;
    expect([population('denominator'), population('numerator')]).toEqual([cases, expected.concordant]);
    watching = false;
    await watcher;
  }, 240_000);
});
