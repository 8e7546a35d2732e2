// Referring institutions: an Organization with the Endpoint of its FHIR server, registered through
// the API. The Endpoint's endpoint-auth extension says how to authenticate there; the secrets it
// names live in the environment, so the API has none to return.
import { Operator } from '@medplum/core';
import type { Endpoint, Extension, Resource, ServiceRequest } from '@medplum/fhirtypes';
import { unprocessable } from '../fhir/outcome.js';
import type { FhirService } from '../fhir/interactions.js';
import { TokenSource, type EndpointAuth, type SigningKey } from '../outbound/authorization.js';
import type { Credentials } from '../outbound/referring-ehr-client.js';

const absolutePatient = /^(https?:\/\/.+)\/Patient\/([A-Za-z0-9\-.]{1,64})$/;
const relativePatient = /^Patient\/([A-Za-z0-9\-.]{1,64})$/;

export interface PatientAtSource {
  ehrBase: string;
  patientId: string;
}

export class Institutions {
  private readonly tokenSources = new Map<string, TokenSource>();

  constructor(
    private readonly service: FhirService,
    private readonly signingKey: SigningKey | undefined,
  ) {}

  /**
   * Where the request's patient lives: its subject as an absolute URL, or a relative subject on the
   * registered FHIR server that `meta.source` names.
   */
  async patientOf(request: ServiceRequest): Promise<PatientAtSource | undefined> {
    const subject = request.subject?.reference ?? '';
    const absolute = absolutePatient.exec(subject);
    if (absolute) {
      // Only a registered, active Endpoint is ever called: a subject anywhere else places no patient.
      const endpoint = await this.endpointFor(absolute[1]);
      return endpoint ? { ehrBase: trim(endpoint.address as string), patientId: absolute[2] } : undefined;
    }
    const relative = relativePatient.exec(subject);
    const source = request.meta?.source;
    if (!relative || !source) return undefined;
    const endpoint = await this.endpointFor(source);
    return endpoint ? { ehrBase: trim(endpoint.address as string), patientId: relative[1] } : undefined;
  }

  /**
   * A write hook: a second-opinion request whose subject is an absolute URL is refused unless that URL
   * is on a registered, active Endpoint, so that no request makes the service call a server of a
   * caller's choosing. Refused before anything is stored or called; the URL is not quoted back.
   */
  refuseUnregisteredSubject(isSecondOpinion: (resource: Resource) => boolean) {
    return async (resource: Resource): Promise<undefined> => {
      if (!isSecondOpinion(resource)) return undefined;
      const absolute = absolutePatient.exec((resource as ServiceRequest).subject?.reference ?? '');
      if (absolute && !(await this.endpointFor(absolute[1]))) {
        throw unprocessable([
          {
            severity: 'error',
            code: 'business-rule',
            details: { text: "The request's patient is on a FHIR server that is not a registered, active Endpoint; register the institution's endpoint first" },
            expression: ['ServiceRequest.subject'],
          },
        ]);
      }
      return undefined;
    };
  }

  async activeEndpoints(): Promise<Endpoint[]> {
    const { matches } = await this.service.repository.search({ resourceType: 'Endpoint', filters: [{ code: 'status', operator: Operator.EQUALS, value: 'active' }], count: 1000 });
    return matches.map((m) => m.resource as Endpoint);
  }

  /** The active registered Endpoint whose address is (a prefix of) the URL. */
  async endpointFor(url: string): Promise<Endpoint | undefined> {
    return this.endpointAmong(await this.activeEndpoints(), url);
  }

  /** The Endpoint of `endpoints` whose address is the longest prefix of the URL. */
  endpointAmong(endpoints: Endpoint[], url: string): Endpoint | undefined {
    const target = trim(url);
    return endpoints
      .filter((e) => e.address && (target === trim(e.address) || target.startsWith(`${trim(e.address)}/`)))
      .sort((a, b) => (b.address as string).length - (a.address as string).length)[0];
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
      source = new TokenSource(trim(endpoint.address as string), auth, this.signingKey);
      this.tokenSources.set(key, source);
    }
    return source;
  }

  authOf(endpoint: Endpoint): EndpointAuth | undefined {
    const url = `${this.service.conformance.canonical}/StructureDefinition/endpoint-auth`;
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
