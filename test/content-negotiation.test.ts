// HTTP as FHIR R4 asks of a server that answers JSON only: content negotiation (Accept and _format),
// conditional interactions it does not offer, conditional reads, and a CapabilityStatement
// that says what the server really does with a PUT to a new id.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type FhirResponse, type TestService } from './harness.js';

let service: TestService;
let patientId: string;
beforeAll(async () => {
  service = await startTestService();
  patientId = (await service.fhir('/Patient', { body: { resourceType: 'Patient', gender: 'female', birthDate: '1970-02-03' } })).body.id;
});
afterAll(async () => {
  await service?.stop();
});

const patientCount = async (): Promise<number> => (await service.fhir('/Patient?_summary=count')).body.total;
const issueOf = (res: FhirResponse) => [res.status, res.body?.resourceType, res.body?.issue?.[0]?.code, res.body?.issue?.[0]?.expression];

describe('content negotiation', () => {
  it('answers JSON to every Accept that takes FHIR R4 JSON, in any of its names', async () => {
    for (const accept of [
      'application/fhir+json',
      'application/fhir+json; fhirVersion=4.0',
      'application/fhir+json; fhirVersion=4.0.1',
      'application/fhir+xml;q=1.0, application/fhir+json;q=1.0, application/xml+fhir;q=0.9, application/json+fhir;q=0.9', // HAPI's client
      'application/fhir+json; charset=utf-8',
      'application/json',
      'text/json',
      'application/json+fhir',
      '*/*',
      'application/*',
      'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', // a browser
      'application/fhir+xml, application/fhir+json;q=0.5',
    ]) {
      const res = await service.fhir(`/Patient/${patientId}`, { headers: { accept } });
      expect([accept, res.status, res.headers.get('content-type'), res.body.id]).toEqual([accept, 200, 'application/fhir+json; charset=utf-8', patientId]);
    }
  });

  it('answers 406 with an OperationOutcome naming Accept when it asks only for what the server does not send', async () => {
    for (const accept of ['application/fhir+xml', 'application/xml', 'text/turtle', 'application/fhir+json; fhirVersion=3.0', 'application/fhir+json;q=0']) {
      const res = await service.fhir(`/Patient/${patientId}`, { headers: { accept } });
      expect([accept, ...issueOf(res)]).toEqual([accept, 406, 'OperationOutcome', 'not-supported', ['Accept']]);
      expect(res.body.issue[0].details.text).toContain('application/fhir+json');
    }
    // The CapabilityStatement too: a client that reads only XML learns it at once.
    expect(issueOf(await service.fhir('/metadata', { headers: { accept: 'application/fhir+xml' } }))).toEqual([
      406,
      'OperationOutcome',
      'not-supported',
      ['Accept'],
    ]);
  });

  it('_format overrides Accept: json in any of its names is answered, xml, ttl and html are 406 naming _format', async () => {
    for (const format of ['json', 'application/json', 'application/fhir+json', 'application/fhir+json;fhirVersion=4.0']) {
      const res = await service.fhir(`/Patient/${patientId}?_format=${encodeURIComponent(format)}`, { headers: { accept: 'application/fhir+xml' } });
      expect([format, res.status, res.body.id]).toEqual([format, 200, patientId]);
    }
    for (const format of ['xml', 'text/xml', 'application/fhir+xml', 'ttl', 'html']) {
      const res = await service.fhir(`/Patient?_format=${encodeURIComponent(format)}`);
      expect([format, ...issueOf(res)]).toEqual([format, 406, 'OperationOutcome', 'not-supported', ['_format']]);
    }
    expect(issueOf(await service.fhir('/Patient?_format=json&_format=xml'))).toEqual([400, 'OperationOutcome', 'invalid', ['_format']]);
  });

  it('refuses a write that asks for XML before it changes anything', async () => {
    const before = await patientCount();
    const res = await service.fhir('/Patient', { body: { resourceType: 'Patient' }, headers: { accept: 'application/fhir+xml' } });
    expect(issueOf(res)).toEqual([406, 'OperationOutcome', 'not-supported', ['Accept']]);
    expect(await patientCount()).toBe(before);
  });
});

describe('interactions the server does not offer', () => {
  it('conditional update and delete answer 400 and change nothing', async () => {
    const before = await patientCount();
    const update = await service.fhir('/Patient?birthdate=1970-02-03', { method: 'PUT', body: { resourceType: 'Patient', gender: 'male' } });
    expect(issueOf(update)).toEqual([400, 'OperationOutcome', 'invalid', undefined]);
    expect(update.body.issue[0].details.text).toContain('Conditional update');
    const remove = await service.fhir('/Patient?birthdate=1970-02-03', { method: 'DELETE' });
    expect(issueOf(remove)).toEqual([400, 'OperationOutcome', 'invalid', undefined]);
    expect(await patientCount()).toBe(before);
    expect((await service.fhir(`/Patient/${patientId}`)).body.gender).toBe('female');
  });
});

describe('_pretty', () => {
  it('true indents the answer; without it the answer is compact; either is the same resource', async () => {
    const pretty = await fetch(`${service.base}/Patient/${patientId}?_pretty=true`, { headers: { authorization: `Bearer ${service.token}` } });
    const compact = await fetch(`${service.base}/Patient/${patientId}`, { headers: { authorization: `Bearer ${service.token}` } });
    const [prettyText, compactText] = [await pretty.text(), await compact.text()];
    expect(prettyText).toContain('\n  "resourceType": "Patient"');
    expect(compactText).not.toContain('\n');
    expect(JSON.parse(prettyText)).toEqual(JSON.parse(compactText));
  });
});

describe('Prefer: handling', () => {
  it('strict (the default) refuses an unknown search parameter; lenient leaves it out, and out of the links', async () => {
    const strict = await service.fhir('/Patient?birthdate=1970-02-03&favourite-colour=blue', { headers: { prefer: 'handling=strict' } });
    expect([strict.status, strict.body.issue[0].expression]).toEqual([400, ['favourite-colour']]);
    expect((await service.fhir('/Patient?birthdate=1970-02-03&favourite-colour=blue')).status).toBe(400);
    const lenient = await service.fhir('/Patient?birthdate=1970-02-03&favourite-colour=blue&subject.name=x', { headers: { prefer: 'handling=lenient' } });
    expect(lenient.status).toBe(200);
    expect(lenient.body.entry.map((e: any) => e.resource.id)).toEqual([patientId]);
    const self = new URL(lenient.body.link.find((l: any) => l.relation === 'self').url);
    expect([self.searchParams.get('birthdate'), self.searchParams.has('favourite-colour'), self.searchParams.has('subject.name')]).toEqual([
      '1970-02-03',
      false,
      false,
    ]);
    // POST _search too; a known parameter with a wrong value is still refused.
    const posted = await service.fhir('/Patient/_search', {
      body: { birthdate: '1970-02-03', 'favourite-colour': 'blue' },
      headers: { prefer: 'handling=lenient' },
    });
    expect([posted.status, posted.body.entry?.length]).toEqual([200, 1]);
    expect((await service.fhir('/Patient?birthdate=someday', { headers: { prefer: 'handling=lenient' } })).status).toBe(400);
  });
});

describe('conditional read', () => {
  it('answers 304 to If-None-Match with the current version and to If-Modified-Since after the last change, and the record otherwise', async () => {
    const current = await service.fhir(`/Patient/${patientId}`);
    const etag = current.headers.get('etag') as string;
    const lastModified = current.headers.get('last-modified') as string;
    expect(etag).toBe('W/"1"');
    expect((await service.fhir(`/Patient/${patientId}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await service.fhir(`/Patient/${patientId}`, { headers: { 'if-modified-since': lastModified } })).status).toBe(304);
    const stale = await service.fhir(`/Patient/${patientId}`, { headers: { 'if-none-match': 'W/"0"' } });
    expect([stale.status, stale.body.id]).toEqual([200, patientId]);
    const before = await service.fhir(`/Patient/${patientId}`, { headers: { 'if-modified-since': new Date(Date.parse(lastModified) - 60_000).toUTCString() } });
    expect([before.status, before.body.id]).toEqual([200, patientId]);
  });
});

describe('the CapabilityStatement says what a PUT to a new id does', () => {
  it('patient data: updateCreate false, and the PUT is refused; the directory: updateCreate true, and the PUT creates', async () => {
    const rest = (await service.fhir('/metadata')).body.rest[0];
    const declared = (type: string) => rest.resource.find((r: any) => r.type === type);
    expect([declared('Patient').updateCreate, declared('Observation').updateCreate, declared('Organization').updateCreate]).toEqual([false, false, true]);
    expect(declared('Patient').conditionalRead).toBe('full-support');
    const before = await patientCount();
    const patient = await service.fhir('/Patient/chosen-by-the-client', { method: 'PUT', body: { resourceType: 'Patient', id: 'chosen-by-the-client' } });
    expect(issueOf(patient)).toEqual([404, 'OperationOutcome', 'not-found', undefined]);
    expect(await patientCount()).toBe(before);
    const organization = await service.fhir('/Organization/chosen-by-the-admin', {
      method: 'PUT',
      body: { resourceType: 'Organization', id: 'chosen-by-the-admin', name: 'A' },
    });
    expect(organization.status).toBe(201);
  });
});
