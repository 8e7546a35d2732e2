// Runtime configuration, read once from the environment; secrets never come from anywhere else. Each
// secret may also be given as a file named by <NAME>_FILE (a mounted Docker or Kubernetes secret), so
// that a multi-line PEM never has to pass through an environment variable.
import { readFileSync } from 'node:fs';
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
  /** Deeper JSON bodies answer 400. */
  maxJsonDepth: number;
  /** Browser origins allowed by CORS; empty: CORS off. */
  corsOrigins: string[];
  /** Requests a client may make in a minute; 0: no limit. */
  ratePerMinute: number;
  /** How often each registered institution is asked for new second-opinion requests; 0 turns polling off. */
  pollIntervalMs: number;
  /** How long a stop lets the work in hand finish before it closes the database all the same. */
  shutdownGraceMs: number;
  /** The service's SMART Backend Services key (PKCS#8 PEM), its key id and algorithm. */
  smartKey?: { pem: string; keyId: string; algorithm: string };
  /**
   * The key the ids of records copied from institutions are made with (RECORD_ID_KEY, or the file
   * RECORD_ID_KEY_FILE names); undefined: one kept in DATA_DIR (see record-id-key.ts).
   */
  recordIdKey?: string;
  /** The key opinions are signed with (PKCS#8 PEM); without one, a key made per process. */
  opinionKey: { pem?: string; keyId: string; algorithm: string };
  delivery: {
    pollMs: number;
    leaseMs: number;
    giveUpMs: number;
    baseDelayMs: number;
    maxDelayMs: number;
    /** Retries of a call inside one delivery attempt (the outbox retries the delivery itself later). */
    callRetryAttempts: number;
    callRetryMaxDelayMs: number;
  };
  /** Authentication of callers (src/auth/). */
  auth: {
    /** The key the service signs its own access tokens with (PKCS#8 PEM); without one, a key made per process. */
    signingKey: { pem?: string; keyId: string; algorithm: string };
    /** The audience accepted tokens must name; unset: the FHIR base URL. */
    audience?: string;
    tokenLifetimeSeconds: number;
    /** An external authorization server whose tokens are accepted as well. */
    externalIssuer?: { issuer: string; jwksUrl: string };
    /** JSON: clients registered at start-up (public keys only), e.g. a first admin client. */
    bootstrapClients?: string;
  };
  /** People's sign-in to the workbench (auth/sign-in.ts). */
  signIn: {
    /** Signs the sign-in cookies (SIGN_IN_COOKIE_KEY); without one, a key made per process, and sessions end at a restart. */
    cookieKey?: string;
    /** A sign-in lasts this long, then the person signs in again. */
    sessionSeconds: number;
    /** The lifetime of the access tokens people get. */
    tokenSeconds: number;
    /** Failed passwords allowed per account, and per address, within `lockSeconds`; then sign-in there waits until the window ends. */
    maxFailures: number;
    maxFailuresPerAddress: number;
    lockSeconds: number;
  };
  retrieval: {
    pageSize: number;
    concurrency: number;
    /** Calls to a referring server (retrieval, intake's polling and $submit): how many tries, the backoff's start and cap, and how long one call may take. */
    retryAttempts: number;
    retryBaseDelayMs: number;
    retryMaxDelayMs: number;
    callTimeoutMs: number;
    pollMs: number;
    leaseMs: number;
    /** Attempts at a retrieval job before the case fails visibly. */
    maxAttempts: number;
    /** Attachments larger than this are recorded as skipped, not fetched or not kept. */
    attachmentMaxBytes: number;
    /** A re-pull asks for what changed since the last pull began, less this (clock skew between servers). */
    sinceMarginMs: number;
  };
  /** Bulk Data export (src/export/): the job's poll and lease, and how many resources go in one NDJSON file. */
  bulkExport: {
    pollMs: number;
    leaseMs: number;
    fileMaxResources: number;
    retentionSeconds: number;
    /** Attempts at an export job before it fails. */ maxAttempts: number;
  };
  review: {
    /** How long a case may take, by its request's priority: Task.restriction.period.end is set from it when the case opens. */
    dueHours: { routine: number; urgent: number; asap: number; stat: number };
  };
}

/** The variables that may come from a file named by <NAME>_FILE instead. */
export const secretVariables = [
  'AUTH_SIGNING_KEY',
  'OPINION_SIGNING_KEY',
  'SMART_PRIVATE_KEY',
  'RECORD_ID_KEY',
  'MONGODB_URI',
  'AUTH_BOOTSTRAP_CLIENTS',
  'SIGN_IN_COOKIE_KEY',
] as const;

export function loadConfig(given: NodeJS.ProcessEnv = process.env): Config {
  const env = withSecretFiles(given);
  if (env.NODE_ENV === 'production') requireProductionKeys(env);
  const port = parseInteger(env.PORT, 8080, 'PORT');
  const host = env.HOST ?? '0.0.0.0';
  return {
    port,
    host,
    baseUrl: baseUrl(env, port),
    mongodbUri: env.MONGODB_URI || undefined,
    dataDir: path.resolve(env.DATA_DIR ?? '.data'),
    databaseName: env.DATABASE_NAME ?? 'second-opinion',
    logLevel: env.LOG_LEVEL ?? 'info',
    maxBodyBytes: parseInteger(env.MAX_BODY_BYTES, 5 * 1024 * 1024, 'MAX_BODY_BYTES'),
    maxJsonDepth: parseInteger(env.MAX_JSON_DEPTH, 64, 'MAX_JSON_DEPTH'),
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    ratePerMinute: parseInteger(env.RATE_LIMIT_PER_MINUTE, 1200, 'RATE_LIMIT_PER_MINUTE'),
    pollIntervalMs: parseInteger(env.POLL_INTERVAL_MS, 60_000, 'POLL_INTERVAL_MS'),
    shutdownGraceMs: parseInteger(env.SHUTDOWN_GRACE_MS, 10_000, 'SHUTDOWN_GRACE_MS'),
    smartKey: env.SMART_PRIVATE_KEY
      ? { pem: env.SMART_PRIVATE_KEY, keyId: env.SMART_KEY_ID ?? 'second-opinion-1', algorithm: env.SMART_KEY_ALG ?? 'RS384' }
      : undefined,
    recordIdKey: env.RECORD_ID_KEY || undefined,
    opinionKey: { pem: env.OPINION_SIGNING_KEY || undefined, keyId: env.OPINION_SIGNING_KEY_ID ?? 'opinion-1', algorithm: env.OPINION_SIGNING_ALG ?? 'ES256' },
    delivery: {
      pollMs: parseInteger(env.DELIVERY_POLL_MS, 1000, 'DELIVERY_POLL_MS'),
      leaseMs: parseInteger(env.DELIVERY_LEASE_MS, 60_000, 'DELIVERY_LEASE_MS'),
      giveUpMs: parseInteger(env.DELIVERY_GIVE_UP_MS, 24 * 3600_000, 'DELIVERY_GIVE_UP_MS'),
      baseDelayMs: parseInteger(env.DELIVERY_RETRY_BASE_MS, 5000, 'DELIVERY_RETRY_BASE_MS'),
      maxDelayMs: parseInteger(env.DELIVERY_RETRY_MAX_MS, 15 * 60_000, 'DELIVERY_RETRY_MAX_MS'),
      callRetryAttempts: parseInteger(env.DELIVERY_CALL_RETRY_ATTEMPTS, 2, 'DELIVERY_CALL_RETRY_ATTEMPTS'),
      callRetryMaxDelayMs: parseInteger(env.DELIVERY_CALL_RETRY_MAX_MS, 2000, 'DELIVERY_CALL_RETRY_MAX_MS'),
    },
    auth: {
      signingKey: { pem: env.AUTH_SIGNING_KEY || undefined, keyId: env.AUTH_SIGNING_KEY_ID ?? 'auth-1', algorithm: env.AUTH_SIGNING_ALG ?? 'ES384' },
      audience: env.AUTH_AUDIENCE || undefined,
      tokenLifetimeSeconds: parseInteger(env.AUTH_TOKEN_LIFETIME_SECONDS, 300, 'AUTH_TOKEN_LIFETIME_SECONDS'),
      externalIssuer: externalIssuer(env),
      bootstrapClients: env.AUTH_BOOTSTRAP_CLIENTS || undefined,
    },
    signIn: {
      cookieKey: env.SIGN_IN_COOKIE_KEY || undefined,
      sessionSeconds: parseInteger(env.SIGN_IN_SESSION_SECONDS, 8 * 3600, 'SIGN_IN_SESSION_SECONDS'),
      tokenSeconds: parseInteger(env.SIGN_IN_TOKEN_SECONDS, 600, 'SIGN_IN_TOKEN_SECONDS'),
      maxFailures: parseInteger(env.SIGN_IN_MAX_FAILURES, 5, 'SIGN_IN_MAX_FAILURES'),
      maxFailuresPerAddress: parseInteger(env.SIGN_IN_MAX_FAILURES_PER_ADDRESS, 20, 'SIGN_IN_MAX_FAILURES_PER_ADDRESS'),
      lockSeconds: parseInteger(env.SIGN_IN_LOCK_SECONDS, 900, 'SIGN_IN_LOCK_SECONDS'),
    },
    retrieval: {
      pageSize: parseInteger(env.RETRIEVAL_PAGE_SIZE, 50, 'RETRIEVAL_PAGE_SIZE'),
      concurrency: parseInteger(env.RETRIEVAL_CONCURRENCY, 4, 'RETRIEVAL_CONCURRENCY'),
      retryAttempts: parseInteger(env.OUTBOUND_RETRY_ATTEMPTS, 8, 'OUTBOUND_RETRY_ATTEMPTS'),
      retryBaseDelayMs: parseInteger(env.OUTBOUND_RETRY_BASE_MS, 200, 'OUTBOUND_RETRY_BASE_MS'),
      retryMaxDelayMs: parseInteger(env.OUTBOUND_RETRY_MAX_MS, 15_000, 'OUTBOUND_RETRY_MAX_MS'),
      callTimeoutMs: parseInteger(env.OUTBOUND_CALL_TIMEOUT_MS, 60_000, 'OUTBOUND_CALL_TIMEOUT_MS'),
      pollMs: parseInteger(env.RETRIEVAL_POLL_MS, 1000, 'RETRIEVAL_POLL_MS'),
      leaseMs: parseInteger(env.RETRIEVAL_LEASE_MS, 30_000, 'RETRIEVAL_LEASE_MS'),
      maxAttempts: parseInteger(env.RETRIEVAL_MAX_ATTEMPTS, 5, 'RETRIEVAL_MAX_ATTEMPTS'),
      attachmentMaxBytes: parseInteger(env.RETRIEVAL_ATTACHMENT_MAX_BYTES, 10 * 1024 * 1024, 'RETRIEVAL_ATTACHMENT_MAX_BYTES'),
      sinceMarginMs: parseInteger(env.RETRIEVAL_SINCE_MARGIN_MS, 5 * 60_000, 'RETRIEVAL_SINCE_MARGIN_MS'),
    },
    bulkExport: {
      pollMs: parseInteger(env.EXPORT_POLL_MS, 1000, 'EXPORT_POLL_MS'),
      leaseMs: parseInteger(env.EXPORT_LEASE_MS, 30_000, 'EXPORT_LEASE_MS'),
      fileMaxResources: parseInteger(env.EXPORT_FILE_MAX_RESOURCES, 100_000, 'EXPORT_FILE_MAX_RESOURCES'),
      retentionSeconds: parseInteger(env.EXPORT_RETENTION_SECONDS, 24 * 3600, 'EXPORT_RETENTION_SECONDS'),
      maxAttempts: parseInteger(env.EXPORT_MAX_ATTEMPTS, 3, 'EXPORT_MAX_ATTEMPTS'),
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

/** The environment with each <NAME>_FILE read into <NAME>; both at once is a mistake worth stopping for. */
function withSecretFiles(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const resolved = { ...env };
  for (const name of secretVariables) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) throw new Error(`${name} and ${name}_FILE are both set: give one of them`);
    try {
      resolved[name] = readFileSync(file, 'utf8').trimEnd();
    } catch (err) {
      throw new Error(`${name}_FILE names ${file}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!resolved[name]) throw new Error(`${name}_FILE names ${file}, which is empty`);
  }
  return resolved;
}

/** A key made per process would differ between replicas and change on every restart: tokens, signatures and sign-in sessions would stop checking. */
function requireProductionKeys(env: NodeJS.ProcessEnv): void {
  const missing = ['AUTH_SIGNING_KEY', 'OPINION_SIGNING_KEY', 'SIGN_IN_COOKIE_KEY'].filter((name) => !env[name]);
  if (missing.length) {
    throw new Error(
      `${missing.map((name) => `${name} (or ${name}_FILE)`).join(' and ')} required when NODE_ENV=production: every process must sign with the same keys, kept across restarts`,
    );
  }
  // The embedded database is for tests and trials (and GPL-licensed, so not in the image).
  if (!env.MONGODB_URI)
    throw new Error(
      'MONGODB_URI (or MONGODB_URI_FILE) is required when NODE_ENV=production: a MongoDB replica set, e.g. mongodb://db-0,db-1,db-2/?replicaSet=rs0',
    );
}

/** Tokens' issuer and audience and every link the service answers derive from it, so production must name it. */
function baseUrl(env: NodeJS.ProcessEnv, port: number): string {
  if (!env.BASE_URL) {
    if (env.NODE_ENV === 'production') {
      throw new Error(
        'BASE_URL is required when NODE_ENV=production: the public address clients reach the service at, e.g. https://second-opinion.example.org',
      );
    }
    return `http://localhost:${port}`;
  }
  const protocol = URL.canParse(env.BASE_URL) ? new URL(env.BASE_URL).protocol : undefined;
  if (protocol !== 'http:' && protocol !== 'https:') throw new Error(`BASE_URL must be an absolute http(s) URL, got "${env.BASE_URL}"`);
  return env.BASE_URL.replace(/\/+$/, '');
}

function externalIssuer(env: NodeJS.ProcessEnv): Config['auth']['externalIssuer'] {
  if (!env.AUTH_ISSUER !== !env.AUTH_JWKS_URL) {
    throw new Error('AUTH_ISSUER and AUTH_JWKS_URL are set together or not at all');
  }
  return env.AUTH_ISSUER && env.AUTH_JWKS_URL ? { issuer: env.AUTH_ISSUER, jwksUrl: env.AUTH_JWKS_URL } : undefined;
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
