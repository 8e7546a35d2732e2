// FHIR Bulk Data export (`GET /fhir/$export`, `/fhir/Patient/$export`, `/fhir/Group/{id}/$export`), asynchronous: the
// kick-off queues a durable job and answers 202 with a status URL under /bulk; the job reads the store
// a batch at a time and writes NDJSON files into GridFS, de-identified unless an allowed role asks
// otherwise; the status URL answers 202 with X-Progress, then the manifest; DELETE cancels. An ended
// export and its files are deleted once its retention has passed (the manifest's Expires header).
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response, type Router } from 'express';
import type { SearchRequest } from '@medplum/core';
import type { Group, OperationDefinition, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { classOf, mayExportIdentified } from '../access/policy.js';
import type { Principal } from '../auth/bearer.js';
import { allows, neededScope } from '../auth/scopes.js';
import type { Invocation } from '../fhir/operations/index.js';
import { readParameters } from '../fhir/operations/parameters.js';
import type { FhirService, Reply } from '../fhir/interactions.js';
import { badRequest, forbidden, informational, methodNotAllowed, notFound, outcomeOf } from '../fhir/outcome.js';
import { isStoredResourceType, storedResourceTypes } from '../fhir/resource-types.js';
import { supportedParameters } from '../fhir/search/parameters.js';
import { parseSearch, type QueryParams } from '../fhir/search/search.js';
import type { Logger } from '../logger.js';
import type { ExportFiles, ExportFileWriter } from '../store/export-files.js';
import type { Job, JobQueue } from '../store/jobs.js';
import { WorkLoop } from '../store/work-loop.js';
import { Deidentifier } from './deidentify.js';
import { parseElements, Subsetter } from './subset.js';

export const exportJobKind = 'bulk-export';

/** What the kick-off asked for; the job runs from this alone. */
interface ExportPayload {
  /** Who asked (issuer and subject): the only caller the status and files answer. */
  caller: string;
  types: string[];
  since?: string;
  group?: string;
  /** Patient level: every patient and the records in their compartments. */
  patients?: boolean;
  /** `_typeFilter`: search queries by type; a resource of the type is exported if it matches any. */
  typeFilters?: Record<string, string[]>;
  /** `_elements`: the root elements kept (`Type.element` or `element`). */
  elements?: string[];
  deidentify: boolean;
  /** The kick-off request's URL, for the manifest. */
  request: string;
}

interface ExportOutput {
  type: string;
  /** The file's name in its URL, and its id in the store. */
  name: string;
  file: string;
  count: number;
}

interface ExportProgress {
  written?: number;
  type?: string;
  typeIndex?: number;
  transactionTime?: string;
  output?: ExportOutput[];
}

export interface BulkExportOptions {
  baseUrl: string;
  pollMs: number;
  leaseMs: number;
  fileMaxResources: number;
  maxAttempts: number;
  /** How long an ended export and its files are kept. */
  retentionSeconds: number;
}

/** `_outputFormat` values that all mean FHIR NDJSON. */
const outputFormats = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
const kickOffParameters = new Set(['_type', '_since', '_outputFormat', '_typeFilter', '_elements', 'deidentify']);
/** Search parameters that shape a result page rather than select resources: no place in a `_typeFilter`. */
const shapingParameters = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_total', '_elements', '_format', '_pretty']);
/** Where a resource names its patient, as search parameters: a Group export takes what these point at the members. */
const compartmentCodes = ['patient', 'subject'];
/** A reference to a Patient, as the search index keeps it: `Patient/id`, or an absolute URL ending so. */
const patientKey = '(^|/)Patient/[A-Za-z0-9\\-.]{1,64}$';
const instant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

class Cancelled extends Error {}

const callerKey = (caller: Principal): string => `${caller.issuer} ${caller.subject}`;
const ended = (job: Job): boolean => job.state === 'done' || job.state === 'failed';
/** When an ended export is deleted. */
const expiresAt = (job: Job, options: BulkExportOptions): Date => new Date(new Date(job.updatedAt).getTime() + options.retentionSeconds * 1000);

export class BulkExport {
  readonly worker: ExportWorker;
  /** GET /bulk/{id} (status or manifest), DELETE /bulk/{id} (cancel), GET /bulk/{id}/{file} (NDJSON); mount behind authentication. */
  readonly routes: Router;

  constructor(
    private readonly service: FhirService,
    private readonly jobs: JobQueue,
    private readonly files: ExportFiles,
    log: Logger,
    private readonly options: BulkExportOptions,
  ) {
    this.worker = new ExportWorker(jobs, files, service, log, options);
    this.routes = this.router();
  }

  /** The kick-off (for a role the gate let call it): checks the parameters, queues the job, answers 202 with its status URL. */
  async kickOff({ type, id, query: url, headers, gate, method, body }: Invocation): Promise<Reply> {
    const caller = gate.principal;
    const level = !type ? 'system' : type === 'Patient' && !id ? 'patient' : type === 'Group' && id ? 'group' : undefined;
    if (!level) throw methodNotAllowed('$export is called at system level, on Patient (every patient) or on a Group instance');
    if (!caller) throw forbidden('Bulk export needs a caller with the analyst, coordinator or admin role');
    if (!/\brespond-async\b/.test(String(headers.prefer ?? ''))) throw badRequest('Bulk export is asynchronous: send "Prefer: respond-async"', 'Prefer');
    const query = method === 'POST' ? this.parametersOf(body, url) : url;
    for (const name of Object.keys(query)) {
      if (!kickOffParameters.has(name)) throw badRequest(`$export does not support the parameter "${name.slice(0, 40)}"`, name);
    }
    const given = (name: string): string[] => [query[name]].flat().filter((v) => v !== undefined).map(String);
    const single = (name: string): string | undefined => {
      const values = given(name);
      if (values.length > 1) throw badRequest(`${name} is given more than once`, name);
      return values[0];
    };
    const format = single('_outputFormat');
    if (format !== undefined && !outputFormats.includes(format)) throw badRequest(`_outputFormat must be one of ${outputFormats.join(', ')}`, '_outputFormat');
    const since = single('_since');
    if (since !== undefined && (!instant.test(since) || Number.isNaN(Date.parse(since)))) throw badRequest('_since must be an instant, e.g. 2026-01-01T00:00:00Z', '_since');
    const deidentifyParam = single('deidentify');
    if (deidentifyParam !== undefined && deidentifyParam !== 'true' && deidentifyParam !== 'false') throw badRequest('deidentify is true or false', 'deidentify');
    const deidentify = deidentifyParam !== 'false';
    if (!deidentify && !mayExportIdentified(caller.role)) throw forbidden('Identified export is not allowed for this role: leave out deidentify=false', 'deidentify');

    const group = type === 'Group' ? (id as string) : undefined;
    // The audit trail is the admins' to read, through its own API, never in an export.
    const exportable = (level === 'system' ? storedResourceTypes : compartmentTypes()).filter((t) => classOf(t) !== 'audit');
    const asked = given('_type').flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean);
    for (const t of asked) {
      if (!isStoredResourceType(t)) throw badRequest(`_type names "${t.slice(0, 40)}", which is not a resource type served here`, '_type');
      if (!exportable.includes(t)) throw badRequest(`_type names ${t}, which has no resources in a patient's compartment`, '_type');
    }
    const types = asked.length ? [...new Set(asked)] : [...exportable];
    const filters = typeFilters(given('_typeFilter'), types);
    const elements = parseElements(given('_elements'), types);
    const missing = types.filter((t) => !allows(caller.scopes, t, 'r'));
    if (missing.length) throw forbidden(`This export needs the scope ${neededScope(caller.scopes, missing[0], 'r')} (or a wider one), which the access token does not grant`, '_type');
    if (group) await this.service.repository.read('Group', group); // 404 or 410 before any job

    const jobId = randomUUID();
    // The kick-off's URL: a POST's parameters are in its body.
    const search = new URLSearchParams(Object.entries(url).flatMap(([k, v]) => [v].flat().map((x): [string, string] => [k, String(x)])));
    const payload: ExportPayload = {
      caller: callerKey(caller),
      types,
      ...(since ? { since } : {}),
      ...(group ? { group } : {}),
      ...(level === 'patient' ? { patients: true } : {}),
      ...(Object.keys(filters).length ? { typeFilters: filters } : {}),
      ...(elements.length ? { elements } : {}),
      deidentify,
      request: `${this.service.fhirBase}${group ? `/Group/${group}` : level === 'patient' ? '/Patient' : ''}/$export${search.size ? `?${search}` : ''}`,
    };
    await this.jobs.enqueue(exportJobKind, jobId, payload as unknown as Record<string, unknown>);
    this.worker.nudge();
    return { status: 202, headers: { 'Content-Location': this.statusUrl(jobId) }, body: informational(`The export is under way; poll ${this.statusUrl(jobId)}`) };
  }

  /** A POST kick-off's Parameters body (checked against the OperationDefinition) as the query it stands for. */
  private parametersOf(body: unknown, url: Record<string, unknown>): Record<string, string[]> {
    const inUrl = Object.keys(url)[0];
    if (inUrl !== undefined) throw badRequest('A POST kick-off takes its parameters in its Parameters body, not in the URL', inUrl.slice(0, 40));
    const definition = this.service.conformance.operations.get('export') as OperationDefinition;
    const query: Record<string, string[]> = {};
    for (const [name, parameters] of readParameters(definition, body)) {
      query[name] = parameters.map((p) => String(p.valueString ?? p.valueInstant ?? p.valueBoolean));
    }
    return query;
  }

  private statusUrl(jobId: string): string {
    return `${this.options.baseUrl}/bulk/${jobId}`;
  }

  private router(): Router {
    const router = express.Router();
    const fail = (res: Response, status: number, outcome: OperationOutcome): void => {
      res.status(status).type('application/fhir+json').send(JSON.stringify(outcome));
    };
    // Another caller's export, an expired one, or none: the same 404, so that an export's existence is not given away.
    const ownJob = async (req: Request, res: Response): Promise<Job | undefined> => {
      const job = /^[0-9a-f-]{36}$/.test(req.params.id as string) ? await this.jobs.get(req.params.id as string) : undefined;
      const caller = res.locals.principal as Principal | undefined;
      const live = job && !(ended(job) && expiresAt(job, this.options) <= new Date());
      if (live && job.kind === exportJobKind && caller && (job.payload as unknown as ExportPayload).caller === callerKey(caller)) return job;
      fail(res, 404, notFound('No such export').outcome);
      return undefined;
    };
    router.get('/:id', async (req, res) => {
      const job = await ownJob(req, res);
      if (!job) return;
      const progress = job.progress as ExportProgress;
      if (ended(job)) res.set('Expires', expiresAt(job, this.options).toUTCString());
      if (job.state === 'failed') return fail(res, 500, outcomeOf([{ severity: 'error', code: 'exception', details: { text: `The export failed: ${job.error ?? 'unknown error'}` } }]));
      if (job.state !== 'done') {
        const payload = job.payload as unknown as ExportPayload;
        const at = progress.type ? `; ${progress.type} (type ${(progress.typeIndex ?? 0) + 1} of ${payload.types.length})` : '';
        res.status(202).set({ 'X-Progress': `${job.state === 'pending' ? 'queued' : 'running'}: ${progress.written ?? 0} resources written${at}`, 'Retry-After': '1' }).end();
        return;
      }
      res.status(200).json(this.manifest(job));
    });
    router.delete('/:id', async (req, res) => {
      const job = await ownJob(req, res);
      if (!job) return;
      await this.jobs.remove(job._id);
      await this.files.remove(job._id);
      res.status(202).type('application/fhir+json').send(JSON.stringify(informational('The export is cancelled and its files are deleted')));
    });
    router.get('/:id/:name', async (req, res) => {
      const job = await ownJob(req, res);
      if (!job) return;
      const output = job.state === 'done' ? (job.progress as ExportProgress).output?.find((o) => o.name === req.params.name) : undefined;
      const file = output && (await this.files.open(output.file));
      if (!file) return fail(res, 404, notFound('No such file in this export').outcome);
      res.status(200).type('application/fhir+ndjson').setHeader('content-length', file.length);
      await pipeline(file.stream(), res).catch(() => res.destroy()); // the client went away
    });
    return router;
  }

  private manifest(job: Job): Record<string, unknown> {
    const payload = job.payload as unknown as ExportPayload;
    const progress = job.progress as ExportProgress;
    return {
      transactionTime: progress.transactionTime,
      request: payload.request,
      requiresAccessToken: true,
      output: (progress.output ?? []).map((o) => ({ type: o.type, url: `${this.statusUrl(job._id)}/${o.name}`, count: o.count })),
      error: [],
    };
  }
}

/**
 * `_typeFilter` values (`Type?search`, several in one value separated by commas) by type, each checked
 * as a search of that type; a type this export does not include, or a search that cannot run, is 400.
 */
function typeFilters(values: string[], types: string[]): Record<string, string[]> {
  const byType: Record<string, string[]> = {};
  for (const query of values.flatMap((v) => v.split(/,(?=[A-Z][A-Za-z]+\?)/))) {
    const [, type, search] = /^([A-Z][A-Za-z]+)\?(.+)$/.exec(query) ?? [];
    if (!type) throw badRequest('_typeFilter is a search of one type, e.g. Observation?status=final', '_typeFilter');
    if (!types.includes(type)) throw badRequest(`_typeFilter names ${type.slice(0, 40)}, which this export does not include (see _type)`, '_typeFilter');
    searchOf(type, search);
    (byType[type] ??= []).push(search);
  }
  return byType;
}

/** A `_typeFilter` search of `type`; its values are not quoted in errors (they can name a patient). */
function searchOf(type: string, search: string): SearchRequest {
  const query: QueryParams = {};
  for (const [name, value] of new URLSearchParams(search)) query[name] = [...[query[name] ?? []].flat(), value];
  const names = Object.keys(query);
  const shaping = names.find((n) => shapingParameters.has(n.split(':')[0]));
  if (shaping) throw badRequest(`_typeFilter selects resources only; ${shaping.slice(0, 40)} has no place in it`, '_typeFilter');
  try {
    return parseSearch(type, query);
  } catch {
    throw badRequest(`_typeFilter for ${type}: the search (${names.map((n) => n.slice(0, 40)).join(', ')}) is not one this server can run`, '_typeFilter');
  }
}

/** A filter for the records of `type` that name a patient in a compartment parameter (Patient-level export). */
function inAnyCompartment(type: string): Record<string, unknown> {
  const byCode = compartmentCodes.filter((c) => supportedParameters(type).has(c)).map((c) => ({ [`idx.${c}`]: { $regex: patientKey } }));
  return byCode.length > 1 ? { $or: byCode } : byCode[0];
}

/** The types that can hold a patient's records: Patient, and every type with a patient or subject search parameter. */
function compartmentTypes(): string[] {
  return storedResourceTypes.filter((t) => t === 'Patient' || compartmentCodes.some((c) => supportedParameters(t).has(c)));
}

/**
 * Runs export jobs one at a time under a lease. An attempt starts from nothing (the files of an earlier
 * attempt are deleted, a new key is made) and the output is recorded with the job's end in one update,
 * so a crash never leaves a manifest pointing at partial files: the job is taken up again, or fails.
 */
export class ExportWorker extends WorkLoop {
  constructor(
    private readonly jobs: JobQueue,
    private readonly files: ExportFiles,
    private readonly service: FhirService,
    private readonly log: Logger,
    private readonly options: BulkExportOptions,
  ) {
    super(options.pollMs);
  }

  private nextSweep = 0;

  protected async takeOne(): Promise<boolean> {
    if (Date.now() >= this.nextSweep) {
      this.nextSweep = Date.now() + Math.min(60_000, (this.options.retentionSeconds * 1000) / 2);
      await this.deleteExpired().catch((err: Error) => this.log.warn({ err: err.name }, 'could not delete expired exports'));
    }
    const job = await this.jobs.claim(exportJobKind, this.options.leaseMs).catch((err: Error) => {
      this.log.warn({ err: err.name }, 'could not claim an export job');
      return undefined;
    });
    if (!job) return false;
    const started = Date.now();
    try {
      await this.files.remove(job._id); // an earlier attempt's, never to be listed
      if (job.attempts > this.options.maxAttempts) throw new Error(`gave up after ${this.options.maxAttempts} attempts`);
      const progress = await this.writeExport(job);
      if (!(await this.jobs.finish(job._id, 'done', undefined, { ...progress }))) throw new Cancelled();
      this.log.info({ job: job._id, written: progress.written, files: progress.output?.length, ms: Date.now() - started }, 'export written');
    } catch (err) {
      await this.files.remove(job._id, job.attempts).catch(() => undefined);
      if (err instanceof Cancelled) {
        this.log.info({ job: job._id }, 'export cancelled');
      } else {
        // Only the error's name: a message could quote stored values.
        const reason = (err as Error).message?.startsWith('gave up') ? (err as Error).message : (err as Error).name;
        this.log.warn({ job: job._id, attempt: job.attempts, reason }, 'export attempt failed');
        if (job.attempts >= this.options.maxAttempts) await this.jobs.finish(job._id, 'failed', `the export could not be written (${reason})`);
        else await this.jobs.heartbeat(job._id, Math.min(60_000, 1000 * 2 ** job.attempts));
      }
    }
    return true;
  }

  /** Deletes the exports that ended more than the retention ago: the files first, so none is left without its job. */
  private async deleteExpired(): Promise<void> {
    const expired = await this.jobs.endedBefore(exportJobKind, new Date(Date.now() - this.options.retentionSeconds * 1000));
    for (const id of expired) {
      await this.files.remove(id);
      await this.jobs.remove(id);
    }
    if (expired.length) this.log.info({ exports: expired.length }, 'expired exports deleted');
  }

  /** One attempt: each type in turn, into files of at most `fileMaxResources` resources. */
  private async writeExport(job: Job): Promise<ExportProgress> {
    const payload = job.payload as unknown as ExportPayload;
    const progress: ExportProgress = { written: 0, transactionTime: new Date().toISOString(), output: [] };
    const deidentifier = payload.deidentify ? new Deidentifier(this.service.fhirBase) : undefined;
    const subsetter = payload.elements ? new Subsetter(payload.elements) : undefined;
    const since = payload.since ? new Date(payload.since) : undefined;
    // The heartbeat keeps the lease and shows progress; a job that is no longer ours was cancelled.
    let lost = false;
    const heartbeat = setInterval(() => {
      const { output: _o, ...shown } = progress;
      this.jobs.heartbeat(job._id, this.options.leaseMs, shown).then((ours) => (lost ||= !ours), () => undefined);
    }, Math.min(1000, this.options.leaseMs / 3));
    try {
      const where = (type: string): Record<string, unknown> => {
        const clauses = [
          ...(since ? [{ lastUpdated: { $gt: since } }] : []),
          ...(payload.patients && type !== 'Patient' ? [inAnyCompartment(type)] : []),
          ...(payload.typeFilters?.[type] ? [{ $or: payload.typeFilters[type].map((q) => this.service.repository.filterOf(searchOf(type, q))) }] : []),
        ];
        return clauses.length > 1 ? { $and: clauses } : (clauses[0] ?? {});
      };
      const source = payload.group ? this.compartment(await this.members(payload.group), where) : (type: string) => this.files.resources(type, where(type));
      for (const [typeIndex, type] of payload.types.entries()) {
        Object.assign(progress, { type, typeIndex });
        let file: ExportFileWriter | undefined;
        const close = async (): Promise<void> => {
          if (!file) return;
          await file.close();
          progress.output?.push({ type, name: file.id.split('/').pop() as string, file: file.id, count: file.count });
        };
        for await (const resource of source(type)) {
          if (lost) throw new Cancelled();
          if (!file || file.count >= this.options.fileMaxResources) {
            await close();
            const n = (progress.output?.filter((o) => o.type === type).length ?? 0) + 1;
            file = this.files.create(`${job._id}/${job.attempts}/${type}-${n}.ndjson`, job._id, job.attempts);
          }
          const kept = subsetter ? subsetter.subset(resource) : resource;
          await file.write(JSON.stringify(deidentifier ? deidentifier.deidentify(kept) : kept));
          progress.written = (progress.written ?? 0) + 1;
        }
        await close();
      }
    } finally {
      clearInterval(heartbeat);
    }
    return progress;
  }

  /** The Group's member Patients (`Patient/id`), and the references to them at the institutions their records came from. */
  private async members(groupId: string): Promise<string[]> {
    const group = (await this.service.repository.read('Group', groupId)) as Group;
    const keys = (group.member ?? []).filter((m) => !m.inactive).map((m) => m.entity?.reference ?? '').filter((r) => /^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(r));
    const patients = await this.service.repository.readMany(keys);
    const sources = patients.map((p) => p.meta?.source?.replace(/\/_history\/.*$/, '')).filter((s): s is string => !!s);
    return [...keys, ...sources];
  }

  /** The records of a type in the members' compartments that match `where`. */
  private compartment(targets: string[], where: (type: string) => Record<string, unknown>): (type: string) => AsyncGenerator<Resource> {
    const members = targets.filter((t) => t.startsWith('Patient/')).map((t) => t.slice('Patient/'.length));
    return (type) =>
      type === 'Patient'
        ? this.files.resources('Patient', { id: { $in: members }, ...where('Patient') })
        : this.service.repository.streamReferencing(type, compartmentCodes, targets, where(type));
  }
}
