// One of the outcome Measures evaluated into a summary MeasureReport (for $evaluate-measure,
// operations/evaluate-measure.ts). Each group of the Measure names its figure by its code (a concordance code,
// or an outcome-figure code); its populations and score come from the outcome report, for the whole
// and per stratum of every stratifier the Measure defines (as FHIR's $evaluate-measure reports them:
// a MeasureReport follows its Measure's groups and stratifiers). Proportions carry their Wilson 95% interval.
import type {
  CodeableConcept,
  Extension,
  Measure,
  MeasureGroup,
  MeasureGroupStratifier,
  MeasureReport,
  MeasureReportGroup,
  MeasureReportGroupPopulation,
  Quantity,
} from '@medplum/fhirtypes';
import type { FhirService } from '../fhir/interactions.js';
import { unprocessable } from '../base/outcome.js';
import type { Share } from './figures.js';
import { stratifierList } from './period.js';
import type { OutcomeReports, StratumFigures } from './report.js';

const populationSystem = 'http://terminology.hl7.org/CodeSystem/measure-population';
const hours: Quantity = { unit: 'h', system: 'http://unitsofmeasure.org', code: 'h' };
/** A ratio's unit: information requests per case (UCUM's dimensionless 1, with its name). */
const perCase: Quantity = { unit: 'requests per case', system: 'http://unitsofmeasure.org', code: '1' };
/** Scores as a reader wants them: hours to the minute's hundredth, shares and ratios to 4 decimals. */
const rounded = (value: number, unit?: Quantity): number => Number(value.toFixed(unit === hours ? 2 : 4));

interface Figure {
  populations: [code: string, count: number][];
  score: number | null;
  unit?: Quantity;
  interval?: Share['ci95'];
}

/** How each outcome-figure code (profiles/CodeSystem-outcome-figure.json) is read from a stratum's figures. */
const outcomeFigures: Record<string, (s: StratumFigures) => Figure> = {
  'turnaround-median': (s) => ({
    populations: [
      ['initial-population', s.delivered],
      ['measure-population', s.delivered],
    ],
    score: s.turnaroundHours.median,
    unit: hours,
  }),
  'turnaround-p90': (s) => ({
    populations: [
      ['initial-population', s.delivered],
      ['measure-population', s.delivered],
    ],
    score: s.turnaroundHours.p90,
    unit: hours,
  }),
  'turnaround-p99': (s) => ({
    populations: [
      ['initial-population', s.delivered],
      ['measure-population', s.delivered],
    ],
    score: s.turnaroundHours.p99,
    unit: hours,
  }),
  waiting: (s) => ({ populations: [['initial-population', s.waiting]], score: s.waiting }),
  overdue: (s) => ({ populations: [['initial-population', s.overdue]], score: s.overdue }),
  'information-requests-per-case': (s) => ({
    populations: [
      ['initial-population', s.delivered],
      ['denominator', s.delivered],
      ['numerator', s.informationRequests.total],
    ],
    score: s.informationRequests.perCase,
    unit: perCase,
  }),
};

/** Checks at start-up that every outcome-figure code has a reading here, and the reverse. */
export function checkOutcomeFigures(service: FhirService): void {
  const codes = (service.conformance.codeSystems.get(`${service.conformance.canonical}/CodeSystem/outcome-figure`)?.concept ?? []).map((c) => c.code).sort();
  if (codes.join() !== Object.keys(outcomeFigures).sort().join())
    throw new Error('profiles/CodeSystem-outcome-figure.json and the figures $evaluate-measure reads differ');
}

/** The summary MeasureReport of a Measure over a period (dates as checked by period.ts). */
export async function measureReport(
  service: FhirService,
  reports: OutcomeReports,
  measure: Measure,
  periodStart: string,
  periodEnd: string,
): Promise<MeasureReport> {
  // A stratifier's id is unique in its Measure; its code names what it stratifies by.
  const nameOf = (s: MeasureGroupStratifier): string => s.code?.text as string;
  const by = stratifierList(
    [...new Set((measure.group ?? []).flatMap((g) => (g.stratifier ?? []).map(nameOf)))],
    `Measure/${measure.id}.group.stratifier.code`,
  );
  const report = await reports.report({ periodStart, periodEnd, by });
  const whole = report.strata.find((s) => s.stratifier === 'all') as StratumFigures;
  const concordanceSystem = `${service.conformance.canonical}/CodeSystem/concordance`;
  const figureOf = (group: MeasureGroup, index: number): ((s: StratumFigures) => Figure) => {
    const coding = group.code?.coding?.[0];
    if (coding?.system === concordanceSystem && report.concordanceCodes.includes(coding.code as string)) {
      return (s) => {
        const share = s.concordance[coding.code as string];
        return {
          populations: [
            ['initial-population', s.delivered],
            ['denominator', s.delivered],
            ['numerator', share.count],
          ],
          score: share.share,
          interval: share.ci95,
        };
      };
    }
    const reading = coding?.system === `${service.conformance.canonical}/CodeSystem/outcome-figure` ? outcomeFigures[coding.code as string] : undefined;
    if (!reading)
      throw unprocessable([
        {
          severity: 'error',
          code: 'not-supported',
          details: { text: 'This group names no outcome figure the service computes' },
          expression: [`Measure.group[${index}].code`],
        },
      ]);
    return reading;
  };
  const body: MeasureReport = {
    resourceType: 'MeasureReport',
    status: 'complete',
    type: 'summary',
    measure: measure.url as string,
    date: report.generated,
    period: { start: periodStart, end: periodEnd },
    group: (measure.group ?? []).map((group, index): MeasureReportGroup => {
      const figure = figureOf(group, index);
      return {
        ...(group.id ? { id: group.id } : {}),
        ...(group.code ? { code: group.code } : {}),
        ...scored(figure(whole), service.conformance.canonical),
        stratifier: (group.stratifier ?? []).map((s) => ({
          ...(s.id ? { id: s.id } : {}),
          code: [s.code as CodeableConcept],
          stratum: report.strata
            .filter((f) => f.stratifier === nameOf(s))
            .map((f) => ({ value: { text: f.value }, ...scored(figure(f), service.conformance.canonical) })),
        })),
      };
    }),
  };
  return body;
}

/** Populations, score and (for a share) the Wilson interval extension of a group or a stratum. */
function scored(figure: Figure, canonical: string): { population: MeasureReportGroupPopulation[]; measureScore?: Quantity; extension?: Extension[] } {
  return {
    population: figure.populations.map(([code, count]) => ({ code: { coding: [{ system: populationSystem, code }] }, count })),
    ...(figure.score === null ? {} : { measureScore: { value: rounded(figure.score, figure.unit), ...figure.unit } }),
    ...(figure.interval
      ? {
          extension: [
            {
              url: `${canonical}/StructureDefinition/wilson-interval`,
              valueRange: { low: { value: rounded(figure.interval[0]) }, high: { value: rounded(figure.interval[1]) } },
            },
          ],
        }
      : {}),
  };
}
