// Bearer tokens on requests: a JWT from the service itself or from the configured external issuer,
// checked with jose (signature by `kid`, an allow-list of asymmetric algorithms, iss, aud, exp, nbf).
// A request without a valid token answers 401 with WWW-Authenticate and an OperationOutcome; the
// token itself is never logged or echoed.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import { outcomeOf } from '../base/outcome.js';
import type { TokenIssuer } from './access-tokens.js';
import { roles, type Role } from './clients.js';
import { parseScopes, type Scope } from './scopes.js';

/** Who is calling, as the verified token says; authorisation and audit read it from `res.locals.principal`. */
export interface Principal {
  issuer: string;
  subject: string;
  /** The token's `scope`, parsed (resource scopes only). */
  scopes: Scope[];
  role?: Role;
  institution?: string;
  fhirUser?: string;
}

// Asymmetric only: `none` and the HMAC algorithms (where a public key could pose as a secret) never verify.
const externalAlgorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const clockToleranceSeconds = 30;

interface TrustedIssuer {
  keys: JWTVerifyGetKey;
  algorithms: string[];
  /** The JOSE `typ` its access tokens carry, when it is known. */
  typ?: string;
}

/**
 * A token verified once is taken at its word until it expires, for at most this long: checking a
 * signature was the largest part of a small request's work, and a client sends the same token many
 * times. A key an external issuer withdraws stops its tokens here within this time.
 */
const verifiedForMs = 60_000;

export class BearerVerifier {
  private readonly issuers = new Map<string, TrustedIssuer>();
  /** Principals of tokens verified lately, by the token's SHA-256 (the token itself is not kept). */
  private readonly verified = new LRUCache<string, Principal>({ max: 10_000, ttl: verifiedForMs });

  constructor(
    private readonly own: TokenIssuer,
    external: { issuer: string; jwksUrl: string } | undefined,
  ) {
    if (external?.issuer === own.issuer) throw new Error("AUTH_ISSUER must differ from the service's own issuer, its BASE_URL");
    this.issuers.set(own.issuer, { keys: own.keys(), algorithms: [own.algorithm], typ: 'at+jwt' });
    if (external) this.issuers.set(external.issuer, { keys: createRemoteJWKSet(new URL(external.jwksUrl)), algorithms: externalAlgorithms });
  }

  /** The principal a token stands for; throws `InvalidToken` saying why it does not verify. */
  async verify(token: string): Promise<Principal> {
    const key = createHash('sha256').update(token).digest('base64url');
    const known = this.verified.get(key);
    if (known) return known;
    const { principal, expiresAt } = await this.check(token);
    // Kept no longer than the token is valid (exp is required), and refused again once it has expired.
    const ttl = Math.min(verifiedForMs, expiresAt - Date.now());
    if (ttl > 0) this.verified.set(key, principal, { ttl });
    return principal;
  }

  private async check(token: string): Promise<{ principal: Principal; expiresAt: number }> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw new InvalidToken('The access token is not a JWT');
    }
    const trusted = typeof issuer === 'string' ? this.issuers.get(issuer) : undefined;
    if (!trusted) throw new InvalidToken('The access token is not from a trusted issuer');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, trusted.keys, {
        issuer: issuer as string,
        audience: this.own.audience,
        algorithms: trusted.algorithms,
        typ: trusted.typ,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: clockToleranceSeconds,
      }));
    } catch (err) {
      throw new InvalidToken(whyRefused(err));
    }
    const principal: Principal = {
      issuer: issuer as string,
      subject: payload.sub as string,
      scopes: parseScopes(payload.scope),
      role: roles.includes(payload.role as Role) ? (payload.role as Role) : undefined,
      institution: typeof payload.institution === 'string' ? payload.institution : undefined,
      fhirUser: typeof payload.fhirUser === 'string' ? payload.fhirUser : undefined,
    };
    return { principal, expiresAt: (payload.exp as number) * 1000 };
  }
}

export class InvalidToken extends Error {}

/** Why jose refused a token, in words safe to send back (no claim values, never the token). */
function whyRefused(err: unknown): string {
  const { code, claim } = err as { code?: string; claim?: string };
  if (code === 'ERR_JWT_EXPIRED') return 'The access token has expired';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim === 'nbf') return 'The access token is not valid yet';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim === 'aud') return 'The access token is for another audience';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return `The access token's ${claim} claim is missing or wrong`;
  if (code === 'ERR_JOSE_ALG_NOT_ALLOWED' || code === 'ERR_JOSE_NOT_SUPPORTED')
    return 'The access token is signed with an algorithm this server does not accept';
  if (code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') return "The access token's key (kid) is not one of its issuer's keys";
  if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return "The access token's signature does not verify";
  if (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID') return "The issuer's keys could not be fetched";
  return 'The access token is not valid';
}

/** 401 unless the request carries a valid bearer token; `open` names requests that need none. */
export function authenticate(verifier: BearerVerifier, realm: string, open: (req: Request) => boolean = () => false): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    if (open(req)) return next();
    const [scheme, token, ...rest] = (req.get('authorization') ?? '').trim().split(/\s+/);
    if (!token || rest.length || scheme.toLowerCase() !== 'bearer') {
      refuse(res, `Bearer realm="${realm}"`, 'This endpoint needs an access token: Authorization: Bearer <token>');
      return;
    }
    try {
      res.locals.principal = await verifier.verify(token);
    } catch (err) {
      if (!(err instanceof InvalidToken)) return next(err);
      refuse(res, `Bearer realm="${realm}", error="invalid_token", error_description="${err.message}"`, err.message);
      return;
    }
    next();
  };
}

/** The verified caller of a request that passed `authenticate`. */
export function principalOf(res: Response): Principal | undefined {
  return res.locals.principal as Principal | undefined;
}

function refuse(res: Response, challenge: string, text: string): void {
  res
    .status(401)
    .set('WWW-Authenticate', challenge)
    .type('application/fhir+json')
    .send(JSON.stringify(outcomeOf([{ severity: 'error', code: 'login', details: { text } }])));
}
