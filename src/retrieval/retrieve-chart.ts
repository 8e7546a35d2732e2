// Retrieval: pulls the patient's chart from the referring institution's FHIR server into the store.
// Searches per record type by patient, following every `next` link, a few types at a time; records
// progress per type so a restarted job resumes where it stopped; a re-pull never duplicates a record.
import type { Bundle, Communication, Provenance, Resource, Task } from '@medplum/fhirtypes';
import type { FhirService } from '../fhir/interactions.js';
import { clinicalResourceTypes } from '../fhir/resource-types.js';
import { supportedParameters } from '../fhir/search/parameters.js';
import { ReferringEhrClient, ReferringEhrError, type Credentials, type RetryPolicy } from '../outbound/referring-ehr-client.js';
import type { CursorStore } from '../store/cursors.js';
import { importRecords, localId } from './source-records.js';

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
  doneTypes: string[];
  stored: number;
  unchanged: number;
}

/** The record types searched by patient; DiagnosticReport is a clinical record here too. */
export const chartTypes = [...clinicalResourceTypes.filter((t) => t !== 'Patient'), 'DiagnosticReport'];

export interface RetrievalOptions {
  pageSize: number;
  concurrency: number;
  retry?: RetryPolicy;
  /** How to authenticate to the referring server, where its institution is registered. */
  credentialsFor?: (ehrBase: string) => Promise<Credentials | undefined>;
}

/** A re-pull asks for what changed since the last one began, less this margin for clock skew between servers. */
const cursorMarginMs = 5 * 60_000;

export async function retrieveChart(
  service: FhirService,
  cursors: CursorStore,
  payload: RetrievalPayload,
  progress: RetrievalProgress,
  saveProgress: (progress: RetrievalProgress) => Promise<void>,
  options: RetrievalOptions,
): Promise<void> {
  const client = new ReferringEhrClient(payload.ehrBase, options.retry, await options.credentialsFor?.(payload.ehrBase));
  const targets = new Set<string>();
  const keep = async (type: string, records: Resource[]): Promise<void> => {
    const counts = await importRecords(service.repository, payload.ehrBase, type, records);
    progress.stored += counts.stored;
    progress.unchanged += counts.unchanged;
    for (const record of records) targets.add(`${type}/${localId(payload.ehrBase, type, record.id as string)}`);
  };
  try {
    await keep('Patient', [await client.read('Patient', payload.patientId)]);
    for (const reference of payload.references) {
      const [type, id] = reference.split('/');
      await keep(type, [await client.read(type, id)]);
    }
    const pending = chartTypes.filter((t) => !progress.doneTypes.includes(t));
    await inParallel(pending, options.concurrency, async (type) => {
      const byPatient = supportedParameters(type).has('subject') ? 'subject' : 'patient';
      const cursorKey = `chart|${payload.ehrBase}|${payload.patientId}|${type}`;
      const since = await cursors.get(cursorKey);
      const started = new Date();
      const params: Record<string, string | number> = { [byPatient]: `Patient/${payload.patientId}`, _count: options.pageSize };
      if (since) {
        params._lastUpdated = `gt${new Date(since.getTime() - cursorMarginMs).toISOString()}`;
      }
      for await (const page of client.pages(type, params)) {
        await keep(type, ((page as Bundle).entry ?? []).map((e) => e.resource).filter((r): r is Resource => r?.resourceType === type));
      }
      await cursors.advance(cursorKey, started);
      progress.doneTypes.push(type);
      await saveProgress(progress);
    });
  } catch (err) {
    if (err instanceof ReferringEhrError && !err.retryable) {
      await failCase(service, payload, `Retrieval stopped: ${err.message}`);
      return;
    }
    throw err;
  }
  await recordProvenance(service, payload, [...targets]);
  await setBusinessStatus(service, payload.taskId, 'records-ready');
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        await work(item);
      }
    }),
  );
}

async function recordProvenance(service: FhirService, payload: RetrievalPayload, targets: string[]): Promise<void> {
  const provenance: Provenance = {
    resourceType: 'Provenance',
    target: targets.map((reference) => ({ reference })),
    recorded: new Date().toISOString(),
    activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'UPDATE', display: 'revise' }], text: 'Retrieved from the referring institution' },
    agent: [{ who: { display: 'second-opinion service: chart retrieval' } }],
    entity: [{ role: 'source', what: { reference: `${payload.ehrBase.replace(/\/+$/, '')}/Patient/${payload.patientId}` } }],
  };
  await service.createChecked(service.checkedBody('Provenance', provenance));
}

export async function setBusinessStatus(service: FhirService, taskId: string, code: string, change: Partial<Task> = {}): Promise<Task> {
  const task = (await service.repository.read('Task', taskId)) as Task;
  const system = task.businessStatus?.coding?.[0]?.system;
  const next: Task = { ...task, ...change, businessStatus: { coding: [{ system, code }] }, lastModified: new Date().toISOString() };
  return (await service.updateChecked(service.checkedBody('Task', next), taskId)).resource as Task;
}

/** The Task fails with a reason a person can act on, and the requester is told. */
async function failCase(service: FhirService, payload: RetrievalPayload, reason: string): Promise<void> {
  const task = await setBusinessStatus(service, payload.taskId, 'records-retrieving', { status: 'failed', statusReason: { text: reason } });
  const { system, code } = service.conformance.secondOpinionCategory;
  const notice: Communication = {
    resourceType: 'Communication',
    status: 'completed',
    category: [{ coding: [{ system, code }] }],
    subject: task.for as Communication['subject'],
    basedOn: [{ reference: `ServiceRequest/${payload.serviceRequestId}` }],
    partOf: [{ reference: `Task/${payload.taskId}` }],
    ...(task.requester ? { recipient: [task.requester] } : {}),
    sent: new Date().toISOString(),
    payload: [{ contentString: reason }],
  };
  await service.createChecked(service.checkedBody('Communication', notice));
}
