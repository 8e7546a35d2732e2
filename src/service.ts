// The FHIR service, built once and complete: a store that labels every version with its owning
// institution (access/ownership.ts) and writes a transaction Bundle in one database transaction where
// the database has them, the validator, the conformance artifacts, and the idempotency
// key of a second-opinion request; with the registry of referring institutions beside it.
import type { Endpoint } from '@medplum/fhirtypes';
import { Ownership } from './access/ownership.js';
import { hasSecondOpinionCategory, type Conformance } from './conformance/artifacts.js';
import { FhirService } from './fhir/interactions.js';
import { Institutions } from './intake/institutions.js';
import { requestIdentity } from './intake/open-case.js';
import type { SigningKey } from './outbound/authorization.js';
import type { Models } from './store/models.js';
import { Repository, type Labeller } from './store/repository.js';
import type { Transactions } from './store/transactions.js';
import { ResourceValidator } from './validation/validator.js';

export interface ServiceCore {
  service: FhirService;
  institutions: Institutions;
}

/** `transactions`: the database's (Transactions.of); without them, writes are made one by one. */
export function buildService(
  models: Models,
  conformance: Conformance,
  baseUrl: string,
  signingKey: SigningKey | undefined,
  transactions?: Transactions,
): ServiceCore {
  const ownership = new Ownership((resource) => hasSecondOpinionCategory(conformance, resource));
  const labeller: Labeller = (resource, placement, store) => ownership.labelsOf(resource, placement, store);
  const repository = new Repository(models, baseUrl, labeller, transactions);
  const service = new FhirService(repository, new ResourceValidator(conformance), conformance, baseUrl, { implicitCondition: requestIdentity(conformance) });
  const institutions = new Institutions(repository, conformance, signingKey);
  // A FHIR server is one institution's: a second institution's Endpoint at its address is refused.
  service.hookWrites('Endpoint', { order: 100, before: async (endpoint) => void (await institutions.refuseSharedAddress(endpoint as Endpoint)) });
  return { service, institutions };
}
