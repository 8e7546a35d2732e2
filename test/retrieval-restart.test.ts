// Durability: the service is killed (SIGKILL) in the middle of a retrieval; once restarted, it takes
// the job up again and completes the chart, with no record stored twice.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { chartTypes } from '../src/retrieval/retrieve-chart.js';
import { crashFixture } from './crash-fixture.js';
import { seedPatient } from '../scripts/peer/referring-ehr.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-cardiology-valve.json'), 'utf8'));
const perType = 6;
const fx = crashFixture('restart', { RETRIEVAL_PAGE_SIZE: '2', RETRIEVAL_CONCURRENCY: '2', RETRIEVAL_POLL_MS: '100', RETRIEVAL_LEASE_MS: '1500' });

describe('a crash during retrieval', () => {
  it('is survived: after a restart the job completes, with every record stored once', async () => {
    const patientId = await seedPatient(fx.ehr.repo, perType);
    fx.proxy.latencyMs = 40;
    let service = await fx.start();
    const created = await fx.fhir('/ServiceRequest', {
      body: { ...example, subject: { reference: `${fx.proxy.base}/Patient/${patientId}` }, supportingInfo: undefined },
    });
    expect(created.status).toBe(201);
    const task = (await fx.fhir(`/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource;

    // Kill it once one kind of record is complete and others are partly in.
    const first = `/${chartTypes[0]}?subject=${task.for.reference}&_summary=count`;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      if ((await fx.fhir(first)).body.total === perType) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 60));
    service.kill('SIGKILL');
    await new Promise((r) => service.once('exit', r));
    const partial = fx.proxy.forwarded;

    fx.proxy.latencyMs = 0;
    service = await fx.start();
    let current = task;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && current.businessStatus.coding[0].code !== 'awaiting-assignment';) {
      await new Promise((r) => setTimeout(r, 200));
      current = (await fx.fhir(`/Task/${task.id}`)).body;
    }
    expect(current.businessStatus.coding[0].code).toBe('awaiting-assignment');
    expect(fx.proxy.forwarded).toBeGreaterThan(partial);
    for (const type of chartTypes) {
      const param = ['AllergyIntolerance', 'Immunization'].includes(type) ? 'patient' : 'subject';
      const found = await fx.fhir(`/${type}?${param}=${task.for.reference}&_count=100`);
      expect([type, found.body.total]).toEqual([type, perType]);
      expect(found.body.entry.every((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId === '1')).toBe(true);
    }
    // One Provenance for the retrieval, naming the records of both runs.
    const provenance = await fx.fhir(`/Provenance?target=${task.for.reference}&_count=5`);
    expect(provenance.body.total).toBe(1);
    expect(provenance.body.entry[0].resource.target).toHaveLength(1 + chartTypes.length * perType);
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  }, 180_000);
});
