// A transaction Bundle that fails at its last entry, after writes, as every store must answer it.
import { expect } from '@jest/globals';
import type { TestService } from './harness.js';

/** Posts a transaction that creates a Patient and updates another, then fails on a stale If-Match: nothing of it may stay. */
export async function expectFailedTransactionLeavesNothing(service: TestService): Promise<void> {
  const existing = (await service.fhir('/Patient', { body: { resourceType: 'Patient', gender: 'female' } })).body;
  const before = (await service.fhir('/Patient?_summary=count')).body.total;
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Patient', name: [{ family: 'Rolledback' }] }, request: { method: 'POST', url: 'Patient' } },
      { resource: { ...existing, gender: 'male' }, request: { method: 'PUT', url: `Patient/${existing.id}` } },
      { resource: { ...existing, gender: 'other' }, request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"1"' } },
    ],
  };
  const res = await service.fhir('', { body: bundle });
  expect(res.status).toBe(412);
  expect((await service.fhir('/Patient?_summary=count')).body.total).toBe(before);
  const current = await service.fhir(`/Patient/${existing.id}`);
  expect(current.body.gender).toBe('female');
  expect(current.body.meta.versionId).toBe('1');
  expect((await service.fhir('/Patient?family=Rolledback')).body.total).toBe(0);
  // Undone entirely: the history has the one version, and the next write moves it on at once.
  expect((await service.fhir(`/Patient/${existing.id}/_history`)).body.total).toBe(1);
  const next = await service.fhir(`/Patient/${existing.id}`, { method: 'PUT', body: { ...existing, gender: 'male' }, headers: { 'if-match': 'W/"1"' } });
  expect([next.status, next.body.meta?.versionId]).toEqual([200, '2']);
}
