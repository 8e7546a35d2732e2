// Attachment content given by URL (DocumentReference.content, DiagnosticReport.presentedForm) is
// fetched from the referring server, up to a size limit, and kept here; the record's copy then points
// at our copy. What is not fetched stays pointing at its source and says why, so nothing is dropped
// silently. Only Binary resources on the institution's own FHIR server are fetched: credentials
// never go elsewhere, and the service never fetches an arbitrary URL a record names.
import type { Attachment, DiagnosticReport, DocumentReference, Extension, Resource } from '@medplum/fhirtypes';
import { ReferringEhrError, type ReferringEhrClient } from '../outbound/referring-ehr-client.js';
import type { AttachmentStore } from '../store/attachments.js';
import { chartLabel } from '../access/labels.js';
import { localId, localReference, sourcePath } from './source-records.js';

export interface AttachmentPolicy {
  store: AttachmentStore;
  maxBytes: number;
  /** Where the service serves stored content: `<publicBase>/attachments/<id>`. */
  publicBase: string;
  /** The attachment-retrieval extension's URL. */
  extensionUrl: string;
}

export interface AttachmentCounts {
  stored: number;
  skipped: number;
}

/** Stored: our copy. Skipped: why. Either way the content's absolute URL at the source, when it is a Binary there. */
type Outcome = { stored: { id: string; bytes: number; contentType?: string }; source: string } | { skipped: string; source?: string };

/** The attachments of a record that can carry content by URL. */
export function attachmentsOf(record: Resource): Attachment[] {
  if (record.resourceType === 'DocumentReference') return (record.content ?? []).map((c) => c.attachment);
  if (record.resourceType === 'DiagnosticReport') return record.presentedForm ?? [];
  return [];
}

/** Fetches and stores each attachment given by URL; rewrites the records in place; answers the counts. */
/** Fetches the attachments of `records`, which are `owner`'s (the institution the chart is fetched from). */
export async function retrieveAttachments(client: ReferringEhrClient, records: Resource[], policy: AttachmentPolicy, owner: string): Promise<AttachmentCounts> {
  const counts: AttachmentCounts = { stored: 0, skipped: 0 };
  for (const record of records) {
    // The content is the patient's, like the record: served to its institution and to those who may see the patient's chart.
    const subject = (record as DocumentReference | DiagnosticReport).subject?.reference;
    const patient = subject ? localReference(client.baseUrl, subject) : undefined;
    const access = [owner, ...(patient?.startsWith('Patient/') ? [chartLabel(patient)] : [])];
    for (const attachment of attachmentsOf(record)) {
      if (!attachment.url || attachment.data) continue;
      const outcome = await retrieveOne(client, attachment, policy, access);
      mark(attachment, outcome, policy);
      if ('stored' in outcome) counts.stored++;
      else counts.skipped++;
    }
  }
  return counts;
}

async function retrieveOne(client: ReferringEhrClient, attachment: Attachment, policy: AttachmentPolicy, access: string[]): Promise<Outcome> {
  // A Binary's current version only: a versioned URL would need a vread, which is not done here.
  const path = attachment.url?.includes('/_history/') ? undefined : sourcePath(client.baseUrl, attachment.url as string);
  const binaryId = path?.type === 'Binary' ? path.id : undefined;
  if (!binaryId) {
    return { skipped: 'not a Binary on the institution’s FHIR server' };
  }
  const id = localId(client.baseUrl, 'Binary', binaryId);
  const source = `${client.baseUrl.replace(/\/+$/, '')}/Binary/${binaryId}`;
  const stored = await policy.store.get(id);
  if (stored) {
    return { stored: { id, bytes: stored.length, contentType: stored.contentType }, source };
  }
  if ((attachment.size ?? 0) > policy.maxBytes) {
    return { skipped: `larger than ${policy.maxBytes} bytes (declared ${attachment.size})`, source };
  }
  let binary: { contentType?: string; data: Buffer };
  try {
    binary = await client.binary(binaryId);
  } catch (err) {
    // 401 and 403 end the retrieval like any other refusal; a missing Binary is that attachment's loss only.
    if (err instanceof ReferringEhrError && (err.status === 404 || err.status === 410)) {
      return { skipped: `could not be read: HTTP ${err.status}`, source };
    }
    throw err;
  }
  if (binary.data.length > policy.maxBytes) {
    return { skipped: `larger than ${policy.maxBytes} bytes (${binary.data.length})`, source };
  }
  const contentType = attachment.contentType ?? binary.contentType ?? 'application/octet-stream';
  await policy.store.put(id, binary.data, contentType, source, access);
  return { stored: { id, bytes: binary.data.length, contentType }, source };
}

function mark(attachment: Attachment, outcome: Outcome, policy: AttachmentPolicy): void {
  const parts: Extension[] = [{ url: 'source', valueUrl: outcome.source ?? attachment.url }];
  if ('stored' in outcome) {
    attachment.url = `${policy.publicBase}/attachments/${outcome.stored.id}`;
    attachment.size = outcome.stored.bytes;
    attachment.contentType ??= outcome.stored.contentType;
    parts.unshift({ url: 'status', valueCode: 'stored' });
  } else {
    parts.unshift({ url: 'status', valueCode: 'skipped' });
    parts.push({ url: 'reason', valueString: outcome.skipped });
    // A relative URL would mean this server; the content stays where it is.
    attachment.url = outcome.source ?? attachment.url;
  }
  attachment.extension = [...(attachment.extension ?? []).filter((e) => e.url !== policy.extensionUrl), { url: policy.extensionUrl, extension: parts }];
}

/** The retrieval status an attachment carries: 'stored', 'skipped', or undefined when it was not by URL. */
export function attachmentStatus(attachment: Attachment, extensionUrl: string): string | undefined {
  return attachment.extension?.find((e) => e.url === extensionUrl)?.extension?.find((e) => e.url === 'status')?.valueCode;
}
