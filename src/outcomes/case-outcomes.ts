// Keeps the outcome counters up to date as cases move: after every write of a case's Task (opened,
// routed, on hold, closed, opinion delivered) or of its opinion (amended), the case's facts are read
// from the store and recorded in the ledger, which applies what changed exactly once. The facts
// are read afresh each time, so a hook that runs again, a retried write or a re-delivery changes
// nothing; at start-up, changes a crash left half-applied are finished and the Tasks written since
// the last start are looked at again (and, the first time, every case opened before the counters).
import { ownerOf } from '../access/ownership.js';
import type { DiagnosticReport, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { businessStatusOf } from '../case/business-status.js';
import { caseTaskOfRecord } from '../case/case-task.js';
import { openStatuses } from '../case/task-status.js';
import { hasSecondOpinionCategory } from '../conformance/artifacts.js';
import type { FhirService } from '../fhir/interactions.js';
import { parseSearch } from '../fhir/search/search.js';
import type { Logger } from '../logger.js';
import type { Specialties } from '../review/specialties.js';
import type { CursorStore } from '../store/cursors.js';
import type { OutcomeLedger } from './ledger.js';
import type { CaseFacts } from './counters.js';
import { turnaroundBucket } from './figures.js';
import { icd10Chapter, monthOf, unknownStratum, type CaseStrata } from './strata.js';

const icd10cm = 'http://hl7.org/fhir/sid/icd-10-cm';
const sweepCursor = 'outcomes:tasks';
const signed = new Set(['final', 'amended']);
/**
 * A case's moves that come this close together are recorded once: a case opens as two Task
 * versions (requested, then received), and a retrieval's end as two more (records-ready, then
 * routed). The facts are read when the update runs, so the last move is the one counted; a move
 * left pending by a crash is found by the sweep at the next start, like any update that failed.
 */
const coalesceMs = 25;

export class CaseOutcomes {
  private readonly concordanceUrl: string;
  /** Cases with an update due shortly (see coalesceMs). */
  private readonly due = new Set<string>();

  constructor(
    private readonly service: FhirService,
    private readonly specialties: Specialties,
    private readonly ledger: OutcomeLedger,
    private readonly cursors: CursorStore,
    private readonly log: Logger,
  ) {
    this.concordanceUrl = `${service.conformance.canonical}/StructureDefinition/concordance`;
  }

  /**
   * A case's Task was written: its counters are updated beside the workflow, not in its way (the
   * workflow never waits for them). The pipeline tells this after the stage a write starts, and once
   * a transaction has committed, so the facts read are that stage's.
   */
  async caseMoved(task: Resource): Promise<void> {
    this.soon(task.id as string);
  }

  /** An opinion was written (amended, say): its case's counters are updated the same way. */
  async opinionWritten(report: Resource): Promise<void> {
    if (!hasSecondOpinionCategory(this.service.conformance, report)) return;
    const task = await caseTaskOfRecord(this.service.repository, report as DiagnosticReport);
    if (task) this.soon(task.id as string);
  }

  /** Updates the case's counters shortly, once for all the moves made meanwhile. */
  private soon(caseId: string): void {
    if (this.due.has(caseId)) return;
    this.due.add(caseId);
    setTimeout(() => {
      this.due.delete(caseId);
      void this.update(caseId);
    }, coalesceMs).unref();
  }

  /** Records the case's current facts; a failure is logged (the next write or the next start catches up), never the write's. */
  async update(caseId: string): Promise<void> {
    try {
      await this.ledger.record(caseId, (counted) => this.factsOf(caseId, counted));
    } catch (err) {
      this.log.warn({ err: (err as Error).name, code: (err as { code?: unknown }).code }, 'outcome counters not updated; the next start catches up');
    }
  }

  /** After a start: finishes half-applied changes, then looks again at every Task written since the last start. */
  async recover(): Promise<void> {
    const started = new Date();
    const finished = await this.ledger.recover();
    const since = (await this.cursors.get(sweepCursor)) ?? new Date(0);
    let looked = 0;
    for (let offset = 0; ; offset += 500) {
      const search = parseSearch('Task', { _lastUpdated: `ge${since.toISOString()}`, _sort: '_lastUpdated', _count: '500', _offset: String(offset) });
      const { matches } = await this.service.repository.search(search);
      for (const { resource } of matches) await this.update(resource.id as string);
      looked += matches.length;
      if (matches.length < 500) break;
    }
    await this.cursors.advance(sweepCursor, started);
    this.log.info({ finished, looked }, 'outcome counters caught up');
  }

  /** The case's facts as the store has them now; undefined for a Task that is no second-opinion case. */
  private async factsOf(caseId: string, counted: CaseFacts | undefined): Promise<CaseFacts | undefined> {
    const [task] = (await this.service.repository.readMany([`Task/${caseId}`])) as Task[];
    const requestRef = task?.focus?.reference;
    if (!task || !requestRef?.startsWith('ServiceRequest/')) return undefined;
    const strata = counted?.strata ?? (await this.strataOf(task, requestRef));
    if (!strata) return undefined;
    const opened = task.authoredOn ?? String(task.meta?.lastUpdated);
    const deliveredAt = counted?.delivered
      ? undefined
      : businessStatusOf(task) === 'opinion-delivered'
        ? (task.lastModified ?? task.meta?.lastUpdated)
        : undefined;
    const first = counted?.delivered ?? (deliveredAt ? this.firstDelivery(opened, deliveredAt) : undefined);
    const delivered = first && { ...first, concordance: await this.concordanceOf(requestRef), questions: await this.questionsOf(requestRef) };
    const waiting =
      !delivered && openStatuses.includes(task.status)
        ? { due: task.restriction?.period?.end ? new Date(task.restriction.period.end).toISOString().slice(0, 16) : 'none' }
        : undefined;
    return { strata, openedMonth: monthOf(opened), ...(waiting ? { waiting } : {}), ...(delivered ? { delivered } : {}) };
  }

  private firstDelivery(opened: string, deliveredAt: string): NonNullable<CaseFacts['delivered']> {
    const seconds = Math.max(0, Math.round((Date.parse(deliveredAt) - Date.parse(opened)) / 1000));
    return { month: monthOf(deliveredAt), seconds, bucket: turnaroundBucket(seconds / 60), questions: 0 };
  }

  /** Where the case stands in each stratifier, fixed when it is first counted. */
  private async strataOf(task: Task, requestRef: string): Promise<CaseStrata | undefined> {
    const [stored] = await this.service.repository.readManyStored([requestRef]);
    const request = stored?.resource as ServiceRequest | undefined;
    if (!request || !hasSecondOpinionCategory(this.service.conformance, request)) return undefined;
    // The specialty routing copies to the Task; before routing, the one it will copy.
    const specialty = task.performerType?.[0]?.coding?.[0]?.code ?? this.specialties.wantedBy(request)[0]?.code;
    const owner = ownerOf(stored);
    const requester = request.requester?.reference?.startsWith('Organization/') ? request.requester.reference : undefined;
    const reason = request.reasonCode?.flatMap((c) => c.coding ?? []).find((c) => c.code);
    return {
      specialty: specialty ?? unknownStratum,
      institution: owner ?? requester ?? unknownStratum,
      reason: reason?.code ?? unknownStratum,
      chapter: reason?.system === icd10cm && reason.code ? icd10Chapter(reason.code) : unknownStratum,
    };
  }

  /** The concordance of the case's current final or amended opinion. */
  private async concordanceOf(requestRef: string): Promise<string | undefined> {
    const reports = (await this.service.repository.referencing('DiagnosticReport', 'based-on', [requestRef], 20)) as DiagnosticReport[];
    const opinion = reports
      .filter((r) => signed.has(r.status) && hasSecondOpinionCategory(this.service.conformance, r as Resource))
      .sort((a, b) => String(b.meta?.lastUpdated).localeCompare(String(a.meta?.lastUpdated)))[0];
    return opinion?.extension?.find((e) => e.url === this.concordanceUrl)?.valueCodeableConcept?.coding?.[0]?.code;
  }

  private async questionsOf(requestRef: string): Promise<number> {
    const search = parseSearch('CommunicationRequest', { 'based-on': requestRef, _summary: 'count' });
    return (await this.service.repository.search(search)).total ?? 0;
  }
}
