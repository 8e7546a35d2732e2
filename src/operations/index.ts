// Every FHIR operation the service offers, in one table that the router reads. Adding an operation:
// write its OperationDefinition in profiles/ (OperationDefinition-{code}.json: levels, types and
// parameters), a file here with its code, methods and a thin handler, a row below, and the roles that
// may call it in access/policy.ts (and the scopes it needs in auth/fhir-access.ts).
import type { Conformance } from '../conformance/artifacts.js';
import type { BulkExport } from '../export/bulk-export.js';
import type { RequestIntake } from '../intake/submit.js';
import type { Opinions } from '../opinion/opinions.js';
import type { OutcomeReports } from '../outcomes/report.js';
import type { Routing } from '../review/routing.js';
import type { DeliveryWorker } from '../writeback/delivery.js';
import { assign } from './assign.js';
import { casePacket } from './case-packet.js';
import { evaluateMeasure } from './evaluate-measure.js';
import { exportData } from './export.js';
import { notify } from './notify.js';
import type { LoadedOperation, Operation } from './operation.js';
import { redeliver } from './redeliver.js';
import { submit } from './submit.js';
import { validate } from './validate.js';
import { verify } from './verify.js';

/** The stages whose work the operations hand over to. */
export interface OperationStages {
  intake: RequestIntake;
  routing: Routing;
  opinions: Opinions;
  delivery: DeliveryWorker;
  bulkExport: BulkExport;
  reports: OutcomeReports;
}

/** Operations by code. */
export type OperationTable = ReadonlyMap<string, LoadedOperation>;

export function operationTable(conformance: Conformance, stages: OperationStages): OperationTable {
  const operations: Operation[] = [
    validate,
    casePacket,
    submit(stages.intake),
    notify(stages.intake),
    assign(stages.routing),
    verify(stages.opinions),
    redeliver(stages.opinions, stages.delivery),
    exportData(stages.bulkExport),
    evaluateMeasure(stages.reports),
  ];
  return new Map(
    operations.map((operation) => {
      const definition = conformance.operations.get(operation.code);
      if (!definition) throw new Error(`profiles/: OperationDefinition-${operation.code}.json is required for $${operation.code}`);
      return [operation.code, { ...operation, definition }];
    }),
  );
}
