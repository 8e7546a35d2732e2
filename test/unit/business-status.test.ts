// The businessStatus table: the moves the service makes on a case, written as the workflow draws
// them (DESIGN.md's flow), each allowed and every other one refused; and the codes are the CodeSystem's.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { CodeSystem } from '@medplum/fhirtypes';
import { drawnFrom } from './arrows.js';
import { businessStatuses, businessStatusOf, canMove, type BusinessStatus } from '../../src/case/business-status.js';

/** Moves from one code to another that the service's stages make. */
const arrows = `
  records-retrieving -> records-ready
  records-ready -> assigned, awaiting-assignment
  awaiting-assignment -> assigned
  awaiting-information -> under-review
`;
/** Codes the service moves a case to from wherever it stands: stops, questions and deliveries. */
const fromAnywhere: BusinessStatus[] = ['records-unavailable', 'awaiting-information', 'delivery-pending', 'opinion-delivered', 'delivery-failed'];

const drawn = (from: BusinessStatus): BusinessStatus[] => drawnFrom(arrows, from);

describe('businessStatus moves', () => {
  it('are the codes of the task-business-status CodeSystem, no more, no fewer', () => {
    const codeSystem = JSON.parse(readFileSync('profiles/CodeSystem-task-business-status.json', 'utf8')) as CodeSystem;
    expect([...businessStatuses].sort()).toEqual((codeSystem.concept ?? []).map((c) => c.code).sort());
  });

  it.each([...businessStatuses])('from %s: the drawn moves, staying put and the moves from anywhere are allowed, nothing else', (from) => {
    const allowed = businessStatuses.filter((to) => canMove(from, to));
    expect([...allowed].sort()).toEqual([...new Set([from, ...drawn(from), ...fromAnywhere])].sort());
  });

  it('retrieval run again never takes a routed case back to records-ready', () => {
    for (const routed of ['assigned', 'awaiting-assignment', 'under-review'] as BusinessStatus[]) expect(canMove(routed, 'records-ready')).toBe(false);
  });

  it('a case is assigned only once its records are ready, and may be reassigned before the reviewer accepts', () => {
    expect(canMove('records-retrieving', 'assigned')).toBe(false);
    expect(canMove('awaiting-assignment', 'assigned')).toBe(true);
    expect(canMove('assigned', 'assigned')).toBe(true);
  });

  it('a case without a known code moves only where the service goes from anywhere', () => {
    expect(businessStatuses.filter((to) => canMove(undefined, to)).sort()).toEqual([...fromAnywhere].sort());
    expect(businessStatusOf({ businessStatus: { coding: [{ code: 'made-up' }] } })).toBeUndefined();
    expect(businessStatusOf({ businessStatus: { coding: [{ code: 'assigned' }] } })).toBe('assigned');
  });
});
