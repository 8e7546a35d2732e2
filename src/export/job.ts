// An export job as the queue keeps it: what the kick-off asked for, how far the worker has got, and
// when an ended export expires. Shared by the kick-off, the worker and the /bulk routes.
import type { Principal } from '../auth/bearer.js';
import type { Job } from '../store/jobs.js';

export const exportJobKind = 'bulk-export';

/** What the kick-off asked for; the job runs from this alone. */
export interface ExportPayload {
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

export interface ExportOutput {
  type: string;
  /** The file's name in its URL, and its id in the store. */
  name: string;
  file: string;
  count: number;
}

export interface ExportProgress {
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

/** A job that is no longer ours: cancelled while it ran. */
export class Cancelled extends Error {}

export const callerKey = (caller: Principal): string => `${caller.issuer} ${caller.subject}`;
export const ended = (job: Job): boolean => job.state === 'done' || job.state === 'failed';
/** When an ended export is deleted. */
export const expiresAt = (job: Job, options: BulkExportOptions): Date => new Date(new Date(job.updatedAt).getTime() + options.retentionSeconds * 1000);
/** Where the caller polls an export's status, and finds its manifest. */
export const statusUrl = (options: BulkExportOptions, jobId: string): string => `${options.baseUrl}/bulk/${jobId}`;
