// GET /fhir/ServiceRequest/{id}/$case-packet: everything retrieved for a case, streamed from the
// store a batch at a time, closed by a completeness summary: an OperationOutcome with one issue per
// kind of record, present (information) or missing (warning), and one for the attachments.
import { randomUUID } from 'node:crypto';
import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { FhirService, Reply } from '../fhir/interactions.js';
import { notFound } from '../base/outcome.js';
import { caseTaskOf } from '../case/case-task.js';
import { attachmentStatus, attachmentsOf } from '../retrieval/attachments.js';
import { chartTypes, patientParameter } from '../retrieval/retrieve-chart.js';
import type { Operation } from './operation.js';

/** Pieces of about this many characters go to the client at a time. */
const chunkSize = 64 * 1024;

export const casePacket: Operation = { code: 'case-packet', methods: ['GET'], run: ({ service, id }) => packetOf(service, id as string) };

async function packetOf(service: FhirService, requestId: string): Promise<Reply> {
  const request = await service.repository.read('ServiceRequest', requestId);
  const task = await caseTaskOf(service.repository, `ServiceRequest/${requestId}`);
  const patientRef = task?.for?.reference;
  if (!patientRef) {
    throw notFound(`ServiceRequest/${requestId} has no case: its records were never retrieved`);
  }
  const [patient] = await service.repository.readMany([patientRef]);
  return { status: 200, stream: packet(service, [request, task, ...(patient ? [patient] : [])], patientRef, !!patient) };
}

async function* packet(service: FhirService, head: Resource[], patientRef: string, hasPatient: boolean): AsyncGenerator<string> {
  const extensionUrl = `${service.conformance.canonical}/StructureDefinition/attachment-retrieval`;
  // Every entry of a collection has a fullUrl: a stored record's address, else a urn:uuid (the summary).
  const entry = (resource: Resource): string =>
    JSON.stringify({ fullUrl: resource.id ? `${service.fhirBase}/${resource.resourceType}/${resource.id}` : `urn:uuid:${randomUUID()}`, resource });
  let pending = `{"resourceType":"Bundle","type":"collection","timestamp":"${new Date().toISOString()}","entry":[${head.map(entry).join(',')}`;
  const counts = new Map<string, number>([['Patient', hasPatient ? 1 : 0]]);
  const attachments = { stored: 0, skipped: 0 };
  const streams = chartTypes.map((type) => ({ type, records: service.repository.streamReferencing(type, [patientParameter(type)], [patientRef]) }));
  try {
    // Each type's query is sent while the type before it is read out, so no type waits for its first batch.
    let first = streams[0].records.next();
    for (const [i, { type, records }] of streams.entries()) {
      let next = await first;
      if (i + 1 < streams.length) {
        first = streams[i + 1].records.next();
        // Its failure is met when it is awaited; one left unawaited (this type failed first) is not a crash.
        void first.catch(() => undefined);
      }
      for (; !next.done; next = await records.next()) {
        const record = next.value;
        counts.set(type, (counts.get(type) ?? 0) + 1);
        for (const attachment of attachmentsOf(record)) {
          const status = attachmentStatus(attachment, extensionUrl);
          if (status === 'stored' || status === 'skipped') attachments[status]++;
        }
        pending += `,${entry(record)}`;
        if (pending.length >= chunkSize) {
          yield pending;
          pending = '';
        }
      }
    }
  } finally {
    // A client that went away leaves no cursor open.
    await Promise.allSettled(streams.map(({ records }) => records.return(undefined)));
  }
  // No `total`: FHIR keeps it for searches and histories (bdl-1); the summary counts each type.
  yield `${pending},${entry(summary(counts, attachments))}]}`;
}

function summary(counts: Map<string, number>, attachments: { stored: number; skipped: number }): OperationOutcome {
  const issues: OperationOutcomeIssue[] = ['Patient', ...chartTypes].map((type) => {
    const count = counts.get(type) ?? 0;
    return count
      ? { severity: 'information', code: 'informational', details: { text: `${type}: ${count} retrieved` }, expression: [type] }
      : { severity: 'warning', code: 'not-found', details: { text: `${type}: none retrieved` }, expression: [type] };
  });
  issues.push(attachmentSummary(attachments));
  return { resourceType: 'OperationOutcome', issue: issues };
}

/** How many attachments given by URL were kept, and how many skipped (a warning: the reviewer lacks them). */
function attachmentSummary({ stored, skipped }: { stored: number; skipped: number }): OperationOutcomeIssue {
  const text = `Attachments: ${stored} stored, ${skipped} skipped`;
  return skipped
    ? {
        severity: 'warning',
        code: 'incomplete',
        details: { text: `${text} (each says why in its attachment-retrieval extension)` },
        expression: ['Attachment'],
      }
    : { severity: 'information', code: 'informational', details: { text }, expression: ['Attachment'] };
}
