// Adversarial cases against the promise that an institution's data is its own, one describe per class.
// Each is tried as a hostile or careless client would, against the real service and database.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type TestService } from './harness.js';
import { secondOpinionRequest } from './review-cases.js';

let service: TestService;

beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.stop();
});

/** The AuditEvents recorded since `since` (they are written as their answers finish). */
async function auditSince(since: string, wanted: (events: any[]) => boolean): Promise<any[]> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    const events = ((await service.fhir(`/AuditEvent?date=ge${since}&_count=200`)).body.entry ?? []).map((e: any) => e.resource);
    if (wanted(events)) return events;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the audit events did not appear');
}

describe('secrets in the audit trail', () => {
  it('a credential sent in a query is refused, and its value is not kept in the AuditEvent', async () => {
    const since = new Date().toISOString();
    const secret = 'eyJhbGciOiJFUzM4NCJ9.live-token-value.signature';
    const answer = await service.fhir(`/Patient?access_token=${secret}&client_secret=s3cret&name=Kept`, { token: service.token });
    expect(answer.status).toBe(400);
    const events = await auditSince(since, (found) => found.some((e) => e.entity?.some((x: any) => x.query)));
    const queries = events
      .flatMap((e) => e.entity ?? [])
      .filter((x: any) => x.query)
      .map((x: any) => Buffer.from(x.query, 'base64').toString());
    expect(queries).toContain('access_token=redacted&client_secret=redacted&name=Kept');
    expect(JSON.stringify(events)).not.toContain('live-token-value');
    expect(JSON.stringify(events)).not.toContain('s3cret');
  });
});

describe('caching of patient data', () => {
  it('every answer of the API says no-store, found or not', async () => {
    const created = await service.fhir('/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Uncached' }] } });
    for (const path of [`/Patient/${created.body.id}`, '/Patient?family=Uncached', '/Patient/no-such-patient', '/metadata']) {
      const answer = await service.fhir(path);
      expect([path, answer.headers.get('cache-control')]).toEqual([path, 'no-store']);
    }
    const attachment = await fetch(`${service.server.url}/attachments/${'0'.repeat(32)}`, { headers: { authorization: `Bearer ${service.token}` } });
    expect([attachment.status, attachment.headers.get('cache-control')]).toEqual([404, 'no-store']);
  });
});

describe('bad input that reaches the store', () => {
  it('a JSON _search body with an operator in place of a value answers 400 naming the parameter', async () => {
    await service.fhir('/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Operand' }] } });
    for (const body of [{ _id: { $gt: '' } }, { family: ['Operand', { $ne: null }] }, ['family', 'Operand']]) {
      const answer = await service.fhir('/Patient/_search', { body, headers: { 'content-type': 'application/json' } });
      expect([JSON.stringify(body), answer.status, answer.body.resourceType]).toEqual([JSON.stringify(body), 400, 'OperationOutcome']);
    }
    const named = await service.fhir('/Patient/_search', { body: { _id: { $gt: '' } }, headers: { 'content-type': 'application/json' } });
    expect(named.body.issue[0].expression).toEqual(['_id']);
  });

  it('a body that is not valid UTF-8 answers 400 and stores nothing', async () => {
    const before = (await service.fhir('/Patient?_summary=count')).body.total;
    const bytes = Buffer.concat([Buffer.from('{"resourceType":"Patient","name":[{"family":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}')]);
    const answer = await fetch(`${service.base}/Patient`, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${service.token}` },
    });
    expect(answer.status).toBe(400);
    expect((await answer.json()).issue[0].details.text).toMatch(/UTF-8/);
    expect((await service.fhir('/Patient?_summary=count')).body.total).toBe(before);
  });
});

describe('outbound calls to servers that were never registered', () => {
  let stranger: Server;
  const seen: string[] = [];

  beforeAll(async () => {
    // A server no institution registered: it must never hear from the service.
    stranger = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Patient","id":"x"}');
    });
    await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => stranger.close(resolve));
  });

  it('a request whose patient is on an unregistered server is refused (422 at ServiceRequest.subject), stored nowhere, and nothing is called', async () => {
    const base = `http://127.0.0.1:${(stranger.address() as AddressInfo).port}/fhir`;
    const answer = await service.fhir('/ServiceRequest', { body: secondOpinionRequest('STRANGER-1', base, 'x') });
    expect(answer.status).toBe(422);
    expect(answer.body.issue[0].expression).toEqual(['ServiceRequest.subject']);
    expect(JSON.stringify(answer.body)).not.toContain(base);
    expect((await service.fhir('/ServiceRequest?identifier=STRANGER-1&_summary=count')).body.total).toBe(0);
    // In a transaction too.
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: secondOpinionRequest('STRANGER-2', base, 'x'), request: { method: 'POST', url: 'ServiceRequest' } }],
    };
    expect((await service.fhir('', { body: bundle })).status).toBe(422);
    await new Promise((r) => setTimeout(r, 1500)); // time for any retrieval job to have started
    expect(seen).toEqual([]);
  });
});
