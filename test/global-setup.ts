// Starts one real MongoDB-compatible server for the whole run (the same way the service does when
// MONGODB_URI is unset); each test file then gets a fresh database on it.
import { startLocalServer, type LocalServer } from '../src/database/local-server.js';
import { createLogger } from '../src/logger.js';

declare global {
  // eslint-disable-next-line no-var
  var __testDatabase: LocalServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.MONGODB_URI) {
    return;
  }
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  globalThis.__testDatabase = await startLocalServer(undefined, log);
  process.env.MONGODB_URI = globalThis.__testDatabase.uri;
  process.stdout.write(`\ntest database: ${globalThis.__testDatabase.engine} at ${globalThis.__testDatabase.uri}\n`);
}
