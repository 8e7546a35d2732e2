// POST /auth/token: SMART Backend Services. A registered client authenticates with a private_key_jwt
// assertion (RS384 or ES384, checked against its registered keys: iss = sub = client_id, aud = this
// endpoint, exp at most five minutes ahead, a jti never seen before) and gets a short-lived access
// token for the requested scopes it is allowed. Errors as RFC 6749 section 5.2 words them.
import type { Request, Response } from 'express';
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { StoredClient } from '../store/clients.js';
import type { UsedAssertions } from '../store/used-assertions.js';
import type { TokenIssuer } from './access-tokens.js';
import { assertionAlgorithms, type ClientRegistry, type Role } from './clients.js';
import { narrowScopes, parseScopes } from './scopes.js';

const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const maxAssertionLifetimeSeconds = 300;
const clockToleranceSeconds = 30;

class TokenError extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly error: 'invalid_request' | 'invalid_client' | 'invalid_scope' | 'unsupported_grant_type',
    description: string,
  ) {
    super(description);
  }
}

export function tokenEndpoint(clients: ClientRegistry, usedAssertions: UsedAssertions, issuer: TokenIssuer, tokenUrl: string) {
  return async (req: Request, res: Response): Promise<void> => {
    res.set('Cache-Control', 'no-store').set('Pragma', 'no-cache');
    try {
      const form = formOf(req.body);
      if (!form.grant_type) throw new TokenError(400, 'invalid_request', 'grant_type is missing');
      if (form.grant_type !== 'client_credentials') throw new TokenError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported');
      if (form.client_assertion_type !== jwtBearer || !form.client_assertion) {
        throw new TokenError(401, 'invalid_client', `Authenticate with client_assertion_type=${jwtBearer} and a client_assertion`);
      }
      if (!form.scope) throw new TokenError(400, 'invalid_scope', 'scope is missing: name the SMART scopes the token is for');
      const client = await authenticateClient(form.client_assertion, form.client_id);
      const granted = narrowScopes(parseScopes(form.scope), parseScopes(client.scopes.join(' ')));
      if (!granted.length) throw new TokenError(400, 'invalid_scope', 'None of the requested scopes is allowed to this client');
      const scope = granted.join(' ');
      const { accessToken, expiresIn } = await issuer.issue({
        subject: client._id,
        scope,
        role: client.role as Role,
        institution: client.institution,
        fhirUser: client.fhirUser,
      });
      res.status(200).json({ access_token: accessToken, token_type: 'bearer', expires_in: expiresIn, scope });
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      res.status(err.status).json({ error: err.error, error_description: err.message });
    }
  };

  /** The registered client whose valid, unused assertion this is. */
  async function authenticateClient(assertion: string, claimedId: string | undefined): Promise<StoredClient> {
    let clientId: unknown;
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      clientId = decodeJwt(assertion).iss;
      header = decodeProtectedHeader(assertion);
    } catch {
      throw new TokenError(401, 'invalid_client', 'client_assertion is not a JWT');
    }
    const client = typeof clientId === 'string' ? await clients.find(clientId) : undefined;
    if (!client || (claimedId !== undefined && claimedId !== client._id))
      throw new TokenError(401, 'invalid_client', 'The assertion names no registered client');
    if (!header.kid) throw new TokenError(401, 'invalid_client', 'The assertion header needs the kid of its key');
    // A jku may only point where the client registered its keys; the registered ones are used either way.
    if (header.jku !== undefined && header.jku !== client.jwksUri)
      throw new TokenError(401, 'invalid_client', "The assertion's jku is not the client's registered jwks_uri");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, clients.keysOf(client), {
        issuer: client._id,
        subject: client._id,
        audience: tokenUrl,
        algorithms: assertionAlgorithms,
        requiredClaims: ['exp', 'jti'],
        clockTolerance: clockToleranceSeconds,
      }));
    } catch (err) {
      const { code, claim } = err as { code?: string; claim?: string };
      const why =
        code === 'ERR_JWT_EXPIRED'
          ? 'has expired'
          : claim
            ? `has a missing or wrong ${claim} claim`
            : code === 'ERR_JOSE_ALG_NOT_ALLOWED'
              ? 'is not signed RS384 or ES384'
              : "does not verify against the client's registered keys";
      throw new TokenError(401, 'invalid_client', `The assertion ${why}`);
    }
    const exp = payload.exp as number;
    if (exp > Date.now() / 1000 + maxAssertionLifetimeSeconds + clockToleranceSeconds) {
      throw new TokenError(401, 'invalid_client', 'The assertion expires more than five minutes ahead');
    }
    if (!(await usedAssertions.use(client._id, payload.jti as string, new Date((exp + clockToleranceSeconds) * 1000)))) {
      throw new TokenError(401, 'invalid_client', 'The assertion was used before: make a new one, with a new jti, for each token request');
    }
    return client;
  }
}

/** The form's parameters, each given once (RFC 6749: repeating one is an invalid request). */
function formOf(body: unknown): Record<string, string | undefined> {
  const form: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries((body ?? {}) as Record<string, unknown>)) {
    if (typeof value !== 'string') throw new TokenError(400, 'invalid_request', `${key} is given more than once`);
    form[key] = value;
  }
  return form;
}
