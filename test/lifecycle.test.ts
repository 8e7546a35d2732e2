// The service as `npm start` runs it: no MONGODB_URI, so it starts its own database in a data folder;
// health probes answer; SIGTERM stops it cleanly; a restart finds the data again.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../src/database/local-server.js';
import { createServer, type Socket } from 'node:net';
import { spawnedFhir, testSigningKey } from './harness.js';
import { registerInstitution, secondOpinionRequest } from './review-cases.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'second-opinion-data-'));
const running: ChildProcess[] = [];

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  // A service killed before it stopped leaves its embedded database running (in its own group).
  const pidFile = path.join(dataDir, 'secantusdb', 'secantusd.pid');
  if (existsSync(pidFile)) {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dataDir)) process.kill(pid, 'SIGKILL');
    } catch {
      // stopped already
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** `node dist/src/main.js` as `npm start` runs it, without MONGODB_URI; `output()` is what it printed. */
function spawnService(port: number, extraEnv: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: () => string } {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...extraEnv };
  delete env.MONGODB_URI;
  // In a process group of its own, as a shell runs it: a Ctrl-C or `kill -- -PID` reaches the whole group.
  const child = spawn(process.execPath, ['dist/src/main.js'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

async function startService(port: number, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess & { output: () => string }> {
  const { child, output } = spawnService(port, { AUTH_SIGNING_KEY: await testSigningKey, BASE_URL: `http://127.0.0.1:${port}`, ...env });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`service exited ${child.exitCode}: ${output()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return Object.assign(child, { output });
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`service did not become ready: ${output()}`);
}

/** SIGTERM to the service alone, or to its whole process group (the embedded database's too, were it in it). */
function stop(child: ChildProcess, to: 'process' | 'group' = 'process'): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    if (to === 'group') process.kill(-(child.pid as number), 'SIGTERM');
    else child.kill('SIGTERM');
  });
}

describe('running the service on its embedded database', () => {
  it('without any database to be had, stops and says what to install or set', async () => {
    const emptyCache = mkdtempSync(path.join(tmpdir(), 'second-opinion-cache-'));
    const { child, output } = spawnService(await freePort(), { PATH: '/nonexistent', SECOND_OPINION_CACHE: emptyCache });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    rmSync(emptyCache, { recursive: true, force: true });
    expect(code).toBe(1);
    expect(output()).toContain('set MONGODB_URI');
    expect(output()).toContain('scripts/install-secantusdb.sh');
    expect(output()).toContain('cargo');
  }, 120_000);

  it('answers probes, keeps data across a SIGTERM and restart', async () => {
    const port = await freePort();
    const first = await startService(port);
    const fhir = spawnedFhir(port);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const created = await fhir('/Organization', {
      body: { resourceType: 'Organization', name: 'Persisted Hospital' },
    });
    expect(created.status).toBe(201);
    expect(await stop(first)).toBe(0);
    expect(
      await fetch(`http://127.0.0.1:${port}/healthz`).then(
        () => 'up',
        () => 'down',
      ),
    ).toBe('down');

    const second = await startService(port);
    const read = await fhir(`/Organization/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.name).toBe('Persisted Hospital');
    // Stopped the way Ctrl-C or systemd stops it: the signal reaches the whole group at once. The
    // service still closes its client before the embedded database stops, and says nothing alarming.
    expect(await stop(second, 'group')).toBe(0);
    expect(second.output()).not.toMatch(/"level":(50|60)|Error| {4}at /);

    const third = await startService(port);
    expect((await fhir(`/Organization/${created.body.id}`)).body.name).toBe('Persisted Hospital');
    expect(await stop(third)).toBe(0);
    expect(third.output()).not.toMatch(/"level":(50|60)|Error| {4}at /);
  }, 240_000);

  it('stops at once during a retrieval from a server that never answers, gives the job back, and the next start takes it up', async () => {
    // The referring institution's server takes the connection and never answers.
    const held: Socket[] = [];
    let connected: () => void = () => undefined;
    const connection = () => new Promise<void>((resolve) => (connected = resolve));
    const silent = createServer((socket) => {
      held.push(socket);
      connected();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const ehrBase = `http://127.0.0.1:${(silent.address() as { port: number }).port}/fhir`;
    try {
      const port = await freePort();
      // The lease is far longer than the test waits: a job left to its lease would not be taken again in time.
      const env = { RETRIEVAL_POLL_MS: '100', RETRIEVAL_LEASE_MS: '120000' };
      let calledOnce = connection();
      const service = await startService(port, env);
      const fhir = spawnedFhir(port);
      await registerInstitution({ fhir }, 'Silent Hospital', ehrBase);
      expect((await fhir('/ServiceRequest', { body: secondOpinionRequest('SILENT-1', ehrBase, 'p1') })).status).toBe(201);
      // The retrieval job is under way: its first call waits on the silent server.
      await calledOnce;
      const databasePid = Number(readFileSync(path.join(dataDir, 'secantusdb', 'secantusd.pid'), 'utf8'));
      const started = Date.now();
      expect(await stop(service)).toBe(0);
      // Not the 10 s grace (SHUTDOWN_GRACE_MS), nor the retrieval's timeouts and retries: the stop ends the call in flight.
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(service.output()).toContain('the retrieval is given back unfinished');
      expect(service.output()).not.toContain('stopping with work in hand');
      expect(existsSync(`/proc/${databasePid}`)).toBe(false);

      // Given back, not left to its lease: the next start asks the server again at once.
      calledOnce = connection();
      const again = await startService(port, env);
      const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the job was not taken up again within 20 s')), 20_000).unref());
      await Promise.race([calledOnce, late]);
      expect(await stop(again)).toBe(0);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 120_000);
});
