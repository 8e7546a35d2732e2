// GET or POST /fhir/$export, /fhir/Patient/$export, /fhir/Group/{id}/$export: the Bulk Data kick-off.
// The export itself (job, worker, status and files under /bulk) is in export/.
import type { BulkExport } from '../export/bulk-export.js';
import type { Operation } from './operation.js';

export function exportData(bulkExport: BulkExport): Operation {
  return { code: 'export', methods: ['GET', 'POST'], run: (call) => bulkExport.kickOff(call) };
}
