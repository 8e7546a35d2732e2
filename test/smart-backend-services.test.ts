// The service as a SMART Backend Services authorization server: a first admin client comes from the
// environment; it registers a referring EHR (keys at a jwks_uri) and a reviewer (keys inline); each
// gets short-lived access tokens with private_key_jwt assertions (RS384, ES384), for the requested
// scopes it is allowed, in v1 or v2 syntax. Replayed, misdirected, overlong or badly signed
// assertions are refused as RFC 6749 says.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, SignJWT } from 'jose';
import { UsedAssertions } from '../src/store/used-assertions.js';
import { clientAssertion, jwtBearer, makeKeyPair, requestToken, serveJwks, type JwksServer, type KeyPair } from './client-keys.js';
import { startTestService, type TestService } from './harness.js';

let service: TestService;
let tokenUrl: string;
let adminKey: KeyPair;
let ehrKey: KeyPair;
let reviewerKey: KeyPair;
let ehrJwks: JwksServer;

beforeAll(async () => {
  adminKey = await makeKeyPair('ES384');
  ehrKey = await makeKeyPair('RS384');
  reviewerKey = await makeKeyPair('ES384');
  ehrJwks = await serveJwks([ehrKey.publicJwk]);
  service = await startTestService({
    AUTH_BOOTSTRAP_CLIENTS: JSON.stringify([{ client_id: 'first-admin', jwks: { keys: [adminKey.publicJwk] }, scope: 'system/*.*', role: 'admin' }]),
  });
  tokenUrl = `${service.server.url}/auth/token`;
});
afterAll(async () => {
  await service?.stop();
  await ehrJwks?.stop();
});

/** A token request with a fresh assertion of `clientId` signed by `key`. */
async function tokenFor(key: KeyPair, clientId: string, scope: string, claims = {}, header = {}) {
  return requestToken(tokenUrl, {
    grant_type: 'client_credentials',
    client_assertion_type: jwtBearer,
    client_assertion: await clientAssertion(key, clientId, tokenUrl, claims, header),
    scope,
  });
}

async function register(adminToken: string, registration: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${service.server.url}/auth/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(registration),
  });
  return { status: response.status, body: await response.json() };
}

const ehrRegistration = {
  client_id: 'ehr-north',
  jwks_uri: '',
  scope: 'system/ServiceRequest.cruds system/Task.rs system/DiagnosticReport.rs',
  role: 'referrer-system',
  institution: 'Organization/north',
};

describe('SMART Backend Services', () => {
  it('says how in .well-known/smart-configuration, at the root and under /fhir', async () => {
    for (const path of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration']) {
      const response = await fetch(`${service.server.url}${path}`);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toMatchObject({
        token_endpoint: tokenUrl,
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
        grant_types_supported: ['client_credentials', 'authorization_code'],
        registration_endpoint: `${service.server.url}/auth/clients`,
        scopes_supported: expect.arrayContaining(['system/*.cruds', 'system/*.read']),
        capabilities: expect.arrayContaining(['client-confidential-asymmetric', 'permission-v1', 'permission-v2']),
      });
    }
  });

  it('the first admin, from the environment, gets a token (ES384, inline keys) and registers a referring EHR and a reviewer', async () => {
    const answer = await tokenFor(adminKey, 'first-admin', 'system/*.*');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.body).toMatchObject({ token_type: 'bearer', expires_in: 300, scope: 'system/*.*' });
    const claims = decodeJwt(answer.body.access_token);
    expect(claims).toMatchObject({ iss: service.server.url, aud: service.base, sub: 'first-admin', role: 'admin', scope: 'system/*.*' });
    expect((claims.exp as number) - (claims.iat as number)).toBe(300);

    const ehr = await register(answer.body.access_token, { ...ehrRegistration, jwks_uri: ehrJwks.url });
    expect(ehr.status).toBe(201);
    expect(ehr.body).toMatchObject({
      client_id: 'ehr-north',
      jwks_uri: ehrJwks.url,
      role: 'referrer-system',
      institution: 'Organization/north',
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
    });
    const reviewer = await register(answer.body.access_token, {
      client_id: 'dr-south',
      jwks: { keys: [reviewerKey.publicJwk] },
      scope: 'user/*.rs user/DiagnosticReport.cu',
      role: 'reviewer',
      fhirUser: 'Practitioner/south',
    });
    expect(reviewer.status).toBe(201);
    expect(reviewer.body.jwks.keys[0].kid).toBe(reviewerKey.publicJwk.kid);
  });

  it("the EHR's RS384 assertion, checked against its jwks_uri, gets a token for the scopes it asked for and is allowed, and no others", async () => {
    const answer = await tokenFor(ehrKey, 'ehr-north', 'system/ServiceRequest.c system/Task.rs system/Patient.rs');
    expect(answer.status).toBe(200);
    expect(answer.body.scope).toBe('system/ServiceRequest.c system/Task.rs');
    expect(decodeJwt(answer.body.access_token)).toMatchObject({
      sub: 'ehr-north',
      role: 'referrer-system',
      institution: 'Organization/north',
      scope: 'system/ServiceRequest.c system/Task.rs',
    });
    expect(ehrJwks.fetches).toBeGreaterThan(0);

    const token = answer.body.access_token;
    expect((await service.fhir('/Task?_summary=count', { token })).status).toBe(200);
    const patients = await service.fhir('/Patient?_summary=count', { token });
    expect(patients.status).toBe(403);
    expect(patients.body.issue[0]).toMatchObject({ code: 'forbidden', details: { text: expect.stringContaining('system/Patient.s') } });
  });

  it('narrows: v1 scopes covered whole are granted as asked, wider ones cut to what is allowed', async () => {
    const v1 = await tokenFor(ehrKey, 'ehr-north', 'system/Task.read system/ServiceRequest.write');
    expect(v1.body.scope).toBe('system/Task.read system/ServiceRequest.write');
    const wide = await tokenFor(ehrKey, 'ehr-north', 'system/*.read');
    expect(wide.body.scope.split(' ').sort()).toEqual(['system/DiagnosticReport.rs', 'system/ServiceRequest.rs', 'system/Task.rs']);
    const partly = await tokenFor(ehrKey, 'ehr-north', 'system/Task.cruds');
    expect(partly.body.scope).toBe('system/Task.rs');
    // Not resource scopes, other contexts, out-of-order letters and search restrictions are not granted.
    const odd = await tokenFor(ehrKey, 'ehr-north', 'openid launch patient/Task.rs user/Task.rs system/Task.sr system/Task.rs?status=ready system/Task.r');
    expect(odd.body.scope).toBe('system/Task.r');
  });

  it("a reviewer's ES384 assertion gets user scopes and a token naming the person", async () => {
    const answer = await tokenFor(reviewerKey, 'dr-south', 'user/DiagnosticReport.cruds user/Patient.rs');
    expect(answer.status).toBe(200);
    // DiagnosticReport.cruds is cut to the two allowed scopes that hold parts of it.
    expect(answer.body.scope).toBe('user/DiagnosticReport.rs user/DiagnosticReport.cu user/Patient.rs');
    expect(decodeJwt(answer.body.access_token)).toMatchObject({ sub: 'dr-south', role: 'reviewer', fhirUser: 'Practitioner/south' });
    expect((await service.fhir('/Patient?_summary=count', { token: answer.body.access_token })).status).toBe(200);
  });

  it('a replayed assertion is refused', async () => {
    const assertion = await clientAssertion(ehrKey, 'ehr-north', tokenUrl);
    const form = { grant_type: 'client_credentials', client_assertion_type: jwtBearer, client_assertion: assertion, scope: 'system/Task.rs' };
    expect((await requestToken(tokenUrl, form)).status).toBe(200);
    const replay = await requestToken(tokenUrl, form);
    expect(replay.status).toBe(401);
    expect(replay.body).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/used before/) });
  });

  it('assertions for another audience, too long-lived, expired, not iss = sub, of an unknown client, badly signed, without kid or with a foreign jku: invalid_client', async () => {
    const now = Math.floor(Date.now() / 1000);
    const stranger = await makeKeyPair('RS384', ehrKey.publicJwk.kid);
    const rs256 = await makeKeyPair('RS256', ehrKey.publicJwk.kid);
    const cases: [string, Promise<{ status: number; body: any }>][] = [
      ['audience', tokenFor(ehrKey, 'ehr-north', 'system/Task.rs', { aud: `${service.base}` })],
      ['over five minutes', tokenFor(ehrKey, 'ehr-north', 'system/Task.rs', { exp: now + 3600 })],
      ['expired', tokenFor(ehrKey, 'ehr-north', 'system/Task.rs', { exp: now - 120, iat: now - 400 })],
      ['sub', tokenFor(ehrKey, 'ehr-north', 'system/Task.rs', { sub: 'someone-else' })],
      ['no jti', tokenFor(ehrKey, 'ehr-north', 'system/Task.rs', { jti: undefined })],
      ['unknown client', tokenFor(ehrKey, 'ehr-nowhere', 'system/Task.rs')],
      ['other key, same kid', tokenFor(stranger, 'ehr-north', 'system/Task.rs')],
      ['RS256', tokenFor(rs256, 'ehr-north', 'system/Task.rs')],
      ['no kid', tokenFor(ehrKey, 'ehr-north', 'system/Task.rs', {}, { kid: undefined })],
      ['foreign jku', tokenFor(ehrKey, 'ehr-north', 'system/Task.rs', {}, { jku: 'https://attacker.example/jwks.json' })],
      [
        'client_id not the assertion issuer',
        (async () =>
          requestToken(tokenUrl, {
            grant_type: 'client_credentials',
            client_id: 'first-admin',
            client_assertion_type: jwtBearer,
            client_assertion: await clientAssertion(ehrKey, 'ehr-north', tokenUrl),
            scope: 'system/Task.rs',
          }))(),
      ],
      [
        'HS256 with the public key',
        (async () => {
          const hmac = await new SignJWT({ iss: 'ehr-north', sub: 'ehr-north', aud: tokenUrl, jti: `${now}`, exp: now + 60 })
            .setProtectedHeader({ alg: 'HS256', kid: ehrKey.publicJwk.kid })
            .sign(new TextEncoder().encode(JSON.stringify(ehrKey.publicJwk)));
          return requestToken(tokenUrl, {
            grant_type: 'client_credentials',
            client_assertion_type: jwtBearer,
            client_assertion: hmac,
            scope: 'system/Task.rs',
          });
        })(),
      ],
    ];
    for (const [what, answer] of cases) {
      const { status, body } = await answer;
      expect([what, status, body.error]).toEqual([what, 401, 'invalid_client']);
      expect(body.access_token).toBeUndefined();
    }
  });

  it('the other errors of RFC 6749: no grant type, another grant type, no assertion, no scope, no scope allowed', async () => {
    const assertion = () => clientAssertion(ehrKey, 'ehr-north', tokenUrl);
    expect(await requestToken(tokenUrl, { client_assertion_type: jwtBearer, client_assertion: await assertion(), scope: 'system/Task.rs' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_request' },
    });
    expect(await requestToken(tokenUrl, { grant_type: 'password', username: 'x', password: 'y' })).toMatchObject({
      status: 400,
      body: { error: 'unsupported_grant_type' },
    });
    // The authorization code grant is the people's sign-in (test/sign-in.test.ts): a code it never issued is refused.
    expect(await requestToken(tokenUrl, { grant_type: 'authorization_code', code: 'x', client_id: 'workbench', code_verifier: 'y'.repeat(43) })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    expect(await requestToken(tokenUrl, { grant_type: 'client_credentials', scope: 'system/Task.rs' })).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    });
    expect(
      await requestToken(tokenUrl, { grant_type: 'client_credentials', client_assertion_type: jwtBearer, client_assertion: await assertion() }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    expect(await tokenFor(ehrKey, 'ehr-north', 'system/Patient.rs system/Observation.read')).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    const repeated = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&grant_type=client_credentials',
    });
    expect(repeated.status).toBe(400);
    expect((await repeated.json()).error).toBe('invalid_request');
  });

  it('registration needs an admin token and public keys, and refuses what it cannot use', async () => {
    const admin = (await tokenFor(adminKey, 'first-admin', 'system/*.*')).body.access_token;
    const ehr = (await tokenFor(ehrKey, 'ehr-north', 'system/Task.rs')).body.access_token;
    const good = {
      client_id: 'ehr-east',
      jwks: { keys: [ehrKey.publicJwk] },
      scope: 'system/Task.rs',
      role: 'referrer-system',
      institution: 'Organization/east',
    };
    expect((await register(ehr, good)).status).toBe(403);
    const anonymous = await fetch(`${service.server.url}/auth/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(good),
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);

    const privateKey = { ...ehrKey.publicJwk, d: 'c2VjcmV0' };
    for (const [what, body] of [
      ['private key', { ...good, jwks: { keys: [privateKey] } }],
      ['symmetric key', { ...good, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'x' }] } }],
      ['no kid', { ...good, jwks: { keys: [{ ...ehrKey.publicJwk, kid: undefined }] } }],
      ['both key sources', { ...good, jwks_uri: ehrJwks.url }],
      ['no keys', { ...good, jwks: undefined }],
      ['jwks_uri not http', { ...good, jwks: undefined, jwks_uri: 'file:///etc/passwd' }],
      ['patient scope', { ...good, scope: 'patient/*.read' }],
      ['unknown role', { ...good, role: 'superuser' }],
      ['referrer without institution', { ...good, institution: undefined }],
      ['reviewer without fhirUser', { ...good, role: 'reviewer', institution: undefined }],
      ['already registered', { ...good, client_id: 'ehr-north' }],
    ] as const) {
      const answer = await register(admin, body);
      expect([what, answer.status, answer.body.error]).toEqual([what, 400, 'invalid_client_metadata']);
    }
    expect((await register(admin, good)).status).toBe(201);
  });

  it('used assertion ids are kept until they expire, then deleted', async () => {
    const connection = service.server.database.connection;
    await new UsedAssertions(connection).use('c', 'old', new Date(Date.now() - 1000));
    // A new store purges what has expired before it records the next id.
    const store = new UsedAssertions(connection);
    expect(await store.use('c', 'new', new Date(Date.now() + 60_000))).toBe(true);
    const ids = (await connection.collection('auth_used_assertions').find({}).toArray()).map((d) => d._id as unknown as string);
    expect(ids).not.toContain(JSON.stringify(['c', 'old']));
    expect(ids).toContain(JSON.stringify(['c', 'new']));
    expect(await store.use('c', 'new', new Date(Date.now() + 60_000))).toBe(false);
  });
});
