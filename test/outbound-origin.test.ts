// The outbound rule: the service calls only the base URL of the case's registered, active Endpoint.
// An institution's server that hands back a URL elsewhere (a paging `next` link, an attachment, a
// redirect) does not make the service go there: a server on another origin, counting every request
// it gets, must see none, and the case shows why it stopped (without the patient in the reason).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestService, type TestService } from './harness.js';
import { businessStatus, registerInstitution, secondOpinionRequest, taskWhen } from './review-cases.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

interface Listening {
  base: string;
  server: Server;
  requests: number;
}

/** An HTTP server on 127.0.0.1 that answers `answer` and counts what it gets. */
async function listen(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>): Promise<Listening> {
  const listening: Listening = { base: '', server: http.createServer(), requests: 0 };
  listening.server.on('request', (req, res) => {
    listening.requests++;
    void answer(req, res);
  });
  await new Promise<void>((resolve) => listening.server.listen(0, '127.0.0.1', () => resolve()));
  listening.base = `http://127.0.0.1:${(listening.server.address() as AddressInfo).port}`;
  return listening;
}

const close = (l: Listening | undefined) => new Promise<void>((resolve) => (l ? (l.server.closeAllConnections(), l.server.close(() => resolve())) : resolve()));

/**
 * An institution's FHIR server in front of the real one (`ehr`), as a gateway: its `next` links lead
 * back through it, or to `nextOrigin`; every read of a Patient is redirected to `redirectTo(own origin)`.
 */
async function gateway(ehr: ReferringEhr, options: { nextOrigin?: string; redirectTo?: (own: string) => string } = {}): Promise<Listening> {
  const front: Listening = await listen(async (req, res) => {
    const path = (req.url ?? '').replace(/^\/fhir/, '');
    if (options.redirectTo && req.method === 'GET' && /^\/Patient\/[^/?]+$/.test(path)) {
      res.writeHead(302, { location: `${options.redirectTo(front.base)}/fhir${path}?_moved=1` }).end();
      return;
    }
    const upstream = await fetch(`${ehr.base}${path.replace(/\?_moved=1$/, '')}`, { method: req.method, headers: { accept: 'application/fhir+json' } });
    const body = JSON.parse(await upstream.text());
    for (const link of body.link ?? []) if (link.relation === 'next') link.url = link.url.replace(/^https?:\/\/[^/]+/, options.nextOrigin ?? front.base);
    res.writeHead(upstream.status, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(body));
  });
  return front;
}

let service: TestService;
let ehr: ReferringEhr;
let stranger: Listening;
let patientId: string;
const fronts: Listening[] = [];

beforeAll(async () => {
  ehr = await startReferringEhr();
  patientId = await seedPatient(ehr.repo, 8);
  stranger = await listen(
    (_req, res) => void res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Bundle","type":"searchset"}'),
  );
  // Pages of 5: every search of the chart's 8 records of a kind has a `next` link.
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', RETRIEVAL_PAGE_SIZE: '5', OUTBOUND_RETRY_BASE_MS: '10', POLL_INTERVAL_MS: '0' });
});
afterAll(async () => {
  await service?.stop();
  await Promise.all([...fronts, stranger].map(close));
  await ehr?.stop();
});

/** Registers `front` as an institution's Endpoint, pushes a request for the patient there, and answers its Task once retrieval has ended. */
async function caseAt(front: Listening, orderId: string): Promise<any> {
  fronts.push(front);
  await registerInstitution(service, `Hospital ${orderId}`, `${front.base}/fhir`);
  const created = await service.fhir('/ServiceRequest', { body: secondOpinionRequest(orderId, `${front.base}/fhir`, patientId) });
  expect(created.status).toBe(201);
  return taskWhen(
    service,
    created.body.id,
    (t) => t.status === 'failed' || ['assigned', 'awaiting-assignment', 'records-ready'].includes(businessStatus(t) ?? ''),
  );
}

describe('outbound calls stay on the registered Endpoint', () => {
  it('a paging `next` link to another origin is not followed: the case fails, saying where it led', async () => {
    const task = await caseAt(await gateway(ehr, { nextOrigin: stranger.base }), 'NEXT-1');
    expect(task.status).toBe('failed');
    expect(task.statusReason.text).toContain(`a call to ${stranger.base} refused`);
    expect(task.statusReason.text).not.toContain(patientId);
    expect(stranger.requests).toBe(0);
    const notices = (await service.fhir(`/Communication?part-of=Task/${task.id}`)).body.entry ?? [];
    expect(notices.map((e: any) => e.resource.payload[0].contentString)).toEqual([task.statusReason.text]);
  });

  it('a redirect to another origin is not followed: the case fails before anything is asked of it', async () => {
    const task = await caseAt(await gateway(ehr, { redirectTo: () => stranger.base }), 'REDIRECT-1');
    expect(task.status).toBe('failed');
    expect(task.statusReason.text).toContain(`a redirect of read Patient to ${stranger.base} refused`);
    expect(stranger.requests).toBe(0);
  });

  it('a redirect within the Endpoint is followed', async () => {
    // The server moved its Patient reads under the same base (as a load balancer might): still the institution's.
    const front = await gateway(ehr, { redirectTo: (own) => own });
    const task = await caseAt(front, 'REDIRECT-2');
    expect(task.status).not.toBe('failed');
  });

  it('an attachment on another origin is not fetched: the record keeps its link, marked skipped, and the rest of the chart comes in', async () => {
    const front = await gateway(ehr);
    await ehr.repo.createResource({
      resourceType: 'DocumentReference',
      status: 'current',
      subject: { reference: `Patient/${patientId}` },
      content: [{ attachment: { contentType: 'application/pdf', url: `${stranger.base}/fhir/Binary/letter` } }],
    });
    const task = await caseAt(front, 'ATTACHMENT-1');
    expect(task.status).not.toBe('failed');
    const packet = await service.fhir(`/ServiceRequest/${task.focus.reference.split('/')[1]}/$case-packet`);
    expect(packet.body.entry.at(-1).resource.issue.at(-1).details.text).toMatch(/^Attachments: 0 stored, 1 skipped/);
    const linked = packet.body.entry.map((e: any) => e.resource).filter((r: any) => r.resourceType === 'DocumentReference' && r.content?.[0]?.attachment?.url);
    expect(linked.map((r: any) => r.content[0].attachment.url)).toEqual([`${stranger.base}/fhir/Binary/letter`]);
    expect(stranger.requests).toBe(0);
  });
});
