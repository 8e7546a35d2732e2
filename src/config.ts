// Runtime configuration, read once from the environment; secrets never come from anywhere else.
import path from 'node:path';

export interface Config {
  port: number;
  host: string;
  /** Public base URL of this server, without the trailing /fhir. */
  baseUrl: string;
  mongodbUri?: string;
  /** Where `npm start` keeps its embedded database between restarts. */
  dataDir: string;
  databaseName: string;
  logLevel: string;
  maxBodyBytes: number;
  /** How often each registered institution is asked for new second-opinion requests; 0 turns polling off. */
  pollIntervalMs: number;
  /** The service's SMART Backend Services key (PKCS#8 PEM), its key id and algorithm. */
  smartKey?: { pem: string; keyId: string; algorithm: string };
  retrieval: {
    pageSize: number;
    concurrency: number;
    retryAttempts: number;
    retryBaseDelayMs: number;
    pollMs: number;
    leaseMs: number;
  };
  review: {
    /** How long a case may take, by its request's priority: Task.restriction.period.end is set from it when the case opens. */
    dueHours: { routine: number; urgent: number; asap: number; stat: number };
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = parseInteger(env.PORT, 8080, 'PORT');
  const host = env.HOST ?? '0.0.0.0';
  return {
    port,
    host,
    baseUrl: (env.BASE_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    mongodbUri: env.MONGODB_URI || undefined,
    dataDir: path.resolve(env.DATA_DIR ?? '.data'),
    databaseName: env.DATABASE_NAME ?? 'second-opinion',
    logLevel: env.LOG_LEVEL ?? 'info',
    maxBodyBytes: parseInteger(env.MAX_BODY_BYTES, 5 * 1024 * 1024, 'MAX_BODY_BYTES'),
    pollIntervalMs: parseInteger(env.POLL_INTERVAL_MS, 60_000, 'POLL_INTERVAL_MS'),
    smartKey: env.SMART_PRIVATE_KEY ? { pem: env.SMART_PRIVATE_KEY, keyId: env.SMART_KEY_ID ?? 'second-opinion-1', algorithm: env.SMART_KEY_ALG ?? 'RS384' } : undefined,
    retrieval: {
      pageSize: parseInteger(env.RETRIEVAL_PAGE_SIZE, 50, 'RETRIEVAL_PAGE_SIZE'),
      concurrency: parseInteger(env.RETRIEVAL_CONCURRENCY, 4, 'RETRIEVAL_CONCURRENCY'),
      retryAttempts: parseInteger(env.OUTBOUND_RETRY_ATTEMPTS, 8, 'OUTBOUND_RETRY_ATTEMPTS'),
      retryBaseDelayMs: parseInteger(env.OUTBOUND_RETRY_BASE_MS, 200, 'OUTBOUND_RETRY_BASE_MS'),
      pollMs: parseInteger(env.RETRIEVAL_POLL_MS, 1000, 'RETRIEVAL_POLL_MS'),
      leaseMs: parseInteger(env.RETRIEVAL_LEASE_MS, 30_000, 'RETRIEVAL_LEASE_MS'),
    },
    review: {
      dueHours: {
        routine: parseInteger(env.REVIEW_DUE_ROUTINE_HOURS, 14 * 24, 'REVIEW_DUE_ROUTINE_HOURS'),
        urgent: parseInteger(env.REVIEW_DUE_URGENT_HOURS, 3 * 24, 'REVIEW_DUE_URGENT_HOURS'),
        asap: parseInteger(env.REVIEW_DUE_ASAP_HOURS, 24, 'REVIEW_DUE_ASAP_HOURS'),
        stat: parseInteger(env.REVIEW_DUE_STAT_HOURS, 4, 'REVIEW_DUE_STAT_HOURS'),
      },
    },
  };
}

function parseInteger(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') {
    return fallback;
  }
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${value}"`);
  }
  return parsed;
}
