// Sign-in as a SMART standalone launch of a public client: the service's SMART configuration names
// the authorization and token endpoints; authorization code with PKCE (S256); the tokens are kept in
// sessionStorage (never the URL, gone when the tab closes). An expired token starts the sign-in again,
// which the authorization server answers at once while its session lasts. The workbench and the
// analytics page (web/analytics) each sign in this way, as clients of their own.

export interface User {
  username: string;
  role: string;
  fhirUser: string;
  name?: string;
}

interface Session {
  accessToken: string;
  idToken: string;
  expiresAt: number;
  user: User;
}

/** A page that signs people in: its client id at the service (which also names its storage), the scopes it asks for, its path (the redirect URI). */
export interface SignInApp {
  clientId: string;
  scope: string;
  path: string;
}

interface SmartConfiguration {
  authorization_endpoint: string;
  token_endpoint: string;
  end_session_endpoint: string;
}

let configuration: Promise<SmartConfiguration> | undefined;
const smartConfiguration = (): Promise<SmartConfiguration> =>
  (configuration ??= fetch('/fhir/.well-known/smart-configuration').then((r) => r.json() as Promise<SmartConfiguration>));

const base64url = (bytes: ArrayBuffer | Uint8Array): string =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');

function claimsOf(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)))) as Record<string, unknown>;
}

/** The sign-in of one app. */
export function signInFor(app: SignInApp) {
  const sessionKey = `${app.clientId}.session`;
  const pendingKey = `${app.clientId}.pending`;
  const { clientId, scope } = app;
  const redirectUri = `${location.origin}${app.path}`;
  const stored = (): Session | undefined => {
    const text = sessionStorage.getItem(sessionKey);
    return text ? (JSON.parse(text) as Session) : undefined;
  };

  /** The signed-in person's token, while it lasts (a minute's margin). */
  function accessToken(): string | undefined {
    const session = stored();
    return session && session.expiresAt - 60_000 > Date.now() ? session.accessToken : undefined;
  }

  const currentUser = (): User | undefined => stored()?.user;

  /** Goes to the authorization server; the page comes back to the workbench with a code. */
  async function signIn(): Promise<never> {
    const { authorization_endpoint } = await smartConfiguration();
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
    const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
    sessionStorage.setItem(pendingKey, JSON.stringify({ verifier, state, hash: location.hash }));
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      scope,
      state,
      aud: `${location.origin}/fhir`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    location.assign(`${authorization_endpoint}?${query}`);
    return new Promise<never>(() => undefined);
  }

  /** Finishes a sign-in the page came back from; answers why it was refused, if it was. */
  async function completeSignIn(): Promise<string | undefined> {
    const params = new URLSearchParams(location.search);
    if (!params.has('code') && !params.has('error')) return undefined;
    const pending = JSON.parse(sessionStorage.getItem(pendingKey) ?? '{}') as { verifier?: string; state?: string; hash?: string };
    sessionStorage.removeItem(pendingKey);
    history.replaceState(null, '', `${location.pathname}${pending.hash ?? ''}`);
    if (params.get('error')) return `${params.get('error')}: ${params.get('error_description') ?? ''}`;
    if (!pending.verifier || params.get('state') !== pending.state) return 'The sign-in answer does not belong to this tab; sign in again';
    const { token_endpoint } = await smartConfiguration();
    const response = await fetch(token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code') as string,
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: pending.verifier,
      }),
    });
    const answer = (await response.json()) as { access_token?: string; id_token?: string; expires_in?: number; error_description?: string };
    if (!response.ok || !answer.access_token || !answer.id_token) return answer.error_description ?? `The token endpoint answered ${response.status}`;
    const access = claimsOf(answer.access_token);
    const id = claimsOf(answer.id_token);
    const session: Session = {
      accessToken: answer.access_token,
      idToken: answer.id_token,
      expiresAt: Date.now() + (answer.expires_in ?? 300) * 1000,
      user: {
        username: String(access.sub),
        role: String(access.role),
        fhirUser: String(access.fhirUser),
        name: typeof id.name === 'string' ? id.name : undefined,
      },
    };
    sessionStorage.setItem(sessionKey, JSON.stringify(session));
    return undefined;
  }

  /** Forgets the tokens and ends the authorization server's session (it asks to confirm). */
  async function signOut(): Promise<void> {
    const idToken = stored()?.idToken;
    sessionStorage.removeItem(sessionKey);
    const { end_session_endpoint } = await smartConfiguration();
    const query = new URLSearchParams({ client_id: clientId, post_logout_redirect_uri: redirectUri, ...(idToken ? { id_token_hint: idToken } : {}) });
    location.assign(`${end_session_endpoint}?${query}`);
  }
  return { accessToken, currentUser, signIn, completeSignIn, signOut };
}

export const { accessToken, currentUser, signIn, completeSignIn, signOut } = signInFor({
  clientId: 'workbench',
  scope: 'openid fhirUser user/*.rs user/Task.cruds user/CommunicationRequest.cu user/Communication.cu user/DiagnosticReport.cu',
  path: '/workbench/',
});
