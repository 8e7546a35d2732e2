// The client registry of the service's token endpoint: who may ask for an access token, with which
// public keys (an inline JWKS or a jwks_uri), for which scopes, in which role, for which institution
// or as which person. Registration uses the metadata names of RFC 7591; `POST /auth/clients` (admin
// only) and AUTH_BOOTSTRAP_CLIENTS at start-up both come through `register`.
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, importJWK, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { ClientStore, StoredClient } from '../store/clients.js';
import { parseScope } from './scopes.js';

export const roles = ['referrer-system', 'reviewer', 'coordinator', 'analyst', 'admin'] as const;
export type Role = (typeof roles)[number];

/** The algorithms a client may sign its assertion with (SMART: RS384 and ES384). */
export const assertionAlgorithms = ['RS384', 'ES384'];

/** A registration as RFC 7591 names it, plus what this service needs to know of the client. */
export interface ClientMetadata {
  client_id: string;
  jwks?: JSONWebKeySet;
  jwks_uri?: string;
  scope: string;
  role: Role;
  institution?: string;
  fhirUser?: string;
  token_endpoint_auth_method: 'private_key_jwt';
  grant_types: ['client_credentials'];
  client_id_issued_at: number;
}

/** A registration the service refuses, and why (RFC 7591 `invalid_client_metadata`). */
export class InvalidRegistration extends Error {}

const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const algorithmFor: Record<string, string> = { RSA: 'RS384', EC: 'ES384' };

export class ClientRegistry {
  private readonly remoteKeys = new Map<string, JWTVerifyGetKey>();

  constructor(private readonly store: ClientStore) {}

  async find(clientId: string): Promise<StoredClient | undefined> {
    return this.store.get(clientId);
  }

  /** Checks and stores a registration; `replace` lets it overwrite a client of the same id (start-up registrations). */
  async register(body: unknown, replace = false): Promise<ClientMetadata> {
    const client = await checkedClient(body);
    if (replace) {
      await this.store.put(client);
    } else if (!(await this.store.add(client))) {
      throw new InvalidRegistration(`client_id ${client._id} is already registered`);
    }
    return metadataOf(client);
  }

  /** Registers the clients AUTH_BOOTSTRAP_CLIENTS lists (a JSON array of registrations, public keys only). */
  async bootstrap(json: string | undefined): Promise<void> {
    if (!json) return;
    let list: unknown;
    try {
      list = JSON.parse(json);
    } catch {
      throw new Error('AUTH_BOOTSTRAP_CLIENTS is not valid JSON');
    }
    for (const [i, body] of (Array.isArray(list) ? list : [list]).entries()) {
      await this.register(body, true).catch((err: Error) => {
        throw new Error(`AUTH_BOOTSTRAP_CLIENTS[${i}]: ${err.message}`);
      });
    }
  }

  /** The keys a client's assertions verify against; a jwks_uri is fetched (and cached) by jose. */
  keysOf(client: StoredClient): JWTVerifyGetKey {
    if (client.jwks) return createLocalJWKSet(client.jwks);
    const uri = client.jwksUri as string;
    let keys = this.remoteKeys.get(uri);
    if (!keys) {
      keys = createRemoteJWKSet(new URL(uri));
      this.remoteKeys.set(uri, keys);
    }
    return keys;
  }
}

async function checkedClient(body: unknown): Promise<StoredClient> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new InvalidRegistration('the registration must be a JSON object');
  const { client_id: clientId, jwks, jwks_uri: jwksUri, scope, role, institution, fhirUser } = body as Record<string, unknown>;
  if (clientId !== undefined && (typeof clientId !== 'string' || !/^[A-Za-z0-9._~-]{1,128}$/.test(clientId))) {
    throw new InvalidRegistration('client_id must be 1 to 128 letters, digits or ._~-');
  }
  if ((jwks === undefined) === (jwksUri === undefined)) throw new InvalidRegistration('give the public keys as either jwks or jwks_uri');
  if (jwksUri !== undefined && !isHttpUrl(jwksUri)) throw new InvalidRegistration('jwks_uri must be an http(s) URL');
  if (jwks !== undefined) await checkPublicKeys(jwks);
  const scopes = typeof scope === 'string' ? scope.split(/\s+/).filter(Boolean) : [];
  if (!scopes.length) throw new InvalidRegistration('scope must list the SMART scopes the client may be granted');
  for (const text of scopes) {
    const parsed = parseScope(text);
    if (!parsed || parsed.context === 'patient' || parsed.query) {
      throw new InvalidRegistration(`scope ${text} is not a system/ or user/ resource scope without search parameters`);
    }
  }
  if (!roles.includes(role as Role)) throw new InvalidRegistration(`role must be one of ${roles.join(', ')}`);
  if (institution !== undefined && !isReference(institution, ['Organization']))
    throw new InvalidRegistration('institution must be a reference Organization/id');
  if (role === 'referrer-system' && institution === undefined) throw new InvalidRegistration('a referrer-system needs its institution');
  if (fhirUser !== undefined && !isReference(fhirUser, ['Practitioner', 'PractitionerRole']))
    throw new InvalidRegistration('fhirUser must be a reference Practitioner/id or PractitionerRole/id');
  if (role === 'reviewer' && fhirUser === undefined) throw new InvalidRegistration('a reviewer needs its fhirUser');
  return {
    _id: clientId ?? randomUUID(),
    ...(jwks !== undefined ? { jwks: jwks as JSONWebKeySet } : { jwksUri: jwksUri as string }),
    scopes,
    role: role as Role,
    ...(institution !== undefined ? { institution: institution as string } : {}),
    ...(fhirUser !== undefined ? { fhirUser: fhirUser as string } : {}),
    registeredAt: new Date(),
  };
}

/** Each key public, RSA or EC, with a kid, and one jose can use. */
async function checkPublicKeys(jwks: unknown): Promise<void> {
  const keys = (jwks as JSONWebKeySet | undefined)?.keys;
  if (!Array.isArray(keys) || !keys.length) throw new InvalidRegistration('jwks must be a JWK Set with at least one key');
  for (const key of keys) {
    if (!key || typeof key !== 'object' || privateMembers.some((m) => m in key)) throw new InvalidRegistration('jwks must hold public keys only');
    if (typeof key.kid !== 'string' || !key.kid) throw new InvalidRegistration('each key in jwks needs a kid');
    const algorithm = key.alg ?? algorithmFor[key.kty ?? ''];
    if (!assertionAlgorithms.includes(algorithm ?? '')) throw new InvalidRegistration(`key ${key.kid}: an RS384 or ES384 key is needed`);
    await importJWK(key, algorithm).catch(() => {
      throw new InvalidRegistration(`key ${key.kid} is not a usable ${algorithm} key`);
    });
  }
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

function isReference(value: unknown, types: string[]): boolean {
  return typeof value === 'string' && new RegExp(`^(${types.join('|')})/[A-Za-z0-9\\-.]{1,64}$`).test(value);
}

function metadataOf(client: StoredClient): ClientMetadata {
  return {
    client_id: client._id,
    ...(client.jwks ? { jwks: client.jwks } : { jwks_uri: client.jwksUri }),
    scope: client.scopes.join(' '),
    role: client.role as Role,
    ...(client.institution ? { institution: client.institution } : {}),
    ...(client.fhirUser ? { fhirUser: client.fhirUser } : {}),
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['client_credentials'],
    client_id_issued_at: Math.floor(client.registeredAt.getTime() / 1000),
  };
}
