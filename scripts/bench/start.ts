// Benchmark: how long the service takes to start, in fresh processes, against the embedded database.
// Each run is a new `node` process (as every Jest test file and every spawned service is): it loads
// the modules, then times FHIR's base definitions alone in one process, and the first and a second
// full start (startServer, to a listening port with its indexes made) in another. Module loading
// itself is left out.
// Run: npm run bench:start [-- --runs 7]
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../../src/logger.js';
import { freePort, startLocalServer } from '../../src/database/local-server.js';
import { markdownTable, median, option } from './report.js';

const self = fileURLToPath(import.meta.url);
const say = (line: string): boolean => process.stdout.write(`${line}\n`);

/** One measurement in this process; prints its figures as one JSON line. */
async function child(kind: string): Promise<void> {
  if (kind === 'definitions') {
    const { loadBaseDefinitions } = await import('../../src/base/base-definitions.js');
    const started = performance.now();
    loadBaseDefinitions();
    say(JSON.stringify({ definitions: performance.now() - started }));
    return;
  }
  const [{ startServer }, { loadConfig }] = await Promise.all([import('../../src/server.js'), import('../../src/config.js')]);
  const log = createLogger('silent');
  const boots: number[] = [];
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    const config = loadConfig({
      MONGODB_URI: process.env.MONGODB_URI,
      PORT: String(port),
      HOST: '127.0.0.1',
      BASE_URL: `http://127.0.0.1:${port}`,
      DATABASE_NAME: `bench-start-${randomUUID().slice(0, 8)}`,
      LOG_LEVEL: 'silent',
    });
    const started = performance.now();
    const server = await startServer(config, log);
    boots.push(performance.now() - started);
    await server.database.connection.dropDatabase();
    await server.close();
  }
  say(JSON.stringify({ first: boots[0], second: boots[1] }));
}

/** Runs `kind` in a fresh process and answers its figures. */
function measure(kind: string, env: NodeJS.ProcessEnv): Record<string, number> {
  const run = spawnSync(process.execPath, [self, '--child', kind], { env, encoding: 'utf8' });
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  if (run.status !== 0 || !line.startsWith('{')) throw new Error(`the ${kind} run failed: ${run.stderr.slice(-2000)}`);
  return JSON.parse(line) as Record<string, number>;
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  await child(process.argv[childAt + 1]);
  process.exit(0);
}

const runs = option('runs', 7);
const log = createLogger('warn');
say(`starting the embedded database; ${runs} runs of each measurement, each in a fresh process`);
const database = await startLocalServer(undefined, log);
try {
  const env = { ...process.env, MONGODB_URI: database.uri };
  const figures: Record<string, number[]> = { definitions: [], first: [], second: [] };
  for (let i = 1; i <= runs; i++) {
    const { definitions } = measure('definitions', env);
    const { first, second } = measure('boot', env);
    figures.definitions.push(definitions);
    figures.first.push(first);
    figures.second.push(second);
    say(`run ${i}/${runs}: base definitions ${definitions.toFixed(0)} ms, first start ${first.toFixed(0)} ms, second ${second.toFixed(0)} ms`);
  }
  const row = (what: string, values: number[]): string[] => [
    what,
    `${median(values).toFixed(0)} ms`,
    `${Math.min(...values).toFixed(0)} to ${Math.max(...values).toFixed(0)} ms`,
  ];
  say('');
  say(
    markdownTable(
      ['in a fresh process', 'median', 'range'],
      [row("FHIR's base definitions indexed", figures.definitions), row('first service start', figures.first), row('second service start', figures.second)],
    ),
  );
} finally {
  await database.stop();
}
