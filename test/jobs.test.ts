// The durable job queue, against the real database: an ended job leaves the work to do (which the
// workers poll) but still marks its id as taken; a cancelled job cannot be finished; jobs that ended
// in a store from before ended jobs had their own collection are moved there at start.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose, { type Connection } from 'mongoose';
import { JobQueue } from '../src/store/jobs.js';

let connection: Connection;
beforeAll(async () => {
  connection = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: `test-jobs-${randomUUID().slice(0, 8)}` }).asPromise();
});
afterAll(async () => {
  await connection?.dropDatabase();
  await connection?.close();
});

describe('the job queue', () => {
  it('moves an ended job out of the work to do, and never runs its id again', async () => {
    const queue = new JobQueue(connection);
    await queue.init();
    await queue.enqueue('test', 'job-1', { n: 1 });
    const claimed = await queue.claim('test', 10_000);
    expect(claimed?._id).toBe('job-1');
    expect(await queue.finish('job-1', 'done', undefined, { written: 3 })).toBe(true);
    expect(await queue.get('job-1')).toMatchObject({ state: 'done', progress: { written: 3 } });
    expect(await connection.collection('jobs').countDocuments({})).toBe(0);
    await queue.enqueue('test', 'job-1', { n: 2 });
    expect(await queue.claim('test', 10_000)).toBeUndefined();
    expect((await queue.get('job-1'))?.payload).toEqual({ n: 1 });
    expect(await queue.endedBefore('test', new Date(Date.now() + 1000))).toEqual(['job-1']);
  });

  it('does not finish a job removed meanwhile (a cancelled export)', async () => {
    const queue = new JobQueue(connection);
    await queue.enqueue('test', 'job-2', {});
    expect((await queue.claim('test', 10_000))?._id).toBe('job-2');
    expect(await queue.remove('job-2')).toBe(true);
    expect(await queue.finish('job-2', 'done')).toBe(false);
    expect(await queue.get('job-2')).toBeUndefined();
  });

  it('moves jobs that ended among the work to do, as an older store kept them, at start', async () => {
    const now = new Date();
    await connection.collection('jobs').insertOne({
      _id: 'old-done',
      kind: 'test',
      state: 'done',
      payload: {},
      progress: {},
      attempts: 1,
      leaseUntil: now,
      createdAt: now,
      updatedAt: now,
    } as never);
    const queue = new JobQueue(connection);
    await queue.init();
    expect(await connection.collection('jobs').countDocuments({ _id: 'old-done' } as never)).toBe(0);
    expect((await queue.get('old-done'))?.state).toBe('done');
  });
});
