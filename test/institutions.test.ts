// Referring institutions are registered as Organization + Endpoint; the service authenticates to
// their FHIR servers with SMART Backend Services or client credentials, and never gives a secret away.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportPKCS8, generateKeyPair } from 'jose';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startTestService, type TestService } from './harness.js';
import { startAuthorizationServer, type AuthorizationServer } from '../scripts/peer/authorization-server.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-cardiology-valve.json'), 'utf8'));
const canonical = canonicalBase();
const secret = 'cc-secret-4f1d9a';

let service: TestService;
let auth: AuthorizationServer;
const ehrs: Record<string, ReferringEhr> = {};

beforeAll(async () => {
  const { privateKey } = await generateKeyPair('ES384', { extractable: true });
  service = await startTestService({
    SMART_PRIVATE_KEY: await exportPKCS8(privateKey),
    SMART_KEY_ID: 'test-key-1',
    SMART_KEY_ALG: 'ES384',
    RETRIEVAL_POLL_MS: '100',
    OUTBOUND_RETRY_BASE_MS: '10',
  });
  auth = await startAuthorizationServer([
    { clientId: 'so-smart', jwksUrl: `${service.server.url}/.well-known/jwks.json` },
    { clientId: 'so-cc', secret },
  ]);
  ehrs.smart = await startReferringEhr({
    accepts: auth.accepts,
    smartConfiguration: {
      token_endpoint: auth.tokenUrl,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      grant_types_supported: ['client_credentials'],
    },
  });
  ehrs.cc = await startReferringEhr({ accepts: auth.accepts });
  ehrs.wrong = await startReferringEhr({ accepts: auth.accepts });
  process.env.TEST_EHR_SECRET = secret;
  process.env.TEST_EHR_WRONG_SECRET = 'not-the-secret';
});
afterAll(async () => {
  await service?.stop();
  await Promise.all(Object.values(ehrs).map((e) => e.stop()));
  await auth?.stop();
  delete process.env.TEST_EHR_SECRET;
  delete process.env.TEST_EHR_WRONG_SECRET;
});

async function register(name: string, ehr: ReferringEhr, parts: Record<string, string>): Promise<string> {
  const org = await service.fhir('/Organization', { body: { resourceType: 'Organization', name } });
  const endpoint = await service.fhir('/Endpoint', {
    body: {
      resourceType: 'Endpoint',
      status: 'active',
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
      payloadType: [{ text: 'FHIR R4' }],
      address: ehr.base,
      managingOrganization: { reference: `Organization/${org.body.id}` },
      extension: [
        {
          url: `${canonical}/StructureDefinition/endpoint-auth`,
          extension: Object.entries(parts).map(([url, value]) => ({ url, [url === 'mode' ? 'valueCode' : 'valueString']: value })),
        },
      ],
    },
  });
  expect(endpoint.status).toBe(201);
  return endpoint.body.id;
}

async function requestAndWait(body: Record<string, unknown>): Promise<any> {
  const created = await service.fhir('/ServiceRequest', { body });
  expect(created.status).toBe(201);
  for (const deadline = Date.now() + 30_000; ;) {
    const task = (await service.fhir(`/Task?focus=ServiceRequest/${created.body.id}`)).body.entry?.[0]?.resource;
    if (task && (task.status === 'failed' || task.businessStatus.coding[0].code === 'awaiting-assignment' || Date.now() > deadline)) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('referring institutions', () => {
  it('publishes the public half of its SMART key as a JWKS', async () => {
    const jwks = (await (await fetch(`${service.server.url}/.well-known/jwks.json`)).json()) as { keys: Record<string, string>[] };
    // Its SMART key, the key opinions are signed with and its access-token key; private parts never.
    expect(jwks.keys.map((k) => k.kid)).toEqual(['test-key-1', 'opinion-1', 'auth-1']);
    expect(jwks.keys[0]).toMatchObject({ kid: 'test-key-1', alg: 'ES384', kty: 'EC', use: 'sig' });
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });

  it('SMART Backend Services: a verified client assertion, one token for the whole chart, patient named relative to meta.source', async () => {
    await register('Smart Hospital', ehrs.smart, { mode: 'smart-backend', clientId: 'so-smart', scope: 'system/*.read' });
    const patientId = await seedPatient(ehrs.smart.repo, 3);
    const issuedBefore = auth.issued;
    const task = await requestAndWait({
      ...example,
      meta: { ...example.meta, source: ehrs.smart.base },
      identifier: [{ system: 'https://smart.example/orders', value: 'S-1' }],
      subject: { reference: `Patient/${patientId}` },
      supportingInfo: undefined,
    });
    expect(auth.refusals).toEqual([]);
    expect(task.status).toBe('received');
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment');
    expect(auth.issued - issuedBefore).toBe(1);
    expect((await service.fhir(`/Observation?subject=${task.for.reference}&_summary=count`)).body.total).toBe(3);
  });

  it('client credentials: the secret comes from the variable the Endpoint names, and is never returned', async () => {
    const endpointId = await register('Credentials Hospital', ehrs.cc, {
      mode: 'client-credentials',
      clientId: 'so-cc',
      tokenUrl: auth.tokenUrl,
      secretEnv: 'TEST_EHR_SECRET',
    });
    const patientId = await seedPatient(ehrs.cc.repo, 2);
    const task = await requestAndWait({
      ...example,
      identifier: [{ system: 'https://cc.example/orders', value: 'C-1' }],
      subject: { reference: `${ehrs.cc.base}/Patient/${patientId}` },
      supportingInfo: undefined,
    });
    expect(task.businessStatus.coding[0].code).toBe('awaiting-assignment');
    const endpoint = await service.fhir(`/Endpoint/${endpointId}`);
    expect(JSON.stringify(endpoint.body)).not.toContain(secret);
  });

  it('a refused client secret fails the case with a reason that names the token endpoint, not the secret', async () => {
    await register('Wrong Secret Hospital', ehrs.wrong, {
      mode: 'client-credentials',
      clientId: 'so-cc',
      tokenUrl: auth.tokenUrl,
      secretEnv: 'TEST_EHR_WRONG_SECRET',
    });
    const patientId = await seedPatient(ehrs.wrong.repo, 1);
    const task = await requestAndWait({
      ...example,
      identifier: [{ system: 'https://wrong.example/orders', value: 'W-1' }],
      subject: { reference: `${ehrs.wrong.base}/Patient/${patientId}` },
      supportingInfo: undefined,
    });
    expect(task.status).toBe('failed');
    expect(task.statusReason.text).toContain(`${auth.tokenUrl}: HTTP 401`);
    expect(task.statusReason.text).not.toContain('not-the-secret');
    expect(ehrs.wrong.requests).toEqual([]);
  });
});
