// Starts a MongoDB-compatible server on loopback when no MONGODB_URI is given:
// a real mongod through mongodb-memory-server where its binary can be had, else FerretDB 1.24 on SQLite.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';

export interface LocalServer {
  uri: string;
  engine: 'mongod' | 'ferretdb';
  stop(): Promise<void>;
}

const sourceRoot = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
export const ferretdbVersion = 'v1.24.2';
const installScript = path.join(sourceRoot, 'scripts', 'install-ferretdb.sh');

/** Where the built FerretDB binary is cached; the install script writes to the same place. */
export function ferretdbBinaryPath(): string {
  if (process.env.FERRETDB_BIN) {
    return process.env.FERRETDB_BIN;
  }
  const cacheRoot = process.env.SECOND_OPINION_CACHE ?? path.join(sourceRoot, '.cache');
  return path.join(cacheRoot, `ferretdb-${ferretdbVersion}`, 'ferretdb');
}

/**
 * @param dataDir a folder that keeps the data across restarts, or undefined for a throw-away database.
 */
export async function startLocalServer(dataDir: string | undefined, log: Logger): Promise<LocalServer> {
  const reasons: string[] = [];
  if (process.env.SECOND_OPINION_SKIP_MONGOD !== 'true') {
    try {
      return await startMongod(dataDir, log);
    } catch (err) {
      reasons.push(`mongod: ${(err as Error).message.split('\n')[0]}`);
      log.info({ reason: reasons[0] }, 'mongod is not available here; falling back to FerretDB');
    }
  }
  try {
    return await startFerretdb(dataDir, log);
  } catch (err) {
    reasons.push(`ferretdb: ${(err as Error).message}`);
  }
  throw new Error(
    [
      'No database: MONGODB_URI is not set and no local MongoDB-compatible server could be started.',
      ...reasons.map((r) => `  - ${r}`),
      'Do one of:',
      '  - set MONGODB_URI to a MongoDB server (for example mongodb://127.0.0.1:27017/second-opinion);',
      '  - put a mongod binary on PATH or set MONGOMS_SYSTEM_BINARY to one;',
      `  - install Go (1.22 or later) and run scripts/install-ferretdb.sh, which builds FerretDB ${ferretdbVersion}.`,
    ].join('\n'),
  );
}

async function startMongod(dataDir: string | undefined, log: Logger): Promise<LocalServer> {
  const { MongoBinary, MongoMemoryServer } = await import('mongodb-memory-server');
  // Finds a system or cached mongod, else downloads one; fails quietly where no download can be had.
  const systemBinary = await MongoBinary.getPath();
  const dbPath = dataDir ? path.join(dataDir, 'mongod') : undefined;
  if (dbPath) {
    mkdirSync(dbPath, { recursive: true });
  }
  const server = await MongoMemoryServer.create({
    binary: { systemBinary },
    instance: { ip: '127.0.0.1', ...(dbPath ? { dbPath, storageEngine: 'wiredTiger' as const } : {}) },
  });
  log.info({ engine: 'mongod' }, 'started local mongod');
  return {
    uri: server.getUri(),
    engine: 'mongod',
    stop: async () => {
      await server.stop({ doCleanup: !dbPath, force: false });
    },
  };
}

async function startFerretdb(dataDir: string | undefined, log: Logger): Promise<LocalServer> {
  const binary = ensureFerretdb(log);
  const ephemeral = dataDir === undefined;
  const dir = dataDir ? path.join(dataDir, 'ferretdb') : path.join(sourceRoot, '.cache', 'test-db', `${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  stopOrphan(dir, log);
  const port = await freePort();
  const child = spawn(
    binary,
    [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--telemetry=disable',
      '--log-level=ERROR',
      '--debug-addr=-',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  writeFileSync(path.join(dir, 'ferretdb.pid'), String(child.pid));
  await waitForPort(port, child, () => stderr);
  log.info({ engine: 'ferretdb', port }, 'started local FerretDB');
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    engine: 'ferretdb',
    stop: async () => {
      await stopChild(child);
      if (ephemeral) {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function findProjectRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) {
    dir = path.dirname(dir);
  }
  return dir;
}

function ensureFerretdb(log: Logger): string {
  const binary = ferretdbBinaryPath();
  if (existsSync(binary)) {
    return binary;
  }
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`no FerretDB binary at ${binary}, and no Go toolchain to build one`);
  }
  log.info({ binary }, `building FerretDB ${ferretdbVersion} once (about a minute)`);
  const result = spawnSync('bash', [installScript], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
  if (result.status !== 0 || !existsSync(binary)) {
    throw new Error(`scripts/install-ferretdb.sh failed (exit ${result.status})`);
  }
  return binary;
}

/** A FerretDB left running by a killed service would hold the data files; stop it first. */
function stopOrphan(dir: string, log: Logger): void {
  const pidFile = path.join(dir, 'ferretdb.pid');
  if (!existsSync(pidFile)) {
    return;
  }
  const pid = Number(readFileSync(pidFile, 'utf8'));
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes('ferretdb') && cmdline.includes(dir)) {
      process.kill(pid, 'SIGKILL');
      log.warn({ pid }, 'stopped a FerretDB left running by an earlier run');
    }
  } catch {
    // not running any more
  }
}

/** A port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`FerretDB exited with code ${child.exitCode}: ${stderr().trim()}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`FerretDB did not listen on 127.0.0.1:${port} within 20 s`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
