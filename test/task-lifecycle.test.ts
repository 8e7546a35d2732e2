// The Task is the workflow: its status moves only as FHIR's Task state machine allows, whoever writes
// it; an illegal move answers 409 naming Task.status and changes nothing; every version records who
// wrote it and when; a case is due by its priority, and a search finds the overdue ones.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type TestService } from './harness.js';
import { businessStatusSystem, createOrganization, registerReviewer, specialty } from './review-cases.js';

let service: TestService;
let reviewer: string;
/** The request and patient every Task here is about: a write names only records that exist. */
let focus: string;
let patient: string;

beforeAll(async () => {
  // Urgent cases are due in 2 days here instead of the default 3: the durations are configuration.
  service = await startTestService({ REVIEW_DUE_URGENT_HOURS: '48' });
  reviewer = await registerReviewer(service, {
    name: 'Lifecycle',
    organizationId: await createOrganization(service, 'Review Centre'),
    specialty: specialty.oncology,
    capacity: 50,
  });
  patient = `Patient/${(await service.fhir('/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Lifecycle' }] } })).body.id}`;
  focus = `ServiceRequest/${(await service.fhir('/ServiceRequest', { body: { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: patient } } })).body.id}`;
});
afterAll(async () => {
  await service?.stop();
});

/** FHIR R4's Task state machine, as the specification draws it (task.html#statemachine). */
const legal: Record<string, string[]> = {
  draft: ['requested', 'cancelled', 'entered-in-error'],
  requested: ['received', 'accepted', 'rejected', 'cancelled', 'entered-in-error'],
  received: ['accepted', 'rejected', 'cancelled', 'failed', 'entered-in-error'],
  accepted: ['ready', 'in-progress', 'cancelled', 'failed', 'entered-in-error'],
  ready: ['in-progress', 'cancelled', 'failed', 'entered-in-error'],
  'in-progress': ['on-hold', 'completed', 'failed', 'cancelled', 'entered-in-error'],
  'on-hold': ['in-progress', 'cancelled', 'failed', 'entered-in-error'],
  completed: ['entered-in-error'],
  rejected: ['entered-in-error'],
  cancelled: ['entered-in-error'],
  failed: ['entered-in-error'],
};
const legalMoves = Object.entries(legal).flatMap(([from, tos]) => tos.map((to) => [from, to]));
const illegalMoves = [
  ['requested', 'in-progress'],
  ['received', 'completed'],
  ['received', 'on-hold'],
  ['accepted', 'on-hold'],
  ['on-hold', 'completed'],
  ['in-progress', 'received'],
  ['completed', 'in-progress'],
  ['cancelled', 'requested'],
  ['failed', 'in-progress'],
  ['rejected', 'accepted'],
  ['entered-in-error', 'requested'],
];

/** A Task stored directly in `status` (a create is not a transition), owned by the reviewer. */
async function taskIn(status: string, changes: Record<string, unknown> = {}): Promise<any> {
  const created = await service.fhir('/Task', {
    body: {
      resourceType: 'Task',
      status,
      intent: 'order',
      focus: { reference: focus },
      for: { reference: patient },
      owner: { reference: `PractitionerRole/${reviewer}` },
      ...changes,
    },
  });
  expect(created.status).toBe(201);
  return created.body;
}

const put = (task: any, changes: Record<string, unknown>, headers: Record<string, string> = {}) =>
  service.fhir(`/Task/${task.id}`, { method: 'PUT', body: { ...task, ...changes }, headers });
const versions = async (id: string): Promise<number> => (await service.fhir(`/Task/${id}/_history`)).body.total;
const provenanceOf = async (task: any): Promise<any> => (await service.fhir(`/${task.relevantHistory.at(-1).reference}`)).body;
const xProvenance = (who: Record<string, string>) => ({ 'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who }] }) });

describe('Task status moves as FHIR allows', () => {
  it.each(legalMoves)('%s -> %s is allowed', async (from, to) => {
    const task = await taskIn(from);
    const moved = await put(task, { status: to });
    expect(moved.status).toBe(200);
    expect([moved.body.status, moved.body.meta.versionId]).toEqual([to, '2']);
    expect((await provenanceOf(moved.body)).activity.text).toBe(`Task status ${from} -> ${to}`);
  });

  it.each(illegalMoves)('%s -> %s answers 409 naming Task.status, and the store is unchanged', async (from, to) => {
    const task = await taskIn(from);
    const refused = await put(task, { status: to });
    expect(refused.status).toBe(409);
    expect(refused.body.resourceType).toBe('OperationOutcome');
    expect(refused.body.issue[0].expression).toEqual(['Task.status']);
    const stored = (await service.fhir(`/Task/${task.id}`)).body;
    expect([stored.status, stored.meta.versionId, await versions(task.id)]).toEqual([from, '1', 1]);
  });

  it('a write on a version that is no longer current answers 412, not a verdict on a move from a version the writer never saw', async () => {
    const task = await taskIn('in-progress');
    const completed = await put(task, { status: 'completed' }, { 'if-match': 'W/"1"' });
    expect(completed.status).toBe(200);
    // Written on version 1 (in-progress), after another writer completed it: the Task changed, read it again.
    const stale = await put(task, { note: [{ text: 'written on version 1' }] }, { 'if-match': 'W/"1"' });
    expect([stale.status, stale.body.resourceType]).toEqual([412, 'OperationOutcome']);
    const stored = (await service.fhir(`/Task/${task.id}`)).body;
    expect([stored.status, stored.meta.versionId, stored.note]).toEqual(['completed', '2', undefined]);
  });

  it('a Task taken on needs an owner: accepting one that nobody owns answers 422 naming Task.owner', async () => {
    const task = await taskIn('received', { owner: undefined });
    const refused = await put(task, { status: 'accepted' });
    expect([refused.status, refused.body.issue[0].expression]).toEqual([422, ['Task.owner']]);
    expect((await service.fhir(`/Task/${task.id}`)).body.meta.versionId).toBe('1');
  });

  it('the same rules hold inside a transaction Bundle', async () => {
    const task = await taskIn('completed');
    const bundle = await service.fhir('/', {
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { ...task, status: 'in-progress' }, request: { method: 'PUT', url: `Task/${task.id}` } }],
      },
    });
    expect([bundle.status, bundle.body.issue[0].expression]).toEqual([409, ['Bundle.entry[0].resource.Task.status']]);
    expect((await service.fhir(`/Task/${task.id}`)).body.status).toBe('completed');
  });
});

describe('every version records who wrote it and when', () => {
  it('a Provenance per version names the agent (of the token, or of X-Provenance), the version and the change; lastModified says when', async () => {
    const task = await taskIn('requested');
    const created = await provenanceOf(task);
    expect(created.target).toEqual([{ reference: `Task/${task.id}/_history/1` }]);
    expect(created.activity.text).toBe('Task created: status requested, businessStatus none');
    // Without X-Provenance the agent is the caller its access token names.
    expect(created.agent[0].who).toMatchObject({ identifier: { value: 'test-admin' }, display: 'client test-admin' });

    const coordinator = await createOrganization(service, 'Coordination desk');
    const received = await put(task, { status: 'received' }, xProvenance({ reference: `Organization/${coordinator}` }));
    const accepted = await put(received.body, { status: 'accepted' }, xProvenance({ reference: `PractitionerRole/${reviewer}`, display: 'the reviewer' }));
    expect(accepted.status).toBe(200);
    const records = await Promise.all([received.body, accepted.body].map(provenanceOf));
    expect(records.map((p) => p.agent[0].who)).toEqual([
      { reference: `Organization/${coordinator}` },
      { reference: `PractitionerRole/${reviewer}`, display: 'the reviewer' },
    ]);
    expect(records.map((p) => p.target[0].reference)).toEqual([`Task/${task.id}/_history/2`, `Task/${task.id}/_history/3`]);
    expect(records.map((p) => p.entity[0].what.reference)).toEqual([`Task/${task.id}/_history/1`, `Task/${task.id}/_history/2`]);
    expect(records.map((p) => p.recorded)).toEqual([received.body.lastModified, accepted.body.lastModified]);
    expect(Date.parse(accepted.body.lastModified)).toBeGreaterThanOrEqual(Date.parse(received.body.lastModified));
    expect(accepted.body.relevantHistory).toHaveLength(3);
    const byTarget = await service.fhir(`/Provenance?target=Task/${task.id}&_count=10`);
    expect(byTarget.body.total).toBe(3);
  });

  it('keeps its own list of records whatever a client sends in relevantHistory', async () => {
    const task = await taskIn('received');
    // A record that exists but is another Task's: a client's list never replaces the service's.
    const elsewhere = (await taskIn('received')).relevantHistory[0].reference;
    const written = await put(task, { status: 'accepted', relevantHistory: [{ reference: elsewhere }] });
    expect(written.body.relevantHistory.map((r: any) => r.reference)).toEqual([task.relevantHistory[0].reference, expect.stringMatching(/^Provenance\//)]);
    expect(written.body.relevantHistory[1].reference).not.toBe(elsewhere);
  });

  it('refuses an X-Provenance that is not a Provenance naming an agent, naming the header, and changes nothing', async () => {
    const task = await taskIn('received');
    for (const header of ['not json', JSON.stringify({ resourceType: 'Provenance', agent: [] }), JSON.stringify({ resourceType: 'Patient' })]) {
      const refused = await service.fhir(`/Task/${task.id}`, { method: 'PUT', body: { ...task, status: 'accepted' }, headers: { 'x-provenance': header } });
      expect(refused.status).toBe(400);
      expect(refused.body.issue[0].expression[0]).toMatch(/^X-Provenance/);
    }
    expect((await service.fhir(`/Task/${task.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('due dates', () => {
  const opened = '2026-01-01T00:00:00.000Z';
  const hours = (n: number) => new Date(Date.parse(opened) + n * 3_600_000).toISOString();

  it.each([
    ['routine', 14 * 24],
    ['urgent', 48],
    ['asap', 24],
    ['stat', 4],
    [undefined, 14 * 24],
  ])('a case of priority %s is due %d hours after it opened', async (priority, due) => {
    const task = await taskIn('requested', { priority, authoredOn: opened, owner: undefined });
    expect(task.restriction.period.end).toBe(hours(due));
  });

  it('keeps a due date the Task comes with', async () => {
    const task = await taskIn('requested', { priority: 'stat', authoredOn: opened, restriction: { period: { end: '2026-03-01T00:00:00.000Z' } } });
    expect(task.restriction.period.end).toBe('2026-03-01T00:00:00.000Z');
  });

  it('the CapabilityStatement offers the due search parameter and $assign on Task', async () => {
    const task = (await service.fhir('/metadata')).body.rest[0].resource.find((r: any) => r.type === 'Task');
    expect(task.searchParam.find((p: any) => p.name === 'due')).toEqual({
      name: 'due',
      type: 'date',
      definition: expect.stringMatching(/\/SearchParameter\/task-due$/),
    });
    expect(task.operation.map((o: any) => o.name)).toContain('assign');
  });

  it('a search finds the open cases that are overdue, soonest due first', async () => {
    const focus = {
      reference: `ServiceRequest/${(await service.fhir('/ServiceRequest', { body: { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: patient } } })).body.id}`,
    };
    const now = Date.now();
    const ago = (days: number) => new Date(now - days * 24 * 3_600_000).toISOString();
    const late = await taskIn('in-progress', { focus, authoredOn: ago(20) }); // due 6 days ago
    const later = await taskIn('received', { focus, authoredOn: ago(30), owner: undefined }); // due 16 days ago
    await taskIn('completed', { focus, authoredOn: ago(30), businessStatus: { coding: [{ system: businessStatusSystem, code: 'opinion-final' }] } }); // done
    await taskIn('in-progress', { focus, authoredOn: ago(1) }); // due in 13 days
    const overdue = await service.fhir(
      `/Task?due=lt${new Date(now).toISOString()}&status=received,accepted,ready,in-progress,on-hold&focus=${focus.reference}&_sort=due`,
    );
    expect(overdue.status).toBe(200);
    expect(overdue.body.entry.map((e: any) => e.resource.id)).toEqual([later.id, late.id]);
  });
});
