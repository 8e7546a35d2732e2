// Hostile input: query operators, huge and deep bodies, broken encodings, wrong content types, path
// tricks and script in strings never cause a 5xx or a change to the store; a fuzz run over the FHIR
// endpoints finds no 5xx; headers, CORS and the rate limit behave.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { startTestService, type TestService } from './harness.js';

let service: TestService;

beforeAll(async () => {
  service = await startTestService({ MAX_BODY_BYTES: '200000' });
});
afterAll(async () => {
  await service?.stop();
});

const patient = { resourceType: 'Patient', name: [{ family: 'Hostile', given: ['Input'] }], gender: 'other' };

/** What the store holds, as counts per type a hostile request could touch. */
async function storeCounts(): Promise<number[]> {
  return Promise.all(['Patient', 'ServiceRequest', 'Observation', 'Task'].map(async (t) => (await service.fhir(`/${t}?_summary=count`)).body.total as number));
}

async function raw(
  path: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${service.base}${path}`, { ...init, headers: { authorization: `Bearer ${service.token}`, ...init.headers } });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

describe('hostile input', () => {
  let patientId: string;
  beforeAll(async () => {
    const created = await service.fhir('/Patient', { body: patient });
    expect(created.status).toBe(201);
    patientId = created.body.id;
  });

  it('query operators in parameters never reach the database as operators', async () => {
    const before = await storeCounts();
    for (const query of ['name[$regex]=.*', '_id[$ne]=x', 'gender[$gt]=', '$where=1', 'name=%7B%22%24gt%22%3A%22%22%7D', 'identifier[$exists]=true']) {
      const answer = await service.fhir(`/Patient?${query}`);
      expect([query, answer.status]).toEqual([query, answer.status === 200 ? 200 : 400]);
      expect(answer.body.resourceType).toBe(answer.status === 200 ? 'Bundle' : 'OperationOutcome');
      // Whatever it answers, an operator never matched everything.
      if (answer.status === 200) expect(answer.body.total).toBe(0);
    }
    const form = await raw('/Patient/_search', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'gender[$ne]=x&name[$regex]=.*',
    });
    expect(form.status).toBe(400);
    const submit = await service.fhir('/ServiceRequest/$submit', {
      body: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'institution', valueReference: { reference: 'Organization/x' } },
          { name: 'serviceRequestId', valueString: { $gt: '' } },
        ],
      },
    });
    expect(submit.status).toBe(400);
    const operatorInResource = await service.fhir('/Patient', { body: { ...patient, $where: 'sleep(1000)', name: [{ family: { $gt: '' } }] } });
    expect([400, 422]).toContain(operatorInResource.status);
    expect(await storeCounts()).toEqual(before);
  });

  it('huge bodies, deep nesting, broken encodings and wrong content types are refused', async () => {
    const before = await storeCounts();
    const huge = await service.fhir('/Patient', { body: { ...patient, text: { status: 'generated', div: `<div>${'x'.repeat(300_000)}</div>` } } });
    expect(huge.status).toBe(413);
    const deep = `${'['.repeat(10_000)}"bottom"${']'.repeat(10_000)}`;
    const nested = await service.fhir('/Patient', { body: `{"resourceType":"Patient","extension":${deep}}` });
    expect(nested.status).toBe(400);
    expect(nested.body.issue[0].details.text).toMatch(/nests deeper than 64 levels/);
    const invalidUtf8 = await raw('/Patient', {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: Buffer.concat([Buffer.from('{"resourceType":"Patient","name":[{"family":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}]}')]),
    });
    expect(invalidUtf8.status).toBeLessThan(500);
    for (const type of ['text/html', 'application/xml', 'multipart/form-data; boundary=x', 'text/plain']) {
      const wrong = await raw('/Patient', { method: 'POST', headers: { 'content-type': type }, body: JSON.stringify(patient) });
      expect([type, wrong.status]).toEqual([type, 415]);
    }
    const notJson = await raw('/Patient', { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType": "Patient", ' });
    expect(notJson.status).toBe(400);
    // The valid half of the invalid-UTF-8 body may be stored with replacement characters; nothing else is.
    const after = await storeCounts();
    expect(after.slice(1)).toEqual(before.slice(1));
    expect(after[0] - before[0]).toBeLessThanOrEqual(invalidUtf8.status === 201 ? 1 : 0);
  });

  it('path tricks in ids and types find nothing and reveal nothing', async () => {
    for (const path of [
      '/Patient/..%2F..%2Fetc%2Fpasswd',
      '/Patient/%2e%2e',
      '/..%2F..%2Fetc/passwd',
      '/Patient/a%00b',
      '/Patient/' + 'x'.repeat(300),
      '/$where/1',
      '/Patient/1/_history/..%2F1',
    ]) {
      const answer = await raw(path);
      expect([path, answer.status < 500, answer.status >= 400]).toEqual([path, true, true]);
      expect(answer.type).toMatch(/application\/fhir\+json/);
      expect(answer.text).not.toMatch(/at .*\.js:\d+|node_modules|Error:/);
    }
    const outside = await raw('/../../etc/passwd');
    expect(outside.status).toBe(404);
    const elsewhere = await fetch(`${service.server.url}/no/such/place`);
    expect(elsewhere.status).toBe(404);
    expect(((await elsewhere.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('script in strings is stored as data and only ever served as JSON', async () => {
    const script = '<script>alert(document.cookie)</script><img src=x onerror=alert(1)>';
    const created = await service.fhir('/Patient', { body: { ...patient, name: [{ family: script }] } });
    expect(created.status).toBe(201);
    // Asked for HTML alone, the answer is 406, in JSON; asked as a browser asks, the record in JSON.
    const html = await raw(`/Patient/${created.body.id}`, { headers: { accept: 'text/html' } });
    expect([html.status, html.type, JSON.parse(html.text).resourceType]).toEqual([406, expect.stringMatching(/^application\/fhir\+json/), 'OperationOutcome']);
    const read = await raw(`/Patient/${created.body.id}`, { headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
    expect(read.type).toMatch(/^application\/fhir\+json/);
    expect(JSON.parse(read.text).name[0].family).toBe(script);
    const headers = (await fetch(`${service.base}/Patient/${created.body.id}`, { headers: { authorization: `Bearer ${service.token}` } })).headers;
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(headers.get('content-security-policy')).toMatch(/default-src 'self'/);
  });

  it("every answer carries a request id for the logs: the caller's own when it is only an id, else a new one", async () => {
    const fresh = await service.fhir('/Patient?_summary=count');
    expect(fresh.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await service.fhir('/Patient/none', { headers: { 'x-request-id': 'ehr-trace-0001' } });
    expect([kept.status, kept.headers.get('x-request-id')]).toEqual([404, 'ehr-trace-0001']);
    const replaced = await service.fhir('/Patient?_summary=count', { headers: { 'x-request-id': 'Doe, Jane <script>' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a fuzz run of random requests over the FHIR endpoints finds no 5xx', async () => {
    const segment = fc.oneof(
      fc.constant(patientId),
      fc.constantFrom(
        'Patient',
        'ServiceRequest',
        'Task',
        'Observation',
        'DiagnosticReport',
        'Communication',
        'Endpoint',
        'Bundle',
        '_history',
        '_search',
        '$validate',
        '$case-packet',
        '$submit',
        '$verify',
        '$redeliver',
        '$everything',
        'metadata',
        '..',
        '%2e%2e',
        '%00',
      ),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
    );
    const query = fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom(
            '_id',
            'name',
            'subject',
            '_count',
            '_offset',
            '_sort',
            '_include',
            'status',
            '_lastUpdated',
            'code:text',
            'name[$regex]',
            '_summary',
          ),
          fc.string({ maxLength: 8 }),
        ),
        fc.string({ maxLength: 16 }),
      ),
      { maxLength: 3 },
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.jsonValue({ maxDepth: 4 }),
      fc.record(
        { resourceType: fc.constantFrom('Patient', 'Bundle', 'Parameters', 'Task'), id: fc.string({ maxLength: 8 }), status: fc.string({ maxLength: 8 }) },
        { requiredKeys: ['resourceType'] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
        fc.array(segment, { minLength: 0, maxLength: 4 }),
        query,
        body,
        async (method, segments, params, payload) => {
          const search = new URLSearchParams(params).toString();
          const hasBody = payload !== undefined && method !== 'GET' && method !== 'DELETE';
          const response = await fetch(`${service.base}/${segments.join('/')}${search ? `?${search}` : ''}`, {
            method,
            headers: { authorization: `Bearer ${service.token}`, ...(hasBody ? { 'content-type': 'application/fhir+json' } : {}) },
            body: hasBody ? JSON.stringify(payload) : undefined,
          });
          const text = await response.text();
          if (response.status >= 500) throw new Error(`${method} /${segments.join('/')}?${search} answered ${response.status}: ${text.slice(0, 200)}`);
        },
      ),
      { numRuns: 400, seed: 20261125 },
    );
  }, 120_000);
});

describe('CORS and the rate limit', () => {
  let limited: TestService;
  beforeAll(async () => {
    limited = await startTestService({ RATE_LIMIT_PER_MINUTE: '5', CORS_ORIGINS: 'https://ehr-app.example' });
  });
  afterAll(async () => {
    await limited?.stop();
  });

  it('CORS is off unless configured, and then only for the configured origins', async () => {
    const none = await fetch(`${service.base}/metadata`, { headers: { origin: 'https://ehr-app.example' } });
    expect(none.headers.get('access-control-allow-origin')).toBeNull();
    const allowed = await fetch(`${limited.base}/metadata`, { headers: { origin: 'https://ehr-app.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://ehr-app.example');
    const other = await fetch(`${limited.base}/metadata`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a client over the limit gets 429 with Retry-After and an OperationOutcome; other clients and probes are not counted with it', async () => {
    for (let i = 0; i < 3; i++) await fetch(`${limited.server.url}/healthz`);
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 6; i++) {
      last = await fetch(`${limited.base}/Patient?_summary=count`, { headers: { authorization: `Bearer ${limited.token}` } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await last?.json()) as { issue: { code: string }[] }).issue[0].code).toBe('throttled');
    // Another client from the same address has its own count; requests without a token count by address.
    const other = await limited.mintToken({ subject: 'another-client', scope: 'system/*.*', role: 'coordinator' });
    expect((await fetch(`${limited.base}/Patient?_summary=count`, { headers: { authorization: `Bearer ${other}` } })).status).toBe(200);
    const anonymous = [];
    for (let i = 0; i < 4; i++) anonymous.push((await fetch(`${limited.base}/Patient`)).status);
    // Two of this address's five went to the CORS test above.
    expect(anonymous).toEqual([401, 401, 401, 429]);
  });
});
