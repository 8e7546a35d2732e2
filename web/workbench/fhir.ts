// The FHIR API with the signed-in person's token: access control and audit are the API's, unchanged.
// A refused token starts the sign-in again; other refusals come back as FhirError with the
// OperationOutcome's text, and a 404 is what the page shows for a case that is not the person's.
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { accessToken, signIn } from './auth.js';

export class FhirError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function send(path: string, init: RequestInit = {}): Promise<Response> {
  const token = accessToken() ?? (await signIn());
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  if (!headers.has('accept')) headers.set('accept', 'application/fhir+json');
  if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/fhir+json');
  const response = await fetch(path.startsWith('/') ? path : `/fhir/${path}`, { ...init, headers });
  if (response.status === 401) await signIn();
  if (!response.ok) {
    const outcome = (await response.json().catch(() => undefined)) as OperationOutcome | undefined;
    const text = outcome?.issue?.map((i) => i.details?.text ?? i.diagnostics ?? i.code).join('; ');
    throw new FhirError(response.status, text || `The service answered ${response.status}`);
  }
  return response;
}

export async function read<T extends Resource = Resource>(path: string): Promise<T> {
  return (await (await send(path)).json()) as T;
}

export async function search<T extends Resource = Resource>(query: string): Promise<T[]> {
  const bundle = await read<Bundle>(query);
  return (bundle.entry ?? []).map((e) => e.resource as T);
}

export async function write<T extends Resource = Resource>(path: string, method: 'POST' | 'PUT', body: unknown): Promise<T> {
  return (await (await send(path, { method, body: JSON.stringify(body) })).json()) as T;
}

/** An attachment's content (from /attachments/{id}, where records point), as a Blob. */
export async function attachment(url: string): Promise<Blob> {
  const path = new URL(url, location.href);
  return (await send(path.origin === location.origin ? path.pathname : url, { headers: { accept: '*/*' } })).blob();
}
