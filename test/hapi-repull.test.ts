// A re-pull from HAPI FHIR transfers only what changed. HAPI's Patient/$everything ignores `_since`
// (it answers the whole chart every time), so the service sees that in the first page of a re-pull,
// stops reading it, and asks per record type with `_lastUpdated=gt...`; from then on it asks HAPI
// per type straight away. Counted at a proxy in front of HAPI: the records HAPI's answers carry.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { runHapi } from '../scripts/peer/hapi-fhir.js';
import { seedHapiChart, type HapiChart } from '../scripts/peer/hapi-chart.js';
import { startTestService, type TestService } from './harness.js';
import { businessStatus, registerInstitution, taskWhen } from './review-cases.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));
const pageSize = 10;

let hapi: string;
let proxy: FaultProxy;
let chart: HapiChart;
let service: TestService;

beforeAll(async () => {
  hapi = await runHapi();
  chart = await seedHapiChart(hapi);
  proxy = await startFaultProxy(hapi);
  proxy.countResources = true;
  // A margin of a second for clock skew (HAPI runs on this machine): what changed a second after a pull is new to the next.
  service = await startTestService({
    RETRIEVAL_POLL_MS: '100',
    RETRIEVAL_PAGE_SIZE: String(pageSize),
    RETRIEVAL_SINCE_MARGIN_MS: '1000',
    OUTBOUND_RETRY_BASE_MS: '10',
    POLL_INTERVAL_MS: '0',
  });
  await registerInstitution(service, 'HAPI Hospital', proxy.base);
}, 10 * 60_000);
afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
}, 120_000);

/** One Observation of the chart on HAPI, changed there as the EHR would (a corrected value). */
async function correctAnObservation(value: number): Promise<string> {
  const headers = { accept: 'application/fhir+json', 'content-type': 'application/fhir+json', 'cache-control': 'no-cache' };
  const found = await (await fetch(`${hapi}/Observation?subject=Patient/${chart.patientId}&_count=1`, { headers })).json();
  const observation = found.entry[0].resource;
  const updated = await fetch(`${hapi}/Observation/${observation.id}`, {
    method: 'PUT',
    headers,
    body: JSON.stringify({ ...observation, valueQuantity: { ...observation.valueQuantity, value } }),
  });
  expect(updated.status).toBe(200);
  return observation.id;
}

/** A case for the chart's patient, pushed by the EHR; answers the records HAPI sent for it and the case's Task once its records are in. */
async function caseFor(orderId: string): Promise<{ transferred: number; task: any; requests: number }> {
  const before = { records: proxy.resourcesAnswered, requests: proxy.forwarded };
  const { meta: _meta, ...order } = example;
  const pushed = await service.fhir('/ServiceRequest', {
    body: {
      ...order,
      identifier: [{ system: 'https://hapi-hospital.example/orders', value: orderId }],
      subject: { reference: `${proxy.base}/Patient/${chart.patientId}` },
      supportingInfo: undefined,
    },
  });
  expect(pushed.status).toBe(201);
  const inOrStopped = (t: any) => ['records-ready', 'awaiting-assignment'].includes(businessStatus(t) ?? '') || t.status === 'failed';
  // Up to two minutes: HAPI answers slowly on a busy machine.
  let task = await taskWhen(service, pushed.body.id, inOrStopped);
  for (let waited = 1; waited < 4 && !inOrStopped(task); waited++) task = await taskWhen(service, pushed.body.id, inOrStopped);
  expect([task.status, inOrStopped(task)]).toEqual(['received', true]);
  return { transferred: proxy.resourcesAnswered - before.records, task, requests: proxy.forwarded - before.requests };
}

/** The value the service holds for the HAPI Observation `id`, and its version here. */
async function storedValue(task: any, id: string): Promise<[number, string]> {
  const found = await service.fhir(`/Observation?subject=${task.for.reference}&_count=100`);
  const stored = found.body.entry.map((e: any) => e.resource).find((o: any) => o.meta.source.includes(`/Observation/${id}/`));
  return [stored.valueQuantity.value, stored.meta.versionId];
}

describe('re-pulls from HAPI FHIR', () => {
  it('transfer only what changed, though HAPI answers $everything with the whole chart whatever _since says', async () => {
    // The first pull takes the whole chart through $everything: the Patient, its records and the PDFs.
    const first = await caseFor('REPULL-1');
    expect(first.transferred).toBeGreaterThanOrEqual(chart.records + 1);

    await new Promise((r) => setTimeout(r, 1500));
    const corrected = await correctAnObservation(42);
    const second = await caseFor('REPULL-2');
    expect(await storedValue(second.task, corrected)).toEqual([42, '2']);
    // The CapabilityStatement, the Patient, the first page of $everything (which shows HAPI ignores _since) and the one changed Observation.
    expect(second.transferred).toBeLessThanOrEqual(2 + pageSize + 1);
    expect(second.transferred).toBeLessThan(first.transferred / 2);

    // From now on HAPI is asked per type at once: the Patient and the one record that changed, nothing else.
    await new Promise((r) => setTimeout(r, 1500));
    await correctAnObservation(43);
    const third = await caseFor('REPULL-3');
    expect(await storedValue(third.task, corrected)).toEqual([43, '3']);
    expect(third.transferred).toBe(2);
    expect(proxy.unreadAnswers).toBe(0);
  }, 240_000);
});
