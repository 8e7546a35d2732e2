// Intake by reference ($submit) and by pull (polling, rest-hook notifications): the request is read
// from the referring server and kept here like a pushed one, so every way in lands on the same case.
// Each order is judged on its own: one that is refused is stored nowhere and stops nothing else; when
// the EHR corrects it, the next $submit or poll takes it in.
import type { Endpoint, OperationOutcomeIssue, ServiceRequest, Task } from '@medplum/fhirtypes';
import { Gate } from '../access/gate.js';
import { hasSecondOpinionCategory, profileMeta } from '../conformance/artifacts.js';
import type { FhirService, Reply } from '../fhir/interactions.js';
import { badRequest, businessRule, FhirError, outcomeOf } from '../base/outcome.js';
import { ReferringEhrClient, ReferringEhrError, type RetryPolicy } from '../outbound/referring-ehr-client.js';
import type { CursorStore } from '../store/cursors.js';
import type { Institutions } from './institutions.js';
import { isFhirId } from '../base/ids.js';

/** What one poll of an institution found: the orders taken in, and each refused one with why. */
export interface PollResult {
  found: number;
  refused: { id: string; issues: OperationOutcomeIssue[] }[];
}

export class RequestIntake {
  constructor(
    private readonly service: FhirService,
    private readonly institutions: Institutions,
    private readonly cursors: CursorStore,
    private readonly retry: RetryPolicy,
  ) {}

  /**
   * $submit: `institution` (Reference to a registered Organization) and `serviceRequestId`. A
   * referring system (`caller`: its institution) submits only for its own institution.
   */
  async submit(body: unknown, caller?: string): Promise<Reply> {
    const params = (body as { resourceType?: string; parameter?: { name: string; valueReference?: { reference?: string }; valueString?: string }[] }) ?? {};
    if (params.resourceType !== 'Parameters') {
      throw badRequest('$submit takes a Parameters resource', 'resourceType');
    }
    const institution = params.parameter?.find((p) => p.name === 'institution')?.valueReference?.reference;
    const requestId = params.parameter?.find((p) => p.name === 'serviceRequestId')?.valueString;
    if (!institution?.startsWith('Organization/')) {
      throw badRequest('institution must reference a registered Organization', 'Parameters.parameter.institution');
    }
    if (!requestId || !isFhirId(requestId)) {
      throw badRequest('serviceRequestId must be a FHIR id', 'Parameters.parameter.serviceRequestId');
    }
    if (caller && caller !== institution) {
      throw badRequest(`${institution} is not the institution this client acts for`, 'Parameters.parameter.institution');
    }
    const endpoint = await this.endpointOf(institution);
    const request = await (await this.client(endpoint)).read('ServiceRequest', requestId).catch((err: unknown) => {
      if (!(err instanceof ReferringEhrError)) throw err;
      // The institution's answer, passed on: 404 stays 404; anything else is a bad gateway.
      throw new FhirError(
        err.status === 404 ? 404 : 502,
        outcomeOf([
          {
            severity: 'error',
            code: err.status === 404 ? 'not-found' : 'transient',
            details: { text: `The institution's server did not give the request: ${err.message}` },
            expression: ['Parameters.parameter.serviceRequestId'],
          },
        ]),
      );
    });
    const { task, created } = await this.keep(endpoint, request as ServiceRequest);
    return { status: created ? 201 : 200, body: task, written: task };
  }

  /** Pull: asks one institution's server for second-opinion requests changed since the last poll. */
  async poll(endpoint: Endpoint): Promise<PollResult> {
    const key = `poll|${endpoint.id}`;
    const since = await this.cursors.get(key);
    const started = new Date();
    const { system, code } = this.service.conformance.secondOpinionCategory;
    const params: Record<string, string | number> = { category: `${system}|${code}`, _count: 50 };
    if (since) params._lastUpdated = `gt${new Date(since.getTime() - 60_000).toISOString()}`;
    const result: PollResult = { found: 0, refused: [] };
    for await (const page of (await this.client(endpoint)).pages('ServiceRequest', params)) {
      for (const entry of page.entry ?? []) {
        if (entry.resource?.resourceType !== 'ServiceRequest') continue;
        try {
          await this.keep(endpoint, entry.resource);
          result.found++;
        } catch (err) {
          // That order's refusal is its own: the poll goes on, and the order comes again once the EHR changes it.
          if (!(err instanceof FhirError)) throw err;
          result.refused.push({ id: entry.resource.id ?? '', issues: err.outcome.issue ?? [] });
        }
      }
    }
    await this.cursors.advance(key, started);
    return result;
  }

  /** Every active registered institution, once; one that fails does not stop the others. */
  async pollAll(
    onError: (endpoint: Endpoint, err: unknown) => void,
    onRefused: (endpoint: Endpoint, refused: PollResult['refused']) => void = () => undefined,
  ): Promise<void> {
    for (const endpoint of await this.institutions.activeEndpoints()) {
      await this.poll(endpoint).then(
        (result) => result.refused.length && onRefused(endpoint, result.refused),
        (err: unknown) => onError(endpoint, err),
      );
    }
  }

  async endpointOf(organization: string): Promise<Endpoint> {
    const endpoint = (await this.institutions.activeEndpoints()).find((e) => e.managingOrganization?.reference === organization);
    if (!endpoint) {
      throw badRequest(`${organization} is not a registered institution with an active Endpoint`, 'Parameters.parameter.institution');
    }
    return endpoint;
  }

  /**
   * Keeps the request here (once, by its identifier) and answers its case's Task. An order that can
   * open no case is refused (422, naming the element at fault) before anything is stored.
   */
  private async keep(endpoint: Endpoint, source: ServiceRequest): Promise<{ task: Task; created: boolean }> {
    const base = endpoint.address.replace(/\/+$/, '');
    const { id, meta, ...rest } = source;
    // Kept to the request profile it is checked against, and saying so, as every request here does.
    const request = {
      ...rest,
      meta: {
        ...(meta?.profile ? { profile: meta.profile } : profileMeta(this.service.conformance, 'ServiceRequest')),
        source: `${base}/ServiceRequest/${id}`,
      },
    } as ServiceRequest;
    const { system, code } = this.service.conformance.secondOpinionCategory;
    if (!hasSecondOpinionCategory(this.service.conformance, request)) {
      throw refusal(`ServiceRequest/${id} is not a second-opinion request: its category must carry the coding ${system}|${code}`, 'ServiceRequest.category');
    }
    const owner = endpoint.managingOrganization?.reference;
    if (!(await this.institutions.patientOf(request, owner))) {
      throw refusal(`ServiceRequest/${id} names no patient on the institution's server (subject must be Patient/id there)`, 'ServiceRequest.subject');
    }
    // Kept for the institution whose server it came from, as that institution's own request.
    const result = await this.service.createValidated(request, Gate.system(owner));
    const tasks = await this.service.repository.readMany([`Task/${result.resource.id}`]); // the case's Task has the request's id
    if (!tasks.length) {
      throw refusal(`ServiceRequest/${id} opened no case`, 'ServiceRequest');
    }
    return { task: tasks[0] as Task, created: result.created };
  }

  private async client(endpoint: Endpoint): Promise<ReferringEhrClient> {
    const base = endpoint.address.replace(/\/+$/, '');
    return new ReferringEhrClient(base, { retry: this.retry, credentials: await this.institutions.credentialsFor(base) });
  }

  /** $notify on a registered Endpoint: a rest-hook notification; answered by polling that institution (a referring system's own only). */
  async notify(endpointId: string, caller?: string): Promise<Reply> {
    const endpoint = (await this.institutions.activeEndpoints()).find((e) => e.id === endpointId && (!caller || e.managingOrganization?.reference === caller));
    if (!endpoint) {
      throw new FhirError(
        404,
        outcomeOf([{ severity: 'error', code: 'not-found', details: { text: `Endpoint/${endpointId} is not an active registered institution` } }]),
      );
    }
    const { found, refused } = await this.poll(endpoint);
    // Each refused order is named with its reason and element, so the EHR can correct it and notify again.
    const issues: OperationOutcomeIssue[] = [
      { severity: 'information', code: 'informational', details: { text: `${found} second-opinion request(s) found, ${refused.length} refused` } },
      ...refused.flatMap((r) => r.issues.map((issue) => ({ ...issue, severity: 'warning' as const }))),
    ];
    return { status: 200, body: outcomeOf(issues) };
  }
}

const refusal = businessRule;
