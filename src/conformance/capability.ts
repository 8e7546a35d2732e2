// GET /fhir/metadata: the CapabilityStatement, built from what the server really does: the types it
// stores, the search parameters it indexes, the profiles and operations it loaded from profiles/.
import { createRequire } from 'node:module';
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { supportedParameters } from '../store/search/parameters.js';
import { storedResourceTypes } from '../base/resource-types.js';
import type { Conformance } from './artifacts.js';
import { classOf } from '../access/policy.js';

/** The software's version, as the package states it (dist/src/conformance/ is three levels below it). */
const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

export function capabilityStatement(conformance: Conformance, fhirBase: string): CapabilityStatement {
  const operations = [...conformance.operations.values()];
  const resource: CapabilityStatementRestResource[] = storedResourceTypes.map((type) => {
    const params = [...supportedParameters(type).values()];
    const profiles = [...conformance.profiles.values()].filter((p) => p.type === type).map((p) => p.url);
    return {
      type: type as CapabilityStatementRestResource['type'],
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      ...(profiles.length ? { supportedProfile: profiles } : {}),
      // The audit trail is append-only: read and searched, never written through the API.
      interaction: (classOf(type) === 'audit'
        ? ['read', 'vread', 'history-instance', 'search-type']
        : ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type']
      ).map((code) => ({ code })) as CapabilityStatementRestResource['interaction'],
      versioning: 'versioned-update',
      readHistory: true,
      // Patient data gets its ids from the server (fhir/interactions.ts, existing): a PUT to a new id is
      // refused; the audit trail is not written through the API at all.
      updateCreate: classOf(type) === 'directory' || classOf(type) === 'cohort',
      conditionalCreate: true,
      // If-None-Match and If-Modified-Since answer 304 when nothing changed (ETag and Last-Modified, fhir/router.ts).
      conditionalRead: 'full-support',
      conditionalUpdate: false,
      conditionalDelete: 'not-supported',
      searchInclude: params.filter((p) => p.kind === 'reference').map((p) => `${type}:${p.code}`),
      searchRevInclude: storedResourceTypes.flatMap((other) =>
        [...supportedParameters(other).values()].filter((p) => p.kind === 'reference' && p.targets.includes(type)).map((p) => `${other}:${p.code}`),
      ),
      searchParam: [
        { name: '_id', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id' },
        { name: '_lastUpdated', type: 'date', definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated' },
        ...params.map((p) => ({ name: p.code, type: p.kind, definition: p.definition.url })),
      ] as CapabilityStatementRestResource['searchParam'],
      operation: operations
        .filter((op) => (op.type || op.instance) && ['Resource', type].some((t) => (op.resource as string[] | undefined)?.includes(t)))
        .map((op) => ({ name: op.code, definition: op.url as string })),
    };
  });
  return {
    ...conformance.capabilityTemplate,
    id: undefined,
    status: 'active',
    date: new Date().toISOString(),
    software: { ...conformance.capabilityTemplate.software, name: conformance.capabilityTemplate.software?.name ?? 'second-opinion-service', version },
    implementation: {
      ...conformance.capabilityTemplate.implementation,
      description: conformance.capabilityTemplate.implementation?.description ?? '',
      url: fhirBase,
    },
    rest: [
      {
        mode: 'server',
        // Where tokens come from is told by .well-known/smart-configuration: SMART's oauth-uris extension
        // would need an authorization endpoint, which a Backend Services-only server does not have.
        security: conformance.capabilityTemplate.rest?.[0]?.security,
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        operation: operations.filter((op) => op.system).map((op) => ({ name: op.code, definition: op.url as string })),
      },
    ],
  };
}
