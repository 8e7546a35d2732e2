// Retrieval: pulls the patient's chart from the referring institution's FHIR server into the store.
// Searches per record type by patient, following every `next` link, a few types at a time; records
// progress per type so a restarted job resumes where it stopped; a re-pull never duplicates a record.
import { profileMeta } from '../conformance/artifacts.js';
import { Gate } from '../access/gate.js';
import { caseOwner } from '../access/ownership.js';
import { createHash } from 'node:crypto';
import type { Bundle, CapabilityStatement, Communication, Resource, Task } from '@medplum/fhirtypes';
import { businessStatusOf, canMove } from '../case/business-status.js';
import { moveCase } from '../case/move.js';
import type { FhirService } from '../fhir/interactions.js';
import { FhirError, unprocessable } from '../base/outcome.js';
import { provenanceOfWrite } from '../fhir/provenance.js';
import { clinicalResourceTypes, isStoredResourceType } from '../base/resource-types.js';
import { supportedParameters } from '../store/search/parameters.js';
import { OutboundRefused, ReferringEhrClient, ReferringEhrError, type Credentials, type RetryPolicy } from '../outbound/referring-ehr-client.js';
import type { CursorStore } from '../store/cursors.js';
import { isDuplicateKey } from '../store/repository.js';
import { isWrittenBack } from '../writeback/written-back.js';
import { attachmentsOf, retrieveAttachments, type AttachmentPolicy } from './attachments.js';
import { importRecords, notYetStored } from './source-records.js';

export const retrievalJobKind = 'retrieve-chart';

export interface RetrievalPayload {
  ehrBase: string;
  /** The patient's id on the referring server. */
  patientId: string;
  serviceRequestId: string;
  taskId: string;
  /** What the request itself points at on the referring server (reasonReference, supportingInfo). */
  references: string[];
}

export interface RetrievalProgress {
  /** Record types searched to the end (or `$everything`, when the server offers it and it was read to the end). */
  doneTypes: string[];
  stored: number;
  unchanged: number;
  /** Local `Type/id` of every record this retrieval has kept, across restarts: the Provenance's targets. */
  targets: string[];
  attachmentsStored: number;
  attachmentsSkipped: number;
}

const everythingStep = 'Patient/$everything';

/** The record types searched by patient; DiagnosticReport is a clinical record here too. */
export const chartTypes = [...clinicalResourceTypes.filter((t) => t !== 'Patient'), 'DiagnosticReport'];

/** The parameter a chart type's records of a patient are searched by: `subject` where it has one (its `patient` is the subject that is a Patient), else `patient`. */
export const patientParameter = (type: string): string => (supportedParameters(type).has('subject') ? 'subject' : 'patient');

export interface RetrievalOptions {
  pageSize: number;
  concurrency: number;
  retry?: RetryPolicy;
  /** How to authenticate to the referring server, where its institution is registered. */
  credentialsFor?: (ehrBase: string) => Promise<Credentials | undefined>;
  /** The institution (`Organization/x`) with a registered, active Endpoint at `ehrBase`, if any. */
  institutionAt: (ehrBase: string) => Promise<string | undefined>;
  attachments?: AttachmentPolicy;
  /** Hears the origin of each call the outbound rule refused. */
  onOutboundRefused?: (origin: string) => void;
  /** Ends the retrieval's calls and waits at once: the process is stopping. */
  signal?: AbortSignal;
  /** How far before the last pull's start a re-pull asks from, for clock skew between servers. */
  sinceMarginMs: number;
}

export async function retrieveChart(
  service: FhirService,
  cursors: CursorStore,
  payload: RetrievalPayload,
  progress: RetrievalProgress,
  saveProgress: (progress: RetrievalProgress) => Promise<void>,
  options: RetrievalOptions,
): Promise<void> {
  // The chart is fetched only from a registered, active Endpoint of the case's own institution, and
  // every record fetched is that institution's, whatever it says of itself.
  const owner = await caseOwner(service.repository, payload.serviceRequestId);
  if (!owner || (await options.institutionAt(payload.ehrBase)) !== owner) {
    await failCase(
      service,
      payload,
      'endpoint-not-registered',
      "Retrieval refused: the case's institution has no registered, active Endpoint at the address of the patient's server",
    );
    return;
  }
  const client = new ReferringEhrClient(payload.ehrBase, {
    retry: options.retry,
    credentials: await options.credentialsFor?.(payload.ehrBase),
    onRefused: options.onOutboundRefused,
    signal: options.signal,
  });
  const targets = new Set(progress.targets);
  const keep = async (type: string, pulled: Resource[]): Promise<void> => {
    // What this service wrote into the chart there (an earlier case's opinion, its notice) is not pulled
    // back as a record of the institution's: its original is here, and a second copy would carry the
    // same identifiers (a conditional create on them would then match twice).
    const records = pulled.filter((record) => !isWrittenBack(record, service.conformance.canonical));
    if (options.attachments && records.some((r) => attachmentsOf(r).some((a) => a.url && !a.data))) {
      // Attachments of records already here at this version were dealt with when they came.
      const counts = await retrieveAttachments(client, await notYetStored(service.repository, payload.ehrBase, type, records), options.attachments, owner);
      progress.attachmentsStored += counts.stored;
      progress.attachmentsSkipped += counts.skipped;
    }
    const counts = await importRecords(service.repository, payload.ehrBase, type, records, owner, (record) => service.validator.structure.validate(record));
    progress.stored += counts.stored;
    progress.unchanged += counts.unchanged;
    for (const key of counts.keys) targets.add(key);
  };
  const finish = async (step: string): Promise<void> => {
    progress.doneTypes.push(step);
    progress.targets = [...targets];
    await saveProgress(progress);
  };
  try {
    await keep('Patient', [await client.read('Patient', payload.patientId)]);
    for (const reference of payload.references) {
      const [type, id] = reference.split('/');
      await keep(type, [await client.read(type, id)]);
    }
    // $everything where the server offers it; a re-pull from a server known to answer it with the whole chart goes per type.
    const everythingDone = progress.doneTypes.includes(everythingStep);
    const repull = !!(await cursors.get(chartCursor(payload, everythingStep)));
    const viaEverything =
      everythingDone || (!progress.doneTypes.length && !(repull && (await cursors.get(ignoresSinceKey(payload.ehrBase)))) && (await offersEverything(client)));
    if (viaEverything && !everythingDone) {
      if (await pullEverything(client, cursors, payload, options, keep)) await finish(everythingStep);
    }
    const pending = progress.doneTypes.includes(everythingStep) ? [] : chartTypes.filter((t) => !progress.doneTypes.includes(t));
    await inParallel(pending, options.concurrency, async (type) => {
      await pullType(client, cursors, payload, options, type, keep);
      await finish(type);
    });
    // Both are written again when the job is run again after a crash before its end was recorded: the
    // Provenance the same, and records-ready only on a case not routed yet (the pipeline routes it next).
    await recordProvenance(service, payload, owner, [...targets]);
    await moveCase(service, payload.taskId, async (task) => (canMove(businessStatusOf(task), 'records-ready') ? 'records-ready' : undefined));
  } catch (err) {
    if (err instanceof ReferringEhrError && !err.retryable) {
      await failCase(service, payload, err instanceof OutboundRefused ? 'outbound-refused' : 'ehr-refused', `Retrieval stopped: ${err.message}`);
      return;
    }
    if (err instanceof FhirError && err.status === 422) {
      // Our own check refused a write of ours (a retrieved record as it would be kept, the Provenance,
      // the Task): another attempt would be refused the same. The reason names elements, never values.
      const elements = [...new Set(err.outcome.issue?.flatMap((issue) => issue.expression ?? []))];
      await failCase(
        service,
        payload,
        'write-invalid',
        `Retrieval stopped: the service's own validation refused what it would store, at ${elements.join(', ')}`,
      );
      return;
    }
    throw err;
  }
}

type Keep = (type: string, records: Resource[]) => Promise<void>;

/** Whether the server's CapabilityStatement offers Patient/$everything; a server without one does not. */
async function offersEverything(client: ReferringEhrClient): Promise<boolean> {
  let statement: CapabilityStatement | undefined;
  try {
    statement = await client.capabilities();
  } catch (err) {
    if (err instanceof ReferringEhrError && err.status !== 401 && err.status !== 403) return false;
    throw err;
  }
  return !!statement?.rest?.some((rest) =>
    rest.resource?.some((r) => r.type === 'Patient' && r.operation?.some((op) => op.name === 'everything' || op.definition?.endsWith('/Patient-everything'))),
  );
}

/** A re-pull asks only for what changed since the last pull began (less a margin for clock skew). */
async function sinceLastPull(cursors: CursorStore, options: RetrievalOptions, ...keys: string[]): Promise<string | undefined> {
  for (const key of keys) {
    const since = await cursors.get(key);
    if (since) return new Date(since.getTime() - options.sinceMarginMs).toISOString();
  }
  return undefined;
}

const chartCursor = (payload: RetrievalPayload, step: string): string => `chart|${payload.ehrBase}|${payload.patientId}|${step}`;

/** Set once a server has answered `$everything?_since=` with records older than `_since` (HAPI FHIR does): its re-pulls go per type. */
const ignoresSinceKey = (ehrBase: string): string => `everything-ignores-since|${ehrBase}`;

/**
 * Whether a page of an answer to `_since` holds a record last updated before it: the server did not
 * filter. The Patient is not judged: a server may send it with every answer.
 */
function olderThan(since: string, page: Bundle): boolean {
  const bound = Date.parse(since);
  return (page.entry ?? []).some((e) => {
    const updated = e.resource?.resourceType !== 'Patient' && e.resource?.meta?.lastUpdated;
    return !!updated && Date.parse(updated) < bound;
  });
}

/**
 * Pulls the chart through `$everything`; answers false, having stored nothing, when the server
 * turned out to ignore `_since` (the re-pull then goes per type, with `_lastUpdated`).
 */
async function pullEverything(
  client: ReferringEhrClient,
  cursors: CursorStore,
  payload: RetrievalPayload,
  options: RetrievalOptions,
  keep: Keep,
): Promise<boolean> {
  const cursorKey = chartCursor(payload, everythingStep);
  const since = await sinceLastPull(cursors, options, cursorKey);
  const started = new Date();
  // A re-pull judges the first page before asking for more.
  for await (const page of client.everything(payload.patientId, { _count: options.pageSize, ...(since ? { _since: since } : {}) }, !!since)) {
    if (since && olderThan(since, page)) {
      // Known from now on, so that the next re-pull from this server does not fetch a page in vain.
      await cursors.advance(ignoresSinceKey(payload.ehrBase), started);
      return false;
    }
    const byType = new Map<string, Resource[]>();
    for (const resource of (page.entry ?? []).map((e) => e.resource)) {
      // Kinds of record the service does not keep are left on the server; the Patient was read already.
      if (!resource?.id || !isStoredResourceType(resource.resourceType) || resource.resourceType === 'Patient') continue;
      const same = byType.get(resource.resourceType);
      if (same) same.push(resource);
      else byType.set(resource.resourceType, [resource]);
    }
    // Each type goes to its own collection: a page's types are stored side by side.
    await Promise.all([...byType].map(([type, records]) => keep(type, records)));
  }
  await cursors.advance(cursorKey, started);
  return true;
}

async function pullType(
  client: ReferringEhrClient,
  cursors: CursorStore,
  payload: RetrievalPayload,
  options: RetrievalOptions,
  type: string,
  keep: Keep,
): Promise<void> {
  const byPatient = patientParameter(type);
  const cursorKey = chartCursor(payload, type);
  // A type first searched after pulls by $everything asks for what changed since the last of those.
  const since = await sinceLastPull(cursors, options, cursorKey, chartCursor(payload, everythingStep));
  const started = new Date();
  const params: Record<string, string | number> = {
    [byPatient]: `Patient/${payload.patientId}`,
    _count: options.pageSize,
    ...(since ? { _lastUpdated: `gt${since}` } : {}),
  };
  for await (const page of client.pages(type, params)) {
    await keep(
      type,
      (page.entry ?? []).map((e) => e.resource).filter((r): r is Resource => r?.resourceType === type),
    );
  }
  await cursors.advance(cursorKey, started);
}

/**
 * Runs `work` over `items`, at most `limit` at a time. After a failure no item is started, and the
 * first failure is thrown once those under way have ended: nothing is still writing when it is handled.
 */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const outcomes = await Promise.allSettled(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        try {
          await work(item);
        } catch (err) {
          queue.length = 0;
          throw err;
        }
      }
    }),
  );
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The case's one record of where its chart came from: at an id of the case's, so that a run again replaces it rather than adding one. */
async function recordProvenance(service: FhirService, payload: RetrievalPayload, owner: string, targets: string[]): Promise<void> {
  const provenance = provenanceOfWrite({
    id: `retrieval-${payload.taskId}`,
    target: targets,
    recorded: new Date().toISOString(),
    operation: 'UPDATE',
    display: 'revise',
    text: 'Retrieved from the referring institution',
    agent: [{ who: { display: 'second-opinion service: chart retrieval' } }],
    entity: [{ role: 'source', what: { reference: `${payload.ehrBase.replace(/\/+$/, '')}/Patient/${payload.patientId}` } }],
  });
  // A chart's Provenance names thousands of records: it is checked by the structural layer, as the
  // records are (the whole profile's check, element by element, took longer than storing the chart);
  // its shape is the code's, checked against the HL7 validator by the tests. Its labels are those of
  // the records it names, which this job stored as the owner's: none is read back to find them.
  const issues = service.validator.structure.validate(provenance);
  if (issues.length) throw unprocessable(issues);
  await service.storeAt(provenance, provenance.id as string, Gate.retrieval(owner));
}

/** Why a case stopped before review: the codes of profiles/CodeSystem-case-stop-reason.json. */
export type StopReason = 'endpoint-not-registered' | 'outbound-refused' | 'ehr-refused' | 'ehr-unavailable' | 'write-invalid';

/**
 * The requester is told, then the Task fails, `records-unavailable`, with a coded reason a person can
 * act on: whoever sees the failed Task finds the notice beside it, and a search by business status
 * finds every such case. The notice has an id of its own case, so a retried failure (after a crash
 * between the two) tells once.
 */
export async function failCase(service: FhirService, payload: RetrievalPayload, why: StopReason, reason: string): Promise<void> {
  const task = (await service.repository.read('Task', payload.taskId)) as Task;
  const { system, code } = service.conformance.secondOpinionCategory;
  const notice: Communication = {
    resourceType: 'Communication',
    meta: profileMeta(service.conformance, 'Communication'),
    status: 'completed',
    category: [{ coding: [{ system, code }] }],
    subject: task.for as Communication['subject'],
    basedOn: [{ reference: `ServiceRequest/${payload.serviceRequestId}` }],
    partOf: [{ reference: `Task/${payload.taskId}` }],
    ...(task.requester ? { recipient: [task.requester] } : {}),
    sent: new Date().toISOString(),
    payload: [{ contentString: reason }],
  };
  const noticeId = createHash('sha256').update(`retrieval-failed|${payload.taskId}`).digest('hex').slice(0, 32);
  await service.createValidated(notice, Gate.service, { id: noticeId }).catch((err: unknown) => {
    if (!isDuplicateKey(err)) throw err;
  });
  const stopReasons = service.conformance.codeSystems.get(`${service.conformance.canonical}/CodeSystem/case-stop-reason`);
  const display = stopReasons?.concept?.find((c) => c.code === why)?.display;
  await moveCase(service, payload.taskId, 'records-unavailable', {
    status: 'failed',
    statusReason: { coding: [{ system: stopReasons?.url, code: why, display }], text: reason },
  });
}
