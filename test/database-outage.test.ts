// The database goes away for a while under a running service (a network cut, a failover) while a
// chart's retrieval is in hand: the service process stays up through it, its work keeps failing
// quietly to its lease instead of ending the process, and once the database is back it is ready again.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../src/database/local-server.js';
import { spawnedFhir, spawnService } from './harness.js';
import { registerInstitution, secondOpinionRequest } from './review-cases.js';

/** A TCP relay to the test database that can be cut (every connection dropped, none taken) and restored. */
function databaseRelay(target: URL, port: number) {
  const open = new Set<Socket>();
  let server: Server | undefined;
  const track = (socket: Socket): void => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  return {
    // The driver gives up on an unreachable database after 2 s (10 s unless the URI says otherwise).
    uri: `mongodb://127.0.0.1:${port}/?directConnection=true&serverSelectionTimeoutMS=2000`,
    listen: () =>
      new Promise<void>((resolve) => {
        server = createServer((client) => {
          const upstream = connect(Number(target.port), target.hostname);
          track(client);
          track(upstream);
          client.pipe(upstream).pipe(client);
          client.on('close', () => upstream.destroy());
          upstream.on('close', () => client.destroy());
        });
        server.listen(port, '127.0.0.1', resolve);
      }),
    cut: async () => {
      const closed = new Promise((resolve) => server?.close(resolve));
      for (const socket of open) socket.destroy();
      await closed;
    },
  };
}

const held: Socket[] = [];
const silent = createServer((socket) => void held.push(socket));
let service: ChildProcess | undefined;
afterAll(async () => {
  service?.kill('SIGKILL');
  for (const socket of held) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

describe('a database outage under a running service', () => {
  it('is ridden out: the process stays up while its retrieval cannot reach the database, and is ready again after', async () => {
    const relay = databaseRelay(new URL(process.env.MONGODB_URI as string), await freePort());
    await relay.listen();
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const ehrBase = `http://127.0.0.1:${(silent.address() as { port: number }).port}/fhir`;
    const port = await freePort();
    const child = await spawnService(port, {
      MONGODB_URI: relay.uri,
      DATABASE_NAME: `test-outage-${randomUUID().slice(0, 8)}`,
      RETRIEVAL_LEASE_MS: '600',
      RETRIEVAL_POLL_MS: '100',
    });
    service = child;
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const fhir = spawnedFhir(port);
    await registerInstitution({ fhir }, 'Silent Hospital', ehrBase);
    expect((await fhir('/ServiceRequest', { body: secondOpinionRequest('OUTAGE-1', ehrBase, 'p1') })).status).toBe(201);
    // The retrieval is under way: its first call waits on the silent server, its lease beats every 200 ms.
    for (const deadline = Date.now() + 30_000; !held.length && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
    expect(held.length).toBeGreaterThan(0);

    await relay.cut();
    // Long enough for the driver to give up on the database (2 s) again and again under the lease's beats.
    const outcome = await Promise.race([exited.then((code) => `exited ${code}`), new Promise((r) => setTimeout(() => r('running'), 5_000))]);
    expect(outcome).toBe('running');

    await relay.listen();
    let ready = false;
    for (const deadline = Date.now() + 30_000; !ready && Date.now() < deadline;) {
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready).toBe(true);
    expect((await fhir('/ServiceRequest?identifier=OUTAGE-1')).status).toBe(200);
    await relay.cut();
  }, 90_000);
});
