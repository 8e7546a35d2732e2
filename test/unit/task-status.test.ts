// The Task.status table: every move FHIR R4's Task state machine draws is allowed, every other one is
// refused, and entered-in-error corrects a mistake from any state (task.html#statemachine).
import { describe, expect, it } from '@jest/globals';
import type { Task } from '@medplum/fhirtypes';
import { drawnFrom } from './arrows.js';
import { isLegalTransition, openStatuses } from '../../src/case/task-status.js';

type Status = Task['status'];

/** The arrows of the state machine as the specification draws it. */
const arrows = `
  draft -> requested, cancelled
  requested -> received, accepted, rejected, cancelled
  received -> accepted, rejected, cancelled, failed
  accepted -> ready, in-progress, cancelled, failed
  ready -> in-progress, cancelled, failed
  in-progress -> on-hold, completed, failed, cancelled
  on-hold -> in-progress, cancelled, failed
`;
const statuses: Status[] = [
  'draft',
  'requested',
  'received',
  'accepted',
  'ready',
  'in-progress',
  'on-hold',
  'completed',
  'rejected',
  'cancelled',
  'failed',
  'entered-in-error',
];
const drawn = (from: Status): Status[] => drawnFrom(arrows, from);

describe('Task.status moves', () => {
  it.each(statuses)('from %s: the drawn moves, staying put and entered-in-error are allowed, nothing else', (from) => {
    const allowed = statuses.filter((to) => isLegalTransition(from, to));
    const expected = new Set<Status>([from, ...drawn(from), 'entered-in-error']);
    expect(allowed.sort()).toEqual([...expected].sort());
  });

  it('a final state is left only for entered-in-error', () => {
    for (const from of ['completed', 'rejected', 'cancelled', 'failed'] as Status[]) {
      expect(statuses.filter((to) => to !== from && isLegalTransition(from, to))).toEqual(['entered-in-error']);
    }
  });

  it('a case on hold goes back to in-progress, never straight to completed', () => {
    expect(isLegalTransition('on-hold', 'in-progress')).toBe(true);
    expect(isLegalTransition('on-hold', 'completed')).toBe(false);
  });

  it('open cases, which count against a reviewer, are the ones between received and completion', () => {
    expect([...openStatuses].sort()).toEqual(['accepted', 'in-progress', 'on-hold', 'ready', 'received']);
  });
});
