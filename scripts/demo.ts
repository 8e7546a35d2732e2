// The end-to-end demo: `npm run demo` (add `-- --exit` to stop at the end).
// Starts the service with its embedded database, a referring EHR (the peer FHIR server from the
// tests; with DEMO_PEER=hapi, a HAPI FHIR JPA server instead) seeded with synthetic patients whose
// records tell a clinical story, and then drives the whole loop over HTTP, printing each step with
// the URLs to look at.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Bundle, DiagnosticReport, Resource, Task } from '@medplum/fhirtypes';
import { mintAccessToken, newSigningKeyPem } from '../src/auth/access-tokens.js';
import { loadConfig } from '../src/config.js';
import { canonicalBase } from '../src/conformance/artifacts.js';
import { freePort } from '../src/database/local-server.js';
import { createLogger } from '../src/logger.js';
import { startServer } from '../src/server.js';
import { hapiEnv, hapiReady, launchHapi } from './peer/hapi-fhir.js';
import { startReferringEhr } from './peer/referring-ehr.js';
import { fhirServerSink, seedStories, type ChartSink, type Story } from './peer/stories.js';

const exitAtEnd = process.argv.includes('--exit');
const canonical = canonicalBase();
const started = Date.now();
const say = (text: string): void => void process.stdout.write(`${text}\n`);
const step = (n: number, text: string): void => say(`\n[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${n}. ${text}`);
const look = (label: string, url: string): void => say(`        ${label.padEnd(22)} ${url}`);

// The embedded database starts empty on every demo run, in its own folder.
const dataDir = path.resolve(process.env.DATA_DIR ?? '.data/demo');
if (!process.env.MONGODB_URI) rmSync(dataDir, { recursive: true, force: true });
const port = Number(process.env.PORT ?? 8080);
// The demo's access-token key: AUTH_SIGNING_KEY if set, else one made now and kept beside the demo's
// database, so that `npm run token` can mint tokens this run accepts.
const keyFile = path.join(dataDir, 'auth-signing-key.pem');
const authSigningKey = process.env.AUTH_SIGNING_KEY || (await newSigningKeyPem());
if (!process.env.AUTH_SIGNING_KEY) {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(keyFile, authSigningKey, { mode: 0o600 });
}
const config = loadConfig({
  ...process.env,
  PORT: String(port),
  HOST: process.env.HOST ?? '127.0.0.1',
  DATA_DIR: dataDir,
  DATABASE_NAME: process.env.MONGODB_URI ? `second-opinion-demo-${Date.now()}` : 'second-opinion-demo',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
  RETRIEVAL_POLL_MS: '200',
  DELIVERY_POLL_MS: '200',
  AUTH_SIGNING_KEY: authSigningKey,
});
const log = createLogger(config.logLevel);

step(1, 'Starting the referring EHR, the database and the second-opinion service');
const ehr = await startPeer(process.env.DEMO_PEER ?? 'builtin');
const stories = await seedStories(ehr.repo);
const server = await startServer(config, log);
const fhir = `${config.baseUrl}/fhir`;
look('referring EHR (FHIR)', ehr.base);
look('service (FHIR)', fhir);
look('CapabilityStatement', `${fhir}/metadata`);
// The demo acts as an administrator with every scope; its token lasts the whole run.
const token = await mintAccessToken(config, { subject: 'demo', role: 'admin', scope: 'system/*.*' }, 24 * 3600);

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await server.close();
    await ehr.stop();
  }
  process.exit(code);
}
/**
 * The referring EHR: the built-in one, or HAPI FHIR (DEMO_PEER=hapi: the one at HAPI_FHIR_BASE if
 * set, else one started now from scripts/peer/hapi, which must have been built with Maven).
 */
async function startPeer(kind: string): Promise<{ base: string; repo: ChartSink; stop(): Promise<void> }> {
  const port = Number(process.env.DEMO_EHR_PORT ?? (await freePort()));
  if (kind === 'builtin') return startReferringEhr({ port });
  if (kind !== 'hapi') throw new Error(`DEMO_PEER must be builtin or hapi, not ${kind}`);
  const running = process.env[hapiEnv.base];
  const hapi = running ? undefined : launchHapi(port);
  const base = hapi ? hapi.base : String(running);
  say(`        waiting for HAPI FHIR at ${base} (it takes a minute or two to start)`);
  await hapiReady(base, { pid: hapi?.child.pid, log: hapi?.log, timeoutMs: 8 * 60_000 });
  return { base, repo: fhirServerSink(base), stop: async () => hapi?.stop() };
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

/** A FHIR call; `actor` (a reference) says who acts, in FHIR's X-Provenance header, for the Task's history. */
async function call<T = any>(method: string, url: string, body?: unknown, actor?: string): Promise<T> {
  const provenance: Record<string, string> = actor
    ? { 'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: actor } }] }) }
    : {};
  const response = await fetch(url.startsWith('http') ? url : `${fhir}${url}`, {
    method,
    headers: { accept: 'application/fhir+json', authorization: `Bearer ${token}`, ...provenance, ...(body ? { 'content-type': 'application/fhir+json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = (await response.json()) as T;
  if (!response.ok) {
    throw new Error(`${method} ${url} answered ${response.status}: ${JSON.stringify(json).slice(0, 400)}`);
  }
  return json;
}

/** A person's workbench account; the password is DEMO_..._PASSWORD's, or one the service makes and answers once. */
async function account(
  username: string,
  role: string,
  fhirUser: string,
  name: string,
  password?: string,
): Promise<{ username: string; role: string; password: string }> {
  const response = await fetch(`${config.baseUrl}/auth/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ username, role, fhirUser, name, ...(password ? { password } : {}) }),
  });
  const made = (await response.json()) as { password: string; error_description?: string };
  if (!response.ok) throw new Error(`the ${role}'s account was refused: ${made.error_description ?? response.status}`);
  return { username, role, password: made.password };
}

async function taskWhen(id: string, ready: (task: Task) => boolean, what: string): Promise<Task> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
    const task = await call<Task>('GET', `/Task/${id}`);
    if (ready(task)) return task;
    if (task.status === 'failed') throw new Error(`the case failed: ${task.statusReason?.text ?? ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}
const code = (task: Task): string | undefined => task.businessStatus?.coding?.[0]?.code;

try {
  step(2, 'Registering the referring hospital: an Organization with the Endpoint of its FHIR server');
  const organization = await call<Resource>('POST', '/Organization', { resourceType: 'Organization', name: 'Example General Hospital (synthetic)' });
  const endpoint = await call<Resource>('POST', '/Endpoint', {
    resourceType: 'Endpoint',
    status: 'active',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
    payloadType: [{ text: 'FHIR R4' }],
    address: ehr.base,
    managingOrganization: { reference: `Organization/${organization.id}` },
    extension: [{ url: `${canonical}/StructureDefinition/endpoint-auth`, extension: [{ url: 'mode', valueCode: 'none' }] }],
  });
  look('institution', `${fhir}/Organization/${organization.id}`);
  look('its FHIR endpoint', `${fhir}/Endpoint/${endpoint.id}`);

  step(3, 'Registering reviewers at a second-opinion centre: a pathologist and a cardiologist, with their capacity');
  const centre = await call<Resource>('POST', '/Organization', { resourceType: 'Organization', name: 'Second Opinion Centre (synthetic)' });
  const reviewers: Record<string, { practitioner: string; role: string; name: string }> = {};
  for (const [key, name, specialty, display] of [
    ['394597005', 'Dr Ada Pathologist', '394597005', 'Histopathology'],
    ['394579002', 'Dr Ben Cardiologist', '394579002', 'Cardiology'],
  ]) {
    const practitioner = await call<Resource>('POST', '/Practitioner', {
      resourceType: 'Practitioner',
      name: [{ text: name }],
      communication: [{ coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] }],
      qualification: [{ code: { text: 'Licence to practise medicine' }, issuer: { display: 'Medical Council (synthetic)' } }],
    });
    const role = await call<Resource>('POST', '/PractitionerRole', {
      resourceType: 'PractitionerRole',
      active: true,
      practitioner: { reference: `Practitioner/${practitioner.id}` },
      organization: { reference: `Organization/${centre.id}` },
      specialty: [{ coding: [{ system: 'http://snomed.info/sct', code: specialty, display }] }],
      extension: [{ url: `${canonical}/StructureDefinition/reviewer-capacity`, valueUnsignedInt: 5 }],
    });
    reviewers[key] = { practitioner: practitioner.id as string, role: role.id as string, name };
    look(display.toLowerCase(), `${fhir}/PractitionerRole/${role.id}`);
  }
  // People sign in to the workbench with accounts: the pathologist's, and a coordinator's.
  const coordinator = await call<Resource>('POST', '/Practitioner', { resourceType: 'Practitioner', name: [{ text: 'Cora Coordinator' }] });
  const signIns = [
    await account('pathologist', 'reviewer', `PractitionerRole/${reviewers['394597005'].role}`, 'Dr Ada Pathologist', process.env.DEMO_REVIEWER_PASSWORD),
    await account('coordinator', 'coordinator', `Practitioner/${coordinator.id}`, 'Cora Coordinator', process.env.DEMO_COORDINATOR_PASSWORD),
  ];

  const cases: { story: Story; requestId: string }[] = [];
  for (const [i, story] of stories.entries()) {
    const onEhr = await ehr.repo.createResource(story.order);
    if (i === 0) {
      step(4, `Case "${story.title}": the EHR asks by $submit, naming its own order`);
      const task = await call<Task>('POST', '/ServiceRequest/$submit', {
        resourceType: 'Parameters',
        parameter: [
          { name: 'institution', valueReference: { reference: `Organization/${organization.id}` } },
          { name: 'serviceRequestId', valueString: onEhr.id },
        ],
      });
      cases.push({ story, requestId: task.focus?.reference?.split('/')[1] as string });
    } else {
      step(5, `Case "${story.title}": the EHR pushes the request, naming the patient on its server`);
      const { id: _id, meta: _meta, ...order } = story.order;
      const created = await call<Resource>('POST', '/ServiceRequest', {
        ...order,
        subject: { reference: `${ehr.base}/Patient/${story.patientId}` },
        supportingInfo: story.order.supportingInfo?.map((r) => ({ reference: `${ehr.base}/${r.reference}` })),
      });
      cases.push({ story, requestId: created.id as string });
    }
    look('order on the EHR', `${ehr.base}/ServiceRequest/${onEhr.id}`);
    look('request here', `${fhir}/ServiceRequest/${cases[i].requestId}`);
    look('its Task', `${fhir}/Task/${cases[i].requestId}`);
  }

  step(6, "Retrieving each patient's chart from the EHR (durable jobs, paged, with attachments), then routing each case");
  for (const { story, requestId } of cases) {
    const routed = await taskWhen(requestId, (t) => code(t) === 'assigned' || code(t) === 'awaiting-assignment', 'the records and routing');
    const packet = await call<Bundle>('GET', `/ServiceRequest/${requestId}/$case-packet`);
    const summary = (packet.entry?.at(-1)?.resource as { issue?: { details?: { text?: string } }[] }).issue ?? [];
    // The packet's last entry is its summary; the others are the records.
    say(`        ${story.title}: ${(packet.entry?.length ?? 1) - 1} records; ${summary.at(-1)?.details?.text ?? ''}`);
    look('case packet', `${fhir}/ServiceRequest/${requestId}/$case-packet`);
    const owner = Object.values(reviewers).find((r) => routed.owner?.reference === `PractitionerRole/${r.role}`);
    say(`        routed by specialty to ${owner?.name ?? 'nobody: the case waits in the queue'}; due ${routed.restriction?.period?.end ?? '-'}`);
  }

  step(7, 'Each reviewer accepts the case, starts, and asks the referrer a question; the referrer answers');
  for (const { story, requestId } of cases) {
    const task = await call<Task>('GET', `/Task/${requestId}`);
    const reviewer = Object.values(reviewers).find((r) => task.owner?.reference === `PractitionerRole/${r.role}`);
    if (!reviewer) throw new Error(`"${story.title}" was not assigned`);
    const as = `PractitionerRole/${reviewer.role}`;
    const accepted = await call<Task>('PUT', `/Task/${requestId}`, { ...task, status: 'accepted' }, as);
    await call<Task>('PUT', `/Task/${requestId}`, { ...accepted, status: 'in-progress' }, as);
    // The request's own references are the EHR's; the case's patient here is the Task's.
    const request = await call<Resource & { requester?: { reference?: string } }>('GET', `/ServiceRequest/${requestId}`);
    const question = await call<Resource>(
      'POST',
      '/CommunicationRequest',
      {
        resourceType: 'CommunicationRequest',
        status: 'active',
        subject: task.for,
        basedOn: [{ reference: `ServiceRequest/${requestId}` }],
        about: [{ reference: `Task/${requestId}` }],
        requester: { reference: as },
        ...(request.requester ? { recipient: [request.requester] } : {}),
        payload: [{ contentString: story.answer.question }],
        authoredOn: new Date().toISOString(),
      },
      as,
    );
    const onHold = await call<Task>('GET', `/Task/${requestId}`);
    say(`        ${reviewer.name} asks: "${story.answer.question}" -> Task ${onHold.status}, ${code(onHold)}`);
    await call('POST', '/Communication', {
      resourceType: 'Communication',
      status: 'completed',
      subject: task.for,
      basedOn: [{ reference: `CommunicationRequest/${question.id}` }],
      ...(request.requester ? { sender: request.requester } : {}),
      recipient: [{ reference: as }],
      sent: new Date().toISOString(),
      payload: [{ contentString: story.answer.reply }],
    });
    const resumed = await call<Task>('GET', `/Task/${requestId}`);
    say(`        the referrer answers: "${story.answer.reply}" -> Task ${resumed.status}, ${code(resumed)}`);
    look('the thread', `${fhir}/Communication?based-on=ServiceRequest/${requestId}&_sort=sent`);
    look("the Task's history", `${fhir}/Task/${requestId}/_history`);
  }

  step(8, 'The reviewers write their opinions: a draft, then the final, signed opinion');
  for (const { story, requestId } of cases) {
    const task = await call<Task>('GET', `/Task/${requestId}`);
    const assigned = Object.values(reviewers).find((r) => task.owner?.reference === `PractitionerRole/${r.role}`);
    const reviewer = { id: assigned?.practitioner, name: assigned?.name ?? 'Reviewer' };
    const opinion: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      meta: { profile: [`${canonical}/StructureDefinition/second-opinion-report`] },
      status: 'preliminary',
      category: [{ coding: [{ system: `${canonical}/CodeSystem/second-opinion-category`, code: 'second-opinion', display: 'Second opinion' }] }],
      code: { text: 'Second opinion' },
      subject: task.for as DiagnosticReport['subject'],
      basedOn: [{ reference: `ServiceRequest/${requestId}` }],
      performer: [{ reference: `Practitioner/${reviewer.id}`, display: reviewer.name }],
      conclusion: `Draft: ${story.answer.conclusion}`,
    };
    const draft = await call<DiagnosticReport>('POST', '/DiagnosticReport', opinion, `Practitioner/${reviewer.id}`);
    const final = await call<DiagnosticReport>('PUT', `/DiagnosticReport/${draft.id}`, {
      ...opinion,
      id: draft.id,
      status: 'final',
      conclusion: story.answer.conclusion,
      extension: [
        {
          url: `${canonical}/StructureDefinition/concordance`,
          valueCodeableConcept: { coding: [{ system: `${canonical}/CodeSystem/concordance`, code: story.answer.concordance }] },
        },
        ...story.answer.recommendations.map((valueString) => ({ url: `${canonical}/StructureDefinition/recommendation`, valueString })),
      ],
    });
    say(`        ${story.title}: ${story.answer.concordance}`);
    look('opinion', `${fhir}/DiagnosticReport/${final.id}`);
    look('its earlier version', `${fhir}/DiagnosticReport/${final.id}/_history/1`);
    look('check the signature', `${fhir}/DiagnosticReport/${final.id}/$verify`);
  }
  look('signing keys (JWKS)', `${config.baseUrl}/.well-known/jwks.json`);

  step(9, "Writing each opinion back into the patient's chart at the EHR, exactly once");
  for (const { story, requestId } of cases) {
    const task = await taskWhen(requestId, (t) => code(t) === 'opinion-delivered' || code(t) === 'delivery-failed', 'the delivery');
    say(`        ${story.title}: Task ${task.status}, ${code(task)}; ${task.note?.at(-1)?.text ?? ''}`);
    look("in the EHR's chart", `${ehr.base}/DiagnosticReport?patient=Patient/${story.patientId}`);
  }

  say(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  say('\nThe reviewers\' workbench (sign in as a person; the cases above are under "Finished cases"):');
  look('workbench', `${config.baseUrl}/workbench/`);
  for (const { username, role, password } of signIns) say(`        ${role.padEnd(22)} user name ${username}, password ${password}`);
  if (exitAtEnd) await stop(0);
  say('Everything is still running: open the URLs above with an access token. Ctrl-C stops it.');
  const shownKeyFile = path.relative(process.cwd(), keyFile).startsWith('..') ? keyFile : path.relative(process.cwd(), keyFile);
  const key = process.env.AUTH_SIGNING_KEY ? '$AUTH_SIGNING_KEY' : `"$(cat ${shownKeyFile})"`;
  say(`        TOKEN=$(AUTH_SIGNING_KEY=${key} BASE_URL=${config.baseUrl} npm run -s token -- --role admin --scope 'system/*.*')`);
  say(`        curl -H "Authorization: Bearer $TOKEN" ${fhir}/Task`);
} catch (err) {
  say(`\nThe demo stopped: ${(err as Error).message}`);
  await stop(1);
}
