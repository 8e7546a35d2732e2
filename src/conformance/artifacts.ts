// Loads the conformance artifacts in profiles/ (the FHIR JSON that drives validation, the
// CapabilityStatement and operation parameters) and indexes them for the rest of the service.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  CapabilityStatement,
  CodeableConcept,
  CodeSystem,
  Coding,
  ConceptMap,
  Measure,
  OperationDefinition,
  Resource,
  SearchParameter,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import { registerSearchParameters } from '../store/search/parameters.js';
import { loadBaseDefinitions } from '../base/base-definitions.js';
import { Terminology } from './terminology.js';

export interface Conformance {
  /** The one canonical base of every artifact, from profiles/package.json. */
  canonical: string;
  profiles: Map<string, StructureDefinition>;
  extensions: Map<string, StructureDefinition>;
  codeSystems: Map<string, CodeSystem>;
  /** Expansions of our ValueSets and of FHIR R4's, for required bindings. */
  terminology: Terminology;
  operations: Map<string, OperationDefinition>;
  conceptMaps: Map<string, ConceptMap>;
  /** The outcome Measures, by id; installed in the store at start-up (see outcomes/). */
  measures: Map<string, Measure>;
  /** Our own search parameters, offered besides FHIR's (see store/search/parameters.ts). */
  searchParameters: SearchParameter[];
  capabilityTemplate: CapabilityStatement;
  /** The coding that marks a resource as part of a second-opinion case. */
  secondOpinionCategory: Coding;
  /** Every artifact as loaded, for serving and for tests. */
  artifacts: Resource[];
}

export function defaultProfilesDir(): string {
  if (process.env.PROFILES_DIR) {
    return process.env.PROFILES_DIR;
  }
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'profiles', 'package.json')) && path.dirname(dir) !== dir) {
    dir = path.dirname(dir);
  }
  return path.join(dir, 'profiles');
}

/** The one canonical base of every artifact, from profiles/package.json (without loading the artifacts). */
export function canonicalBase(dir = defaultProfilesDir()): string {
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { canonical: string }).canonical;
}

export function loadConformance(dir = defaultProfilesDir()): Conformance {
  loadBaseDefinitions();
  const manifest = { canonical: canonicalBase(dir) };
  const artifacts = readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'package.json')
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Resource);

  const conformance: Conformance = {
    canonical: manifest.canonical,
    profiles: new Map(),
    extensions: new Map(),
    codeSystems: new Map(),
    terminology: undefined as unknown as Terminology,
    operations: new Map(),
    conceptMaps: new Map(),
    measures: new Map(),
    searchParameters: [],
    capabilityTemplate: undefined as unknown as CapabilityStatement,
    secondOpinionCategory: undefined as unknown as Coding,
    artifacts,
  };
  const valueSets: ValueSet[] = [];
  for (const artifact of artifacts) {
    const url = (artifact as { url?: string }).url;
    if (!url?.startsWith(manifest.canonical + '/')) {
      throw new Error(`profiles/: ${artifact.resourceType}/${artifact.id} url ${url} is not under ${manifest.canonical}`);
    }
    switch (artifact.resourceType) {
      case 'StructureDefinition': {
        // The snapshot is HL7's generator's, committed beside the differential (npm run profiles:snapshots).
        if (!artifact.snapshot?.element?.length) {
          throw new Error(`profiles/: StructureDefinition/${artifact.id} has no snapshot; run npm run profiles:snapshots`);
        }
        (artifact.type === 'Extension' ? conformance.extensions : conformance.profiles).set(url, artifact);
        break;
      }
      case 'CodeSystem':
        conformance.codeSystems.set(url, artifact);
        break;
      case 'ValueSet':
        valueSets.push(artifact);
        break;
      case 'OperationDefinition':
        conformance.operations.set(artifact.code, artifact);
        break;
      case 'CapabilityStatement':
        conformance.capabilityTemplate = artifact;
        break;
      case 'ConceptMap':
        conformance.conceptMaps.set(url, artifact);
        break;
      case 'Measure':
        conformance.measures.set(artifact.id as string, artifact);
        break;
      case 'SearchParameter':
        conformance.searchParameters.push(artifact);
        break;
      default:
        throw new Error(`profiles/: unexpected artifact type ${artifact.resourceType}`);
    }
  }
  registerSearchParameters(conformance.searchParameters);
  conformance.terminology = new Terminology([...conformance.codeSystems.values(), ...valueSets]);
  const category = [...conformance.codeSystems.values()].find((cs) => cs.id === 'second-opinion-category');
  if (!category?.concept?.[0] || !conformance.capabilityTemplate) {
    throw new Error('profiles/: the second-opinion-category CodeSystem and the CapabilityStatement are required');
  }
  conformance.secondOpinionCategory = { system: category.url, code: category.concept[0].code };
  return conformance;
}

/** True when the resource carries the second-opinion category (in `category` or `code`). */
export function hasSecondOpinionCategory(conformance: Conformance, resource: Resource): boolean {
  const { system, code } = conformance.secondOpinionCategory;
  const r = resource as { category?: CodeableConcept | CodeableConcept[]; code?: CodeableConcept };
  const concepts = [r.category, r.code].flat().filter((c): c is CodeableConcept => !!c && typeof c === 'object');
  return concepts.some((c) => c.coding?.some((coding) => coding.system === system && coding.code === code));
}

/** The meta.profile of what the service makes of a `type` from its own profile: every such resource declares it, so a receiver can check it. */
export function profileMeta(conformance: Conformance, type: string): { profile: string[] } | undefined {
  const url = [...conformance.profiles.values()].find((p) => p.type === type)?.url;
  return url ? { profile: [url] } : undefined;
}
