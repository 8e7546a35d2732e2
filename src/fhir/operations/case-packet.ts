// GET /fhir/ServiceRequest/{id}/$case-packet: everything retrieved for a case, with a completeness
// summary: an OperationOutcome with one issue per kind of record, present (information) or missing (warning).
import type { Bundle, OperationOutcomeIssue, Resource, Task } from '@medplum/fhirtypes';
import { attachmentStatus, attachmentsOf } from '../../retrieval/attachments.js';
import { chartTypes } from '../../retrieval/retrieve-chart.js';
import type { FhirService, Reply } from '../interactions.js';
import { notFound } from '../outcome.js';

export async function casePacket(service: FhirService, requestId: string): Promise<Reply> {
  const request = await service.repository.read('ServiceRequest', requestId);
  // The case's Task has the request's id (see openCase): read by id, searched for only when it is not there.
  const [own] = (await service.repository.readMany([`Task/${requestId}`])) as Task[];
  const tasks = own?.focus?.reference === `ServiceRequest/${requestId}` ? [own] : ((await service.repository.referencing('Task', 'focus', [`ServiceRequest/${requestId}`], 0)) as Task[]);
  const patientRef = tasks[0]?.for?.reference;
  if (!patientRef) {
    throw notFound(`ServiceRequest/${requestId} has no case: its records were never retrieved`);
  }
  const [patient] = await service.repository.readMany([patientRef]);
  const unique = await service.repository.referencing(chartTypes, ['subject', 'patient'], [patientRef], 0);
  const issues: OperationOutcomeIssue[] = ['Patient', ...chartTypes].map((type) => {
    const count = type === 'Patient' ? (patient ? 1 : 0) : unique.filter((r) => r.resourceType === type).length;
    return count
      ? { severity: 'information', code: 'informational', details: { text: `${type}: ${count} retrieved` }, expression: [type] }
      : { severity: 'warning', code: 'not-found', details: { text: `${type}: none retrieved` }, expression: [type] };
  });
  issues.push(attachmentSummary(unique, `${service.conformance.canonical}/StructureDefinition/attachment-retrieval`));
  const entries: Resource[] = [{ resourceType: 'OperationOutcome', issue: issues }, request, ...tasks, ...(patient ? [patient] : []), ...unique];
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: new Date().toISOString(),
    total: unique.length,
    entry: entries.map((resource) => ({ ...(resource.id ? { fullUrl: `${service.fhirBase}/${resource.resourceType}/${resource.id}` } : {}), resource })),
  } as Bundle;
  return { status: 200, body: bundle };
}

/** How many attachments given by URL were kept, and how many skipped (a warning: the reviewer lacks them). */
function attachmentSummary(records: Resource[], extensionUrl: string): OperationOutcomeIssue {
  const statuses = records.flatMap(attachmentsOf).map((a) => attachmentStatus(a, extensionUrl));
  const stored = statuses.filter((s) => s === 'stored').length;
  const skipped = statuses.filter((s) => s === 'skipped').length;
  const text = `Attachments: ${stored} stored, ${skipped} skipped`;
  return skipped
    ? { severity: 'warning', code: 'incomplete', details: { text: `${text} (each says why in its attachment-retrieval extension)` }, expression: ['Attachment'] }
    : { severity: 'information', code: 'informational', details: { text }, expression: ['Attachment'] };
}
