// What a client of the service holds in the authentication tests: its own key pair, the client
// assertions it signs with it, and a small JWKS server on 127.0.0.1 publishing the public half (as a
// client's jwks_uri or an external authorization server would).
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface KeyPair {
  algorithm: string;
  privateKey: CryptoKey;
  /** The public half, with its kid and alg. */
  publicJwk: JWK;
}

export async function makeKeyPair(
  algorithm: 'RS384' | 'ES384' | 'RS256' | 'ES256',
  kid = `${algorithm.toLowerCase()}-${randomUUID().slice(0, 8)}`,
): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(algorithm);
  return { algorithm, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: algorithm, use: 'sig' } };
}

/** A SMART Backend Services client assertion: iss = sub = the client, aud = the token endpoint, a fresh jti, four minutes; `claims` overrides any. */
export async function clientAssertion(
  key: KeyPair,
  clientId: string,
  tokenUrl: string,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: clientId, sub: clientId, aud: tokenUrl, jti: randomUUID(), exp: now + 240, iat: now, ...claims })
    .setProtectedHeader({ alg: key.algorithm, kid: key.publicJwk.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

export interface JwksServer {
  url: string;
  /** How many times the keys were fetched. */
  fetches: number;
  stop(): Promise<void>;
}

/** Serves `{ keys }` as a JWK Set at http://127.0.0.1:PORT/jwks.json. */
export async function serveJwks(keys: JWK[]): Promise<JwksServer> {
  const server: Server = createServer((req, res) => {
    jwks.fetches++;
    res.writeHead(req.url === '/jwks.json' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(req.url === '/jwks.json' ? JSON.stringify({ keys }) : '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwks: JwksServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    fetches: 0,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return jwks;
}

/** POSTs a token request form; answers the status and the JSON body. */
export async function requestToken(tokenUrl: string, form: Record<string, string>): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

export const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
