// HAPI FHIR as a referring institution's server: the JPA server built from scripts/peer/hapi (Maven,
// `mvn -q -B package` there), run as its own Java process on 127.0.0.1 with a 512 MB heap. The test
// run starts one (test/global-setup.ts) and hands its base URL to the tests through the environment;
// the demo starts one with DEMO_PEER=hapi. It takes tens of seconds to start, so a caller starts it
// early and waits for it only where it is needed. It runs from the jar's extracted layout (Spring
// Boot's `jarmode=tools extract`, made once beside the jar): loading classes from nested jars doubled
// its start (48 s and 56 s of CPU against 24 s and 29 s on a 2-core machine).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shortLivedJvm } from '../java.js';

/** The runnable jar, beside this file's source (compiled into dist/scripts/peer, two levels down). */
export const hapiJar = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../scripts/peer/hapi/target/hapi-peer.jar');

/** The jar's extracted layout: the application's jar, with its libraries in lib/ beside it. */
const extractedDir = path.join(path.dirname(hapiJar), 'hapi-peer');
const extractedJar = path.join(extractedDir, 'hapi-peer.jar');

/**
 * The extracted application jar, extracted from the built jar when it is missing or older. Two
 * callers at once each extract into a directory of their own; the first renamed into place is kept.
 */
function runnableJar(): string {
  if (existsSync(extractedJar) && statSync(extractedJar).mtimeMs >= statSync(hapiJar).mtimeMs) return extractedJar;
  const scratch = `${extractedDir}.${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  const run = spawnSync('java', ['-Djarmode=tools', '-jar', hapiJar, 'extract', '--destination', scratch], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`extracting ${hapiJar} failed (${run.status}):\n${run.stdout}${run.stderr}`);
  if (existsSync(extractedJar) && statSync(extractedJar).mtimeMs < statSync(hapiJar).mtimeMs) rmSync(extractedDir, { recursive: true, force: true });
  try {
    renameSync(scratch, extractedDir);
  } catch (err) {
    // Another caller's extraction is in place already.
    if (!existsSync(extractedJar)) throw err;
    rmSync(scratch, { recursive: true, force: true });
  }
  return extractedJar;
}

/** What the environment tells a test about the run's HAPI FHIR server. */
export const hapiEnv = { base: 'HAPI_FHIR_BASE', pid: 'HAPI_FHIR_PID', log: 'HAPI_FHIR_LOG', error: 'HAPI_FHIR_ERROR' } as const;

export interface HapiProcess {
  /** The FHIR base URL, http://127.0.0.1:PORT/fhir (with port 0: known once the server announces it, see announcedBase). */
  base: string;
  child: ChildProcess;
  /** Where its output goes. */
  log: string;
  stop(): Promise<void>;
}

/**
 * Starts the server on `port` without waiting for it; `hapiReady` waits. Throws when the jar was never
 * built. Port 0 lets the server take a free port itself, which nothing else can take in the minute it
 * needs to start; its log then says which (announcedBase).
 */
export function launchHapi(port: number): HapiProcess {
  if (!existsSync(hapiJar)) {
    throw new Error(`HAPI FHIR is not built: run \`mvn -q -B package\` in scripts/peer/hapi (no ${hapiJar})`);
  }
  const log = path.join(tmpdir(), `hapi-fhir-${port || process.pid}.log`);
  const out = openSync(log, 'w');
  const child = spawn('java', ['-Xmx512m', ...shortLivedJvm, '-jar', runnableJar(), `--server.port=${port}`], { stdio: ['ignore', out, out] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    base: `http://127.0.0.1:${port}/fhir`,
    child,
    log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * Waits until the server at `base` answers its CapabilityStatement; fails at once when the process
 * (`pid`, when known) is gone, and after `timeoutMs` otherwise, naming the log to read.
 */
export async function hapiReady(base: string, options: { pid?: number; log?: string; timeoutMs: number }): Promise<void> {
  const started = Date.now();
  for (;;) {
    const up = await fetch(`${base}/metadata`, { headers: { accept: 'application/fhir+json' } }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return;
    const alive = options.pid === undefined || isAlive(options.pid);
    if (!alive || Date.now() - started > options.timeoutMs) {
      throw new Error(
        `HAPI FHIR at ${base} ${alive ? `did not answer within ${options.timeoutMs / 1000} s` : 'exited before it answered'}${options.log ? `; see ${options.log}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The base URL a server started on port 0 has announced in its log ("Tomcat started on port N"), once it has. */
export function announcedBase(log: string): string | undefined {
  const port = existsSync(log) ? /Tomcat started on port (\d+)/.exec(readFileSync(log, 'utf8'))?.[1] : undefined;
  return port ? `http://127.0.0.1:${port}/fhir` : undefined;
}

/**
 * The run's HAPI FHIR base URL, once it answers; throws (loudly, with the reason) when the run has
 * none. The base is HAPI_FHIR_BASE, or the one the run's server announces in its log (HAPI_FHIR_LOG).
 */
export async function runHapi(timeoutMs = 8 * 60_000): Promise<string> {
  const pid = process.env[hapiEnv.pid] ? Number(process.env[hapiEnv.pid]) : undefined;
  const log = process.env[hapiEnv.log];
  const started = Date.now();
  let base = process.env[hapiEnv.base];
  while (!base && log && pid !== undefined && isAlive(pid) && Date.now() - started < timeoutMs) {
    base = announcedBase(log);
    if (!base) await new Promise((r) => setTimeout(r, 500));
  }
  if (!base) {
    throw new Error(
      `no HAPI FHIR server in this run: ${process.env[hapiEnv.error] ?? (log ? `it did not start; see ${log}` : 'the global setup did not start one')}`,
    );
  }
  await hapiReady(base, { pid, log, timeoutMs: Math.max(1000, timeoutMs - (Date.now() - started)) });
  return base;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
