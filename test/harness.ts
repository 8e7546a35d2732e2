// Test harness: the real service over HTTP on 127.0.0.1, with its own fresh database.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mintAccessToken, newSigningKeyPem, type AccessClaims } from '../src/auth/access-tokens.js';
import { loadConfig } from '../src/config.js';
import { freePort } from '../src/database/local-server.js';
import { createLogger } from '../src/logger.js';
import { startServer, type RunningServer } from '../src/server.js';

export interface TestService {
  base: string;
  server: RunningServer;
  fhir: (path: string, init?: FhirInit) => Promise<FhirResponse>;
  /** An admin token with every scope (`system/*.*`), valid for an hour; `fhir` sends it unless told otherwise. */
  token: string;
  /** A token this service accepts, with the claims given. */
  mintToken(claims: AccessClaims, lifetimeSeconds?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface FhirInit {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** The bearer token to send; null: none. */
  token?: string | null;
}

export interface FhirResponse {
  status: number;
  headers: Headers;

  body: any;
}

/** The access-token signing key (AUTH_SIGNING_KEY) of every service a test file starts. */
export const testSigningKey: Promise<string> = newSigningKeyPem();

/** The key record ids are made with (RECORD_ID_KEY), the same for every service a run starts: several share a database. */
export const testRecordIdKey = randomUUID();

const adminClaims: AccessClaims = { subject: 'test-admin', scope: 'system/*.*', role: 'admin' };

/** `init`, sending `token` unless it names its own token (or null, for none). */
const withToken = (init: FhirInit | undefined, token: string): FhirInit => ({ ...init, token: init?.token === undefined ? token : init.token });

export async function startTestService(env: Record<string, string> = {}): Promise<TestService> {
  const uri = process.env.MONGODB_URI;
  if (!uri) {
    throw new Error('MONGODB_URI is not set: the global setup did not start a database');
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnPort(uri, await freePort(), env);
    } catch (err) {
      // The free port was taken by another test file between the look and the listen.
      if ((err as { code?: string }).code !== 'EADDRINUSE' || attempt === 3) throw err;
    }
  }
}

async function startOnPort(uri: string, port: number, env: Record<string, string>): Promise<TestService> {
  const config = loadConfig({
    MONGODB_URI: uri,
    PORT: String(port),
    HOST: '127.0.0.1',
    BASE_URL: `http://127.0.0.1:${port}`,
    DATABASE_NAME: `test-${randomUUID().slice(0, 8)}`,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    // Tests poll hard; the limiter has its own test.
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_SIGNING_KEY: await testSigningKey,
    RECORD_ID_KEY: testRecordIdKey,
    ...env,
  });
  const server = await startServer(config, createLogger(config.logLevel));
  const base = `${server.url}/fhir`;
  const mintToken = (claims: AccessClaims, lifetimeSeconds = 3600): Promise<string> => mintAccessToken(config, claims, lifetimeSeconds);
  const token = await mintToken(adminClaims);
  return {
    base,
    server,
    fhir: (path, init) => fhirFetch(path.startsWith('http') ? path : `${base}${path}`, withToken(init, token)),
    token,
    mintToken,
    stop: async () => {
      await server.database.connection.dropDatabase().catch(() => undefined);
      await server.close();
    },
  };
}

export async function fhirFetch(url: string, init: FhirInit = {}): Promise<FhirResponse> {
  const headers: Record<string, string> = {
    accept: 'application/fhir+json',
    ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    ...init.headers,
  };
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    headers['content-type'] ??= 'application/fhir+json';
  }
  const response = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** `fhir` for a service spawned on 127.0.0.1:`port`: like `TestService.fhir` (a path under /fhir, or a whole URL), with an admin token by default. */
export function spawnedFhir(port: number): TestService['fhir'] {
  const serviceUrl = `http://127.0.0.1:${port}`;
  const token = testSigningKey.then((key) => mintAccessToken(loadConfig({ BASE_URL: serviceUrl, AUTH_SIGNING_KEY: key }), adminClaims, 3600));
  return async (path, init) => fhirFetch(path.startsWith('http') ? path : `${serviceUrl}/fhir${path}`, withToken(init, await token));
}

/** The service as its own process (`node dist/src/main.js`) on 127.0.0.1:`port`, once /readyz answers; `spawnedFhir(port)` talks to it. */
export async function spawnService(port: number, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      BASE_URL: `http://127.0.0.1:${port}`,
      AUTH_SIGNING_KEY: await testSigningKey,
      RECORD_ID_KEY: testRecordIdKey,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    if (
      await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return child;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`the service did not start on port ${port}`);
}
