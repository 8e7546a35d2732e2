// Every call to another institution's FHIR server goes through here, over fhir-kit-client:
// reads, searches that follow every `next` link, and retries of what is worth retrying
// (429, 5xx, dropped connections) with exponential backoff and jitter, honouring Retry-After.
// Every URL is checked against the outbound rule (origin-rule.ts) before it is asked for.
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'fhir-kit-client';
import type { RequestOptions } from 'fhir-kit-client';
import type { Binary, Bundle, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import { originOf, withinBase } from './origin-rule.js';

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long one call may take, answer and body, before it is abandoned as unanswered (and retried). */
  callTimeoutMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 8, baseDelayMs: 200, maxDelayMs: 15_000, callTimeoutMs: 60_000 };

/** A call the referring server refused for good (401, 403, 404, ...) or kept failing past the retries. */
export class ReferringEhrError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** A call the outbound rule refused: never made, never retried; it names only the origin it led to. */
export class OutboundRefused extends ReferringEhrError {
  constructor(
    what: string,
    readonly refusedOrigin: string,
  ) {
    super(`${what} to ${refusedOrigin} refused: outside the institution's registered Endpoint`, undefined, false);
  }
}

interface KitError {
  response?: { status?: number };
  config?: { headers?: Headers; url?: string; method?: string };
}

/** One try of a call through fhir-kit-client, with the per-request options that carry its signal. */
type Call<T> = (options: RequestOptions) => Promise<T>;

/** Redirects followed within one call, each on the Endpoint's own base. */
const maxRedirects = 5;

/** Supplies the Authorization header of each call (see authorization.ts); none for open sandboxes. */
export interface Credentials {
  header(): Promise<string | undefined>;
  invalidate(): void;
}

export interface ClientOptions {
  retry?: RetryPolicy;
  credentials?: Credentials;
  /** Hears the origin of each URL the outbound rule refused (for a log line). */
  onRefused?: (origin: string) => void;
  /** Ends the call in flight and any wait before a retry at once, with its abort error: the work is stopping. */
  signal?: AbortSignal;
}

export class ReferringEhrClient {
  private readonly client: Client;
  private readonly retry: RetryPolicy;
  private readonly credentials?: Credentials;
  private readonly onRefused?: (origin: string) => void;
  private readonly signal?: AbortSignal;

  /** Redirects are not followed by fetch but here, so that each target is checked before it is asked for. */
  constructor(
    readonly baseUrl: string,
    options: ClientOptions = {},
  ) {
    this.retry = options.retry ?? defaultRetryPolicy;
    this.credentials = options.credentials;
    this.onRefused = options.onRefused;
    this.signal = options.signal;
    this.client = new Client({
      baseUrl,
      // A server that caches searches (HAPI FHIR reuses results for 60 s) answers a pull from what is there now.
      customHeaders: { 'cache-control': 'no-cache' },
      requestOptions: { redirect: 'manual' },
      // fhir-kit-client awaits the signer (http-client.js), though its type says it returns void.
      // eslint-disable-next-line @typescript-eslint/no-misused-promises
      requestSigner: async (url: string, init: RequestInit) => {
        this.checkOutbound('a call', url);
        const header = await this.credentials?.header();
        if (header) (init.headers as Headers).set('authorization', header);
      },
    });
  }

  /** Refuses (OutboundRefused) a URL outside this Endpoint's base, before anything is sent. */
  private checkOutbound(what: string, url: string): void {
    if (withinBase(this.baseUrl, url)) return;
    const origin = originOf(url);
    this.onRefused?.(origin);
    throw new OutboundRefused(what, origin);
  }

  async read(type: string, id: string): Promise<Resource> {
    return (await this.withRetries(`read ${type}`, (options) => this.client.read({ resourceType: type, id, options }))) as Resource;
  }

  async capabilities(): Promise<CapabilityStatement | undefined> {
    const statement = (await this.withRetries('metadata', (options) => this.client.capabilityStatement(options))) as Resource;
    return statement.resourceType === 'CapabilityStatement' ? statement : undefined;
  }

  /** Posts a transaction Bundle; answers the transaction-response. */
  async transaction(bundle: Bundle): Promise<Bundle> {
    return (await this.withRetries('transaction', (options) => this.client.transaction({ body: bundle as never, options }))) as unknown as Bundle;
  }

  async update(resource: Resource & { id: string }): Promise<Resource> {
    return (await this.withRetries(`update ${resource.resourceType}`, (options) =>
      this.client.update({ resourceType: resource.resourceType, id: resource.id, body: resource as never, options }),
    )) as Resource;
  }

  /** The first page of a search. */
  async search(type: string, searchParams: Record<string, string | number>): Promise<Bundle> {
    return (await this.withRetries(`search ${type}`, (options) => this.client.search({ resourceType: type, searchParams, options }))) as unknown as Bundle;
  }

  /** Each page of a search, following `next` links to the end. */
  pages(type: string, searchParams: Record<string, string | number>): AsyncGenerator<Bundle> {
    return this.following(`search ${type}`, (options) => this.client.search({ resourceType: type, searchParams, options }));
  }

  /**
   * Each page of `Patient/{id}/$everything`, following `next` links to the end. `judgeFirst`: the
   * second page is asked for only once the caller asks for it, so that a caller who stops after the
   * first page has transferred that page only.
   */
  everything(patientId: string, input: Record<string, string | number>, judgeFirst = false): AsyncGenerator<Bundle> {
    return this.following(
      'Patient $everything',
      (options) => this.client.operation({ name: 'everything', resourceType: 'Patient', id: patientId, method: 'GET', input, options }),
      judgeFirst,
    );
  }

  /**
   * A Binary on this server (`Binary/id`, relative or under the base), as bytes. Its size is known
   * only once read, so the caller checks it; a declared Attachment.size is checked before asking.
   */
  async binary(id: string): Promise<{ contentType?: string; data: Buffer }> {
    const binary = (await this.read('Binary', id)) as Binary;
    return { contentType: binary.contentType, data: Buffer.from(binary.data ?? '', 'base64') };
  }

  /**
   * The next page is asked for as soon as a page arrives, so the server works on it while the caller
   * stores this one: one page ahead at most, and a failure surfaces where the caller asks for it.
   */
  private async *following(what: string, first: Call<unknown>, judgeFirst = false): AsyncGenerator<Bundle> {
    let page = (await this.withRetries(what, first)) as Bundle;
    for (let ahead = !judgeFirst; ; ahead = true) {
      const current = page;
      const fetchNext = (): Promise<Bundle> | undefined =>
        current.link?.some((l) => l.relation === 'next')
          ? (this.withRetries(
              `next page of ${what}`,
              (options) => this.client.nextPage({ bundle: current as never, options }) as Promise<unknown>,
            ) as Promise<Bundle>)
          : undefined;
      const early = ahead ? fetchNext() : undefined;
      // A caller that stops early never awaits it: its failure must not surface as unhandled.
      early?.catch(() => undefined);
      yield current;
      const next = ahead ? early : fetchNext();
      if (!next) return;
      page = await next;
    }
  }

  /** Runs a call, retrying what a later attempt can fix. Messages name the call, never its content. */
  private async withRetries<T>(what: string, first: Call<T>): Promise<T> {
    let renewed = false;
    let call = first;
    let redirects = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(call);
      } catch (err) {
        if (this.signal?.aborted) throw err; // stopping: neither a failure of the server's nor one to retry
        if (err instanceof ReferringEhrError && !err.retryable) throw err; // from the token endpoint, or the outbound rule
        const status = err instanceof ReferringEhrError ? err.status : (err as KitError).response?.status;
        const location = status && status >= 300 && status < 400 ? (err as KitError).config?.headers?.get?.('location') : undefined;
        if (location && (err as KitError).config?.method === 'GET' && redirects < maxRedirects) {
          // Followed like the call itself: on the Endpoint's base only, checked before it is asked for.
          const target = new URL(location, (err as KitError).config?.url ?? this.baseUrl).href;
          this.checkOutbound(`a redirect of ${what}`, target);
          redirects++;
          call = (options) => this.client.request(target, { options }) as Promise<T>;
          attempt--;
          continue;
        }
        if (status === 401 && this.credentials && !renewed) {
          // A token can be revoked before it expires: fetch a new one, once.
          renewed = true;
          this.credentials.invalidate();
          continue;
        }
        const retryable = status === undefined || status === 429 || status === 408 || status >= 500;
        if (!retryable) {
          throw new ReferringEhrError(`${what} at ${this.baseUrl}: HTTP ${status}`, status, false);
        }
        if (attempt >= this.retry.attempts) {
          throw new ReferringEhrError(`${what} at ${this.baseUrl}: ${status ? `HTTP ${status}` : 'no answer'} after ${attempt} attempts`, status, true);
        }
        await sleep(this.delay(attempt, (err as KitError).config?.headers?.get?.('retry-after')), undefined, { signal: this.signal });
      }
    }
  }

  /**
   * One try of a call, with a signal of its own that the stop and the call's time limit end. The
   * client's long-lived stop signal only ever holds this try's listener, taken off when the try
   * settles (AbortSignal.any would tie every call's signal to it for the process's life).
   */
  private async attempt<T>(call: Call<T>): Promise<T> {
    this.signal?.throwIfAborted();
    const own = new AbortController();
    const timer = setTimeout(() => own.abort(new DOMException(`no answer within ${this.retry.callTimeoutMs} ms`, 'TimeoutError')), this.retry.callTimeoutMs);
    const stop = (): void => own.abort(this.signal?.reason);
    this.signal?.addEventListener('abort', stop, { once: true });
    try {
      return await call({ signal: own.signal });
    } finally {
      clearTimeout(timer);
      this.signal?.removeEventListener('abort', stop);
    }
  }

  private delay(attempt: number, retryAfter: string | null | undefined): number {
    if (retryAfter) {
      const seconds = Number(retryAfter);
      const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
      if (ms >= 0) return Math.min(ms, this.retry.maxDelayMs * 4);
    }
    // Full jitter: a random wait up to the exponential bound.
    return Math.random() * Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
  }
}
