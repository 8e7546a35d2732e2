// `_elements` for a Bulk Data export: every exported resource keeps the root elements listed for its
// type (`Type.element`) or for all types (`element`), the elements the R4 definitions make mandatory,
// and `resourceType`, `id` and `meta`; nothing else. A subset resource is tagged SUBSETTED.
import { tryGetDataType } from '@medplum/core';
import type { Coding, Resource } from '@medplum/fhirtypes';
import { ensureDefinitionsFor } from '../base/base-definitions.js';
import { badRequest } from '../base/outcome.js';

export const subsettedTag: Coding = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };
const kept = ['resourceType', 'id', 'meta'];

/** The root elements of a type by name (a choice by its stem: `value` for `value[x]`), with whether each is mandatory. */
function rootElements(type: string): Map<string, { mandatory: boolean; choice: boolean }> {
  ensureDefinitionsFor({ resourceType: type });
  const elements = tryGetDataType(type)?.elements ?? {};
  return new Map(Object.entries(elements).map(([path, e]) => [path.replace('[x]', ''), { mandatory: e.min > 0, choice: path.endsWith('[x]') }]));
}

/**
 * Checks `_elements` values (comma-separated `Type.element` or `element`) against the types exported
 * and answers the items as given; a malformed item, a type not exported, or a name that is no root
 * element of the types it applies to, answers 400 naming `_elements`.
 */
export function parseElements(values: string[], types: string[]): string[] {
  const items = values
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items) {
    const [, type, name] = /^(?:([A-Z][A-Za-z]+)\.)?([a-z][A-Za-z0-9]*)$/.exec(item) ?? [];
    if (!name) throw badRequest(`_elements lists root elements as Type.element or element; "${item.slice(0, 40)}" is neither`, '_elements');
    if (type && !types.includes(type)) throw badRequest(`_elements names ${type}, which this export does not include (see _type)`, '_elements');
    if (!(type ? [type] : types).some((t) => rootElements(t).has(name))) {
      throw badRequest(`_elements names ${name}, which is not a root element of ${type ?? 'any type exported'}`, '_elements');
    }
  }
  return items;
}

/** Cuts resources down to the elements `items` (as parseElements answered them) keep, type by type. */
export class Subsetter {
  private readonly byType = new Map<string, { names: Set<string>; stems: string[] }>();

  constructor(private readonly items: string[]) {}

  subset(resource: Resource): Resource {
    const { names, stems } = this.keptOf(resource.resourceType);
    const keeps = (key: string): boolean => {
      const name = key.startsWith('_') ? key.slice(1) : key; // a primitive's extensions go with it
      return names.has(name) || stems.some((stem) => name.startsWith(stem) && /^[A-Z]/.test(name.slice(stem.length)));
    };
    const cut = Object.fromEntries(Object.entries(resource).filter(([key]) => keeps(key))) as Resource;
    cut.meta = { ...cut.meta, tag: [...(cut.meta?.tag ?? []), subsettedTag] };
    return cut;
  }

  private keptOf(type: string): { names: Set<string>; stems: string[] } {
    let found = this.byType.get(type);
    if (!found) {
      const elements = rootElements(type);
      const asked = this.items
        .map((item) => item.split('.'))
        .filter((parts) => parts.length === 1 || parts[0] === type)
        .map((parts) => parts.at(-1) as string);
      const chosen = [...elements].filter(([name, e]) => e.mandatory || asked.includes(name));
      found = {
        names: new Set([...kept, ...chosen.filter(([, e]) => !e.choice).map(([name]) => name)]),
        stems: chosen.filter(([, e]) => e.choice).map(([name]) => name),
      };
      this.byType.set(type, found);
    }
    return found;
  }
}
