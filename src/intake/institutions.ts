// Referring institutions: an Organization with the Endpoint of its FHIR server, registered through
// the API. The Endpoint's endpoint-auth extension says how to authenticate there; the secrets it
// names live in the environment, so the API has none to return.
import { Operator } from '@medplum/core';
import type { Endpoint, Extension, ServiceRequest } from '@medplum/fhirtypes';
import { businessRule } from '../base/outcome.js';
import type { Conformance } from '../conformance/artifacts.js';
import { TokenSource, type EndpointAuth, type SigningKey } from '../outbound/authorization.js';
import type { Credentials } from '../outbound/referring-ehr-client.js';
import type { Repository } from '../store/repository.js';
import { fhirId } from '../base/ids.js';

const absolutePatient = new RegExp(String.raw`^(https?:\/\/.+)\/Patient\/(${fhirId})$`);
const relativePatient = new RegExp(String.raw`^Patient\/(${fhirId})$`);

export interface PatientAtSource {
  ehrBase: string;
  patientId: string;
  /** The institution whose registered Endpoint `ehrBase` is, as `Organization/x`. */
  institution?: string;
}

/** Whether the request names its patient by an absolute URL (a server it would make the service call). */
export const namesPatientByUrl = (request: ServiceRequest): boolean => absolutePatient.test(request.subject?.reference ?? '');

/**
 * Where the request's patient lives: its subject as an absolute URL on a registered, active Endpoint,
 * or a relative subject on the registered server that `meta.source` names (or the owner's only one).
 * With `owner` (the request's institution, decided by the server), only the owner's Endpoints count:
 * a request never places its patient on another institution's server.
 */
export async function patientAt(repository: Repository, request: ServiceRequest, owner: string | undefined): Promise<PatientAtSource | undefined> {
  const endpoints = (await activeEndpoints(repository)).filter((e) => !owner || e.managingOrganization?.reference === owner);
  const subject = request.subject?.reference ?? '';
  const absolute = absolutePatient.exec(subject);
  const relative = relativePatient.exec(subject);
  const source = request.meta?.source;
  const endpoint = absolute
    ? endpointAmong(endpoints, absolute[1])
    : relative && source
      ? endpointAmong(endpoints, source)
      : relative && owner && endpoints.length === 1
        ? endpoints[0]
        : undefined;
  const patientId = absolute?.[2] ?? relative?.[1];
  return endpoint && patientId ? { ehrBase: trim(endpoint.address), patientId, institution: endpoint.managingOrganization?.reference } : undefined;
}

/**
 * The registered, active Endpoints: directory records, read whoever asks; from memory but for a
 * short time after another process registers one (Repository.searchCached).
 */
export async function activeEndpoints(repository: Repository): Promise<Endpoint[]> {
  const { matches } = await repository.searchCached({
    resourceType: 'Endpoint',
    filters: [{ code: 'status', operator: Operator.EQUALS, value: 'active' }],
    count: 1000,
  });
  return matches.map((m) => m.resource as Endpoint);
}

/** The Endpoint of `endpoints` whose address is the longest prefix of the URL. */
export function endpointAmong(endpoints: Endpoint[], url: string): Endpoint | undefined {
  const target = trim(url);
  return endpoints
    .filter((e) => e.address && (target === trim(e.address) || target.startsWith(`${trim(e.address)}/`)))
    .sort((a, b) => b.address.length - a.address.length)[0];
}

export class Institutions {
  private readonly tokenSources = new Map<string, TokenSource>();

  constructor(
    private readonly repository: Repository,
    private readonly conformance: Conformance,
    private readonly signingKey: SigningKey | undefined,
  ) {}

  /** Where the request's patient lives (see patientAt). */
  patientOf(request: ServiceRequest, owner: string | undefined): Promise<PatientAtSource | undefined> {
    return patientAt(this.repository, request, owner);
  }

  /** An Endpoint's address is one institution's: a second institution registering the same server (or one under it) is refused. */
  async refuseSharedAddress(endpoint: Endpoint): Promise<void> {
    if (endpoint.status !== 'active' || !endpoint.address) return;
    const owner = endpoint.managingOrganization?.reference;
    const address = trim(endpoint.address);
    const clash = (await this.activeEndpoints()).find(
      (e) =>
        e.id !== endpoint.id &&
        e.address &&
        e.managingOrganization?.reference !== owner &&
        [trim(e.address), address].some((a, i, both) => both[1 - i] === a || both[1 - i].startsWith(`${a}/`)),
    );
    if (clash) {
      throw businessRule(
        'Another institution has an active Endpoint at this address (or one that contains it): a FHIR server belongs to one institution',
        'Endpoint.address',
      );
    }
  }

  activeEndpoints(): Promise<Endpoint[]> {
    return activeEndpoints(this.repository);
  }

  /** The active registered Endpoint whose address is (a prefix of) the URL. */
  async endpointFor(url: string): Promise<Endpoint | undefined> {
    return endpointAmong(await this.activeEndpoints(), url);
  }

  /** Credentials for calls to the FHIR server at `ehrBase`; undefined where none are registered. */
  async credentialsFor(ehrBase: string): Promise<Credentials | undefined> {
    const endpoint = await this.endpointFor(ehrBase);
    const auth = endpoint ? this.authOf(endpoint) : undefined;
    if (!endpoint || !auth || auth.mode === 'none') return undefined;
    // One token source per version of the Endpoint: a changed registration starts afresh.
    const key = `${endpoint.id}/${endpoint.meta?.versionId}`;
    let source = this.tokenSources.get(key);
    if (!source) {
      source = new TokenSource(trim(endpoint.address), auth, this.signingKey);
      this.tokenSources.set(key, source);
    }
    return source;
  }

  authOf(endpoint: Endpoint): EndpointAuth | undefined {
    const url = `${this.conformance.canonical}/StructureDefinition/endpoint-auth`;
    const extension = endpoint.extension?.find((e) => e.url === url);
    if (!extension) return undefined;
    const part = (name: string): string | undefined => {
      const sub = extension.extension?.find((e: Extension) => e.url === name);
      return sub?.valueCode ?? sub?.valueString ?? sub?.valueUrl ?? sub?.valueUri;
    };
    const mode = part('mode');
    const clientId = part('clientId') ?? '';
    if (mode === 'client-credentials') {
      return { mode, clientId, tokenUrl: part('tokenUrl') ?? '', scope: part('scope'), secretEnv: part('secretEnv') ?? '' };
    }
    if (mode === 'smart-backend') {
      return { mode, clientId, tokenUrl: part('tokenUrl'), scope: part('scope') };
    }
    return { mode: 'none' };
  }
}

function trim(url: string): string {
  return url.replace(/\/+$/, '');
}
