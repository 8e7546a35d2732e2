// `npm run wait-ready`: waits until the service answers /readyz (its database is reachable), for
// scripts that start it in the background; `-- --url URL` waits for any URL to answer 2xx instead.
// Exits 1 after --timeout seconds (default 180).
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';

const { values } = parseArgs({ options: { url: { type: 'string' }, timeout: { type: 'string', default: '180' } } });
const readyz = values.url ?? `${loadConfig().baseUrl}/readyz`;
const timeoutMs = Number(values.timeout) * 1000;
const started = Date.now();
let last = 'no answer yet';
while (Date.now() - started < timeoutMs) {
  try {
    const response = await fetch(readyz, { signal: AbortSignal.timeout(5000) });
    if (response.ok) {
      process.stdout.write(`ready after ${((Date.now() - started) / 1000).toFixed(1)} s: ${readyz}\n`);
      process.exit(0);
    }
    last = `${response.status}`;
  } catch (err) {
    last = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
}
process.stderr.write(`not ready after ${values.timeout} s: ${readyz} (last: ${last})\n`);
process.exit(1);
