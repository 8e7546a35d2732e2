// _summary and _elements (FHIR R4 search.html#summary and #elements), on a read or a search: a part of
// each resource, its mandatory elements always kept, and marked SUBSETTED so that nobody takes it for
// the whole record. A write of a resource so marked is refused (interactions.ts): it would lose the rest.
import { tryGetDataType } from '@medplum/core';
import type { Coding, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../base/outcome.js';

export interface Subset {
  summary?: 'true' | 'text' | 'data';
  elements?: string[];
}

export const subsettedTag: Coding = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };

const summaryValues = ['true', 'text', 'data', 'count', 'false'];

/** The subset `query` asks for, checked; undefined: the whole resource (no `_summary`, or `false`, or `count`, which is no subset). */
export function subsetOf(type: string, query: { _summary?: string | string[]; _elements?: string | string[] }): Subset | undefined {
  const summaries = [query._summary ?? []].flat();
  const elementLists = [query._elements ?? []].flat();
  if (summaries.length > 1) throw badRequest('_summary is given once', '_summary');
  if (elementLists.length > 1) throw badRequest('_elements is given once', '_elements');
  const [summary] = summaries;
  if (summary !== undefined && !summaryValues.includes(summary)) {
    throw badRequest(`_summary is one of ${summaryValues.join(', ')}, not "${summary.slice(0, 40)}"`, '_summary');
  }
  if (elementLists.length && summary !== undefined && summary !== 'false') throw badRequest('_summary and _elements are not given together', '_elements');
  if (elementLists.length) {
    // R4 names top-level elements; R5's `Type.element` is taken for this type too.
    const elements = elementLists[0]
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)
      .map((e) => (e.startsWith(`${type}.`) ? e.slice(type.length + 1) : e));
    const wrong = elements.find((e) => !/^[a-z][A-Za-z0-9]*$/.test(e));
    if (wrong !== undefined) throw badRequest(`_elements lists element names of ${type}, not "${wrong.slice(0, 40)}"`, '_elements');
    return { elements };
  }
  return summary === 'true' || summary === 'text' || summary === 'data' ? { summary } : undefined;
}

/** The part of `resource` that `subset` keeps, marked SUBSETTED; without a subset, the whole resource. */
export function subsetResource<T extends Resource>(resource: T, subset: Subset | undefined): T {
  if (!subset) return resource;
  const schema = tryGetDataType(resource.resourceType);
  const kept = new Set(['resourceType', 'id', 'meta', ...(schema?.mandatoryProperties ?? [])]);
  if (subset.summary === 'true') for (const name of schema?.summaryProperties ?? []) kept.add(name);
  if (subset.summary === 'text') kept.add('text');
  for (const name of subset.elements ?? []) kept.add(name);
  /** An element's name as the definitions list it: a choice's (valueQuantity) without its type, a primitive's extension (_birthDate) as its element's. */
  const nameOf = (key: string): string => {
    const name = key.replace(/^_/, '');
    const choice = name.replace(/[A-Z].*$/, '');
    return choice !== name && schema?.elements[`${choice}[x]`] ? choice : name;
  };
  const part = Object.fromEntries(Object.entries(resource).filter(([key]) => (subset.summary === 'data' ? key !== 'text' : kept.has(nameOf(key)))));
  return { ...part, meta: { ...resource.meta, tag: [...(resource.meta?.tag ?? []), subsettedTag] } } as T;
}

/** Whether a resource sent to be written is marked as a part of a record. */
export const isSubsetted = (resource: Resource): boolean =>
  Boolean(resource.meta?.tag?.some((t) => t.system === subsettedTag.system && t.code === subsettedTag.code));
