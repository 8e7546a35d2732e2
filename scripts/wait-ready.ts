// `npm run wait-ready`: waits until the service answers /readyz (its database is reachable), for
// scripts that start it in the background; `-- --url URL` waits for any URL to answer 2xx instead.
// Exits 1 after --timeout seconds (default 900: a first start on a machine builds the embedded database).
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';

const { values } = parseArgs({ options: { url: { type: 'string' }, timeout: { type: 'string', default: '900' } } });
const readyz = values.url ?? `${loadConfig().baseUrl}/readyz`;
const timeoutMs = Number(values.timeout) * 1000;
const started = Date.now();
let last = 'no answer yet';
let told = started;
while (Date.now() - started < timeoutMs) {
  if (Date.now() - told >= 30_000) {
    told = Date.now();
    process.stderr.write(`still waiting for ${readyz} (${last}) after ${Math.round((told - started) / 1000)} s\n`);
  }
  try {
    const response = await fetch(readyz, { signal: AbortSignal.timeout(5000) });
    if (response.ok) {
      process.stdout.write(`ready after ${((Date.now() - started) / 1000).toFixed(1)} s: ${readyz}\n`);
      process.exit(0);
    }
    last = `${response.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    last = cause?.code ?? cause?.message ?? (err as Error).message;
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
}
process.stderr.write(`not ready after ${values.timeout} s: ${readyz} (last: ${last})\n`);
process.exit(1);
