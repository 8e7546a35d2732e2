// Calls to another institution's server end on time: one that gets no answer is abandoned after
// OUTBOUND_CALL_TIMEOUT_MS and tried again, and a stop ends the call in flight at once, with no retry.
// However many calls a worker makes, its stop signal keeps no listener of theirs once they have ended.
import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ReferringEhrClient, ReferringEhrError, type RetryPolicy } from '../src/outbound/referring-ehr-client.js';

const retry: RetryPolicy = { attempts: 2, baseDelayMs: 10, maxDelayMs: 20, callTimeoutMs: 300 };
/** Answers a Patient to every call, except under /silent/, where it takes the connection and never answers. */
let server: Server;
let base: string;
const held: Socket[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith('/silent/')) {
      held.push(req.socket);
      return;
    }
    res.setHeader('content-type', 'application/fhir+json');
    res.end(JSON.stringify({ resourceType: 'Patient', id: 'p1' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const socket of held) socket.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('a call to a referring server', () => {
  it('leaves no listener on the stop signal once it has ended, over many calls', async () => {
    const stop = new AbortController();
    const client = new ReferringEhrClient(`${base}/fhir`, { retry, signal: stop.signal });
    for (let i = 0; i < 300; i++) expect((await client.read('Patient', 'p1')).id).toBe('p1');
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('that gets no answer is abandoned after the call time limit and tried again, then fails naming it', async () => {
    const before = held.length;
    const started = Date.now();
    const client = new ReferringEhrClient(`${base}/silent/fhir`, { retry });
    const failure = await client.read('Patient', 'p1').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ReferringEhrError);
    expect((failure as Error).message).toBe(`read Patient at ${base}/silent/fhir: no answer after 2 attempts`);
    expect(held.length - before).toBe(2);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('ends at once when the work stops, without another try', async () => {
    const before = held.length;
    const stop = new AbortController();
    const client = new ReferringEhrClient(`${base}/silent/fhir`, { retry: { ...retry, callTimeoutMs: 60_000 }, signal: stop.signal });
    const call = client.read('Patient', 'p1').catch((err: unknown) => err);
    for (const deadline = Date.now() + 5000; held.length === before && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10));
    const stopped = Date.now();
    stop.abort();
    const failure = await call;
    expect(Date.now() - stopped).toBeLessThan(1000);
    expect((failure as Error).name).toBe('AbortError');
    expect(failure).not.toBeInstanceOf(ReferringEhrError);
    expect(held.length - before).toBe(1);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    // Stopped, it makes no further call.
    await expect(client.read('Patient', 'p1')).rejects.toMatchObject({ name: 'AbortError' });
    expect(held.length - before).toBe(1);
  });
});
