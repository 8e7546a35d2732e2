// The routing choice among reviewers of the specialty a case needs: only those with room, the least
// loaded by share of capacity, then the one with the most room, then by id so the choice is stable.
import { describe, expect, it } from '@jest/globals';
import { leastLoaded } from '../../src/review/routing.js';
import type { Candidate } from '../../src/review/reviewers.js';

const reviewer = (id: string, openCases: number, capacity: number): Candidate => ({ role: { resourceType: 'PractitionerRole', id }, openCases, capacity });
const chosen = (...candidates: Candidate[]): string | undefined => leastLoaded(candidates)?.role.id;

describe('the least loaded reviewer', () => {
  it('is the one using the smallest share of their capacity, not the fewest cases', () => {
    // 3 of 10 (30%) is less loaded than 1 of 2 (50%).
    expect(chosen(reviewer('small', 1, 2), reviewer('large', 3, 10))).toBe('large');
  });

  it('never a reviewer who is full, even when every other is full too', () => {
    expect(chosen(reviewer('full', 5, 5), reviewer('room', 8, 9))).toBe('room');
    expect(chosen(reviewer('full', 5, 5), reviewer('over', 7, 6))).toBeUndefined();
    expect(chosen()).toBeUndefined();
  });

  it('at an equal share, the one with more places left', () => {
    expect(chosen(reviewer('two-of-four', 2, 4), reviewer('five-of-ten', 5, 10))).toBe('five-of-ten');
  });

  it('at an equal share and room, the first by id, whatever the order given', () => {
    const [a, b] = [reviewer('a-role', 1, 4), reviewer('b-role', 1, 4)];
    expect(chosen(b, a)).toBe('a-role');
    expect(chosen(a, b)).toBe('a-role');
  });

  it('does not reorder the candidates it was given', () => {
    const candidates = [reviewer('b', 3, 4), reviewer('a', 0, 4)];
    leastLoaded(candidates);
    expect(candidates.map((c) => c.role.id)).toEqual(['b', 'a']);
  });
});
