// The service's own access tokens (JWT, RFC 9068 `at+jwt`): signed with AUTH_SIGNING_KEY, or with a
// key made per process and a warning; issued by the token endpoint; minted for local runs, the demo
// and the tests by `mintAccessToken`. The public key is served in the JWKS.
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, exportJWK, exportPKCS8, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTVerifyGetKey } from 'jose';
import { privateKeyOf, publicJwkOf } from './keys.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Role } from './clients.js';

const algorithms = ['ES384', 'ES256', 'RS384', 'RS256', 'PS384', 'PS256'] as const;
type Algorithm = (typeof algorithms)[number];

/** What an access token says about its holder; the claims authorisation and audit build on. */
export interface AccessClaims {
  /** The client (or person) the token was issued to. */
  subject: string;
  /** Space-separated SMART scopes. */
  scope: string;
  role?: Role;
  /** For a referrer system: its Organization (`Organization/id`). */
  institution?: string;
  /** For a person: `Practitioner/id` or `PractitionerRole/id`. */
  fhirUser?: string;
}

export class TokenIssuer {
  private constructor(
    private readonly privateKey: CryptoKey,
    readonly publicJwk: JWK,
    readonly algorithm: Algorithm,
    /** The `iss` of its tokens: the service's public base URL. */
    readonly issuer: string,
    /** The `aud` of its tokens, and the audience every accepted token must name. */
    readonly audience: string,
    readonly lifetimeSeconds: number,
  ) {}

  /** The configured key; without one, a key made for this process when `log` is given to warn in, else an error. */
  static async load(config: Config, log?: Logger): Promise<TokenIssuer> {
    const { signingKey, audience, tokenLifetimeSeconds } = config.auth;
    const algorithm = signingKey.algorithm as Algorithm;
    if (!algorithms.includes(algorithm)) {
      throw new Error(`AUTH_SIGNING_ALG must be one of ${algorithms.join(', ')}`);
    }
    const privateKey = await privateKeyOf(signingKey.pem, algorithm, () => {
      if (!log) throw new Error('AUTH_SIGNING_KEY is not set: set it to the PKCS#8 PEM key the service uses, or the service will not accept the token');
      log.warn('AUTH_SIGNING_KEY is not set: access tokens are signed with a key made for this process only, and no other process can mint tokens it accepts');
    });
    const jwk = await publicJwkOf(privateKey, signingKey.keyId, algorithm);
    return new TokenIssuer(privateKey, jwk, algorithm, config.baseUrl, audience ?? `${config.baseUrl}/fhir`, tokenLifetimeSeconds);
  }

  /** The private key as a JWK, for the people's sign-in (auth/sign-in.ts), whose access tokens are this issuer's too. */
  async privateJwk(): Promise<JWK> {
    return { ...(await exportJWK(this.privateKey)), kid: this.publicJwk.kid, alg: this.algorithm, use: 'sig' };
  }

  /** The key set its tokens verify against (one key, found by `kid`). */
  keys(): JWTVerifyGetKey {
    return createLocalJWKSet({ keys: [this.publicJwk] });
  }

  async issue(claims: AccessClaims, lifetimeSeconds = this.lifetimeSeconds): Promise<{ accessToken: string; expiresIn: number }> {
    const now = Math.floor(Date.now() / 1000);
    const accessToken = await new SignJWT({
      client_id: claims.subject,
      scope: claims.scope,
      role: claims.role,
      institution: claims.institution,
      fhirUser: claims.fhirUser,
    })
      .setProtectedHeader({ alg: this.algorithm, kid: this.publicJwk.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setSubject(claims.subject)
      .setAudience(this.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + lifetimeSeconds)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { accessToken, expiresIn: lifetimeSeconds };
  }
}

/**
 * An access token that a service running with `config` (the same AUTH_SIGNING_KEY and base URL)
 * accepts: for `npm run token`, the demo and the tests.
 */
export async function mintAccessToken(config: Config, claims: AccessClaims, lifetimeSeconds?: number): Promise<string> {
  return (await (await TokenIssuer.load(config)).issue(claims, lifetimeSeconds)).accessToken;
}

/** A new signing key as PKCS#8 PEM, for AUTH_SIGNING_KEY in the demo and the tests. */
export async function newSigningKeyPem(algorithm: Algorithm = 'ES384'): Promise<string> {
  return exportPKCS8((await generateKeyPair(algorithm, { extractable: true })).privateKey);
}
