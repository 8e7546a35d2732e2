// A fault-injecting HTTP proxy in front of the referring EHR: added latency, 429 and 503 answers
// with Retry-After, and dropped connections, as a schedule the test sets. Listens on 127.0.0.1 only.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';

/** An answer instead of the EHR's; a connection dropped before forwarding; or one dropped after the EHR did the work (the answer lost). */
export type Fault = { status: number; retryAfter?: string } | { drop: true } | { dropAnswer: true };

export interface FaultProxy {
  /** The proxied FHIR base URL. */
  base: string;
  latencyMs: number;
  /** Added after the EHR has answered, before the answer is passed on (the work is done, the caller still waits). */
  answerLatencyMs: number;
  /** Faults answered instead of forwarding, one per request, in order, until the list is empty. */
  faults: Fault[];
  /** Every fault answer makes the next `every` requests forward normally before the next fault. */
  every: number;
  injected: number;
  forwarded: number;
  /** When set, the records passed on are counted into `resourcesAnswered` (each Bundle entry, or one for a resource). */
  countResources: boolean;
  resourcesAnswered: number;
  /** Answers that could not be read to count them. */
  unreadAnswers: number;
  stop(): Promise<void>;
}

export async function startFaultProxy(targetBase: string): Promise<FaultProxy> {
  const target = new URL(targetBase);
  let sinceFault = Infinity;
  const proxy: FaultProxy = {
    base: '',
    latencyMs: 0,
    answerLatencyMs: 0,
    faults: [],
    every: 0,
    injected: 0,
    forwarded: 0,
    countResources: false,
    resourcesAnswered: 0,
    unreadAnswers: 0,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server = http.createServer(
    (req: IncomingMessage, res: ServerResponse) =>
      void (async () => {
        if (proxy.latencyMs) await new Promise((r) => setTimeout(r, proxy.latencyMs));
        if (proxy.faults.length && sinceFault >= proxy.every && !('dropAnswer' in proxy.faults[0])) {
          const fault = proxy.faults.shift() as Exclude<Fault, { dropAnswer: true }>;
          sinceFault = 0;
          proxy.injected++;
          if ('drop' in fault) {
            req.socket.destroy();
            return;
          }
          res.writeHead(fault.status, { 'content-type': 'application/fhir+json', ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) });
          res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', details: { text: 'injected fault' } }] }));
          return;
        }
        let loseAnswer = false;
        if (proxy.faults.length && sinceFault >= proxy.every && 'dropAnswer' in proxy.faults[0]) {
          proxy.faults.shift();
          sinceFault = 0;
          proxy.injected++;
          loseAnswer = true;
        } else {
          sinceFault++;
        }
        proxy.forwarded++;
        // The Host header stays the proxy's, so the paging links the EHR writes lead back through the proxy.
        const upstream = http.request(
          { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
          (answer) =>
            void (async () => {
              if (proxy.answerLatencyMs) await new Promise((r) => setTimeout(r, proxy.answerLatencyMs));
              if (loseAnswer) {
                answer.resume();
                answer.once('end', () => req.socket.destroy());
                return;
              }
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              if (proxy.countResources && String(answer.headers['content-type']).includes('json')) {
                const chunks: Buffer[] = [];
                answer.on('data', (chunk: Buffer) => chunks.push(chunk));
                answer.once('end', () => {
                  try {
                    const encoded = Buffer.concat(chunks);
                    const encoding = answer.headers['content-encoding'];
                    const text = (encoding === 'gzip' ? gunzipSync(encoded) : encoding === 'br' ? brotliDecompressSync(encoded) : encoded).toString('utf8');
                    const body = JSON.parse(text || '{}') as { resourceType?: string; entry?: unknown[] };
                    proxy.resourcesAnswered += body.resourceType === 'Bundle' ? (body.entry?.length ?? 0) : body.resourceType ? 1 : 0;
                  } catch {
                    proxy.unreadAnswers++; // counted apart, so that a test sees it never missed a record silently
                  }
                });
              }
              answer.pipe(res);
            })(),
        );
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      })(),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${target.pathname}`;
  return proxy;
}
