// Outcome analytics, assembled for the server: the ledger of counters, what keeps it up to date (told
// by case/pipeline.ts), the Measures from profiles/ installed in the store, the reports
// $evaluate-measure reads (operations/evaluate-measure.ts), and the analysts' endpoints and page.
import { Gate } from '../access/gate.js';
import type { RequestHandler, Router } from 'express';
import type { ConceptMap } from '@medplum/fhirtypes';
import type { Connection } from 'mongoose';
import type { FhirService } from '../fhir/interactions.js';
import type { Logger } from '../logger.js';
import { Specialties } from '../review/specialties.js';
import type { CursorStore } from '../store/cursors.js';
import { OutcomeLedger } from './ledger.js';
import { analyticsRoutes } from './analytics.js';
import { CaseOutcomes } from './case-outcomes.js';
import { labelsFrom } from './labels.js';
import { checkOutcomeFigures } from './measure-report.js';
import { OutcomeReports } from './report.js';

export interface Outcomes {
  routes: Router;
  /** The figures $evaluate-measure reports. */
  reports: OutcomeReports;
  /** Finishes what a crash left half-counted and catches up on Tasks written since the last start. */
  recover(): Promise<void>;
  /** The counters kept as cases move: told of every case's Task and opinion written (case/pipeline.ts). */
  cases: CaseOutcomes;
}

export async function installOutcomes(
  service: FhirService,
  connection: Connection,
  cursors: CursorStore,
  access: { authenticate: RequestHandler; scope: RequestHandler },
  log: Logger,
): Promise<Outcomes> {
  const { conformance } = service;
  const map = conformance.conceptMaps.get(`${conformance.canonical}/ConceptMap/diagnosis-to-specialty`) as ConceptMap;
  const ledger = new OutcomeLedger(connection);
  await ledger.init();
  const cases = new CaseOutcomes(service, new Specialties(map), ledger, cursors, log);
  checkOutcomeFigures(service);
  await installMeasures(service);
  const concordance = conformance.codeSystems.get(`${conformance.canonical}/CodeSystem/concordance`)?.concept?.map((c) => c.code) ?? [];
  const reports = new OutcomeReports(ledger, concordance, labelsFrom(service, map));
  return { routes: analyticsRoutes(reports, access), reports, recover: () => cases.recover(), cases };
}

/** The Measures of profiles/ in the store, where FHIR clients read them; a version is written only when one changed. */
async function installMeasures(service: FhirService): Promise<void> {
  for (const [id, measure] of service.conformance.measures) {
    const current = await service.repository.current('Measure', id);
    const { meta: _meta, ...stored } = (current?.resource ?? {}) as { meta?: unknown };
    if (current && !current.deleted && JSON.stringify(stored) === JSON.stringify(measure)) continue;
    await service.updateValidated(measure, id, Gate.service);
  }
}
