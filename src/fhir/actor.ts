// Who is making the current write, for the records the workflow keeps (a Provenance per Task version).
// An API request's agent is the caller its access token names (its fhirUser, else its client), or,
// for a coordinator or an admin, the agent its X-Provenance header names; work the service does on its own, such as retrieval, is the service's.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { NextFunction, Request, Response } from 'express';
import type { ProvenanceAgent } from '@medplum/fhirtypes';
import { seesAllCases } from '../access/policy.js';
import { principalOf, type Principal } from '../auth/bearer.js';
import { badRequest, type FhirError } from '../base/outcome.js';

const requestAgent = new AsyncLocalStorage<ProvenanceAgent>();

const serviceAgent: ProvenanceAgent = { who: { display: 'second-opinion service' } };
const unnamedClient: ProvenanceAgent = { who: { display: 'API client that did not name itself (no X-Provenance)' } };

/** The agent an access token names: its person (fhirUser), else its client. */
function agentOfToken(principal: Principal | undefined): ProvenanceAgent | undefined {
  if (!principal) return undefined;
  return {
    who: principal.fhirUser
      ? { reference: principal.fhirUser }
      : { identifier: { system: principal.issuer, value: principal.subject }, display: `client ${principal.subject}` },
  };
}

/** The agent of the write in progress: the request's, else the service itself. */
export function currentAgent(): ProvenanceAgent {
  return requestAgent.getStore() ?? serviceAgent;
}

/** Express middleware: runs the rest of the request as its agent (the token's caller, or X-Provenance's for those who may name one). */
export function agentOfRequest(req: Request, res: Response, next: NextFunction): void {
  let agent: ProvenanceAgent;
  try {
    const header = req.get('X-Provenance');
    const principal = principalOf(res);
    // A referring system or a reviewer is who its token says; only those who see every case may act in another's name.
    const mayName = !principal || seesAllCases(principal.role);
    agent = header !== undefined && mayName ? agentFromHeader(header) : (agentOfToken(principal) ?? unnamedClient);
  } catch (err) {
    const { status, outcome } = err as FhirError;
    res.status(status).type('application/fhir+json').send(JSON.stringify(outcome));
    return;
  }
  requestAgent.run(agent, next);
}

/** The first agent of the Provenance in the header (FHIR R4 http.html#provenance); its target is the server's to fill. */
function agentFromHeader(header: string): ProvenanceAgent {
  let provenance: { resourceType?: unknown; agent?: unknown };
  try {
    provenance = JSON.parse(header) as typeof provenance;
  } catch {
    throw badRequest('X-Provenance must be a Provenance resource in JSON', 'X-Provenance');
  }
  const agent = Array.isArray(provenance?.agent) ? (provenance.agent[0] as ProvenanceAgent | undefined) : undefined;
  const who = agent?.who;
  if (provenance?.resourceType !== 'Provenance' || !who || typeof who !== 'object' || !(typeof who.reference === 'string' || typeof who.display === 'string')) {
    throw badRequest('X-Provenance must be a Provenance whose agent[0].who has a reference or a display', 'X-Provenance.agent[0].who');
  }
  const onBehalfOf = agent.onBehalfOf?.reference ? { onBehalfOf: { reference: agent.onBehalfOf.reference } } : {};
  return { who: { ...(who.reference ? { reference: who.reference } : {}), ...(who.display ? { display: who.display } : {}) }, ...onBehalfOf };
}
