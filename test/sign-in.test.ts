// People sign in: a reviewer and a coordinator with accounts an admin made, through the service's
// own OpenID Connect server (authorization code + PKCE, as the workbench does it); the access token
// they get is accepted by the FHIR API with their role and Practitioner, so a reviewer sees their
// own cases only; refusals (wrong password, PKCE left out, a stolen code without its verifier) are
// refused and recorded; guessing is stopped per account and per address; signing out ends the
// session; a session times out.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startTestService, type TestService } from './harness.js';
import { createOrganization, registerReviewer, specialty } from './review-cases.js';
import { authorizeUrl, exchange, pkce, signIn, SignInClient } from './sign-in-client.js';

let service: TestService;
let url: string;
let reviewer: string;
const password = 'correct horse battery staple';
let coordinatorPassword: string;

const auditEvents = async (query: string) => ((await service.fhir(`/AuditEvent?${query}&_sort=-date&_count=50`)).body.entry ?? []).map((e: any) => e.resource);

beforeAll(async () => {
  service = await startTestService({
    SIGN_IN_SESSION_SECONDS: '3',
    SIGN_IN_MAX_FAILURES: '3',
    SIGN_IN_MAX_FAILURES_PER_ADDRESS: '6',
    SIGN_IN_LOCK_SECONDS: '8',
  });
  url = service.server.url;
  reviewer = await registerReviewer(service, {
    name: 'Pathologist',
    organizationId: await createOrganization(service, 'Centre'),
    specialty: specialty.histopathology,
  });
  const made = await fetch(`${url}/auth/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${service.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'path1', password, role: 'reviewer', fhirUser: `PractitionerRole/${reviewer}`, name: 'Dr Path' }),
  });
  expect(made.status).toBe(201);
});
afterAll(async () => {
  await service?.stop();
});

describe('sign-in for people', () => {
  it('only an admin makes accounts; a password left out is generated once; bad fields are named', async () => {
    const reviewerToken = await service.mintToken({ subject: 'r', scope: 'user/*.rs', role: 'reviewer', fhirUser: `PractitionerRole/${reviewer}` });
    const post = (token: string, body: unknown) =>
      fetch(`${url}/auth/accounts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post(reviewerToken, { username: 'xx1', role: 'reviewer', fhirUser: 'PractitionerRole/1' })).status).toBe(403);
    const generated = await post(service.token, { username: 'coord1', role: 'coordinator', fhirUser: 'Practitioner/c1' });
    expect(generated.status).toBe(201);
    coordinatorPassword = (await generated.json()).password;
    expect(coordinatorPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const bad = await post(service.token, { username: 'xx2', role: 'referrer-system', fhirUser: 'Practitioner/c1' });
    expect([bad.status, (await bad.json()).field]).toEqual([400, 'role']);
    const short = await post(service.token, { username: 'xx3', role: 'reviewer', fhirUser: 'PractitionerRole/1', password: 'short' });
    expect([short.status, (await short.json()).field]).toEqual([400, 'password']);
  });

  it('a reviewer signs in with code and PKCE; the FHIR API takes the token with the role and Practitioner', async () => {
    const client = new SignInClient(url);
    const tokens = await signIn(client, 'path1', password);
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'ES384' });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      iss: url,
      aud: `${url}/fhir`,
      sub: 'path1',
      role: 'reviewer',
      fhirUser: `PractitionerRole/${reviewer}`,
      client_id: 'workbench',
    });
    expect(String(claims.scope).split(' ')).toEqual(expect.arrayContaining(['user/*.rs', 'user/Task.cruds']));
    expect(decodeJwt(tokens.id_token)).toMatchObject({ fhirUser: `${url}/fhir/PractitionerRole/${reviewer}`, aud: 'workbench' });
    const tasks = await service.fhir('/Task', { token: tokens.access_token });
    expect(tasks.status).toBe(200);
    // The ID token is not an access token.
    expect((await service.fhir('/Task', { token: tokens.id_token })).status).toBe(401);
    // Audit events are written once the answers are sent: wait for them a moment.
    let signedIn: any[] = [];
    for (const deadline = Date.now() + 5000; signedIn.length < 2 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      signedIn = (await auditEvents('subtype=110122&outcome=0')).filter((e: any) => e.agent?.[0]?.who?.reference === `PractitionerRole/${reviewer}`);
    }
    // The password accepted, and the code exchanged at the token endpoint: both name the person.
    expect(signedIn.map((e: any) => e.agent[0].altId)).toEqual(['path1', 'path1']);
  });

  it('refuses a wrong password, a request without PKCE and a code without its verifier; each is an AuditEvent', async () => {
    const client = new SignInClient(url);
    const form = await client.follow(authorizeUrl(url, pkce()), `${url}/workbench/`);
    const action = /action="([^"]+)"/.exec(await form.text())?.[1] as string;
    const wrong = await client.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'path1', password: 'not the password' }),
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('The user name or the password is not right');
    const unknown = await client.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'nobody', password }),
    });
    expect(unknown.status).toBe(401);

    const noPkce = await new SignInClient(url).follow(authorizeUrl(url, undefined), `${url}/workbench/`);
    const refused = new URL(noPkce.headers.get('location') as string);
    expect(refused.searchParams.get('error')).toBe('invalid_request');
    expect(refused.searchParams.get('error_description')).toMatch(/PKCE/);

    // A code taken without its verifier is no use.
    const thief = new SignInClient(url);
    const challenge = pkce();
    const page = await thief.follow(authorizeUrl(url, challenge), `${url}/workbench/`);
    const login = /action="([^"]+)"/.exec(await page.text())?.[1] as string;
    const back = await thief.follow(login, `${url}/workbench/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'path1', password }),
    });
    const code = new URL(back.headers.get('location') as string).searchParams.get('code') as string;
    await expect(exchange(url, code, pkce().verifier)).rejects.toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    await new Promise((r) => setTimeout(r, 300)); // the events are written after the answers
    const failures = await auditEvents('subtype=110122&outcome=4');
    expect(failures.length).toBeGreaterThanOrEqual(4); // two passwords, the request without PKCE, the code without its verifier
    expect(JSON.stringify(failures)).not.toContain('not the password');
  });

  it('stops guessing: after 3 wrong passwords the account waits, the right one too, with a clear page and an AuditEvent; so does an address after 6', async () => {
    const lockSeconds = 8; // the guesses below take about 1.5 s; room for a loaded machine
    // Each guess from an address of its own (the service trusts X-Forwarded-For from its loopback proxy), so one limit is tried at a time.
    const attempt = async (username: string, pass: string, address: string) => {
      const client = new SignInClient(url);
      const form = await client.follow(authorizeUrl(url, pkce()), `${url}/workbench/`);
      const action = /action="([^"]+)"/.exec(await form.text())?.[1] as string;
      return client.request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': address },
        body: new URLSearchParams({ username, password: pass }),
      });
    };
    for (const n of [1, 2, 3]) expect([n, (await attempt('path1', `guess ${n}`, `203.0.113.${n}`)).status]).toEqual([n, 401]);
    const windowEnds = Date.now() + lockSeconds * 1000; // at the latest: it began at the first guess
    const locked = await attempt('PATH1', password, '203.0.113.4');
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(lockSeconds);
    expect(await locked.text()).toContain('Too many failed sign-ins for this account or from this address: try again in 1 minute');
    await new Promise((r) => setTimeout(r, 300)); // the events are written after the answers
    const refusals = (await auditEvents('subtype=110122&outcome=4')).filter((e: any) => e.outcomeDesc === '429 Too Many Requests');
    expect(refusals.map((e: any) => [e.agent[0].altId, e.agent[0].network.address])).toContainEqual(['PATH1', '203.0.113.4']);

    // Guesses at many names from one address: that address waits, even for a right password; others do not.
    for (const n of [1, 2, 3, 4, 5, 6]) expect([n, (await attempt(`someone${n}`, 'a guess', '198.51.100.7')).status]).toEqual([n, 401]);
    expect((await attempt('coord1', coordinatorPassword, '198.51.100.7')).status).toBe(429);
    expect((await attempt('coord1', coordinatorPassword, '198.51.100.8')).status).toBe(303);

    // After the window, the account signs in again.
    await new Promise((r) => setTimeout(r, Math.max(0, windowEnds + 200 - Date.now())));
    expect((await attempt('path1', password, '203.0.113.5')).status).toBe(303);
  });

  it('signing out ends the session: the next authorization asks for the password again; a session times out', async () => {
    const client = new SignInClient(url);
    const { id_token } = await signIn(client, 'path1', password);
    // Still signed in: a second authorization goes straight back to the workbench with a code.
    const again = await client.follow(authorizeUrl(url, pkce()), `${url}/workbench/`);
    expect(new URL(again.headers.get('location') as string).searchParams.get('code')).toBeTruthy();

    const query = new URLSearchParams({ id_token_hint: id_token, post_logout_redirect_uri: `${url}/workbench/`, client_id: 'workbench' });
    const confirm = await client.request(`/oidc/logout?${query}`);
    const html = await confirm.text();
    const fields = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m): [string, string] => [m[1], m[2]]);
    const done = await client.follow('/oidc/logout/confirm', `${url}/workbench/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([...fields, ['logout', 'yes']]),
    });
    expect(done.headers.get('location')).toBe(`${url}/workbench/`);
    const afterSignOut = await client.follow(authorizeUrl(url, pkce()), `${url}/workbench/`);
    expect(await afterSignOut.text()).toContain('name="password"');

    // Sessions last SIGN_IN_SESSION_SECONDS (3 here).
    const later = new SignInClient(url);
    await signIn(later, 'path1', password);
    await new Promise((r) => setTimeout(r, 3500));
    const expired = await later.follow(authorizeUrl(url, pkce()), `${url}/workbench/`);
    expect(await expired.text()).toContain('name="password"');
  });
});
