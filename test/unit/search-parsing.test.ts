// Search as the store reads it: the instants a FHIR date covers at its precision, the index keys a
// token or reference gets at write time, and a query parsed (or refused, naming the parameter).
import { describe, expect, it } from '@jest/globals';
import { buildSearchIndex, dateRange, referenceKeys } from '../../src/store/search/parameters.js';
import { maxPageSize, parseSearch } from '../../src/fhir/search/search.js';
import { refusal } from './refusal.js';

const iso = (range: { s: Date; e: Date } | undefined): [string, string] | undefined => range && [range.s.toISOString(), range.e.toISOString()];

describe('the instants a FHIR date covers', () => {
  it.each([
    ['2026', '2026-01-01T00:00:00.000Z', '2026-12-31T23:59:59.999Z'],
    ['2026-02', '2026-02-01T00:00:00.000Z', '2026-02-28T23:59:59.999Z'],
    ['2024-02', '2024-02-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z'],
    ['2026-03-05', '2026-03-05T00:00:00.000Z', '2026-03-05T23:59:59.999Z'],
    ['2026-03-05T10:15', '2026-03-05T10:15:00.000Z', '2026-03-05T10:15:59.999Z'],
    ['2026-03-05T10:15:30Z', '2026-03-05T10:15:30.000Z', '2026-03-05T10:15:30.999Z'],
    ['2026-03-05T10:15:30.250Z', '2026-03-05T10:15:30.250Z', '2026-03-05T10:15:30.250Z'],
  ])('%s covers %s to %s', (value, start, end) => {
    expect(iso(dateRange(value))).toEqual([start, end]);
  });

  it('a time with a zone is the same instant in UTC', () => {
    expect(iso(dateRange('2026-03-05T10:15:30+02:00'))).toEqual(['2026-03-05T08:15:30.000Z', '2026-03-05T08:15:30.999Z']);
  });

  it.each(['05/03/2026', '2026-3-5', 'yesterday', '2026-13-01', ''])('"%s" is not a date', (value) => {
    expect(dateRange(value)).toBeUndefined();
  });
});

describe('index keys', () => {
  const base = 'https://so.example';

  it('a reference on this server is kept as Type/id and id; a version names its record', () => {
    expect(referenceKeys({ reference: `${base}/fhir/Patient/p1` }, base)).toEqual(['Patient/p1', 'p1']);
    expect(referenceKeys('Patient/p1/_history/3', base)).toEqual(['Patient/p1', 'p1']);
    expect(referenceKeys({ reference: 'https://ehr.example/fhir/Patient/p1' }, base)).toEqual(['https://ehr.example/fhir/Patient/p1']);
    expect(referenceKeys({ display: 'no reference' }, base)).toEqual([]);
  });

  it('a token is found by system|code, by code alone, and by |code when it has no system', () => {
    const index = buildSearchIndex(
      {
        resourceType: 'ServiceRequest',
        status: 'active',
        intent: 'order',
        subject: { reference: 'Patient/p1' },
        identifier: [{ system: 'https://ehr.example/orders', value: 'ORD-1' }, { value: 'LOCAL-7' }],
      },
      base,
    );
    expect(index.idx.identifier).toEqual(expect.arrayContaining(['ORD-1', 'https://ehr.example/orders|ORD-1', 'LOCAL-7', '|LOCAL-7']));
    expect(index.idx.status).toEqual(['active']);
    expect(index.idx.subject).toEqual(['Patient/p1', 'p1']);
  });

  it('a date element is kept as the range it covers', () => {
    const index = buildSearchIndex({ resourceType: 'Patient', birthDate: '1961-03' }, base);
    expect(iso(index.dt.birthdate)).toEqual(['1961-03-01T00:00:00.000Z', '1961-03-31T23:59:59.999Z']);
  });
});

describe('a search query', () => {
  it('is parsed with its filters, and a page no larger than the server allows', () => {
    const search = parseSearch('ServiceRequest', { status: 'active', _count: '5000' });
    expect(search.filters).toEqual([expect.objectContaining({ code: 'status', value: 'active' })]);
    expect(search.count).toBe(maxPageSize);
  });

  it('takes a reference modifier naming a type as the type of a bare id', () => {
    const search = parseSearch('ServiceRequest', { 'subject:Patient': 'p1,p2' });
    expect(search.filters).toEqual([expect.objectContaining({ code: 'subject', value: 'Patient/p1,Patient/p2' })]);
  });

  it('_summary=count asks for no entries', () => {
    expect(parseSearch('Patient', { _summary: 'count' }).count).toBe(0);
  });

  it('refuses a parameter the type does not support, naming it (400)', () => {
    expect(refusal(() => parseSearch('Patient', { shoeSize: '42' }))).toEqual({ status: 400, expression: ['shoeSize'] });
  });

  it.each([
    ['_count', '-1'],
    ['_count', 'ten'],
    ['_offset', '1.5'],
  ])('refuses %s=%s, naming it (400)', (name, value) => {
    expect(refusal(() => parseSearch('Patient', { [name]: value }))).toEqual({ status: 400, expression: [name] });
  });
});
