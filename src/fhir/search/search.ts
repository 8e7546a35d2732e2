// Search as FHIR answers it: a searchset Bundle with total, paging links and _include/_revinclude.
import { parseSearchRequest, type SearchRequest } from '@medplum/core';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { Gate } from '../../access/gate.js';
import { isPatientLabel } from '../../access/labels.js';
import type { Repository, SearchMatch } from '../../store/repository.js';
import { badRequest } from '../../base/outcome.js';
import { supportedParameters } from '../../store/search/parameters.js';
import { subsetResource, type Subset } from '../subset.js';

export const defaultPageSize = 20;
export const maxPageSize = 1000;
const maxIncluded = 1000;
const resultParameters = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_total', '_format', '_pretty', '_elements']);

export type QueryParams = Record<string, string | string[] | undefined>;

/** Whether `code` (a parameter's name, modifier aside) is one this server searches or shapes results by. */
const isKnownParameter = (type: string, code: string): boolean =>
  supportedParameters(type).has(code) || resultParameters.has(code) || code === '_id' || code === '_lastUpdated';

/** `name` (`_count`, `_offset`) as the non-negative integer it must be; undefined when not given, 400 when not a number. */
export function nonNegativeInteger(query: QueryParams, name: '_count' | '_offset'): number | undefined {
  const value = [query[name]].flat()[0];
  if (value !== undefined && !/^\d+$/.test(value)) throw badRequest(`${name} must be a non-negative integer`, name);
  return value === undefined ? undefined : Number(value);
}

/**
 * The parameters of `query` this server searches by. An unknown one answers 400, unless the client
 * asked for lenient handling (FHIR's `Prefer: handling=lenient`): then it is left out, and out of the
 * Bundle's links, which show the search that was done.
 */
export function usedParameters(type: string, query: QueryParams, lenient: boolean): QueryParams {
  if (!lenient) return query;
  return Object.fromEntries(Object.entries(query).filter(([key]) => !key.includes('.') && isKnownParameter(type, key.split(':')[0])));
}

/** Parses a search with @medplum/core after rewriting what it does not read (a reference's `:Type` modifier). */
export function parseSearch(type: string, query: QueryParams): SearchRequest {
  const rewritten: QueryParams = {};
  for (const [key, value] of Object.entries(query)) {
    if (key.includes('.')) {
      throw badRequest(`Chained search ("${key.slice(0, 60)}") is not supported: search the referenced type, then by reference`, key.slice(0, 60));
    }
    const [code, modifier] = key.split(':');
    const param = supportedParameters(type).get(code);
    if (param?.kind === 'reference' && modifier && /^[A-Z]/.test(modifier)) {
      if (!param.targets.includes(modifier) && !param.targets.includes('Resource')) {
        throw badRequest(`${code} refers to ${param.targets.join(', ')}, not ${modifier.slice(0, 60)}`, code);
      }
      const values = [value].flat().map((v) =>
        String(v)
          .split(',')
          .map((id) => (id.includes('/') ? id : `${modifier}/${id}`))
          .join(','),
      );
      rewritten[code] = [...[rewritten[code] ?? []].flat(), ...values] as string[];
    } else if (isKnownParameter(type, code)) {
      rewritten[key] = value;
    } else {
      throw badRequest(`Search parameter "${code}" is not supported on ${type}`, code);
    }
  }
  let search: SearchRequest;
  try {
    search = parseSearchRequest(type, rewritten as Record<string, string[] | string | undefined>);
  } catch (err) {
    throw badRequest(`Invalid search: ${(err as Error).message}`);
  }
  nonNegativeInteger(query, '_count');
  nonNegativeInteger(query, '_offset');
  const summary = [query._summary].flat()[0];
  search.count = summary === 'count' ? 0 : Math.min(search.count ?? defaultPageSize, maxPageSize);
  return search;
}

/** The searchset of what the caller's gate lets it see, and the patients whose records it holds (for the audit trail). */
export async function searchBundle(
  repository: Repository,
  search: SearchRequest,
  selfUrl: URL,
  fhirBase: string,
  gate: Gate,
  subset?: Subset,
): Promise<{ bundle: Bundle; patients: string[] }> {
  const { matches, total, more } = await repository.search(search, await gate.narrowing(search.resourceType));
  const entries: BundleEntry[] = matches.map((m) => entry(subsetResource(m.resource, subset), 'match', fhirBase));
  const extra = await included(repository, search, matches, gate);
  entries.push(...extra.map((d) => entry(subsetResource(d.resource, subset), 'include', fhirBase)));
  const patients = new Set([...matches, ...extra].flatMap((m) => m.access.filter(isPatientLabel)));
  const count = search.count ?? defaultPageSize;
  const offset = search.offset ?? 0;
  const link = [{ relation: 'self', url: pageUrl(selfUrl, offset, count) }];
  if (count > 0) {
    link.push({ relation: 'first', url: pageUrl(selfUrl, 0, count) });
    if (offset > 0) {
      link.push({ relation: 'previous', url: pageUrl(selfUrl, Math.max(0, offset - count), count) });
    }
    if (more) {
      link.push({ relation: 'next', url: pageUrl(selfUrl, offset + count, count) });
    }
  }
  return {
    bundle: { resourceType: 'Bundle', type: 'searchset', ...(total !== undefined ? { total } : {}), link, ...(entries.length ? { entry: entries } : {}) },
    patients: [...patients],
  };
}

/** What _include and _revinclude bring in, of what the caller may read. */
async function included(
  repository: Repository,
  search: SearchRequest,
  matches: SearchMatch[],
  gate: Gate,
): Promise<{ resource: Resource; access: string[] }[]> {
  const seen = new Set(matches.map((m) => `${m.resource.resourceType}/${m.resource.id}`));
  const found: { resource: Resource; access: string[] }[] = [];
  const add = async (docs: { resource?: Resource; access?: string[] }[]): Promise<void> => {
    for (const { resource: r, access = [] } of docs) {
      const key = `${r?.resourceType}/${r?.id}`;
      if (r && !seen.has(key) && (await gate.sees(r.resourceType, access))) {
        seen.add(key);
        found.push({ resource: r, access });
      }
    }
  };
  for (const include of search.include ?? []) {
    const param = supportedParameters(include.resourceType).get(include.searchParam);
    if (param?.kind !== 'reference') {
      throw badRequest(`_include ${include.resourceType}:${include.searchParam} is not a supported reference parameter`, '_include');
    }
    const keys = new Set<string>();
    for (const match of matches.filter((m) => m.resource.resourceType === include.resourceType)) {
      for (const key of match.idx[include.searchParam]?.filter((k) => k.includes('/')) ?? []) {
        if (!include.targetType || key.startsWith(`${include.targetType}/`)) keys.add(key);
      }
    }
    await add(await repository.readManyStored([...keys].slice(0, maxIncluded)));
  }
  for (const revInclude of search.revInclude ?? []) {
    const param = supportedParameters(revInclude.resourceType).get(revInclude.searchParam);
    if (param?.kind !== 'reference') {
      throw badRequest(`_revinclude ${revInclude.resourceType}:${revInclude.searchParam} is not a supported reference parameter`, '_revinclude');
    }
    const targets = matches.map((m) => `${m.resource.resourceType}/${m.resource.id}`);
    await add(
      await repository.referencingStored(revInclude.resourceType, revInclude.searchParam, targets, maxIncluded, await gate.narrowing(revInclude.resourceType)),
    );
  }
  return found;
}

function entry(resource: Resource, mode: 'match' | 'include', fhirBase: string): BundleEntry {
  return { fullUrl: `${fhirBase}/${resource.resourceType}/${resource.id}`, resource, search: { mode } };
}

/** `self` at the page of `count` from `offset`. */
export function pageUrl(self: URL, offset: number, count: number): string {
  const url = new URL(self);
  url.searchParams.set('_count', String(count));
  url.searchParams.set('_offset', String(offset));
  return url.toString();
}
