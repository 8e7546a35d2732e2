// Work made by one process is started by another at once: the change feed wakes its workers, so
// they need not poll every second. Here the service polls once a minute, and a job enqueued by
// another process on the same database is still claimed within seconds.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose, { type Connection } from 'mongoose';
import { exportJobKind } from '../src/export/bulk-export.js';
import { JobQueue } from '../src/store/jobs.js';
import { startTestService, type TestService } from './harness.js';

const databaseName = `test-feed-${randomUUID().slice(0, 8)}`;
let service: TestService;
let other: Connection;

beforeAll(async () => {
  service = await startTestService({ DATABASE_NAME: databaseName, EXPORT_POLL_MS: '60000', RETRIEVAL_POLL_MS: '60000', DELIVERY_POLL_MS: '60000' });
  other = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: databaseName }).asPromise();
});
afterAll(async () => {
  await other?.close();
  await service?.stop();
});

describe('the change feed', () => {
  it('a job another process enqueues is taken by this one within seconds, not at its next poll a minute later', async () => {
    // Once the service's workers have looked for work after starting, they sleep until a nudge or the poll.
    await new Promise((r) => setTimeout(r, 1000));
    const queue = new JobQueue(other);
    const id = `feed-${randomUUID()}`;
    const enqueued = Date.now();
    await queue.enqueue(exportJobKind, id, { caller: 'nobody', types: ['Patient'] });
    let taken = 0;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && !taken; await new Promise((r) => setTimeout(r, 50))) {
      if (((await queue.get(id))?.attempts ?? 0) > 0) taken = Date.now() - enqueued;
    }
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(5000);
  });
});
