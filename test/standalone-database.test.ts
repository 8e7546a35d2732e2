// MONGODB_URI may name a standalone server, which has neither change streams nor transactions: the
// service finds that out, its workers poll, and a transaction Bundle is still all or nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose from 'mongoose';
import { freePort, secantusBinaryPath } from '../src/database/local-server.js';
import { isReplicated } from '../src/store/transactions.js';
import { expectFailedTransactionLeavesNothing } from './bundle-cases.js';
import { startTestService, type TestService } from './harness.js';

let database: ChildProcess;
let service: TestService;
const dir = mkdtempSync(path.join(os.tmpdir(), 'standalone-db-'));

beforeAll(async () => {
  const port = await freePort();
  database = spawn(
    secantusBinaryPath(),
    [
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--storage-path',
      dir,
      '--standalone',
      '--log-level',
      'WARNING',
      '--cache-size',
      '128M',
      '--log-file-max',
      '16MB',
    ],
    { stdio: 'ignore' },
  );
  const uri = `mongodb://127.0.0.1:${port}/`;
  for (const deadline = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const probe = mongoose.createConnection(uri, { serverSelectionTimeoutMS: 500 });
    const up = await probe.asPromise().then(
      () => true,
      () => false,
    );
    await probe.close();
    if (up) break;
    if (Date.now() > deadline) throw new Error('the standalone SecantusDB did not start');
  }
  service = await startTestService({ MONGODB_URI: uri });
}, 60_000);

afterAll(async () => {
  await service?.stop();
  database?.kill('SIGTERM');
  await new Promise((r) => (database?.exitCode === null ? database.once('exit', r) : r(undefined)));
  rmSync(dir, { recursive: true, force: true });
});

describe('on a standalone MongoDB server', () => {
  it('the service sees it has no replica set, so neither change streams nor transactions', async () => {
    expect(await isReplicated(service.server.database.connection)).toBe(false);
    expect(service.server.database.engine).toBe('external');
  });

  it('a transaction Bundle that fails at its last entry leaves nothing stored', async () => {
    await expectFailedTransactionLeavesNothing(service);
  });

  it('a Task and its Provenance are written as on a replica set', async () => {
    const patient = (await service.fhir('/Patient', { body: { resourceType: 'Patient' } })).body;
    const task = await service.fhir('/Task', {
      body: { resourceType: 'Task', status: 'requested', intent: 'order', for: { reference: `Patient/${patient.id}` } },
    });
    expect(task.status).toBe(201);
    const provenance = await service.fhir(`/${task.body.relevantHistory[0].reference}`);
    expect([provenance.status, provenance.body.target]).toEqual([200, [{ reference: `Task/${task.body.id}/_history/1` }]]);
  });
});
