// Patient data only with a valid access token: a request without one, or with one that is expired,
// not yet valid, for another audience, from an untrusted issuer, badly signed, unsigned, HMAC-signed
// with the public key or signed with an unknown key, answers 401 with WWW-Authenticate and an
// OperationOutcome, changes nothing and never echoes the token. The CapabilityStatement, the
// SMART configuration, the JWKS and the probes stay open. Tokens of a configured external issuer
// are accepted, its keys fetched from its JWKS.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { importPKCS8, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { makeKeyPair, serveJwks, type JwksServer, type KeyPair } from './client-keys.js';
import { startTestService, testSigningKey, type TestService } from './harness.js';

let service: TestService;

beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.stop();
});

const patient = { resourceType: 'Patient', name: [{ family: 'Guarded' }] };

/** A token signed with the service's own key (ES384, kid auth-1) whose claims and header the test chooses. */
async function ownToken(claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const key = await importPKCS8(await testSigningKey, 'ES384');
  return new SignJWT({ iss: service.server.url, aud: service.base, sub: 'test', scope: 'system/*.*', role: 'admin', iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: 'ES384', kid: 'auth-1', typ: 'at+jwt', ...header })
    .sign(key);
}

/** The answer to creating a Patient with `token`, and whether the Patient count changed. */
async function createWith(token: string | null): Promise<{ status: number; challenge: string | null; body: any; stored: boolean }> {
  const before = (await service.fhir('/Patient?_summary=count')).body.total;
  const answer = await service.fhir('/Patient', { body: patient, token });
  const after = (await service.fhir('/Patient?_summary=count')).body.total;
  const text = JSON.stringify(answer.body) + (answer.headers.get('www-authenticate') ?? '');
  if (token) expect(text).not.toContain(token);
  return { status: answer.status, challenge: answer.headers.get('www-authenticate'), body: answer.body, stored: after !== before };
}

describe('access tokens', () => {
  it('a valid token of the service opens the FHIR API', async () => {
    const created = await createWith(await ownToken());
    expect(created.status).toBe(201);
    expect(created.stored).toBe(true);
  });

  it('no token, or not a bearer token: 401 with a Bearer challenge and an OperationOutcome, nothing stored', async () => {
    const none = await createWith(null);
    expect(none).toMatchObject({ status: 401, stored: false });
    expect(none.challenge).toBe(`Bearer realm="${service.base}"`);
    expect(none.body.resourceType).toBe('OperationOutcome');
    expect(none.body.issue[0].code).toBe('login');
    const basic = await service.fhir('/Patient', { headers: { authorization: 'Basic dXNlcjpwYXNz' }, token: null });
    expect(basic.status).toBe(401);
    const garbage = await createWith('not-a-jwt');
    expect(garbage.status).toBe(401);
    expect(garbage.challenge).toMatch(/error="invalid_token"/);
  });

  it.each<[string, () => Promise<string>, RegExp]>([
    ['expired', () => ownToken({ exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 900 }), /expired/],
    ['not yet valid', () => ownToken({ nbf: Math.floor(Date.now() / 1000) + 600 }), /not valid yet/],
    ['for another audience', () => ownToken({ aud: 'https://other.example/fhir' }), /another audience/],
    ['from an untrusted issuer', () => ownToken({ iss: 'https://issuer.example' }), /trusted issuer/],
    ['without an expiry', () => ownToken({ exp: undefined }), /exp/],
    ['of another type (a client assertion is not an access token)', () => ownToken({}, { typ: 'JWT' }), /typ/],
  ])('a token %s: 401, nothing stored', async (_case, make, why) => {
    const refused = await createWith(await make());
    expect(refused).toMatchObject({ status: 401, stored: false });
    expect(refused.challenge).toMatch(/^Bearer realm=".*", error="invalid_token", error_description=".+"$/);
    expect(refused.body.issue[0]).toMatchObject({ severity: 'error', code: 'login' });
    expect(refused.body.issue[0].details.text).toMatch(why);
  });

  it('a bad signature, alg none, HMAC with the public key, an unknown key or algorithm: 401', async () => {
    const valid = await ownToken();
    const [header, , signature] = valid.split('.');
    const widened = Buffer.from(
      JSON.stringify({ iss: service.server.url, aud: service.base, sub: 'intruder', scope: 'system/*.*', exp: Math.floor(Date.now() / 1000) + 300 }),
    ).toString('base64url');
    const tampered = `${header}.${widened}.${signature}`;
    const unsigned = new UnsecuredJWT({ iss: service.server.url, aud: service.base, sub: 'intruder', scope: 'system/*.*' }).setExpirationTime('5m').encode();
    // The public key, which anyone can read from the JWKS, used as an HMAC secret.
    const jwks = (await (await fetch(`${service.server.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    const publicKey = new TextEncoder().encode(JSON.stringify(jwks.keys.find((k) => k.kid === 'auth-1')));
    const hmac = await new SignJWT({ iss: service.server.url, aud: service.base, sub: 'intruder', scope: 'system/*.*' })
      .setProtectedHeader({ alg: 'HS256', kid: 'auth-1', typ: 'at+jwt' })
      .setExpirationTime('5m')
      .sign(publicKey);
    const stranger = await makeKeyPair('ES384', 'auth-1');
    const otherKeySameKid = await new SignJWT({ iss: service.server.url, aud: service.base, sub: 'intruder', scope: 'system/*.*' })
      .setProtectedHeader({ alg: 'ES384', kid: 'auth-1', typ: 'at+jwt' })
      .setExpirationTime('5m')
      .sign(stranger.privateKey);
    const unknownKid = await ownToken({}, { kid: 'auth-2' });
    for (const [token, why] of [
      [tampered, /signature does not verify/],
      [unsigned, /algorithm/],
      [hmac, /algorithm/],
      [otherKeySameKid, /signature does not verify/],
      [unknownKid, /key \(kid\)/],
    ] as const) {
      const refused = await createWith(token);
      expect([why.source, refused.status, refused.stored]).toEqual([why.source, 401, false]);
      expect(refused.body.issue[0].details.text).toMatch(why);
    }
  });

  it('reads, searches, operations, Bundles and attachments need a token too; metadata, the SMART configuration, the JWKS and probes do not', async () => {
    for (const [method, path] of [
      ['GET', '/Patient'],
      ['GET', '/Patient/x'],
      ['GET', '/Patient/x/_history/1'],
      ['POST', '/Patient/_search'],
      ['POST', '/'],
      ['GET', '/ServiceRequest/x/$case-packet'],
      ['POST', '/Patient/$validate'],
      ['DELETE', '/Patient/x'],
      ['GET', '/no/such/path'],
    ]) {
      const answer = await service.fhir(path, { method, token: null, ...(method === 'POST' ? { body: {} } : {}) });
      expect([method, path, answer.status]).toEqual([method, path, 401]);
    }
    expect((await fetch(`${service.server.url}/attachments/${'0'.repeat(32)}`)).status).toBe(401);
    expect((await service.fhir('/metadata', { token: null })).status).toBe(200);
    for (const path of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration', '/.well-known/jwks.json', '/healthz', '/readyz']) {
      expect([path, (await fetch(`${service.server.url}${path}`)).status]).toEqual([path, 200]);
    }
  });

  it('the principal a token names reaches the service: role and scope from the claims', async () => {
    // Deny by default: a token without a role opens nothing, whatever its scopes; registering clients needs the admin role.
    const noRole = await ownToken({ role: undefined });
    const refused = await service.fhir('/Patient?_summary=count', { token: noRole });
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0]).toMatchObject({ code: 'forbidden' });
    const coordinator = await ownToken({ role: 'coordinator' });
    expect((await service.fhir('/Patient?_summary=count', { token: coordinator })).status).toBe(200);
    const register = await fetch(`${service.server.url}/auth/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${noRole}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(register.status).toBe(403);
    expect((await register.json()).issue[0].code).toBe('forbidden');
  });
});

describe('an external authorization server', () => {
  let idp: JwksServer;
  let key: KeyPair;
  let federated: TestService;
  const issuer = 'https://idp.hospital.example';

  beforeAll(async () => {
    key = await makeKeyPair('RS256', 'idp-1');
    idp = await serveJwks([key.publicJwk]);
    federated = await startTestService({ AUTH_ISSUER: issuer, AUTH_JWKS_URL: idp.url });
  });
  afterAll(async () => {
    await federated?.stop();
    await idp?.stop();
  });

  const idpToken = (claims: JWTPayload, signer: KeyPair = key) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: issuer,
      aud: federated.base,
      sub: 'dr-ext',
      scope: 'user/Patient.rs',
      role: 'reviewer',
      fhirUser: 'Practitioner/ext-1',
      iat: now,
      exp: now + 300,
      ...claims,
    })
      .setProtectedHeader({ alg: signer.algorithm, kid: signer.publicJwk.kid })
      .sign(signer.privateKey);
  };

  it('accepts its tokens within their scopes, its keys fetched from its JWKS', async () => {
    const token = await idpToken({});
    const search = await federated.fhir('/Patient?_summary=count', { token });
    expect(search.status).toBe(200);
    expect(idp.fetches).toBeGreaterThan(0);
    const write = await federated.fhir('/Patient', { body: patient, token });
    expect(write.status).toBe(403);
    expect(write.body.issue[0].details.text).toMatch(/user\/Patient\.c/);
  });

  it('refuses its tokens for another audience, signed by a key it does not publish (under its kid or another), or expired', async () => {
    const impostor = await makeKeyPair('RS256', 'idp-1');
    const unknown = await makeKeyPair('RS256', 'idp-2');
    const now = Math.floor(Date.now() / 1000);
    for (const token of [
      await idpToken({ aud: 'https://elsewhere.example/fhir' }),
      await idpToken({}, impostor),
      await idpToken({}, unknown),
      await idpToken({ exp: now - 300, iat: now - 600 }),
    ]) {
      const answer = await federated.fhir('/Patient?_summary=count', { token });
      expect(answer.status).toBe(401);
      expect(answer.body.issue[0].code).toBe('login');
    }
    // The service's own tokens still work beside it.
    expect((await federated.fhir('/Patient?_summary=count')).status).toBe(200);
  });
});
