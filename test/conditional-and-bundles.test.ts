// EHRs retry: the same conditional create twice makes one resource. Transactions are all or nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { expectFailedTransactionLeavesNothing } from './bundle-cases.js';
import { startTestService, type TestService } from './harness.js';

let service: TestService;
beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.stop();
});

const order = (value: string): Record<string, unknown> => ({
  resourceType: 'ServiceRequest',
  identifier: [{ system: 'https://ehr.example/orders', value }],
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p-1' },
});

describe('conditional create (If-None-Exist)', () => {
  it('the same request twice leaves one resource: 201, then 200 with the same id', async () => {
    const headers = { 'if-none-exist': 'identifier=https://ehr.example/orders|RETRY-1' };
    const first = await service.fhir('/ServiceRequest', { body: order('RETRY-1'), headers });
    const second = await service.fhir('/ServiceRequest', { body: order('RETRY-1'), headers });
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.meta.versionId).toBe('1');
    const found = await service.fhir('/ServiceRequest?identifier=https://ehr.example/orders|RETRY-1');
    expect(found.body.total).toBe(1);
  });

  it('ten identical requests at the same moment still make one resource', async () => {
    const headers = { 'if-none-exist': 'identifier=https://ehr.example/orders|RACE-1' };
    const replies = await Promise.all(Array.from({ length: 10 }, () => service.fhir('/ServiceRequest', { body: order('RACE-1'), headers })));
    expect(replies.filter((r) => r.status === 201)).toHaveLength(1);
    expect(replies.every((r) => r.status === 201 || r.status === 200)).toBe(true);
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
    expect((await service.fhir('/ServiceRequest?identifier=https://ehr.example/orders|RACE-1')).body.total).toBe(1);
  });

  it('more than one match answers 412 and creates nothing', async () => {
    await service.fhir('/ServiceRequest', { body: order('DUP-1') });
    await service.fhir('/ServiceRequest', { body: order('DUP-1') });
    const res = await service.fhir('/ServiceRequest', { body: order('DUP-1'), headers: { 'if-none-exist': 'identifier=DUP-1' } });
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect((await service.fhir('/ServiceRequest?identifier=DUP-1')).body.total).toBe(2);
  });

  it('a deleted match does not block a new create', async () => {
    const headers = { 'if-none-exist': 'identifier=https://ehr.example/orders|GONE-1' };
    const first = await service.fhir('/ServiceRequest', { body: order('GONE-1'), headers });
    await service.fhir(`/ServiceRequest/${first.body.id}`, { method: 'DELETE' });
    const again = await service.fhir('/ServiceRequest', { body: order('GONE-1'), headers });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.body.id);
  });
});

describe('transaction and batch Bundles', () => {
  it('a transaction stores every entry and resolves urn:uuid references between them', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:0f3b6d2a-0000-4000-8000-000000000001',
          resource: { resourceType: 'Patient', name: [{ family: 'Bundled' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:0f3b6d2a-0000-4000-8000-000000000002',
          resource: { ...order('TX-1'), subject: { reference: 'urn:uuid:0f3b6d2a-0000-4000-8000-000000000001' } },
          request: { method: 'POST', url: 'ServiceRequest', ifNoneExist: 'identifier=https://ehr.example/orders|TX-1' },
        },
      ],
    };
    const res = await service.fhir('', { body: bundle });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['201 Created', '201 Created']);
    const patientId = res.body.entry[0].resource.id;
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${patientId}`);
    expect((await service.fhir(`/ServiceRequest?subject=Patient/${patientId}`)).body.total).toBe(1);
  });

  it('a transaction with one invalid entry stores nothing and names the entry', async () => {
    const before = (await service.fhir('/Patient?_summary=count')).body.total;
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Never' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'robot' }, request: { method: 'POST', url: 'Patient' } },
      ],
    };
    const res = await service.fhir('', { body: bundle });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.Patient.gender']);
    expect((await service.fhir('/Patient?_summary=count')).body.total).toBe(before);
  });

  it('a transaction that fails while writing undoes the writes before it', async () => {
    await expectFailedTransactionLeavesNothing(service);
  });

  it('a batch runs each entry on its own and reports each outcome', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Batched' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'robot' }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/not-there' } },
      ],
    };
    const res = await service.fhir('', { body: bundle });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['201 Created', '422', '404']);
    expect(res.body.entry[1].response.outcome.issue[0].expression).toEqual(['Patient.gender']);
  });

  it('rejects a Bundle that is neither transaction nor batch', async () => {
    const res = await service.fhir('', { body: { resourceType: 'Bundle', type: 'collection' } });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].expression).toEqual(['Bundle.type']);
  });
});
