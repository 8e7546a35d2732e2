// The values of a search parameter read straight from a resource's JSON, for the expressions that are
// only a path (`Task.owner`), a union of paths, a choice cast (`(X.occurrence as dateTime)`) or a
// reference's type test (`.where(resolve() is Patient)`): nearly all of FHIR R4's. Evaluating FHIRPath
// for each of a record's 15 to 30 parameters was most of the cost of storing a retrieved chart; a
// compiled path gives the same values (test/search-extractors.test.ts checks it on every parameter)
// and anything else is left to FHIRPath.
import { tryGetDataType, type InternalSchemaElement } from '@medplum/core';

/** The values a parameter's expression selects from a resource, as FHIRPath's typed values' `value`s. */
export type Extractor = (resource: object) => unknown[];

interface Step {
  /** The JSON keys the step reads: the element's own, or a choice element's typed keys. */
  keys: string[];
}

interface PathPlan {
  steps: Step[];
  /** `.where(resolve() is <type>)`: keep only references to that type. */
  referenceTo?: string;
}

const pathPart = /^([A-Z][A-Za-z]+)((?:\.[a-z][A-Za-z]*)+)(?:\.where\(\(?resolve\(\) is ([A-Z][A-Za-z]+)\)?\))?$/;
const castPart = /^\(([A-Z][A-Za-z]+)((?:\.[a-z][A-Za-z]*)+) as ([A-Za-z]+)\)$/;

/** The compiled expression of `resourceType`'s parameter, or undefined when it is more than paths. */
export function compileExtractor(resourceType: string, expression: string): Extractor | undefined {
  const plans: PathPlan[] = [];
  // A definition shared by several types lists each type's paths; the others' select nothing here.
  const own = expression
    .split(' | ')
    .map((p) => p.trim())
    .filter((p) => p.replace(/^\(/, '').startsWith(`${resourceType}.`));
  if (!own.length) return undefined;
  for (const part of own) {
    const cast = castPart.exec(part);
    const path = cast ? undefined : pathPart.exec(part);
    const [, type, dotted, last] = cast ?? path ?? [];
    if (type !== resourceType || !dotted) return undefined;
    const steps = planSteps(type, dotted.slice(1).split('.'), cast ? last : undefined);
    if (!steps) return undefined;
    plans.push({ steps, ...(path && last ? { referenceTo: last } : {}) });
  }
  return (resource) => plans.flatMap((plan) => select(resource, plan));
}

/** The keys of each step, from the type definitions; undefined for a path they do not describe. */
function planSteps(resourceType: string, names: string[], castTo?: string): Step[] | undefined {
  const steps: Step[] = [];
  let typeName: string | undefined = resourceType;
  for (const [i, name] of names.entries()) {
    const elements: Record<string, InternalSchemaElement> | undefined = typeName ? tryGetDataType(typeName)?.elements : undefined;
    const plain: InternalSchemaElement | undefined = elements?.[name];
    const choice = elements?.[`${name}[x]`];
    const lastStep = i === names.length - 1;
    if (plain && !(castTo && lastStep)) {
      steps.push({ keys: [name] });
      typeName = plain.type.length === 1 ? plain.type[0].code : undefined;
    } else if (choice && lastStep) {
      const codes = choice.type.map((t) => t.code).filter((code) => !castTo || code === castTo);
      if (!codes.length) return undefined;
      steps.push({ keys: codes.map((code) => `${name}${code[0].toUpperCase()}${code.slice(1)}`) });
    } else {
      return undefined;
    }
  }
  return steps;
}

function select(resource: object, plan: PathPlan): unknown[] {
  let values: unknown[] = [resource];
  for (const { keys } of plan.steps) {
    const next: unknown[] = [];
    for (const value of values) {
      if (!value || typeof value !== 'object') continue;
      for (const key of keys) {
        const child = (value as Record<string, unknown>)[key];
        if (Array.isArray(child)) next.push(...(child as unknown[]).filter((c) => c !== undefined && c !== null));
        else if (child !== undefined && child !== null) next.push(child);
      }
    }
    values = next;
  }
  return plan.referenceTo ? values.filter((v) => referencedType(v) === plan.referenceTo) : values;
}

/** The type `resolve()` gives a reference without reading it (as @medplum/core's FHIRPath does). */
function referencedType(value: unknown): string | undefined {
  let target: string | undefined;
  if (typeof value === 'string') target = value;
  else if (value && typeof value === 'object') {
    const ref = value as { resource?: { resourceType?: string }; reference?: string; type?: string; identifier?: { system?: string; value?: string } };
    if (ref.resource) return ref.resource.resourceType;
    target = ref.reference ?? (ref.type && ref.identifier ? `${ref.type}?identifier=${ref.identifier.system}|${ref.identifier.value}` : undefined);
  }
  if (target?.includes('?')) return target.split('?')[0];
  if (target?.includes('/')) return target.split('/')[0];
  return undefined;
}
