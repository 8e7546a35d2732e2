// Authentication, assembled for the server: the service's own token issuer and key, the verifier of
// bearer tokens, the client registry with its token endpoint and registration, and the SMART
// configuration. Every endpoint that holds or changes patient data is behind `authenticate`.
import express, { type Request, type RequestHandler, type Router } from 'express';
import type { JWK } from 'jose';
import type { Connection } from 'mongoose';
import type { Config } from '../config.js';
import { outcomeOf } from '../base/outcome.js';
import type { Logger } from '../logger.js';
import { ClientStore } from '../store/clients.js';
import { UsedAssertions } from '../store/used-assertions.js';
import { TokenIssuer } from './access-tokens.js';
import { authenticate, BearerVerifier, principalOf } from './bearer.js';
import { ClientRegistry, InvalidRegistration } from './clients.js';
import { authorizeFhir, requireScope } from './fhir-access.js';
import type { Permission } from './scopes.js';
import { smartConfiguration } from './smart-configuration.js';
import { tokenEndpoint } from './token-endpoint.js';

export interface Authentication {
  /** The issuer of the service's access tokens (the people's sign-in issues them as well). */
  tokens: TokenIssuer;
  /** The public key of the service's access tokens, for the JWKS. */
  publicJwk: JWK;
  /** `/auth/token`, `/auth/clients` and the SMART configuration documents. */
  routes: Router;
  /** 401 unless the request has a valid access token. */
  authenticate: RequestHandler;
  /** For /fhir: `authenticate`, except for the CapabilityStatement (`GET /fhir/metadata`). */
  authenticateFhir: RequestHandler;
  /** In the FHIR router: 403 unless the token's scopes allow the interaction. */
  authorizeFhir: RequestHandler;
  /** 403 unless the token's scopes allow `permission` on `type`. */
  requireScope(type: string, permission: Permission): RequestHandler;
}

/** `GET /fhir/metadata`: the CapabilityStatement, open to anyone (relative to /fhir). */
export const isCapabilityRequest = (req: Request): boolean => (req.method === 'GET' || req.method === 'HEAD') && /^\/metadata\/?$/.test(req.path);

export async function startAuthentication(config: Config, connection: Connection, log: Logger): Promise<Authentication> {
  const issuer = await TokenIssuer.load(config, log);
  const verifier = new BearerVerifier(issuer, config.auth.externalIssuer);
  const clients = new ClientRegistry(new ClientStore(connection));
  const usedAssertions = new UsedAssertions(connection);
  await usedAssertions.init();
  await clients.bootstrap(config.auth.bootstrapClients);
  const realm = `${config.baseUrl}/fhir`;
  const authenticated = authenticate(verifier, realm);

  const routes = express.Router();
  const configuration = smartConfiguration(config.baseUrl);
  for (const path of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration']) {
    routes.get(path, (_req, res) => {
      res.json(configuration);
    });
  }
  routes.post(
    '/auth/token',
    express.urlencoded({ extended: false, limit: '64kb' }),
    tokenEndpoint(clients, usedAssertions, issuer, `${config.baseUrl}/auth/token`),
  );
  routes.post('/auth/clients', authenticated, express.json({ limit: '64kb' }), async (req, res) => {
    if (principalOf(res)?.role !== 'admin') {
      res
        .status(403)
        .type('application/fhir+json')
        .send(
          JSON.stringify(
            outcomeOf([{ severity: 'error', code: 'forbidden', details: { text: 'Registering clients needs an access token with the admin role' } }]),
          ),
        );
      return;
    }
    try {
      res.status(201).json(await clients.register(req.body));
    } catch (err) {
      if (!(err instanceof InvalidRegistration)) throw err;
      res.status(400).json({ error: 'invalid_client_metadata', error_description: err.message });
    }
  });

  return {
    tokens: issuer,
    publicJwk: issuer.publicJwk,
    routes,
    authenticate: authenticated,
    authenticateFhir: authenticate(verifier, realm, isCapabilityRequest),
    authorizeFhir: authorizeFhir(realm),
    requireScope: (type, permission) => requireScope(type, permission, realm),
  };
}
