// Turns a parsed FHIR search (from @medplum/core's parseSearchRequest) into a database filter and sort
// over the index fields that buildSearchIndex wrote.
import { Operator, type Filter, type SearchRequest } from '@medplum/core';
import type { FilterQuery } from 'mongoose';
import { badRequest } from '../../base/outcome.js';
import type { StoredResource } from '../models.js';
import { dateRange, normalizeString, referenceKeys, supportedParameters } from './parameters.js';

type Query = FilterQuery<StoredResource>;

export function buildFilter(search: SearchRequest, baseUrl: string): Query {
  const filters = search.filters ?? [];
  const clauses = filters.map((filter) => filterClause(search.resourceType, filter, baseUrl));
  // A deletion is stored with an empty index, so a clause that needs an index value leaves it out
  // already; without the extra `deleted` field, such a clause and a `lastUpdated` range fit the
  // compound index `{idx.<code>, lastUpdated, _id}` exactly (see Repository.search).
  if (!filters.some(needsIndexValue)) clauses.unshift({ deleted: false });
  return { $and: clauses };
}

/** Whether only a stored version's index value can match the filter (never a deletion's empty one). */
function needsIndexValue(filter: Filter): boolean {
  const negative: Operator[] = [Operator.MISSING, Operator.PRESENT, Operator.NOT, Operator.NOT_EQUALS];
  return filter.code !== '_id' && filter.code !== '_lastUpdated' && !negative.includes(filter.operator);
}

export function buildSort(search: SearchRequest): Record<string, 1 | -1> {
  const sort: Record<string, 1 | -1> = {};
  for (const rule of search.sortRules ?? []) {
    sort[sortField(search.resourceType, rule.code)] = rule.descending ? -1 : 1;
  }
  if (!Object.keys(sort).length) {
    sort.lastUpdated = -1;
  }
  // Ties broken by id, so that offset paging is stable.
  sort._id = 1;
  return sort;
}

function sortField(type: string, code: string): string {
  if (code === '_lastUpdated') return 'lastUpdated';
  if (code === '_id') return 'id';
  const param = supportedParameters(type).get(code);
  if (!param) {
    throw badRequest(`Unknown sort parameter "${code}" for ${type}`, `_sort`);
  }
  return param.kind === 'date' ? `dt.${code}.s` : `idx.${code}`;
}

function filterClause(type: string, filter: Filter, baseUrl: string): Query {
  const { code, operator } = filter;
  const values = splitValues(filter.value);
  if (!values.length && operator !== Operator.MISSING && operator !== Operator.PRESENT) {
    throw badRequest(`Search parameter "${code}" has no value`, code);
  }
  if (code === '_id') {
    return tokenLike('id', operator, values, code);
  }
  if (code === '_lastUpdated') {
    return anyOf(values.map((v) => dateClause('lastUpdated', 'lastUpdated', operator, v, code)));
  }
  const param = supportedParameters(type).get(code);
  if (!param) {
    throw badRequest(`Unknown search parameter "${code}" for ${type}`, code);
  }
  const field = `idx.${code}`;
  if (operator === Operator.MISSING || operator === Operator.PRESENT) {
    const missing = (operator === Operator.MISSING) === (filter.value === 'true');
    const f = param.kind === 'date' ? `dt.${code}` : field;
    return { [f]: { $exists: !missing } };
  }
  switch (param.kind) {
    case 'token':
    case 'uri':
      return tokenLike(field, operator, values, code);
    case 'reference':
      return tokenLike(
        field,
        operator,
        values.flatMap((v) => referenceKeys(v, baseUrl).slice(0, 1)),
        code,
      );
    case 'string':
      return stringClause(field, operator, values, code);
    case 'date':
      return anyOf(values.map((v) => dateClause(`dt.${code}.s`, `dt.${code}.e`, operator, v, code)));
  }
}

function tokenLike(field: string, operator: Operator, values: string[], code: string): Query {
  const exact: string[] = [];
  const prefixes: Query[] = [];
  for (const value of values) {
    if (value.endsWith('|') && value.length > 1) {
      // `system|` matches any code in that system
      prefixes.push({ [field]: { $regex: `^${escapeRegex(value)}` } });
    } else {
      exact.push(value);
    }
  }
  // One value is an equality: the form a compound index's leading field is matched on.
  const positive = anyOf([...(exact.length ? [{ [field]: exact.length === 1 ? exact[0] : { $in: exact } }] : []), ...prefixes]);
  switch (operator) {
    case Operator.EQUALS:
    case Operator.EXACT:
      return positive;
    case Operator.NOT:
    case Operator.NOT_EQUALS:
      return { $nor: [positive] };
    default:
      throw badRequest(`Modifier or prefix "${operator}" is not supported on "${code}"`, code);
  }
}

function stringClause(field: string, operator: Operator, values: string[], code: string): Query {
  const patterns = values.map((v) => escapeRegex(normalizeString(v)));
  switch (operator) {
    case Operator.EQUALS:
    case Operator.STARTS_WITH:
      return anyOf(patterns.map((p) => ({ [field]: { $regex: `^${p}` } })));
    case Operator.CONTAINS:
      return anyOf(patterns.map((p) => ({ [field]: { $regex: p } })));
    case Operator.EXACT:
      return { [field]: { $in: values.map(normalizeString) } };
    default:
      throw badRequest(`Modifier "${operator}" is not supported on "${code}"`, code);
  }
}

/** FHIR date comparison between the resource's range [start, end] and the value's range [qs, qe]. */
function dateClause(startField: string, endField: string, operator: Operator, value: string, code: string): Query {
  const range = dateRange(value);
  if (!range) {
    throw badRequest(`Invalid date "${value}" for "${code}"`, code);
  }
  const { s: qs, e: qe } = range;
  switch (operator) {
    case Operator.EQUALS:
      return { [startField]: { $gte: qs }, [endField]: { $lte: qe } };
    case Operator.NOT_EQUALS:
      return { $or: [{ [startField]: { $lt: qs } }, { [endField]: { $gt: qe } }] };
    case Operator.GREATER_THAN:
      return { [endField]: { $gt: qe } };
    case Operator.LESS_THAN:
      return { [startField]: { $lt: qs } };
    case Operator.GREATER_THAN_OR_EQUALS:
      return { [endField]: { $gte: qs } };
    case Operator.LESS_THAN_OR_EQUALS:
      return { [startField]: { $lte: qe } };
    case Operator.STARTS_AFTER:
      return { [startField]: { $gt: qe } };
    case Operator.ENDS_BEFORE:
      return { [endField]: { $lt: qs } };
    case Operator.APPROXIMATELY:
      return { [startField]: { $lte: qe }, [endField]: { $gte: qs } };
    default:
      throw badRequest(`Prefix "${operator}" is not supported on "${code}"`, code);
  }
}

function anyOf(clauses: Query[]): Query {
  return clauses.length === 1 ? clauses[0] : { $or: clauses };
}

/** Comma separates alternatives; `\,` is a literal comma. */
function splitValues(value: string): string[] {
  return value
    .split(/(?<!\\),/)
    .map((v) => v.replace(/\\,/g, ','))
    .filter((v) => v !== '');
}

function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
