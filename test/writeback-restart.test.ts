// Durability of the write-back: the service is killed (SIGKILL) while a delivery is in flight; once
// restarted it delivers again, and the patient's chart on the EHR holds exactly one copy.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { crashFixture } from './crash-fixture.js';
import { seedPatient } from '../scripts/peer/referring-ehr.js';

const examples = path.join(defaultProfilesDir(), 'examples', 'valid');
const request = JSON.parse(readFileSync(path.join(examples, 'ServiceRequest-cardiology-valve.json'), 'utf8'));
const finalExample = JSON.parse(readFileSync(path.join(examples, 'DiagnosticReport-final-concordant.json'), 'utf8'));
const fx = crashFixture('writeback-restart', { RETRIEVAL_POLL_MS: '100', DELIVERY_POLL_MS: '100', DELIVERY_LEASE_MS: '1500', DELIVERY_RETRY_BASE_MS: '50' });

async function taskUntil(id: string, codes: string[]): Promise<any> {
  for (const deadline = Date.now() + 60_000; ;) {
    const task = (await fx.fhir(`/Task/${id}`)).body;
    if (codes.includes(task.businessStatus.coding[0].code) || Date.now() > deadline) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a crash during delivery', () => {
  it('is survived: after a restart the opinion is delivered, and the chart holds it once', async () => {
    const patientId = await seedPatient(fx.ehr.repo, 2);
    let service = await fx.start();
    const created = await fx.fhir('/ServiceRequest', {
      body: { ...request, subject: { reference: `${fx.proxy.base}/Patient/${patientId}` }, supportingInfo: undefined },
    });
    expect(created.status).toBe(201);
    const task = await taskUntil(created.body.id, ['assigned', 'awaiting-assignment']);
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment'); // no reviewers here

    // The EHR does the work at once, but its answer is slow: the service dies before it hears it.
    fx.proxy.answerLatencyMs = 3000;
    const before = fx.ehr.requests.length;
    const report = await fx.fhir('/DiagnosticReport', {
      body: {
        ...finalExample,
        subject: { reference: task.for.reference },
        basedOn: [{ reference: `ServiceRequest/${created.body.id}` }],
        conclusion: 'Severe aortic stenosis confirmed.',
      },
    });
    expect(report.status).toBe(201);
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && !fx.ehr.requests.slice(before).includes('POST /');) {
      await new Promise((r) => setTimeout(r, 20));
    }
    service.kill('SIGKILL');
    await new Promise((r) => service.once('exit', r));
    expect(fx.ehr.requests.slice(before).filter((r) => r === 'POST /').length).toBe(1);

    fx.proxy.answerLatencyMs = 0;
    service = await fx.start();
    const delivered = await taskUntil(created.body.id, ['opinion-delivered', 'delivery-failed']);
    expect(delivered.businessStatus.coding[0].code).toBe('opinion-delivered');
    expect(fx.ehr.requests.slice(before).filter((r) => r === 'POST /').length).toBe(2);
    const chart = (await (await fetch(`${fx.ehr.base}/DiagnosticReport?patient=Patient/${patientId}&_count=1000`)).json()).entry.map((e: any) => e.resource);
    const copies = chart.filter((r: any) => r.identifier?.some((i: any) => i.value === report.body.id));
    expect(copies).toHaveLength(1);
    expect(copies[0].conclusion).toBe('Severe aortic stenosis confirmed.');
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  }, 180_000);
});
