// The opinion's life: a SecondOpinionReport is drafted (`preliminary`), finalised (`final`) and may be
// amended (`amended`; the store keeps every earlier version). Finalising or amending renders the
// readable form, signs the content, and owes the referring institution a delivery, all in the same
// write; then a Provenance carries the signature and the case's Task shows the delivery pending.
import { Gate } from '../access/gate.js';
import type { DiagnosticReport, Parameters, Provenance, ProvenanceAgent, Resource, Task } from '@medplum/fhirtypes';
import type { BusinessStatus } from '../case/business-status.js';
import { caseTaskOfRecord } from '../case/case-task.js';
import { moveCase } from '../case/move.js';
import { hasSecondOpinionCategory } from '../conformance/artifacts.js';
import type { FhirService, Reply } from '../fhir/interactions.js';
import { agentAs, provenanceOfWrite } from '../fhir/provenance.js';
import { badRequest, conflict, informational, notFound } from '../base/outcome.js';
import type { Delivery } from '../store/models.js';
import type { Outbox } from '../store/outbox.js';
import { withRendering } from './render.js';
import type { OpinionSigner } from './signing.js';

const signed = new Set(['final', 'amended']);

/** ISO/ASTM E1762 signature type of an author's signature, as FHIR's Signature.type examples use. */
const authorSignature = { system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1', display: "Author's Signature" };

export class Opinions {
  constructor(
    private readonly service: FhirService,
    private readonly signer: OpinionSigner,
    private readonly outbox: Outbox,
  ) {}

  /** Installs the opinion's rules on every DiagnosticReport write: render, sign and owe the delivery in the same write. */
  install(): void {
    this.service.hookWrites('DiagnosticReport', {
      order: 100,
      before: (resource, current) => this.beforeWrite(resource as DiagnosticReport, current as DiagnosticReport | undefined),
    });
  }

  private isOpinion(report: Resource): boolean {
    return hasSecondOpinionCategory(this.service.conformance, report);
  }

  private async beforeWrite(report: DiagnosticReport, current: DiagnosticReport | undefined): Promise<{ resource: Resource; outbox?: Delivery } | undefined> {
    if (!this.isOpinion(report) && !(current && this.isOpinion(current))) return undefined;
    if (current && signed.has(current.status) && report.status !== 'amended') {
      throw conflict(`A ${current.status} opinion changes only by amendment: status must be amended, not ${report.status}`, 'DiagnosticReport.status');
    }
    if (report.status === 'amended' && !(current && signed.has(current.status))) {
      throw conflict('Only a final opinion can be amended', 'DiagnosticReport.status');
    }
    if (!signed.has(report.status)) return undefined;
    const rendered = withRendering({ ...report, issued: report.issued ?? new Date().toISOString() }, this.service.conformance);
    const now = new Date();
    const signature = await this.signer.sign(rendered);
    return {
      resource: rendered,
      outbox: { state: 'pending', attempts: 0, since: now, due: now, data: { signature, signedAt: now.toISOString(), keyId: this.signer.keyId } },
    };
  }

  /**
   * Once a final or amended opinion is stored: the Provenance with its signature, and its case shows
   * the delivery pending (a case in progress is completed). Answers whether a delivery is now owed.
   */
  async signed(resource: Resource): Promise<boolean> {
    const report = resource as DiagnosticReport;
    if (!signed.has(report.status) || !this.isOpinion(report)) return false;
    await this.recordSignature(report);
    const task = await this.taskOf(report);
    if (task) {
      await moveCase(
        this.service,
        task.id as string,
        this.pendingUntilTaken(report.id as string),
        task.status === 'in-progress' ? { status: 'completed' } : {},
      );
    }
    return true;
  }

  /**
   * delivery-pending, unless a delivery worker has taken the delivery already: a worker of any process
   * may take it as soon as it is stored, and writes the case's status itself (delivered, failed, or
   * pending again), which must not be replaced by this later write.
   */
  private pendingUntilTaken(reportId: string): () => Promise<BusinessStatus | undefined> {
    return async () => {
      const delivery = await this.outbox.get('DiagnosticReport', reportId);
      return delivery?.state === 'pending' && delivery.attempts === 0 ? 'delivery-pending' : undefined;
    };
  }

  /** The Provenance that carries the signature of this version; made again, the same, if it is missing. */
  async recordSignature(report: DiagnosticReport): Promise<Provenance> {
    const delivery = await this.outbox.get('DiagnosticReport', report.id as string);
    const version = report.meta?.versionId as string;
    const provenance = provenanceOfWrite({
      id: signatureId(report.id as string, version),
      target: [`DiagnosticReport/${report.id}/_history/${version}`],
      recorded: (delivery?.data?.signedAt as string | undefined) ?? new Date().toISOString(),
      operation: report.status === 'amended' ? 'UPDATE' : 'CREATE',
      text: `Opinion ${report.status}`,
      agent: [
        agentAs('verifier', { who: { display: 'second-opinion service' } }),
        ...(report.performer ?? []).filter((who) => !who.reference?.startsWith('CareTeam/')).map((who) => ({ who: who as ProvenanceAgent['who'] })),
      ],
      signature: [
        {
          type: [authorSignature],
          when: (delivery?.data?.signedAt as string | undefined) ?? new Date().toISOString(),
          who: { display: 'second-opinion service' },
          sigFormat: 'application/jose',
          data: Buffer.from(typeof delivery?.data?.signature === 'string' ? delivery.data.signature : '').toString('base64'),
        },
      ],
    });
    return (await this.service.updateValidated(provenance, provenance.id as string, Gate.service)).resource as Provenance;
  }

  /** The Task of the case the opinion is based on. */
  async taskOf(report: DiagnosticReport): Promise<Task | undefined> {
    return caseTaskOfRecord(this.service.repository, report);
  }

  /** $verify: whether the opinion's content still matches the signature made when it was signed. */
  async verify(id: string): Promise<Reply> {
    const report = (await this.service.repository.read('DiagnosticReport', id)) as DiagnosticReport;
    if (!signed.has(report.status)) {
      throw badRequest(`DiagnosticReport/${id} is ${report.status}: only a final or amended opinion is signed`, 'DiagnosticReport.status');
    }
    const version = report.meta?.versionId as string;
    const [provenance] = (await this.service.repository.readMany([`Provenance/${signatureId(id, version)}`])) as Provenance[];
    const jws = provenance?.signature?.[0]?.data ? Buffer.from(provenance.signature[0].data, 'base64').toString() : undefined;
    const valid = !!jws && (await this.signer.verify(report, jws));
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'valid', valueBoolean: valid },
        { name: 'version', valueString: version },
        { name: 'keyId', valueString: this.signer.keyId },
        ...(jws ? [{ name: 'signature', valueReference: { reference: `Provenance/${provenance?.id}` } }] : []),
        ...(!valid ? [{ name: 'reason', valueString: jws ? 'The content does not match its signature' : 'No signature is recorded for this version' }] : []),
      ],
    };
    return { status: 200, body };
  }

  /** $redeliver: a delivery that gave up is due again now. */
  async redeliver(id: string): Promise<Reply> {
    const report = (await this.service.repository.read('DiagnosticReport', id)) as DiagnosticReport;
    if (!(await this.outbox.retry('DiagnosticReport', id))) {
      const delivery = await this.outbox.get('DiagnosticReport', id);
      throw delivery
        ? conflict(`The delivery of DiagnosticReport/${id} is ${delivery.state}, not failed`)
        : notFound(`DiagnosticReport/${id} owes no delivery`);
    }
    const task = await this.taskOf(report);
    if (task) await moveCase(this.service, task.id as string, this.pendingUntilTaken(id));
    return {
      status: 202,
      body: informational(`Delivery of DiagnosticReport/${id} is due again`),
    };
  }
}

export function signatureId(reportId: string, version: string): string {
  return `sig-${reportId}-${version}`.slice(0, 64);
}
