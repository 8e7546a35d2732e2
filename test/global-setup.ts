// Starts what the whole run shares: one real MongoDB-compatible server (the same way the service does
// when MONGODB_URI is unset; each test file then gets a fresh database on it), and one HAPI FHIR
// server as a referring institution's FHIR server. HAPI is not waited for here (it takes tens of
// seconds): the tests that use it wait for it (scripts/peer/hapi-fhir.ts runHapi), and fail with the
// reason when it could not start. HAPI_FHIR_BASE set beforehand names a HAPI server to use instead.
import { startLocalServer, type LocalServer } from '../src/database/local-server.js';
import { createLogger } from '../src/logger.js';
import { hapiEnv, launchHapi, type HapiProcess } from '../scripts/peer/hapi-fhir.js';

declare global {
  var __testDatabase: LocalServer | undefined;

  var __testHapi: HapiProcess | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (!process.env[hapiEnv.base]) {
    try {
      // On a port of its own choosing: one picked here could be taken by a test's service before HAPI binds it.
      globalThis.__testHapi = launchHapi(0);
      process.env[hapiEnv.pid] = String(globalThis.__testHapi.child.pid);
      process.env[hapiEnv.log] = globalThis.__testHapi.log;
      process.stdout.write(`\nHAPI FHIR starting (log ${globalThis.__testHapi.log})\n`);
    } catch (err) {
      process.env[hapiEnv.error] = (err as Error).message;
    }
  }
  if (process.env.MONGODB_URI) {
    return;
  }
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  globalThis.__testDatabase = await startLocalServer(undefined, log);
  process.env.MONGODB_URI = globalThis.__testDatabase.uri;
  process.stdout.write(`\ntest database: ${globalThis.__testDatabase.engine} at ${globalThis.__testDatabase.uri}\n`);
}
