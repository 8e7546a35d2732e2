// Durability of the write-back: the service is killed (SIGKILL), or stopped (SIGTERM), while a
// delivery is in flight; once restarted it delivers again, and the patient's chart on the EHR holds
// exactly one copy.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { crashFixture, type CrashFixture } from './crash-fixture.js';
import { seedPatient } from '../scripts/peer/referring-ehr.js';

const examples = path.join(defaultProfilesDir(), 'examples', 'valid');
const request = JSON.parse(readFileSync(path.join(examples, 'ServiceRequest-cardiology-valve.json'), 'utf8'));
const finalExample = JSON.parse(readFileSync(path.join(examples, 'DiagnosticReport-final-concordant.json'), 'utf8'));
const fx = crashFixture('writeback-restart', { RETRIEVAL_POLL_MS: '100', DELIVERY_POLL_MS: '100', DELIVERY_LEASE_MS: '1500', DELIVERY_RETRY_BASE_MS: '50' });
// A lease far longer than the test waits: a delivery left to its lease would not be made again in time.
const held = crashFixture('writeback-stop', { RETRIEVAL_POLL_MS: '100', DELIVERY_POLL_MS: '100', DELIVERY_LEASE_MS: '120000' });

async function taskUntil(f: CrashFixture, id: string, codes: string[]): Promise<any> {
  for (const deadline = Date.now() + 60_000; ;) {
    const task = (await f.fhir(`/Task/${id}`)).body;
    if (codes.includes(task.businessStatus.coding[0].code) || Date.now() > deadline) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Opens a case from the EHR's patient and signs its opinion while the EHR's answers are held back for
 * `answerLatencyMs`: answers once the EHR has taken the delivery's transaction, before it has answered.
 */
async function deliveryInFlight(f: CrashFixture, answerLatencyMs: number) {
  const patientId = await seedPatient(f.ehr.repo, 2);
  const service = await f.start();
  const created = await f.fhir('/ServiceRequest', {
    body: { ...request, subject: { reference: `${f.proxy.base}/Patient/${patientId}` }, supportingInfo: undefined },
  });
  expect(created.status).toBe(201);
  const task = await taskUntil(f, created.body.id, ['assigned', 'awaiting-assignment']);
  expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment'); // no reviewers here

  // The EHR does the work at once, but its answer is slow.
  f.proxy.answerLatencyMs = answerLatencyMs;
  const before = f.ehr.requests.length;
  const report = await f.fhir('/DiagnosticReport', {
    body: {
      ...finalExample,
      subject: { reference: task.for.reference },
      basedOn: [{ reference: `ServiceRequest/${created.body.id}` }],
      conclusion: 'Severe aortic stenosis confirmed.',
    },
  });
  expect(report.status).toBe(201);
  const posts = () => f.ehr.requests.slice(before).filter((r) => r === 'POST /').length;
  for (const deadline = Date.now() + 20_000; Date.now() < deadline && !posts();) {
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(posts()).toBe(1);
  return { service, patientId, requestId: created.body.id as string, reportId: report.body.id as string, posts };
}

/** After a restart: the case ends opinion-delivered, with `posts` transactions in all and one copy in the chart. */
async function deliveredOnce(f: CrashFixture, inFlight: Awaited<ReturnType<typeof deliveryInFlight>>, posts: number): Promise<void> {
  const delivered = await taskUntil(f, inFlight.requestId, ['opinion-delivered', 'delivery-failed']);
  expect(delivered.businessStatus.coding[0].code).toBe('opinion-delivered');
  expect(inFlight.posts()).toBe(posts);
  const chart = (await (await fetch(`${f.ehr.base}/DiagnosticReport?patient=Patient/${inFlight.patientId}&_count=1000`)).json()).entry.map(
    (e: any) => e.resource,
  );
  const copies = chart.filter((r: any) => r.identifier?.some((i: any) => i.value === inFlight.reportId));
  expect(copies).toHaveLength(1);
  expect(copies[0].conclusion).toBe('Severe aortic stenosis confirmed.');
}

const exited = (child: ChildProcess): Promise<unknown> => new Promise((r) => child.once('exit', r));

describe('a crash during delivery', () => {
  it('is survived: after a restart the opinion is delivered, and the chart holds it once', async () => {
    const inFlight = await deliveryInFlight(fx, 3000);
    // The service dies before it hears the EHR's answer.
    inFlight.service.kill('SIGKILL');
    await exited(inFlight.service);

    fx.proxy.answerLatencyMs = 0;
    const service = await fx.start();
    await deliveredOnce(fx, inFlight, 2);
    service.kill('SIGTERM');
    await exited(service);
  }, 180_000);
});

describe('a stop during delivery', () => {
  it('ends the call at once and gives the delivery back: the next start makes it without waiting for its lease', async () => {
    const inFlight = await deliveryInFlight(held, 8000);
    const started = Date.now();
    inFlight.service.kill('SIGTERM');
    await exited(inFlight.service);
    // Not the EHR's 8 s answer within the 10 s grace: the stop ends the call in flight.
    expect(Date.now() - started).toBeLessThan(5000);

    held.proxy.answerLatencyMs = 0;
    const service = await held.start();
    await deliveredOnce(held, inFlight, 2);
    service.kill('SIGTERM');
    await exited(service);
  }, 180_000);
});
