// The search parameters this server supports, taken from the FHIR R4 SearchParameter definitions,
// and the flat index values each resource gets for them at write time.
import { evalFhirPathTyped, getSearchParameterDetails, getSearchParameters, indexSearchParameter, toTypedValue, type FhirPathAtom } from '@medplum/core';
import type { Resource, SearchParameter } from '@medplum/fhirtypes';
import { loadBaseDefinitions } from '../../base/base-definitions.js';
import { compileExtractor, type Extractor } from './extractors.js';
import { relativeReference } from '../../base/ids.js';

/** Codes offered on every type where FHIR R4 defines them; the workflow and its searches need these. */
const offeredCodes = [
  'identifier',
  'patient',
  'subject',
  'status',
  'based-on',
  'category',
  'code',
  'focus',
  'owner',
  'requester',
  'performer',
  'part-of',
  'encounter',
  'organization',
  'endpoint',
  'practitioner',
  'specialty',
  'name',
  'family',
  'given',
  'birthdate',
  'gender',
  'authored',
  'authored-on',
  'occurrence',
  'intent',
  'priority',
  'business-status',
  'in-response-to',
  'recipient',
  'sender',
  'issued',
  'date',
  'type',
  'active',
  'connection-type',
  'clinical-status',
  'target',
  'agent',
  'recorded',
  'period',
  'conclusion',
  'sent',
  'outcome',
  'entity',
  'altid',
  'subtype',
  'action',
] as const;

/** Our own SearchParameters (from profiles/), offered on their base types besides FHIR's. */
const ownCodes = new Set<string>();

/** Parameters looked up often enough to deserve a database index (each where its type supports it). */
export const indexedCodes = [
  'identifier',
  'patient',
  'subject',
  'status',
  'business-status',
  'based-on',
  'category',
  'code',
  'focus',
  'owner',
  'part-of',
  'due',
  'date',
  'target',
];

export type IndexKind = 'token' | 'reference' | 'string' | 'date' | 'uri';

export interface SupportedParameter {
  code: string;
  kind: IndexKind;
  definition: SearchParameter;
  expression: FhirPathAtom;
  /** The values the expression selects from a resource: a compiled path where it is one, else FHIRPath. */
  extract: Extractor;
  targets: string[];
}

/** Index values: token/reference/string/uri values under idx.<code>, date ranges under dt.<code>. */
export interface SearchIndex {
  idx: Record<string, string[]>;
  dt: Record<string, { s: Date; e: Date }>;
}

const supportedByType = new Map<string, Map<string, SupportedParameter>>();

export function supportedParameters(resourceType: string): Map<string, SupportedParameter> {
  let params = supportedByType.get(resourceType);
  if (!params) {
    loadBaseDefinitions();
    params = new Map();
    const all = getSearchParameters(resourceType) ?? {};
    for (const code of [...offeredCodes, ...ownCodes]) {
      const definition = all[code];
      const kind = definition?.type as IndexKind | undefined;
      if (definition && kind && ['token', 'reference', 'string', 'date', 'uri'].includes(kind)) {
        const { parsedExpression } = getSearchParameterDetails(resourceType, definition);
        const extract =
          compileExtractor(resourceType, definition.expression ?? '') ??
          ((resource: object) => evalFhirPathTyped(parsedExpression, [toTypedValue(resource)]).map((v): unknown => v.value));
        params.set(code, { code, kind, definition, expression: parsedExpression, extract, targets: definition.target ?? [] });
      }
    }
    supportedByType.set(resourceType, params);
  }
  return params;
}

/** Offers SearchParameters defined in profiles/ as well; their values are indexed from the next write on. */
export function registerSearchParameters(definitions: SearchParameter[]): void {
  loadBaseDefinitions();
  for (const definition of definitions) {
    indexSearchParameter(definition);
    ownCodes.add(definition.code);
  }
  supportedByType.clear();
}

export function buildSearchIndex(resource: Resource, baseUrl: string): SearchIndex {
  const index: SearchIndex = { idx: {}, dt: {} };
  for (const param of supportedParameters(resource.resourceType).values()) {
    const values = param.extract(resource);
    if (!values.length) {
      continue;
    }
    if (param.kind === 'date') {
      const range = dateEnvelope(values);
      if (range) {
        index.dt[param.code] = range;
      }
      continue;
    }
    const keys = new Set<string>();
    for (const value of values) {
      for (const key of indexKeys(param.kind, value, baseUrl)) {
        keys.add(key);
      }
    }
    if (keys.size) {
      index.idx[param.code] = [...keys];
    }
  }
  return index;
}

function indexKeys(kind: IndexKind, value: unknown, baseUrl: string): string[] {
  switch (kind) {
    case 'token':
      return tokenKeys(value);
    case 'reference':
      return referenceKeys(value, baseUrl);
    case 'string':
      return stringValues(value).map(normalizeString);
    case 'uri':
      return typeof value === 'string' ? [value] : [];
    default:
      return [];
  }
}

/** `system|code` and the bare `code` for each coding or identifier; `|code` when there is no system. */
function tokenKeys(value: unknown): string[] {
  if (value === null || value === undefined) {
    return [];
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return [String(value)];
  }
  if (typeof value !== 'object') {
    return [];
  }
  const v = value as { coding?: unknown[]; system?: string; code?: string; value?: string };
  if (Array.isArray(v.coding)) {
    return v.coding.flatMap(tokenKeys);
  }
  const code = v.code ?? v.value;
  if (code === undefined) {
    return [];
  }
  return [String(code), v.system ? `${v.system}|${code}` : `|${code}`];
}

/** `Type/id` and the bare `id` for relative references; absolute URLs on this server become relative. */
export function referenceKeys(value: unknown, baseUrl: string): string[] {
  const reference = typeof value === 'string' ? value : (value as { reference?: string })?.reference;
  if (!reference) {
    return [];
  }
  const fhirBase = `${baseUrl}/fhir/`;
  const relative = reference.startsWith(fhirBase) ? reference.slice(fhirBase.length) : reference;
  const match = relativeReference.exec(relative);
  return match ? [`${match[1]}/${match[2]}`, match[2]] : [relative];
}

function stringValues(value: unknown): string[] {
  if (typeof value === 'string') {
    return [value];
  }
  if (value && typeof value === 'object') {
    return Object.entries(value)
      .filter(([key]) => key !== 'use' && key !== 'period' && key !== 'extension')
      .flatMap(([, v]): unknown[] => (Array.isArray(v) ? v : [v]))
      .filter((v): v is string => typeof v === 'string');
  }
  return [];
}

export function normalizeString(value: string): string {
  return value
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
}

/** One envelope per resource: from the earliest start to the latest end of its values. */
function dateEnvelope(values: unknown[]): { s: Date; e: Date } | undefined {
  let s = Infinity;
  let e = -Infinity;
  for (const value of values) {
    const range = typeof value === 'string' ? dateRange(value) : periodRange(value as { start?: string; end?: string });
    if (range) {
      s = Math.min(s, range.s.getTime());
      e = Math.max(e, range.e.getTime());
    }
  }
  return Number.isFinite(s) || Number.isFinite(e)
    ? { s: new Date(Number.isFinite(s) ? s : minTime), e: new Date(Number.isFinite(e) ? e : maxTime) }
    : undefined;
}

const minTime = Date.UTC(0, 0, 1);
const maxTime = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function periodRange(period: { start?: string; end?: string }): { s: Date; e: Date } | undefined {
  if (!period || typeof period !== 'object' || (!period.start && !period.end)) {
    return undefined;
  }
  return {
    s: period.start ? (dateRange(period.start)?.s ?? new Date(minTime)) : new Date(minTime),
    e: period.end ? (dateRange(period.end)?.e ?? new Date(maxTime)) : new Date(maxTime),
  };
}

/** The instants a FHIR date, dateTime or instant covers at its precision (UTC when no zone is given). */
export function dateRange(value: string): { s: Date; e: Date } | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(value);
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  const start = Date.parse(`${y}-${mo ?? '01'}-${d ?? '01'}T${h ?? '00'}:${mi ?? '00'}:${sec ?? '00'}${frac ?? ''}${zone ?? 'Z'}`);
  if (Number.isNaN(start)) {
    return undefined;
  }
  const startDate = new Date(start);
  const end = new Date(start);
  if (!mo) end.setUTCFullYear(end.getUTCFullYear() + 1);
  else if (!d) end.setUTCMonth(end.getUTCMonth() + 1);
  else if (!h) end.setUTCDate(end.getUTCDate() + 1);
  else if (!sec) end.setUTCMinutes(end.getUTCMinutes() + 1);
  else if (!frac) end.setUTCSeconds(end.getUTCSeconds() + 1);
  else end.setUTCMilliseconds(end.getUTCMilliseconds() + 1);
  return { s: startDate, e: new Date(end.getTime() - 1) };
}
