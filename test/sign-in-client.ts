// A person signing in as the workbench does, over plain HTTP: authorization code with PKCE against
// the service's own authorization server, cookies kept between requests as a browser keeps them.
import { createHash, randomBytes } from 'node:crypto';

export class SignInClient {
  private readonly cookies = new Map<string, string>();

  constructor(readonly serviceUrl: string) {}

  /** A request with the cookies kept so far, redirects not followed; answers the response and keeps its cookies. */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(new URL(url, this.serviceUrl), { ...init, headers, redirect: 'manual' });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair.indexOf('=');
      const value = pair.slice(at + 1);
      if (value && !/expires=Thu, 01 Jan 1970/i.test(cookie)) this.cookies.set(pair.slice(0, at), value);
      else this.cookies.delete(pair.slice(0, at));
    }
    return response;
  }

  /** Follows redirects within the service until one leaves for `stopAt` (answered, not followed) or a page answers. */
  async follow(url: string, stopAt: string, init?: RequestInit): Promise<Response> {
    let response = await this.request(url, init);
    for (let hops = 0; response.status >= 300 && response.status < 400 && hops < 10; hops++) {
      const next = new URL(response.headers.get('location') as string, this.serviceUrl).href;
      if (next.startsWith(stopAt)) return response;
      response = await this.request(next);
    }
    return response;
  }
}

export interface Pkce {
  verifier: string;
  challenge: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export const workbenchScope = 'openid fhirUser user/*.rs user/Task.cruds user/CommunicationRequest.cu user/Communication.cu user/DiagnosticReport.cu';

export function authorizeUrl(serviceUrl: string, challenge: Pkce | undefined, state = randomBytes(8).toString('hex')): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: 'workbench',
    redirect_uri: `${serviceUrl}/workbench/`,
    scope: workbenchScope,
    state,
    aud: `${serviceUrl}/fhir`,
    ...(challenge ? { code_challenge: challenge.challenge, code_challenge_method: 'S256' } : {}),
  });
  return `${serviceUrl}/oidc/authorize?${query}`;
}

/** Posts a sign-in form (the password or the code) from `address`, following redirects within the service. */
export function submit(client: SignInClient, action: string, fields: Record<string, string>, address?: string): Promise<Response> {
  return client.follow(action, `${client.serviceUrl}/workbench/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(address ? { 'x-forwarded-for': address } : {}) },
    body: new URLSearchParams(fields),
  });
}

/** The action of the form on a sign-in page (the password or the code form). */
export const formAction = (html: string): string | undefined => /action="([^"]+)"/.exec(html)?.[1];

/**
 * Signs in with a user name and password, and the one-time code when the account has TOTP; answers
 * the token endpoint's answer (access and ID token).
 */
export async function signIn(
  client: SignInClient,
  username: string,
  password: string,
  code?: string,
): Promise<{ access_token: string; id_token: string; scope: string; expires_in: number }> {
  const { serviceUrl } = client;
  const challenge = pkce();
  const form = await client.follow(authorizeUrl(serviceUrl, challenge), `${serviceUrl}/workbench/`);
  const action = formAction(await form.text());
  if (!action) throw new Error(`no sign-in form (${form.status})`);
  let back = await submit(client, action, { username, password });
  if (code !== undefined) {
    const codeAction = back.status === 200 ? formAction(await back.text()) : undefined;
    if (!codeAction?.endsWith('/code')) throw new Error(`no code form (${back.status})`);
    back = await submit(client, codeAction, { code });
  }
  const authorized = new URL(back.headers.get('location') ?? '', serviceUrl).searchParams.get('code');
  if (!authorized) throw new Error(`sign-in refused (${back.status})`);
  return exchange(serviceUrl, authorized, challenge.verifier);
}

export async function exchange(serviceUrl: string, code: string, verifier: string | undefined): Promise<any> {
  const response = await fetch(`${serviceUrl}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: `${serviceUrl}/workbench/`,
      client_id: 'workbench',
      ...(verifier ? { code_verifier: verifier } : {}),
    }),
  });
  const body = await response.json();
  if (response.status !== 200) throw Object.assign(new Error(`token endpoint answered ${response.status}`), { body, status: response.status });
  return body;
}
