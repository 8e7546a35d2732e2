// An OAuth2 token endpoint for the referring EHR in tests: client credentials with a client secret,
// or SMART Backend Services, whose client assertion it verifies (signature against the client's
// published JWKS, iss, sub, aud, exp, and jti used once) before it issues a short-lived token.
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export interface AuthorizationServer {
  tokenUrl: string;
  /** Token requests answered, and why any was refused. */
  issued: number;
  refusals: string[];
  /** True for a header carrying a token this server issued. */
  accepts: (authorization: string | undefined) => boolean;
  stop(): Promise<void>;
}

export interface Client {
  clientId: string;
  /** For client credentials. */
  secret?: string;
  /** For SMART Backend Services: where the client publishes its public keys. */
  jwksUrl?: string;
}

export async function startAuthorizationServer(clients: Client[], expiresIn = 300): Promise<AuthorizationServer> {
  const tokens = new Set<string>();
  const seenJti = new Set<string>();
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const auth: AuthorizationServer = {
    tokenUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    issued: 0,
    refusals: [],
    accepts: (header) => !!header && tokens.has(header.replace(/^Bearer /i, '')),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const refuse = (res: express.Response, why: string): void => {
    auth.refusals.push(why);
    res.status(401).json({ error: 'invalid_client' });
  };
  app.post('/token', async (req, res) => {
    const form = req.body as Record<string, string>;
    if (form.grant_type !== 'client_credentials') return refuse(res, 'grant_type');
    let clientId = form.client_id;
    if (form.client_assertion_type === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      const claimed = JSON.parse(Buffer.from(form.client_assertion.split('.')[1] ?? '', 'base64url').toString() || '{}') as { iss?: string };
      const client = clients.find((c) => c.clientId === claimed.iss && c.jwksUrl);
      if (!client) return refuse(res, 'unknown client');
      try {
        const { payload, protectedHeader } = await jwtVerify(form.client_assertion, createRemoteJWKSet(new URL(client.jwksUrl as string)), {
          issuer: client.clientId,
          subject: client.clientId,
          audience: auth.tokenUrl,
          algorithms: ['RS384', 'ES384'],
        });
        // SMART Backend Services: exp no more than five minutes ahead, each jti used once, a kid to find the key.
        const fiveMinutesAhead = Date.now() / 1000 + 300;
        if (!payload.jti || seenJti.has(payload.jti) || !payload.exp || payload.exp > fiveMinutesAhead + 5 || !protectedHeader.kid) {
          return refuse(res, 'jti, exp or kid');
        }
        seenJti.add(payload.jti);
      } catch (err) {
        return refuse(res, `assertion: ${(err as Error).message}`);
      }
      clientId = client.clientId;
    } else {
      const client = clients.find((c) => c.clientId === clientId);
      if (!client?.secret || client.secret !== form.client_secret) return refuse(res, 'client secret');
    }
    const token = randomUUID();
    tokens.add(token);
    auth.issued++;
    res.json({ access_token: token, token_type: 'bearer', expires_in: expiresIn, scope: form.scope ?? 'system/*.read' });
  });
  return auth;
}
