// Starts the embedded database when no MONGODB_URI is given: SecantusDB (`secantusd-rs`, MongoDB's wire
// protocol over WiredTiger, a one-node replica set), built once from crates.io into a cache shared by
// every checkout; or, when asked with EMBEDDED_DB=mongod, a real mongod through mongodb-memory-server.
// It runs as a separate process (it is GPL-2.0; nothing of it is linked) in its own process group, so
// that a Ctrl-C or a SIGTERM to the service's group reaches the service, which closes its client first
// and only then stops the database.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';

export interface LocalServer {
  uri: string;
  engine: 'secantusdb' | 'mongod';
  stop(): Promise<void>;
}

const sourceRoot = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
/** The SecantusDB release the project is tested with; scripts/install-secantusdb.sh builds the same one. */
export const secantusVersion = '0.5.3-beta.196';
const installScript = path.join(sourceRoot, 'scripts', 'install-secantusdb.sh');

/** Where the built server is cached: one build serves every checkout and CI run on the machine. */
export function secantusBinaryPath(): string {
  if (process.env.SECANTUSD_BIN) return process.env.SECANTUSD_BIN;
  const cacheRoot = process.env.SECOND_OPINION_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'second-opinion');
  return path.join(cacheRoot, `secantus-mdb-${secantusVersion}`, 'bin', 'secantusd-rs');
}

/**
 * @param dataDir a folder that keeps the data across restarts, or undefined for a throw-away database.
 */
export async function startLocalServer(dataDir: string | undefined, log: Logger): Promise<LocalServer> {
  const engine = process.env.EMBEDDED_DB ?? 'secantusdb';
  if (engine === 'mongod') {
    try {
      return await startMongod(dataDir, log);
    } catch (err) {
      throw new Error(
        `EMBEDDED_DB=mongod, and no mongod could be started: ${oneLine((err as Error).message)}. Set MONGOMS_SYSTEM_BINARY to a mongod binary, set MONGODB_URI, or unset EMBEDDED_DB for SecantusDB.`,
      );
    }
  }
  if (engine !== 'secantusdb') throw new Error(`EMBEDDED_DB is ${engine}: it may be secantusdb (the default) or mongod`);
  try {
    return await startSecantus(dataDir, log);
  } catch (err) {
    throw new Error(
      [
        'No database: MONGODB_URI is not set and the embedded SecantusDB could not be started.',
        `  - ${(err as Error).message}`,
        'Do one of:',
        '  - set MONGODB_URI to a MongoDB replica set (for example mongodb://127.0.0.1:27017/?replicaSet=rs0);',
        `  - run scripts/install-secantusdb.sh, which builds SecantusDB ${secantusVersion} with cargo (needs Rust, cmake and a C compiler);`,
        '  - set EMBEDDED_DB=mongod where a mongod binary can be had (MONGOMS_SYSTEM_BINARY or a download).',
      ].join('\n'),
    );
  }
}

async function startSecantus(dataDir: string | undefined, log: Logger): Promise<LocalServer> {
  const binary = ensureSecantus(log);
  const ephemeral = dataDir === undefined;
  const dir = dataDir ? path.join(dataDir, 'secantusdb') : mkdtempSync(path.join(os.tmpdir(), 'second-opinion-db-'));
  mkdirSync(dir, { recursive: true });
  stopOrphan(dir, log);
  // Port 0: the server picks a free port and says which, so two starts never race for one.
  const child = spawn(
    binary,
    ['--host', '127.0.0.1', '--port', '0', '--storage-path', dir, '--log-level', 'WARNING', '--cache-size', '512M', '--log-file-max', '32MB'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  writeFileSync(path.join(dir, 'secantusd.pid'), String(child.pid));
  const port = await listeningPort(child);
  log.info({ engine: 'secantusdb', port, dir: ephemeral ? undefined : dir }, 'started the embedded SecantusDB');
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    engine: 'secantusdb',
    stop: async () => {
      await stopChild(child);
      if (ephemeral) rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startMongod(dataDir: string | undefined, log: Logger): Promise<LocalServer> {
  const { MongoBinary, MongoMemoryReplSet } = await import('mongodb-memory-server');
  const systemBinary = await MongoBinary.getPath();
  const dbPath = dataDir ? path.join(dataDir, 'mongod') : undefined;
  if (dbPath) mkdirSync(dbPath, { recursive: true });
  // A one-node replica set, as production runs: transactions and change streams need one.
  const server = await MongoMemoryReplSet.create({
    binary: { systemBinary },
    replSet: { count: 1, storageEngine: 'wiredTiger', ip: '127.0.0.1' },
    instanceOpts: [dbPath ? { dbPath } : {}],
  });
  log.info({ engine: 'mongod' }, 'started a local mongod');
  return {
    uri: server.getUri(),
    engine: 'mongod',
    stop: async () => {
      await server.stop({ doCleanup: !dbPath, force: false });
    },
  };
}

/** mongodb-memory-server's multi-line messages end their first line with "Details:", which may have nothing after it. */
function oneLine(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return [lines[0]?.replace(/,?\s*Details:$/, ''), ...lines.slice(1)].filter(Boolean).join(': ');
}

function findProjectRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

function ensureSecantus(log: Logger): string {
  const binary = secantusBinaryPath();
  if (existsSync(binary)) return binary;
  if (process.env.SECANTUSD_BIN) throw new Error(`SECANTUSD_BIN names ${binary}, which does not exist`);
  log.info({ binary }, `building SecantusDB ${secantusVersion} once (about 10 minutes on 2 cores)`);
  const result = spawnSync('bash', [installScript], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
  if (result.status !== 0 || !existsSync(binary)) throw new Error(`scripts/install-secantusdb.sh failed (exit ${result.status})`);
  return binary;
}

/** A server left running by a killed service holds the data files' lock; stop it first. */
function stopOrphan(dir: string, log: Logger): void {
  const pidFile = path.join(dir, 'secantusd.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes('secantusd') && cmdline.includes(dir)) {
      process.kill(pid, 'SIGKILL');
      log.warn({ pid }, 'stopped an embedded database left running by an earlier run');
    }
  } catch {
    // not running any more
  }
}

/** The port the server announces on stdout ("... listening on 127.0.0.1:PORT"). */
function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => fail(new Error('SecantusDB did not start listening within 30 s')), 30_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on [\d.]+:(\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        child.stdout?.removeAllListeners('data');
        child.removeAllListeners('exit');
        child.stdout?.resume(); // keep draining what it prints later
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`SecantusDB exited with code ${code}: ${stderr.trim()}`)));
  });
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

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
