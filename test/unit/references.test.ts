// The references walker: every Reference.reference in a resource, contained ones included, listed
// with the path of its element, or rewritten without touching anything else.
import { describe, expect, it } from '@jest/globals';
import { mapReferences, referencesWithPaths } from '../../src/fhir/references.js';

const request = {
  resourceType: 'ServiceRequest',
  subject: { reference: 'Patient/p1', display: 'kept' },
  reasonReference: [{ reference: 'Condition/c1/_history/2' }, { reference: '#cond' }, { reference: 'https://ehr.example/fhir/Condition/c9' }],
  contained: [{ resourceType: 'Observation', id: 'cond', subject: { reference: 'Patient/p1' } }],
  note: [{ text: 'reference: Patient/p2 is text, not a reference' }],
};

describe('listing references', () => {
  it('finds each local reference with its path, a version naming its record; not local ones, not text', () => {
    expect(referencesWithPaths(request)).toEqual([
      { reference: 'Patient/p1', path: 'subject' },
      { reference: 'Condition/c1', path: 'reasonReference[0]' },
      { reference: 'Patient/p1', path: 'contained[0].subject' },
    ]);
  });

  it('finds nothing in what holds no reference', () => {
    expect(referencesWithPaths({ resourceType: 'Patient', name: [{ family: 'Reference' }] })).toEqual([]);
    expect(referencesWithPaths(null)).toEqual([]);
  });
});

describe('rewriting references', () => {
  it('changes each reference the map answers, keeps the others and every other element', () => {
    const rewritten = mapReferences(request, (r) => (r === 'Patient/p1' ? 'Patient/here-1' : undefined));
    expect(rewritten.subject).toEqual({ reference: 'Patient/here-1', display: 'kept' });
    expect(rewritten.contained[0].subject.reference).toBe('Patient/here-1');
    expect(rewritten.reasonReference.map((r) => r.reference)).toEqual(['Condition/c1/_history/2', '#cond', 'https://ehr.example/fhir/Condition/c9']);
    expect(rewritten.note).toEqual(request.note);
    expect(request.subject.reference).toBe('Patient/p1');
  });

  it('keeps a "__proto__" key a key, without changing the copy\'s prototype', () => {
    const hostile = JSON.parse('{"resourceType":"Patient","__proto__":{"polluted":true}}') as Record<string, unknown>;
    const copy = mapReferences(hostile, () => undefined);
    expect(Object.keys(copy)).toEqual(['resourceType', '__proto__']);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
  });
});
