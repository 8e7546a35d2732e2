// The README's main command: the demo runs the whole loop and exits 0 with --exit, against the built-in
// referring EHR and (DEMO_PEER=hapi) against the run's HAPI FHIR server.
import { spawn } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { runHapi } from '../scripts/peer/hapi-fhir.js';
import { freePort } from '../src/database/local-server.js';

async function demo(env: Record<string, string>): Promise<{ port: number; output: string; code: unknown }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/scripts/demo.js', '--exit'], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  return { port, output, code };
}

describe('npm run demo', () => {
  it('drives a request from each EHR path to an opinion in the chart, printing the steps', async () => {
    const { port, output, code } = await demo({});
    expect(output).toMatch(/routed by specialty to Dr Ada Pathologist/);
    expect(output).toMatch(/-> Task on-hold, awaiting-information/);
    expect(output).toMatch(/9\. Writing each opinion back/);
    expect(output.match(/: Task completed, opinion-delivered;/g)).toHaveLength(2);
    expect(output).toContain(`http://localhost:${port}/fhir/metadata`);
    // The workbench and a reviewer's sign-in, with a password made for this run.
    expect(output).toContain(`workbench              http://localhost:${port}/workbench/`);
    expect(output).toMatch(/reviewer {15}user name pathologist, password [A-Za-z0-9_-]{24}\n/);
    expect(code).toBe(0);
  }, 120_000);

  it('runs the same loop against HAPI FHIR with DEMO_PEER=hapi', async () => {
    const hapi = await runHapi();
    const { output, code } = await demo({ DEMO_PEER: 'hapi', HAPI_FHIR_BASE: hapi });
    expect(output).toContain(`referring EHR (FHIR)   ${hapi}`);
    expect(output).toMatch(/routed by specialty to Dr Ada Pathologist/);
    expect(output.match(/: Task completed, opinion-delivered;/g)).toHaveLength(2);
    expect(code).toBe(0);
  }, 600_000);
});
