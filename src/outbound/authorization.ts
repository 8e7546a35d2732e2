// How the service proves itself to a referring institution's FHIR server: nothing (sandboxes), OAuth2
// client credentials with a client secret, or SMART Backend Services (a private_key_jwt client
// assertion signed RS384 or ES384, token endpoint discovered from .well-known/smart-configuration).
// Tokens are cached until shortly before they expire. Secrets and keys come from the environment only.
import { randomUUID } from 'node:crypto';
import { SignJWT, type CryptoKey, type JWK } from 'jose';
import { privateKeyOf, publicJwkOf } from '../auth/keys.js';
import { ReferringEhrError } from './referring-ehr-client.js';

export type EndpointAuth =
  | { mode: 'none' }
  | { mode: 'client-credentials'; clientId: string; tokenUrl: string; scope?: string; secretEnv: string }
  | { mode: 'smart-backend'; clientId: string; scope?: string; tokenUrl?: string };

/** The service's own key for SMART Backend Services (SMART_PRIVATE_KEY, a PKCS#8 PEM). */
export interface SigningKey {
  keyId: string;
  algorithm: 'RS384' | 'ES384';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function loadSigningKey(key: { pem: string; keyId: string; algorithm: string } | undefined): Promise<SigningKey | undefined> {
  if (!key) return undefined;
  const algorithm = key.algorithm as SigningKey['algorithm'];
  if (algorithm !== 'RS384' && algorithm !== 'ES384') {
    throw new Error('SMART_KEY_ALG must be RS384 or ES384');
  }
  const privateKey = await privateKeyOf(key.pem, algorithm, () => undefined);
  return { keyId: key.keyId, algorithm, privateKey, publicJwk: await publicJwkOf(privateKey, key.keyId, algorithm) };
}

const refreshMarginMs = 60_000;

/** Answers the Authorization header for calls to one FHIR server, fetching a token when the cached one runs out. */
export class TokenSource {
  private token?: { header: string; expiresAt: number };
  private pending?: Promise<string>;

  constructor(
    private readonly fhirBase: string,
    private readonly auth: EndpointAuth,
    private readonly signingKey: SigningKey | undefined,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async header(): Promise<string | undefined> {
    if (this.auth.mode === 'none') return undefined;
    if (this.token && this.token.expiresAt > Date.now()) return this.token.header;
    this.pending ??= this.fetchToken().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** The server refused the token: forget it, so that the next call fetches a new one. */
  invalidate(): void {
    this.token = undefined;
  }

  private async fetchToken(): Promise<string> {
    const auth = this.auth as Exclude<EndpointAuth, { mode: 'none' }>;
    const tokenUrl = auth.tokenUrl ?? (await this.discoverTokenUrl());
    const form = new URLSearchParams({ grant_type: 'client_credentials', ...(auth.scope ? { scope: auth.scope } : {}) });
    if (auth.mode === 'client-credentials') {
      const secret = this.env[auth.secretEnv];
      if (!secret) throw new ReferringEhrError(`client secret variable ${auth.secretEnv} is not set`, undefined, false);
      form.set('client_id', auth.clientId);
      form.set('client_secret', secret);
    } else {
      if (!this.signingKey) throw new ReferringEhrError('SMART Backend Services needs SMART_PRIVATE_KEY', undefined, false);
      form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      form.set('client_assertion', await this.clientAssertion(auth.clientId, tokenUrl));
    }
    const answer = await this.call(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form,
    });
    const {
      access_token: accessToken,
      token_type: tokenType,
      expires_in: expiresIn,
    } = answer as { access_token?: string; token_type?: string; expires_in?: number };
    if (!accessToken) throw new ReferringEhrError(`token endpoint ${tokenUrl} answered no access_token`, undefined, false);
    const header = `${tokenType && tokenType.toLowerCase() !== 'bearer' ? tokenType : 'Bearer'} ${accessToken}`;
    this.token = { header, expiresAt: Date.now() + Math.max(0, (expiresIn ?? 300) * 1000 - refreshMarginMs) };
    return header;
  }

  private async clientAssertion(clientId: string, tokenUrl: string): Promise<string> {
    const key = this.signingKey as SigningKey;
    return new SignJWT({})
      .setProtectedHeader({ alg: key.algorithm, kid: key.keyId, typ: 'JWT' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(tokenUrl)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('4m')
      .sign(key.privateKey);
  }

  private async discoverTokenUrl(): Promise<string> {
    const url = `${this.fhirBase.replace(/\/+$/, '')}/.well-known/smart-configuration`;
    const configuration = (await this.call(url, { headers: { accept: 'application/json' } })) as { token_endpoint?: string };
    if (!configuration.token_endpoint) throw new ReferringEhrError(`${url} names no token_endpoint`, undefined, false);
    return configuration.token_endpoint;
  }

  private async call(url: string, init: RequestInit): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ReferringEhrError(`${url}: no answer`, undefined, true);
    }
    if (!response.ok) {
      const status = response.status;
      throw new ReferringEhrError(`${url}: HTTP ${status}`, status, status === 429 || status >= 500);
    }
    return response.json();
  }
}
