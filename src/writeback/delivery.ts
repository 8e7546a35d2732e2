// Write-back: a worker takes owed deliveries from the outbox and posts each final opinion to the
// referring institution's FHIR server as one transaction Bundle: the report (conditional update on
// our identifier, so a retried or amended delivery never makes a second copy), the Provenance with
// the signature, a Communication telling the requester the opinion is in, and, when the reviewer
// recommends seeing the patient, that follow-up as a ServiceRequest with intent `proposal` (conditional
// on our identifier too). Failures are retried
// with exponential backoff and jitter until a give-up time; then the delivery is marked failed, an
// alert is logged, and `$redeliver` can start it again.
import { profileMeta } from '../conformance/artifacts.js';
import { createHash } from 'node:crypto';
import type {
  Bundle,
  BundleEntry,
  Communication,
  CommunicationRequest,
  DiagnosticReport,
  Organization,
  Patient,
  Practitioner,
  PractitionerRole,
  Reference,
  ServiceRequest,
  Signature,
} from '@medplum/fhirtypes';
import { businessStatusOf, type BusinessStatus } from '../case/business-status.js';
import { caseTaskOf, requestOfRecord } from '../case/case-task.js';
import { moveCase } from '../case/move.js';
import type { FhirService } from '../fhir/interactions.js';
import type { Institutions } from '../intake/institutions.js';
import type { Logger } from '../logger.js';
import { followUpOf } from '../opinion/follow-up.js';
import type { Opinions } from '../opinion/opinions.js';
import { ReferringEhrClient, ReferringEhrError, type RetryPolicy } from '../outbound/referring-ehr-client.js';
import type { OwedDelivery, Outbox } from '../store/outbox.js';
import { WorkLoop } from '../store/work-loop.js';
import { writtenBackSystem } from './written-back.js';
import { fhirId, referenceTo } from '../base/ids.js';

export interface DeliveryOptions {
  pollMs: number;
  leaseMs: number;
  /** After this long without success a delivery is marked failed. */
  giveUpMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Retries inside one attempt (the outbox does the long-term ones). */
  retry: RetryPolicy;
}

/** Where the case lives on the referring server. */
interface Destination {
  ehrBase: string;
  patientId: string;
  /** The EHR's own ServiceRequest: by id when we read it from there, else by its identifier. */
  request: Reference<ServiceRequest>;
  requestId?: string;
  requester?: Reference<Practitioner | PractitionerRole | Organization>;
}

const sourcePatient = new RegExp(String.raw`^(https?:\/\/.+)\/Patient\/(${fhirId})(?:\/_history\/.*)?$`);
const sourceRequest = new RegExp(String.raw`\/ServiceRequest\/(${fhirId})(?:\/_history\/.*)?$`);
/** Who may be named as the recipient there: a person, their role, or the institution. */
const requesterReference = referenceTo('Practitioner|PractitionerRole|Organization');

export class DeliveryWorker extends WorkLoop {
  constructor(
    private readonly outbox: Outbox,
    private readonly service: FhirService,
    private readonly institutions: Institutions,
    private readonly opinions: Opinions,
    private readonly log: Logger,
    private readonly options: DeliveryOptions,
  ) {
    super(options.pollMs, (err) => log.warn({ err: err.name }, 'a delivery failed and could not be recorded: its lease runs out and it is taken again'));
  }

  protected async takeOne(): Promise<boolean> {
    const owed = await this.outbox.claim(this.options.leaseMs).catch((err: Error) => {
      this.log.warn({ err: err.name }, 'could not read the outbox');
      return undefined;
    });
    if (!owed) return false;
    await this.attempt(owed);
    return true;
  }

  /**
   * One attempt at one delivery, settled whatever happens. The case's Task shows the outcome before the
   * outbox settles it: a crash in between leaves the delivery owed, to be made again (the chart's copy
   * is conditional, so it stays one), where the other order would leave the case's status unwritten.
   */
  async attempt(owed: OwedDelivery): Promise<void> {
    const ref = `${owed.type}/${owed.id}`;
    try {
      const notes = owed.type === 'DiagnosticReport' ? await this.deliverOpinion(owed) : await this.deliverMessage(owed);
      await this.caseStatus(owed, 'opinion-delivered', `Opinion version ${owed.versionId} delivered to the referring institution. ${notes.at(-1)}.`);
      if (await this.outbox.settle(owed, { state: 'delivered', deliveredAt: new Date(), notes })) {
        this.log.info({ delivery: ref, version: owed.versionId, attempts: owed.delivery.attempts }, 'delivered to the referring institution');
      }
    } catch (err) {
      if (this.stopSignal.aborted) {
        // Stopped mid-call: due again now, for another process or the next start (the chart's copy is conditional, so it stays one).
        await this.outbox.settle(owed, { due: new Date() });
        this.log.info({ delivery: ref }, 'stopping: the delivery is given back unfinished, to be made again');
        return;
      }
      const reason = err instanceof ReferringEhrError || err instanceof DeliveryError ? err.message : (err as Error).name;
      const final = (err instanceof ReferringEhrError && !err.retryable) || err instanceof DeliveryError;
      const late = Date.now() - new Date(owed.delivery.since).getTime() >= this.options.giveUpMs;
      // A status that cannot be written now is written when the delivery, still owed, is tried again.
      const shown = (code: BusinessStatus, note?: string) =>
        this.caseStatus(owed, code, note).then(
          () => true,
          (e: Error) => {
            this.log.warn({ delivery: ref, err: e.name }, 'the case status of a delivery could not be written');
            return false;
          },
        );
      if (final || late) {
        if (
          (await shown('delivery-failed', `Delivery of opinion version ${owed.versionId} failed after ${owed.delivery.attempts} attempt(s): ${reason}`)) &&
          (await this.outbox.settle(owed, { state: 'failed', lastError: reason }))
        ) {
          // The alert an operator watches for; `Task?business-status=delivery-failed` lists them all.
          this.log.error({ alert: 'delivery-failed', delivery: ref, attempts: owed.delivery.attempts, reason }, 'delivery to the referring institution failed');
        }
      } else {
        await shown('delivery-pending');
        const wait = Math.random() * Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (owed.delivery.attempts - 1));
        await this.outbox.settle(owed, { due: new Date(Date.now() + wait), lastError: reason });
        this.log.warn({ delivery: ref, attempts: owed.delivery.attempts, reason }, 'delivery attempt failed; will retry');
      }
    }
  }

  /** Whether the delivery is still this attempt's: the version claimed, pending, not claimed again since (by a worker whose lease began when ours ran out). */
  private async stillClaimed(owed: OwedDelivery): Promise<boolean> {
    const current = await this.service.repository.current(owed.type, owed.id);
    return current?.versionId === owed.versionId && current.outbox?.state === 'pending' && current.outbox.attempts === owed.delivery.attempts;
  }

  /**
   * The case's Task shows where an opinion's delivery stands, with a note of what happened, while the
   * delivery is still this attempt's (else the attempt that took it over writes its own). A case still
   * in progress is completed here too: the opinion's own write does it, but a crash right after the
   * opinion was stored loses that step (a client's retry then finds the opinion and writes nothing).
   */
  private async caseStatus(owed: OwedDelivery, code: BusinessStatus, note?: string): Promise<void> {
    if (owed.type !== 'DiagnosticReport' || !(await this.stillClaimed(owed))) return;
    const report = (await this.service.repository.read(owed.type, owed.id)) as DiagnosticReport;
    const task = await this.opinions.taskOf(report);
    if (!task) return;
    const completed = task.status === 'in-progress' ? { status: 'completed' as const } : {};
    const noted = note ? { note: [...(task.note ?? []), { time: new Date().toISOString(), text: note }] } : {};
    await moveCase(
      this.service,
      task.id as string,
      async (current) => ((await this.stillClaimed(owed)) && businessStatusOf(current) !== code ? code : undefined),
      { ...noted, ...completed },
    );
  }

  private async deliverOpinion(owed: OwedDelivery): Promise<string[]> {
    const report = (await this.service.repository.read('DiagnosticReport', owed.id)) as DiagnosticReport;
    const provenance = await this.opinions.recordSignature(report); // made again if a crash lost it
    const destination = await this.destinationOf(report.basedOn);
    const client = await this.clientFor(destination.ehrBase);
    // An amendment that no longer recommends seeing the patient withdraws what an earlier version proposed there.
    const earlier = report.status === 'amended' && !followUpOf(report, this.service.conformance) ? await this.proposalThere(client, report) : undefined;
    const response = await client.transaction(this.bundle(report, provenance.signature ?? [], destination, owed, earlier));
    const notes = (response.entry ?? []).map((e) => `${e.response?.status ?? '?'} ${e.response?.location ?? ''}`.trim());
    notes.push(await this.completeRequest(client, destination));
    return notes;
  }

  /** A client of the referring server at `ehrBase`, whose calls a stop ends. */
  private async clientFor(ehrBase: string): Promise<ReferringEhrClient> {
    return new ReferringEhrClient(ehrBase, {
      retry: this.options.retry,
      credentials: await this.institutions.credentialsFor(ehrBase),
      signal: this.stopSignal,
    });
  }

  /** Where the case of the request in `basedOn` lives on the referring server. */
  private async destinationOf(basedOn: Reference[] | undefined): Promise<Destination> {
    const requestRef = requestOfRecord({ basedOn });
    const task = requestRef ? await caseTaskOf(this.service.repository, requestRef) : undefined;
    if (!task?.for?.reference || !requestRef) {
      throw new DeliveryError('it is not based on a case with a retrieved patient');
    }
    const found = await this.service.repository.readMany([task.for.reference, requestRef]);
    const patient = found.find((r): r is Patient => r.resourceType === 'Patient');
    const request = found.find((r): r is ServiceRequest => r.resourceType === 'ServiceRequest');
    const source = sourcePatient.exec(patient?.meta?.source ?? '');
    if (!source || !request) {
      throw new DeliveryError('the case has no patient from a referring institution');
    }
    const requestId = sourceRequest.exec(request.meta?.source ?? '')?.[1];
    const identifier = request.identifier?.find((i) => i.value);
    if (!requestId && !identifier) {
      throw new DeliveryError('the request has neither a source id nor an identifier to refer to on the institution’s server');
    }
    return {
      ehrBase: source[1],
      patientId: source[2],
      request: requestId ? { reference: `ServiceRequest/${requestId}` } : { identifier },
      requestId,
      requester: requesterThere(source[1], request.requester?.reference),
    };
  }

  /** A message (a Communication, or a question as a CommunicationRequest) for the referring side, posted there once (conditional on our identifier). */
  private async deliverMessage(owed: OwedDelivery): Promise<string[]> {
    const message = (await this.service.repository.read(owed.type, owed.id)) as Communication | CommunicationRequest;
    const to = await this.destinationOf(message.basedOn);
    const client = await this.clientFor(to.ehrBase);
    const kind = owed.type === 'Communication' ? 'communication' : 'communication-request';
    const identifier = { system: writtenBackSystem(this.service.conformance.canonical, kind), value: `${message.id}-${owed.versionId}` };
    // Text and attachments travel; references to records here would mean nothing there.
    const payload = (message.payload ?? []).filter((p) => p.contentString !== undefined || p.contentAttachment !== undefined);
    const common = {
      identifier: [identifier],
      ...(message.category ? { category: message.category } : {}),
      subject: { reference: `Patient/${to.patientId}` },
      basedOn: [to.request],
      ...(to.requester ? { recipient: [to.requester] } : {}),
      ...(payload.length ? { payload } : {}),
    };
    const copy: Communication | CommunicationRequest =
      message.resourceType === 'Communication'
        ? {
            resourceType: 'Communication',
            ...(payload.length ? { meta: profileMeta(this.service.conformance, 'Communication') } : {}),
            ...common,
            status: message.status,
            sender: { display: message.sender?.display ?? 'Second-opinion service' },
            sent: message.sent ?? new Date().toISOString(),
          }
        : {
            resourceType: 'CommunicationRequest',
            ...common,
            status: message.status,
            requester: { display: message.requester?.display ?? 'Second-opinion reviewer' },
            authoredOn: message.authoredOn ?? new Date().toISOString(),
          };
    const response = await client.transaction({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: copy,
          request: { method: 'POST', url: owed.type, ifNoneExist: identifierQuery(identifier.system, identifier.value) },
        },
      ],
    });
    return (response.entry ?? []).map((e) => `${e.response?.status ?? '?'} ${e.response?.location ?? ''}`.trim());
  }

  private bundle(report: DiagnosticReport, signature: Signature[], to: Destination, owed: OwedDelivery, earlier?: ServiceRequest): Bundle {
    const system = writtenBackSystem(this.service.conformance.canonical, 'opinion');
    const reportUrn = `urn:uuid:${uuidFrom(`${report.id}`)}`;
    const subject = { reference: `Patient/${to.patientId}` };
    // The institution's copy: our content, its own references; our local records and people stay here.
    const {
      id: _id,
      meta: _meta,
      result: _result,
      imagingStudy: _imaging,
      specimen: _specimen,
      media: _media,
      resultsInterpreter: _interpreter,
      performer,
      ...content
    } = report;
    const copy: DiagnosticReport = {
      ...content,
      meta: profileMeta(this.service.conformance, 'DiagnosticReport'),
      identifier: [...(report.identifier ?? []), { system, value: report.id }],
      subject,
      basedOn: [to.request],
      performer: performer?.map((p) => ({ display: p.display ?? 'Second-opinion reviewer' })),
    };
    const notice: Communication = {
      resourceType: 'Communication',
      meta: profileMeta(this.service.conformance, 'Communication'),
      identifier: [{ system: writtenBackSystem(this.service.conformance.canonical, 'opinion-notice'), value: `${report.id}-${owed.versionId}` }],
      status: 'completed',
      subject,
      basedOn: [to.request],
      ...(to.requester ? { recipient: [to.requester] } : {}),
      sent: new Date().toISOString(),
      payload: [
        { contentString: report.status === 'amended' ? 'The second opinion has been amended.' : 'The second opinion is in.' },
        { contentReference: { reference: reportUrn } },
      ],
    };
    const entries: BundleEntry[] = [
      { fullUrl: reportUrn, resource: copy, request: { method: 'PUT', url: `DiagnosticReport?${identifierQuery(system, report.id)}` } },
      {
        fullUrl: `urn:uuid:${uuidFrom(`${report.id}-${owed.versionId}-provenance`)}`,
        resource: {
          resourceType: 'Provenance',
          id: `so-${uuidFrom(`${report.id}-${owed.versionId}`)}`,
          target: [{ reference: reportUrn }],
          recorded: new Date().toISOString(),
          agent: [{ who: { display: 'second-opinion service' } }],
          signature,
        },
        request: { method: 'PUT', url: `Provenance/so-${uuidFrom(`${report.id}-${owed.versionId}`)}` },
      },
      {
        fullUrl: `urn:uuid:${uuidFrom(`${report.id}-${owed.versionId}-notice`)}`,
        resource: notice,
        request: {
          method: 'POST',
          url: 'Communication',
          ifNoneExist: identifierQuery(notice.identifier?.[0].system, notice.identifier?.[0].value),
        },
      },
      ...this.followUpEntries(report, reportUrn, to, earlier),
    ];
    return { resourceType: 'Bundle', type: 'transaction', entry: entries };
  }

  /**
   * The reviewer's recommendation to see the patient, as the hospital can act on it: a proposal (not an
   * order: the hospital decides and schedules), for its patient and its request, for the reason of the
   * report. One per opinion, updated in place by an amendment or a redelivery.
   */
  private followUpEntries(report: DiagnosticReport, reportUrn: string, to: Destination, earlier?: ServiceRequest): BundleEntry[] {
    const followUp = followUpOf(report, this.service.conformance);
    const identifier = this.followUpIdentifier(report);
    const entry = (resource: ServiceRequest): BundleEntry => ({
      fullUrl: `urn:uuid:${uuidFrom(`${report.id}-follow-up`)}`,
      resource,
      request: { method: 'PUT', url: `ServiceRequest?${identifierQuery(identifier.system, identifier.value)}` },
    });
    if (!followUp) return earlier && earlier.status !== 'revoked' ? [entry({ ...earlier, status: 'revoked' })] : [];
    const proposal: ServiceRequest = {
      resourceType: 'ServiceRequest',
      identifier: [identifier],
      status: 'active',
      intent: 'proposal',
      code: { coding: [followUp.kind], text: followUp.kind.display },
      subject: { reference: `Patient/${to.patientId}` },
      basedOn: [to.request],
      authoredOn: report.issued ?? new Date().toISOString(),
      requester: { display: report.performer?.[0]?.display ?? 'Second-opinion reviewer' },
      reasonReference: [{ reference: reportUrn }],
      ...(followUp.reason ? { note: [{ text: followUp.reason }] } : {}),
    };
    return [entry(proposal)];
  }

  /** Our identifier of the follow-up of one opinion: the same on every delivery of every version. */
  private followUpIdentifier(report: DiagnosticReport) {
    return { system: writtenBackSystem(this.service.conformance.canonical, 'follow-up'), value: `${report.id}` };
  }

  /** The proposal an earlier version of this opinion left on the institution's server, if any. */
  private async proposalThere(client: ReferringEhrClient, report: DiagnosticReport): Promise<ServiceRequest | undefined> {
    const { system, value } = this.followUpIdentifier(report);
    const found = await client.search('ServiceRequest', { identifier: `${system}|${value}` });
    return found.entry?.[0]?.resource as ServiceRequest | undefined;
  }

  /** Where the institution allows it, its own request is marked completed; a refusal is noted, not retried. */
  private async completeRequest(client: ReferringEhrClient, to: Destination): Promise<string> {
    try {
      let request: ServiceRequest | undefined;
      if (to.requestId) {
        request = (await client.read('ServiceRequest', to.requestId)) as ServiceRequest;
      } else {
        const { system, value } = to.request.identifier ?? {};
        const found = await client.search('ServiceRequest', { identifier: system ? `${system}|${value}` : (value as string) });
        request = found.entry?.length === 1 ? (found.entry[0].resource as ServiceRequest) : undefined;
      }
      if (!request?.id) return 'ServiceRequest status not updated: not found on the institution’s server';
      if (request.status === 'completed') return 'ServiceRequest already completed';
      await client.update({ ...request, status: 'completed' } as ServiceRequest & { id: string });
      return 'ServiceRequest marked completed';
    } catch (err) {
      if (err instanceof ReferringEhrError) return `ServiceRequest status not updated: refused (${err.message})`;
      throw err;
    }
  }
}

/**
 * The requester as the referring server knows it: an absolute reference under its base, made
 * relative; a relative one as it came (the EHR's own); anything else is not ours to pass on.
 */
function requesterThere(ehrBase: string, reference: string | undefined): Destination['requester'] {
  if (!reference) return undefined;
  if (reference.startsWith(`${ehrBase}/`)) return { reference: reference.slice(ehrBase.length + 1) };
  return requesterReference.test(reference) ? { reference } : undefined;
}

/** A delivery that cannot succeed however often it is tried. */
class DeliveryError extends Error {}

/** A stable UUID (v4 layout) from a string, for fullUrls and ids that must be the same on every attempt. */
/** The search that finds a record of ours on the institution's server by its identifier: how every entry written there is made conditional. */
function identifierQuery(system: string | undefined, value: string | undefined): string {
  return `identifier=${encodeURIComponent(`${system}|${value}`)}`;
}

function uuidFrom(text: string): string {
  const hex = createHash('sha256').update(text).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
