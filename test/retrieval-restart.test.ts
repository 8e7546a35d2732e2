// Durability: the service is killed (SIGKILL) in the middle of a retrieval; once restarted, it takes
// the job up again and completes the chart, with no record stored twice.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { freePort } from '../src/database/local-server.js';
import { chartTypes } from '../src/retrieval/retrieve-chart.js';
import { spawnedFhir, spawnService } from './harness.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-cardiology-valve.json'), 'utf8'));
const perType = 6;
const databaseName = `test-restart-${randomUUID().slice(0, 8)}`;
const running: ChildProcess[] = [];
let ehr: ReferringEhr;
let proxy: FaultProxy;
let port: number;

beforeAll(async () => {
  ehr = await startReferringEhr();
  proxy = await startFaultProxy(ehr.base);
  port = await freePort();
  fhir = spawnedFhir(port);
});
afterAll(async () => {
  for (const child of running) child.kill('SIGKILL');
  await proxy?.stop();
  await ehr?.stop();
});

async function startService(): Promise<ChildProcess> {
  const child = await spawnService(port, { DATABASE_NAME: databaseName, RETRIEVAL_PAGE_SIZE: '2', RETRIEVAL_CONCURRENCY: '2', RETRIEVAL_POLL_MS: '100', RETRIEVAL_LEASE_MS: '1500' });
  running.push(child);
  return child;
}

let fhir: ReturnType<typeof spawnedFhir>;

describe('a crash during retrieval', () => {
  it('is survived: after a restart the job completes, with every record stored once', async () => {
    const patientId = await seedPatient(ehr.repo, perType);
    proxy.latencyMs = 40;
    let service = await startService();
    const created = await fhir('/ServiceRequest', {
      body: { ...example, subject: { reference: `${proxy.base}/Patient/${patientId}` }, supportingInfo: [] },
    });
    expect(created.status).toBe(201);
    const task = (await fhir(`/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource;

    // Kill it once one kind of record is complete and others are partly in.
    const first = `/${chartTypes[0]}?subject=${task.for.reference}&_summary=count`;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      if ((await fhir(first)).body.total === perType) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 60));
    service.kill('SIGKILL');
    await new Promise((r) => service.once('exit', r));
    const partial = proxy.forwarded;

    proxy.latencyMs = 0;
    service = await startService();
    let current = task;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && current.businessStatus.coding[0].code !== 'awaiting-assignment'; ) {
      await new Promise((r) => setTimeout(r, 200));
      current = (await fhir(`/Task/${task.id}`)).body;
    }
    expect(current.businessStatus.coding[0].code).toBe('awaiting-assignment');
    expect(proxy.forwarded).toBeGreaterThan(partial);
    for (const type of chartTypes) {
      const param = ['AllergyIntolerance', 'Immunization'].includes(type) ? 'patient' : 'subject';
      const found = await fhir(`/${type}?${param}=${task.for.reference}&_count=100`);
      expect([type, found.body.total]).toEqual([type, perType]);
      expect(found.body.entry.every((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId === '1')).toBe(true);
    }
    // One Provenance for the retrieval, naming the records of both runs.
    const provenance = await fhir(`/Provenance?target=${task.for.reference}&_count=5`);
    expect(provenance.body.total).toBe(1);
    expect(provenance.body.entry[0].resource.target).toHaveLength(1 + chartTypes.length * perType);
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  }, 180_000);
});
