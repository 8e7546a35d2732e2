// Every query on a hot path is answered from an index: each is explained against the embedded database
// exactly as the service builds it (search filters and sort, the caller's narrowing, the claims of the
// workers, the outcome report's reads), and a collection scan anywhere in the winning plan fails.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Connection } from 'mongoose';
import { parseSearch, type QueryParams } from '../src/fhir/search/search.js';
import { buildFilter, buildSort } from '../src/store/search/query.js';
import { exportJobKind } from '../src/export/job.js';
import { retrievalJobKind } from '../src/retrieval/retrieve-chart.js';
import { claimableBy } from '../src/store/jobs.js';
import { owedBy } from '../src/store/outbox.js';
import { countersOf, waitingOf } from '../src/outcomes/ledger.js';
import { startTestService, type TestService } from './harness.js';
import { createOrganization, registerInstitution, secondOpinionRequest } from './review-cases.js';

let service: TestService;
let db: NonNullable<Connection['db']>;

beforeAll(async () => {
  service = await startTestService();
  db = service.server.database.connection.db as NonNullable<Connection['db']>;
  // A few records of each kind, so that the planner has real collections and indexes to choose from.
  await createOrganization(service, 'Indexed Hospital');
  await registerInstitution(service, 'Indexed Hospital EHR', 'http://127.0.0.1:9/fhir');
  for (let i = 0; i < 5; i++) await service.fhir('/ServiceRequest', { body: secondOpinionRequest(`IDX-${i}`, 'http://127.0.0.1:9/fhir', `p${i}`) });
});
afterAll(async () => {
  await service?.stop();
});

interface PlanStage {
  stage: string;
  inputStage?: PlanStage;
  inputStages?: PlanStage[];
  queryPlan?: PlanStage;
}

/** Every stage of a winning plan, depth first. */
function stagesOf(plan: PlanStage | undefined): string[] {
  if (!plan) return [];
  return [plan.stage, ...stagesOf(plan.inputStage), ...stagesOf(plan.queryPlan), ...(plan.inputStages ?? []).flatMap(stagesOf)];
}

async function planOf(collection: string, filter: object, sort?: object, limit = 21): Promise<string[]> {
  let cursor = db.collection(collection).find(filter);
  if (sort) cursor = cursor.sort(sort as never);
  const explained = (await cursor.limit(limit).explain('queryPlanner')) as { queryPlanner: { winningPlan: PlanStage } };
  return stagesOf(explained.queryPlanner.winningPlan);
}

async function countPlanOf(collection: string, filter: object): Promise<string[]> {
  const explained = (await db.command({ explain: { count: collection, query: filter }, verbosity: 'queryPlanner' })) as {
    queryPlanner: { winningPlan: PlanStage };
  };
  return stagesOf(explained.queryPlanner.winningPlan);
}

/** Fails on a plan with a collection scan, or with no index at all; the message names the query and its plan. */
function expectIndexed(query: unknown, stages: string[]): void {
  const indexed = !stages.includes('COLLSCAN') && stages.some((s) => /IXSCAN|COUNT_SCAN|IDHACK/.test(s));
  expect({ query, stages, indexed }).toEqual({ query, stages, indexed: true });
}

/** The searches EHRs, reviewers, the workflow and the audit trail run all day. */
const searches: [string, QueryParams][] = [
  ['ServiceRequest', { identifier: 'https://ehr.example/orders|IDX-1' }],
  ['ServiceRequest', { identifier: 'IDX-1' }],
  ['ServiceRequest', { subject: 'Patient/p1' }],
  ['Task', { status: 'requested', _count: '10' }],
  ['Task', { owner: 'PractitionerRole/r1', status: 'accepted,in-progress' }],
  ['Task', { 'business-status': 'awaiting-assignment' }],
  ['Task', { focus: 'ServiceRequest/s1' }],
  ['Task', { due: 'lt2026-12-01' }],
  ['Communication', { 'based-on': 'ServiceRequest/s1' }],
  ['CommunicationRequest', { 'based-on': 'ServiceRequest/s1', status: 'active' }],
  ['DiagnosticReport', { 'based-on': 'ServiceRequest/s1' }],
  ['Observation', { subject: 'Patient/p1' }],
  ['AuditEvent', { patient: 'Patient/p1' }],
  ['AuditEvent', { date: 'ge2026-11-01' }],
  ['Provenance', { target: 'Task/t1' }],
  ['Patient', { identifier: 'urn:mrn|123' }],
];

describe('every hot query uses an index', () => {
  it.each(searches)('%s search %j, with and without a caller’s narrowing, and its count', async (type, query) => {
    const search = parseSearch(type, query);
    const filter = buildFilter(search, service.base.replace(/\/fhir$/, ''));
    const sort = buildSort(search);
    expectIndexed([type, query], await planOf(type, filter, sort));
    expectIndexed([type, query, 'narrowed'], await planOf(type, { ...filter, access: { $in: ['Organization/o1', 'Patient/p1'] } }, sort));
    expectIndexed([type, query, 'count'], await countPlanOf(type, filter));
    // A page read again from where its last answer ended (store/page-windows.ts).
    expectIndexed([type, query, 'since'], await planOf(type, { ...filter, lastUpdated: { $gte: new Date() } }, sort));
  });

  it('a reviewer’s or referrer’s unfiltered search is narrowed by the access index', async () => {
    const search = parseSearch('Observation', {});
    expectIndexed('Observation narrowed', await planOf('Observation', { ...buildFilter(search, ''), access: { $in: ['Organization/o1'] } }, buildSort(search)));
  });

  it('a read, a version-guarded write and a history read go by key', async () => {
    expectIndexed('read', await planOf('Task', { _id: 'Task/t1' }));
    expectIndexed('guarded write', await planOf('Task', { _id: 'Task/t1', versionId: 3 }));
    expectIndexed('history', await planOf('Task_history', { id: 't1', versionId: { $lt: 4 } }, { versionId: -1 }));
  });

  it('the workers’ claims: retrieval and export jobs, deliveries owed', async () => {
    for (const kind of [retrievalJobKind, exportJobKind]) {
      const { filter, sort } = claimableBy(kind, new Date());
      expectIndexed(kind, await planOf('jobs', filter, sort, 1));
    }
    for (const type of ['DiagnosticReport', 'Communication', 'CommunicationRequest']) {
      const { filter, sort } = owedBy(new Date());
      expectIndexed(`${type} owed`, await planOf(type, filter, sort, 1));
    }
  });

  it('the outcome report reads its counters and waiting cases by index, and a case’s facts by key', async () => {
    expectIndexed('counters', await planOf('outcome_counters', countersOf('2026-01', '2026-12', ['all', 'specialty'])));
    expectIndexed('waiting', await planOf('outcome_waiting', waitingOf('2026-01', '2026-12', '2026-11-30T00:00')));
    expectIndexed('a case', await planOf('outcome_cases', { _id: 'Task/t1' }));
  });
});
