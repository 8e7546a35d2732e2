// GET or POST /fhir/Measure/{id}/$evaluate-measure: one of the outcome Measures evaluated into a
// summary MeasureReport (outcomes/measure-report.ts); a GET's query is read as its Parameters.
import type { Measure } from '@medplum/fhirtypes';
import { badRequest } from '../base/outcome.js';
import { measureReport } from '../outcomes/measure-report.js';
import { period } from '../outcomes/period.js';
import type { OutcomeReports } from '../outcomes/report.js';
import type { Operation } from './operation.js';
import { parametersFromQuery, readParameters } from './parameters.js';

export function evaluateMeasure(reports: OutcomeReports): Operation {
  return {
    code: 'evaluate-measure',
    methods: ['GET', 'POST'],
    run: async ({ service, definition, id, method, query, body }) => {
      const measure = (await service.repository.read('Measure', id as string)) as Measure;
      const input = readParameters(definition, method === 'GET' ? parametersFromQuery(definition, query) : body);
      const text = (name: string): string[] => (input.get(name) ?? []).map((p) => (p.valueDate ?? p.valueString ?? p.valueCode) as string);
      const reportType = text('reportType')[0];
      if (reportType !== undefined && reportType !== 'summary') throw badRequest('reportType: only summary is supported', 'Parameters.parameter.reportType');
      const { periodStart, periodEnd } = period(
        text('periodStart')[0],
        text('periodEnd')[0],
        'Parameters.parameter.periodStart',
        'Parameters.parameter.periodEnd',
      );
      return { status: 200, body: await measureReport(service, reports, measure, periodStart, periodEnd) };
    },
  };
}
