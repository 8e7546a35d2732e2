// Sign-in for people: an OpenID Connect authorization server (oidc-provider, certified) in the
// service. The workbench is a SMART standalone-launch public client: authorization code with PKCE
// (S256, required), scopes `openid fhirUser` and the user/ scopes the workbench uses. The access
// tokens it issues are the service's own (the same key, issuer, audience and `at+jwt` form as the
// token endpoint's, with the person's role and fhirUser), so the bearer check, access control and
// audit apply to people unchanged. Accounts are auth/accounts.ts (one with TOTP is asked for its code
// after the password, auth/totp.ts); what oidc-provider keeps between requests is in the database
// (store/sign-in-records.ts), so every process sees the same sign-ins.
// The analytics page signs in the same way, as a client of its own that may only read Measures.
// Paths: /oidc/* (authorize, interaction pages, logout, jwks, userinfo), the code exchange at the
// token endpoint /auth/token beside the client-credentials grant, and the OIDC discovery document.
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { Connection } from 'mongoose';
import type { AuditTrail } from '../access/audit.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { SignInRecords } from '../store/sign-in-records.js';
import { Accounts, InvalidAccount, type Account } from './accounts.js';
import type { Authentication } from './authentication.js';
import { principalOf, type Principal } from './bearer.js';
import { parseScopes } from './scopes.js';
import { SignInLimits } from './sign-in-limits.js';
import { codePage, signedOutPage, signInErrorPage, signInPage, signOutPage } from './sign-in-pages.js';

/**
 * What a person's token may be granted: everything the workbench does (read the cases, update a
 * Task, ask and answer, write the opinion; a coordinator's $assign needs every permission on Task).
 * The role still decides which records (access/policy.ts).
 */
export const workbenchScopes = 'user/*.rs user/Task.cruds user/CommunicationRequest.cu user/Communication.cu user/DiagnosticReport.cu';

/** The pages people sign in to, by client id: the path each is served at (its redirect URI) and what its tokens may do. */
const signInClients: Record<string, { name: string; path: string; scopes: string }> = {
  workbench: { name: 'Second opinion workbench', path: '/workbench/', scopes: workbenchScopes },
  // Outcome figures only (GET /analytics/outcomes asks for Measure reads); the role decides the rest.
  analytics: { name: 'Second opinion outcomes', path: '/analytics', scopes: 'user/Measure.rs' },
};

const providerPaths = /^\/(oidc\/(authorize|jwks|userinfo|logout|revoke)(\/|$)|\.well-known\/openid-configuration$)/;
/** Grants of the people's sign-in, answered at the shared token endpoint by oidc-provider. */
const peopleGrants = new Set(['authorization_code', 'refresh_token']);

export interface SignIn {
  routes: Router;
  accounts: Accounts;
}

export async function startSignIn(config: Config, connection: Connection, auth: Authentication, audit: AuditTrail, log: Logger): Promise<SignIn> {
  const { tokens } = auth;
  const { baseUrl } = config;
  const { sessionSeconds, tokenSeconds } = config.signIn;
  const accounts = new Accounts(connection);
  const limits = new SignInLimits(connection, config.signIn);
  await limits.init();
  await SignInRecords.init(connection);
  const cookieKey =
    config.signIn.cookieKey ??
    (log.warn('SIGN_IN_COOKIE_KEY is not set: sign-in cookies are signed with a key made for this process, and people sign in again after a restart'),
    randomBytes(32).toString('base64url'));
  const audience = tokens.audience;
  const alg = tokens.algorithm;

  const provider = new Provider(baseUrl, {
    adapter: (name: string) => new SignInRecords(connection, name),
    clients: Object.entries(signInClients).map(([id, client]) => ({
      client_id: id,
      client_name: client.name,
      token_endpoint_auth_method: 'none',
      application_type: 'web',
      redirect_uris: [`${baseUrl}${client.path}`],
      post_logout_redirect_uris: [`${baseUrl}${client.path}`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: alg,
    })),
    jwks: { keys: [await tokens.privateJwk()] },
    enabledJWA: { idTokenSigningAlgValues: [alg] as never },
    pkce: { required: () => true },
    scopes: ['openid', 'fhirUser'],
    // The name comes with fhirUser: the workbench greets the person without asking for `profile`.
    claims: { openid: ['sub'], fhirUser: ['fhirUser', 'name'] },
    cookies: { keys: [cookieKey] },
    ttl: { Session: sessionSeconds, Grant: sessionSeconds, Interaction: 600, AuthorizationCode: 60, IdToken: tokenSeconds, AccessToken: tokenSeconds },
    routes: {
      authorization: '/oidc/authorize',
      token: '/auth/token',
      jwks: '/oidc/jwks',
      userinfo: '/oidc/userinfo',
      end_session: '/oidc/logout',
      revocation: '/oidc/revoke',
    },
    interactions: { url: (_ctx: KoaContextWithOIDC, interaction) => `/oidc/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const account = await accounts.find(sub);
      if (!account) return undefined;
      // SMART: the fhirUser claim of the ID token is the person's resource as an absolute URL.
      return {
        accountId: sub,
        account,
        claims: () => ({ sub, fhirUser: `${audience}/${account.fhirUser}`, ...(account.name ? { name: account.name } : {}) }),
      };
    },
    // In the access token, as the service's own tokens carry them: the role and the resource, relative.
    async extraTokenClaims(_ctx, token) {
      const accountId = 'accountId' in token ? token.accountId : undefined;
      const account = accountId ? await accounts.find(accountId) : undefined;
      return account ? { role: account.role, fhirUser: account.fhirUser } : undefined;
    },
    // The workbench and the analytics page are the service's own: what they ask within their allowance needs no consent page.
    async loadExistingGrant(ctx) {
      const { client, session } = ctx.oidc;
      const grantId = ctx.oidc.result?.consent?.grantId ?? session?.grantIdFor(client!.clientId);
      const found = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (found || !session?.accountId) return found;
      const grant = new ctx.oidc.provider.Grant({ clientId: client!.clientId, accountId: session.accountId });
      grant.addOIDCScope('openid fhirUser');
      grant.addOIDCClaims(['fhirUser', 'name']);
      grant.addResourceScope(audience, signInClients[client!.clientId].scopes);
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => void (ctx.body = signOutPage(form)),
        // Back to the page the person signed out of.
        postLogoutSuccessSource: (ctx) => void (ctx.body = signedOutPage(`${baseUrl}${signInClients[ctx.oidc.client?.clientId ?? 'workbench'].path}`)),
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator, client) => {
          if (indicator !== audience) throw new errors.InvalidTarget();
          return { scope: signInClients[client.clientId].scopes, audience, accessTokenTTL: tokenSeconds, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
        },
      },
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = signInErrorPage(String(out.error), out.error_description ? String(out.error_description) : undefined);
    },
  });
  provider.proxy = config.baseUrl.startsWith('https:');
  // A refused authorization request is answered by a redirect to the app: the audit trail records it as refused.
  provider.on('authorization.error', (ctx: KoaContextWithOIDC, err: { statusCode?: number }) => {
    (ctx.res as unknown as Response).locals.refusedStatus = err.statusCode ?? 400;
  });
  // The code exchanged for tokens: its audit event names the person, as the sign-in's does.
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const account = (ctx.oidc.entities.Account as { account?: Account } | undefined)?.account;
    if (account) (ctx.res as unknown as Response).locals.principal = principalOfAccount(account);
  });
  provider.on('server_error', (_ctx: KoaContextWithOIDC, err: Error) => log.error({ name: err.name }, 'sign-in failed inside the authorization server'));
  const answer = provider.callback();

  const routes = express.Router();
  routes.use(
    '/oidc/interaction',
    audit.recorder('login', (req) => req.method !== 'POST'),
  );
  routes.use(
    '/oidc/authorize',
    audit.recorder('login', undefined, (res) => res.locals.refusedStatus !== undefined),
  );
  routes.get('/oidc/interaction/:uid', async (req, res) => {
    const details = await provider.interactionDetails(req, res).catch(() => undefined);
    if (!details) return void expired(res);
    res.type('html').send(signInPage(interactionPath(details.uid, 'login')));
  });
  routes.post('/oidc/interaction/:uid/login', signInForm, async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res).catch(() => undefined);
    if (!details) return void expired(res);
    const { username, password } = req.body as { username?: unknown; password?: unknown };
    const name = typeof username === 'string' ? username.trim() : '';
    const action = interactionPath(details.uid, 'login');
    const address = req.ip ?? 'unknown';
    // Waiting, the password is not checked: a guess made meanwhile tells nothing.
    if (await mustWait(res, name, address, (refusal) => signInPage(action, name, refusal))) return;
    const account = typeof password === 'string' && name ? await accounts.signIn(name, password) : undefined;
    if (!account) return void (await refuse(res, name, address, signInPage(action, name, 'The user name or the password is not right')));
    if (account.totp) {
      // The interaction remembers whose password was right; the code page finishes it. The guessing
      // count is not cleared yet, so a known password gives no fresh guesses at the code.
      await provider.interactionResult(req, res, { passwordOf: account.username }, { mergeWithLastSubmission: false });
      return void res.type('html').send(codePage(interactionPath(details.uid, 'code')));
    }
    await signedIn(req, res, account);
  });
  routes.post('/oidc/interaction/:uid/code', signInForm, async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res).catch(() => undefined);
    const name = details?.result?.passwordOf;
    if (!details || typeof name !== 'string') return void expired(res);
    const action = interactionPath(details.uid, 'code');
    const address = req.ip ?? 'unknown';
    if (await mustWait(res, name, address, (refusal) => codePage(action, refusal))) return;
    const { code } = req.body as { code?: unknown };
    const account = typeof code === 'string' && (await accounts.codeMatches(name, code.trim())) ? await accounts.find(name) : undefined;
    if (!account) {
      (req.body as Record<string, unknown>).username = name; // so the refusal's AuditEvent names the account, as a wrong password's does
      return void (await refuse(res, name, address, codePage(action, 'The code is not right, or was used already: enter the next code')));
    }
    await signedIn(req, res, account);
  });
  routes.post('/auth/token', express.urlencoded({ extended: false, limit: '64kb' }), (req, res, next) => {
    if (!peopleGrants.has((req.body as { grant_type?: string } | undefined)?.grant_type ?? '')) return next();
    void answer(req, res);
  });
  // An admin makes a person's account; a password left out is generated and answered this once.
  routes.post('/auth/accounts', auth.authenticate, express.json({ limit: '16kb' }), async (req, res) => {
    if (principalOf(res)?.role !== 'admin') {
      res.status(403).json({ error: 'forbidden', error_description: 'Making accounts needs an access token with the admin role' });
      return;
    }
    try {
      res.status(201).json(await accounts.create(req.body));
    } catch (err) {
      if (!(err instanceof InvalidAccount)) throw err;
      res.status(400).json({ error: 'invalid_account', field: err.field, error_description: err.message });
    }
  });
  // TOTP for an account, set up by an admin or by the person signed in to it: the secret is answered
  // this once, as an otpauth:// URI for an authenticator app; from now on sign-in asks for a code.
  routes.post('/auth/accounts/:username/totp', auth.authenticate, async (req, res) => {
    const caller = principalOf(res);
    const account = await accounts.find(String(req.params.username));
    const own = account && caller?.issuer === baseUrl && caller.subject === account.username && caller.fhirUser === account.fhirUser;
    if (caller?.role !== 'admin' && !own) {
      res.status(403).json({ error: 'forbidden', error_description: 'Setting up TOTP needs the admin role or a sign-in to that account' });
      return;
    }
    const otpauth = account && (await accounts.enrolTotp(account.username));
    if (!otpauth) return void res.status(404).json({ error: 'not_found', error_description: 'There is no account of that user name' });
    res.status(201).setHeader('Cache-Control', 'no-store').json({ otpauth });
  });
  routes.use((req, res, next) => (providerPaths.test(req.path) ? void answer(req, res) : next()));
  return { routes, accounts };

  function principalOfAccount(account: Account): Principal {
    return { issuer: baseUrl, subject: account.username, scopes: parseScopes(workbenchScopes), role: account.role, fhirUser: account.fhirUser };
  }

  /** Answers the page saying why, with 429 and Retry-After, when sign-in for this account or address must wait. */
  async function mustWait(res: Response, name: string, address: string, pageWith: (refusal: string) => string): Promise<boolean> {
    const waitUntil = await limits.waitUntil(name, address);
    if (!waitUntil) return false;
    // Audited as a refusal (429) like a wrong password.
    const seconds = Math.max(1, Math.ceil((waitUntil.getTime() - Date.now()) / 1000));
    res.status(429).setHeader('Retry-After', String(seconds));
    const wait = `${Math.ceil(seconds / 60)} minute${seconds > 60 ? 's' : ''}`;
    res.type('html').send(pageWith(`Too many failed sign-ins for this account or from this address: try again in ${wait}, or ask an administrator`));
    return true;
  }

  /** A wrong password or code: counted against the account and the address, answered 401 (and audited so). */
  async function refuse(res: Response, name: string, address: string, page: string): Promise<void> {
    await limits.failed(name, address);
    res.status(401).type('html').send(page);
  }

  async function signedIn(req: Request, res: Response, account: Account): Promise<void> {
    await limits.succeeded(account.username);
    // The audit event names the person who signed in.
    res.locals.principal = principalOfAccount(account);
    await provider.interactionFinished(req, res, { login: { accountId: account.username } }, { mergeWithLastSubmission: false });
  }
}

const signInForm = express.urlencoded({ extended: false, limit: '8kb' });
const interactionPath = (uid: string, step: 'login' | 'code') => `/oidc/interaction/${encodeURIComponent(uid)}/${step}`;

function expired(res: Response): void {
  res.status(400).type('html').send(signInErrorPage('This sign-in has expired', 'start again from the workbench'));
}
