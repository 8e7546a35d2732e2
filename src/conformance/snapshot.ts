// Builds a profile's snapshot from its differential and its base, as FHIR tooling publishes it.
// Our profiles constrain existing elements only (no slicing), so a merge by element id is complete.
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { baseStructure } from './base-definitions.js';

const mergedKeys = new Set(['min', 'max', 'mustSupport', 'short', 'definition', 'binding', 'type', 'comment', 'requirements']);

export function withSnapshot(profile: StructureDefinition): StructureDefinition {
  if (profile.snapshot?.element?.length) {
    return profile;
  }
  const base = profile.baseDefinition ? baseStructure(profile.baseDefinition) : undefined;
  if (!base?.snapshot?.element) {
    throw new Error(`profile ${profile.url}: base ${profile.baseDefinition} is not a known FHIR R4 definition`);
  }
  const elements: ElementDefinition[] = structuredClone(base.snapshot.element);
  const byId = new Map(elements.map((e) => [e.id ?? e.path, e]));
  for (const diff of profile.differential?.element ?? []) {
    const target = byId.get(diff.id ?? diff.path);
    if (!target) {
      throw new Error(`profile ${profile.url}: element ${diff.id ?? diff.path} is not in ${profile.baseDefinition}`);
    }
    for (const [key, value] of Object.entries(diff)) {
      if (mergedKeys.has(key) || key.startsWith('fixed') || key.startsWith('pattern')) {
        (target as unknown as Record<string, unknown>)[key] = value;
      }
    }
    if (diff.constraint) {
      target.constraint = [...(target.constraint ?? []), ...diff.constraint];
    }
  }
  return { ...profile, snapshot: { element: elements } };
}
