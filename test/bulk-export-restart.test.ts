// Durability of a Bulk Data export: the service is killed (SIGKILL) while it writes the files; once
// restarted, the job is taken up again from nothing, and the manifest lists complete files only.
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from '@jest/globals';
import mongoose from 'mongoose';
import type { Resource } from '@medplum/fhirtypes';
import { mintAccessToken } from '../src/auth/access-tokens.js';
import { loadConfig } from '../src/config.js';
import { freePort } from '../src/database/local-server.js';
import { createModels } from '../src/store/models.js';
import { Repository } from '../src/store/repository.js';
import { fhirFetch, spawnService, testSigningKey } from './harness.js';

const databaseName = `test-export-restart-${randomUUID().slice(0, 8)}`;
const count = 6000;
const running: ChildProcess[] = [];
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

describe('a crash during an export', () => {
  it('is survived: after a restart the export is written again from nothing, and its manifest lists complete files', async () => {
    const connection = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: databaseName }).asPromise();
    const repository = new Repository(createModels(connection), 'http://127.0.0.1');
    for (let start = 0; start < count; start += 1000) {
      const batch = Array.from({ length: 1000 }, (_, k): Resource => ({
        resourceType: 'Observation',
        id: `obs-${start + k}`,
        status: 'final',
        code: { text: 'Heart rate' },
        subject: { reference: `Patient/p-${(start + k) % 50}` },
        effectiveDateTime: '2024-03-10T10:00:00Z',
        valueQuantity: { value: 60 + (k % 40) },
      }));
      await repository.createMany(batch, {});
    }
    const port = await freePort();
    const env = { DATABASE_NAME: databaseName, EXPORT_POLL_MS: '100', EXPORT_LEASE_MS: '1500', EXPORT_FILE_MAX_RESOURCES: '1000' };
    const start = async (): Promise<ChildProcess> => {
      const child = await spawnService(port, env);
      running.push(child);
      return child;
    };
    const token = await mintAccessToken(
      loadConfig({ BASE_URL: `http://127.0.0.1:${port}`, AUTH_SIGNING_KEY: await testSigningKey }),
      { subject: 'analyst-1', scope: 'system/*.rs', role: 'analyst' },
      3600,
    );
    let service = await start();
    const kickOff = await fhirFetch(`http://127.0.0.1:${port}/fhir/$export?_type=Observation`, { token, headers: { prefer: 'respond-async' } });
    expect(kickOff.status).toBe(202);
    const statusUrl = kickOff.headers.get('content-location') as string;

    // Killed once some of the resources are written, before all are.
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
      const status = await fetch(statusUrl, { headers: { authorization: `Bearer ${token}` } });
      expect(status.status).toBe(202);
      if (Number(/(\d+) resources written/.exec(status.headers.get('x-progress') ?? '')?.[1] ?? 0) > 0) break;
    }
    service.kill('SIGKILL');
    await new Promise((r) => service.once('exit', r));

    service = await start();
    let manifest: any;
    for (const deadline = Date.now() + 60_000; !manifest && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      const status = await fetch(statusUrl, { headers: { authorization: `Bearer ${token}` } });
      if (status.status === 200) manifest = await status.json();
      else expect(status.status).toBe(202);
    }
    expect(manifest.output.map((o: any) => o.count)).toEqual([1000, 1000, 1000, 1000, 1000, 1000]);
    const ids = new Set<string>();
    for (const output of manifest.output) {
      const lines = (await (await fetch(output.url, { headers: { authorization: `Bearer ${token}` } })).text()).split('\n').filter(Boolean);
      expect(lines).toHaveLength(1000);
      for (const line of lines) ids.add(JSON.parse(line).id);
    }
    expect(ids.size).toBe(count);
    // The killed attempt's files are gone: only the listed ones are stored.
    expect(await connection.collection('exports.files').countDocuments()).toBe(manifest.output.length);
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
    await connection.dropDatabase();
    await connection.close();
  }, 180_000);
});
