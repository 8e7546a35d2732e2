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
    const existing = (await service.fhir('/Patient', { body: { resourceType: 'Patient', gender: 'female' } })).body;
    const before = (await service.fhir('/Patient?_summary=count')).body.total;
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Standalone' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { ...existing, gender: 'male' }, request: { method: 'PUT', url: `Patient/${existing.id}` } },
        { resource: { ...existing, gender: 'other' }, request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"1"' } },
      ],
    };
    const res = await service.fhir('', { body: bundle });
    expect([res.status, res.body.resourceType]).toEqual([412, 'OperationOutcome']);
    expect((await service.fhir('/Patient?_summary=count')).body.total).toBe(before);
    const current = (await service.fhir(`/Patient/${existing.id}`)).body;
    expect([current.gender, current.meta.versionId]).toEqual(['female', '1']);
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
