// The embedded database as a person starting the service meets it: SecantusDB unless mongod is asked
// for, and a mongod that cannot be had explained in one line that says what to do.
import { afterAll, describe, expect, it } from '@jest/globals';
import { startLocalServer } from '../src/database/local-server.js';
import { createLogger } from '../src/logger.js';

const log = createLogger('silent');
const saved = { EMBEDDED_DB: process.env.EMBEDDED_DB, MONGOMS_SYSTEM_BINARY: process.env.MONGOMS_SYSTEM_BINARY };
afterAll(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('the embedded database', () => {
  it('is SecantusDB unless EMBEDDED_DB asks for mongod', async () => {
    delete process.env.EMBEDDED_DB;
    const server = await startLocalServer(undefined, log);
    try {
      expect(server.engine).toBe('secantusdb');
    } finally {
      await server.stop();
    }
  });

  it('when mongod is asked for and cannot be had, says so in one line with what to do', async () => {
    process.env.EMBEDDED_DB = 'mongod';
    process.env.MONGOMS_SYSTEM_BINARY = '/nonexistent/mongod';
    const failure = await startLocalServer(undefined, log).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(failure).toMatch(
      /^EMBEDDED_DB=mongod, and no mongod could be started: .*\/nonexistent\/mongod.*\. Set MONGOMS_SYSTEM_BINARY to a mongod binary, set MONGODB_URI, or unset EMBEDDED_DB for SecantusDB\.$/,
    );
    expect(failure).not.toContain('\n');
    expect(failure).not.toMatch(/Details:/);
  });
});
