// Which records an export takes: the types a patient's compartment holds, `_typeFilter` searches
// (checked as searches of their type), and the filter of a Patient-level export.
import type { SearchRequest } from '@medplum/core';
import { badRequest } from '../base/outcome.js';
import { storedResourceTypes } from '../base/resource-types.js';
import { supportedParameters } from '../store/search/parameters.js';
import { parseSearch, type QueryParams } from '../fhir/search/search.js';

/** Search parameters that shape a result page rather than select resources: no place in a `_typeFilter`. */
const shapingParameters = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_total', '_elements', '_format', '_pretty']);
/** Where a resource names its patient, as search parameters: a Group export takes what these point at the members. */
export const compartmentCodes = ['patient', 'subject'];
/** A reference to a Patient, as the search index keeps it: `Patient/id`, or an absolute URL ending so. */
const patientKey = '(^|/)Patient/[A-Za-z0-9\\-.]{1,64}$';

/**
 * `_typeFilter` values (`Type?search`, several in one value separated by commas) by type, each checked
 * as a search of that type; a type this export does not include, or a search that cannot run, is 400.
 */
export function typeFilters(values: string[], types: string[]): Record<string, string[]> {
  const byType: Record<string, string[]> = {};
  for (const query of values.flatMap((v) => v.split(/,(?=[A-Z][A-Za-z]+\?)/))) {
    const [, type, search] = /^([A-Z][A-Za-z]+)\?(.+)$/.exec(query) ?? [];
    if (!type) throw badRequest('_typeFilter is a search of one type, e.g. Observation?status=final', '_typeFilter');
    if (!types.includes(type)) throw badRequest(`_typeFilter names ${type.slice(0, 40)}, which this export does not include (see _type)`, '_typeFilter');
    searchOf(type, search);
    (byType[type] ??= []).push(search);
  }
  return byType;
}

/** A `_typeFilter` search of `type`; its values are not quoted in errors (they can name a patient). */
export function searchOf(type: string, search: string): SearchRequest {
  const query: QueryParams = {};
  for (const [name, value] of new URLSearchParams(search)) query[name] = [...[query[name] ?? []].flat(), value];
  const names = Object.keys(query);
  const shaping = names.find((n) => shapingParameters.has(n.split(':')[0]));
  if (shaping) throw badRequest(`_typeFilter selects resources only; ${shaping.slice(0, 40)} has no place in it`, '_typeFilter');
  try {
    return parseSearch(type, query);
  } catch {
    throw badRequest(`_typeFilter for ${type}: the search (${names.map((n) => n.slice(0, 40)).join(', ')}) is not one this server can run`, '_typeFilter');
  }
}

/** A filter for the records of `type` that name a patient in a compartment parameter (Patient-level export). */
export function inAnyCompartment(type: string): Record<string, unknown> {
  const byCode = compartmentCodes.filter((c) => supportedParameters(type).has(c)).map((c) => ({ [`idx.${c}`]: { $regex: patientKey } }));
  return byCode.length > 1 ? { $or: byCode } : byCode[0];
}

/** The types that can hold a patient's records: Patient, and every type with a patient or subject search parameter. */
export function compartmentTypes(): string[] {
  return storedResourceTypes.filter((t) => t === 'Patient' || compartmentCodes.some((c) => supportedParameters(t).has(c)));
}
