// People sign in with a one-time code as well (TOTP): an admin, or the person signed in, sets it up
// and gets the secret once as an otpauth:// URI; from then on the password alone is not enough, the
// code from the authenticator app (computed here with otplib from that secret) finishes the sign-in;
// a wrong, missing or replayed code is refused like a wrong password (a page, an AuditEvent, counted
// by the guessing limits); accounts without TOTP sign in as before.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { generate } from 'otplib';
import { startTestService, type TestService } from './harness.js';
import { authorizeUrl, formAction, pkce, signIn, SignInClient, submit } from './sign-in-client.js';

let service: TestService;
let url: string;
const password = 'a long enough password';

const post = (path: string, token: string, body?: unknown) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

async function makeAccount(username: string, fhirUser: string): Promise<void> {
  expect((await post('/auth/accounts', service.token, { username, password, role: 'reviewer', fhirUser })).status).toBe(201);
}

/** Sets up TOTP as `token`'s holder; answers the secret from the otpauth:// URI. */
async function enrol(username: string, token = service.token): Promise<string> {
  const answer = await post(`/auth/accounts/${username}/totp`, token);
  expect(answer.status).toBe(201);
  expect(answer.headers.get('cache-control')).toBe('no-store');
  const uri = new URL(((await answer.json()) as { otpauth: string }).otpauth);
  expect([uri.protocol, uri.host, decodeURIComponent(uri.pathname)]).toEqual(['otpauth:', 'totp', `/Second opinion workbench:${username}`]);
  return uri.searchParams.get('secret') as string;
}

/** The password step from `address`: answers the page it leads to. */
async function afterPassword(client: SignInClient, username: string, address: string): Promise<Response> {
  const form = await client.follow(authorizeUrl(url, pkce()), `${url}/workbench/`);
  return submit(client, formAction(await form.text()) as string, { username, password }, address);
}

const otherCode = (code: string) => String((Number(code) + 1) % 1e6).padStart(6, '0');
const codeRefusals = async (username: string) => {
  const events = (await service.fhir('/AuditEvent?subtype=110122&outcome=4&_sort=-date&_count=100')).body.entry ?? [];
  return events.map((e: any) => e.resource).filter((e: any) => e.agent?.[0]?.altId === username);
};

beforeAll(async () => {
  service = await startTestService({ SIGN_IN_MAX_FAILURES: '3', SIGN_IN_MAX_FAILURES_PER_ADDRESS: '50', SIGN_IN_LOCK_SECONDS: '120' });
  url = service.server.url;
  await makeAccount('totp1', 'Practitioner/t1');
  await makeAccount('totp2', 'Practitioner/t2');
  await makeAccount('plain1', 'Practitioner/p1');
});
afterAll(async () => {
  await service?.stop();
});

describe('one-time codes (TOTP) at sign-in', () => {
  it('a person sets it up for their own account only; then the password leads to the code page and the right code signs in', async () => {
    const own = await signIn(new SignInClient(url), 'totp1', password);
    expect((await post('/auth/accounts/totp2/totp', own.access_token)).status).toBe(403);
    expect((await post('/auth/accounts/nobody/totp', service.token)).status).toBe(404);
    const secret = await enrol('totp1', own.access_token);

    const client = new SignInClient(url);
    const codePage = await afterPassword(client, 'totp1', '192.0.2.1');
    expect(codePage.status).toBe(200);
    const html = await codePage.text();
    expect(html).toContain('autocomplete="one-time-code"');
    expect(html).not.toContain(secret);
    const tokens = await signIn(new SignInClient(url), 'totp1', password, await generate({ secret }));
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'totp1', role: 'reviewer', fhirUser: 'Practitioner/t1' });
    expect((await service.fhir('/Task', { token: tokens.access_token })).status).toBe(200);
  });

  it('refuses a code used already, a wrong one and none, with the code page and an AuditEvent naming the account', async () => {
    const secret = await enrol('totp1');
    const code = await generate({ secret });
    await signIn(new SignInClient(url), 'totp1', password, code);
    for (const [what, fields] of [
      ['replayed', { code }],
      ['wrong', { code: otherCode(code) }],
      ['missing', {}],
    ] as const) {
      const client = new SignInClient(url);
      const action = formAction(await (await afterPassword(client, 'totp1', '192.0.2.2')).text()) as string;
      expect(action).toMatch(/\/code$/);
      const refused = await submit(client, action, fields, '192.0.2.2');
      expect([what, refused.status]).toEqual([what, 401]);
      expect(await refused.text()).toContain('The code is not right, or was used already');
    }
    let refusals: any[] = [];
    for (const deadline = Date.now() + 5000; refusals.length < 3 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      refusals = (await codeRefusals('totp1')).filter((e: any) => e.outcomeDesc === '401 Unauthorized');
    }
    expect(refusals.length).toBe(3);
    expect(JSON.stringify(refusals)).not.toContain(secret);
  });

  it('a new secret replaces the old; wrong codes count toward the wait, which holds even for the right code', async () => {
    const old = await enrol('totp2');
    const secret = await enrol('totp2');
    const client = new SignInClient(url);
    const action = formAction(await (await afterPassword(client, 'totp2', '192.0.2.3')).text()) as string;
    const oldCode = await generate({ secret: old });
    const code = await generate({ secret });
    // Two wrong codes (one of them the old secret's) and a missing one: the account now waits.
    const wrong: Record<string, string>[] = [{ code: oldCode === code ? otherCode(code) : oldCode }, { code: otherCode(code) }, {}];
    for (const fields of wrong) expect((await submit(client, action, fields, '192.0.2.3')).status).toBe(401);
    const locked = await submit(client, action, { code }, '192.0.2.4');
    expect(locked.status).toBe(429);
    expect(await locked.text()).toContain('Too many failed sign-ins for this account');
    // The password step waits too: a known password gives no fresh guesses at the code.
    expect((await afterPassword(new SignInClient(url), 'totp2', '192.0.2.5')).status).toBe(429);
  });

  it('an account without TOTP signs in with its password alone, as before', async () => {
    const back = await afterPassword(new SignInClient(url), 'plain1', '192.0.2.6');
    expect(back.status).toBe(303);
    expect(new URL(back.headers.get('location') as string).searchParams.get('code')).toBeTruthy();
    const tokens = await signIn(new SignInClient(url), 'plain1', password);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'plain1', fhirUser: 'Practitioner/p1' });
  });
});
