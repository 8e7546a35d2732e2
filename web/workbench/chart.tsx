// The chart of a case: what is missing first (the completeness summary), then the records by kind
// (labs with trends), the attachments, and all of it as one timeline.
import { useState } from 'preact/hooks';
import type { Observation } from '@medplum/fhirtypes';
import type { CaseData } from './case-page.js';
import { formatDate } from './cases.js';
import { Attachments } from './attachments.js';
import { Labs } from './labs.js';
import { attachmentsOf, dateOf, kinds, summaryOf } from './records.js';
import { Timeline } from './timeline.js';

export function Chart({ data }: { data: CaseData }) {
  const [view, setView] = useState('problems');
  if (!data.chart) return <p class="loading chart-loading">Loading the chart…</p>;
  return <ChartViews chart={data.chart} view={view} setView={setView} />;
}

function ChartViews({ chart: data, view, setView }: { chart: NonNullable<CaseData['chart']>; view: string; setView: (view: string) => void }) {
  const issues = data.completeness.issue ?? [];
  const missing = issues.filter((i) => i.severity === 'warning').map((i) => i.expression?.[0] ?? i.details?.text);
  const attachmentLine = issues.find((i) => i.details?.text?.startsWith('Attachments'))?.details?.text;
  const views = [
    ...kinds.map((k) => ({ ...k, records: data.records.filter((r) => k.types.includes(r.resourceType)) })),
    { key: 'attachments', label: 'Attachments', types: [], records: [] },
    { key: 'timeline', label: 'Timeline', types: [], records: data.records },
  ];
  const found = attachmentsOf(data.records);
  const current = views.find((v) => v.key === view) ?? views[0];
  return (
    <section aria-labelledby="chart-title" class="chart">
      <h2 id="chart-title">The chart</h2>
      <div class="completeness" data-missing={missing.join(' ')}>
        <p>
          <strong>{data.records.length}</strong> records retrieved{attachmentLine ? `. ${attachmentLine}` : ''}.
        </p>
        {missing.length ? (
          <p>
            <strong>Missing:</strong> {missing.join(', ')}
          </p>
        ) : (
          <p>Every kind of record is present.</p>
        )}
      </div>
      <div class="views" role="group" aria-label="Chart views">
        {views.map((v) => (
          <button type="button" aria-pressed={v.key === view} onClick={() => setView(v.key)} data-view={v.key}>
            {v.label} ({v.key === 'attachments' ? found.length : v.records.length})
          </button>
        ))}
      </div>
      <div class="view" aria-live="polite">
        {current.key === 'timeline' ? (
          <Timeline records={data.records} />
        ) : current.key === 'attachments' ? (
          <Attachments found={found} />
        ) : current.key === 'labs' ? (
          <Labs observations={current.records as Observation[]} />
        ) : current.records.length ? (
          <table class="records">
            <caption class="visually-hidden">{current.label}</caption>
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Record</th>
              </tr>
            </thead>
            <tbody>
              {[...current.records]
                .sort((a, b) => dateOf(b).localeCompare(dateOf(a)))
                .map((r) => (
                  <tr>
                    <td>{formatDate(dateOf(r))}</td>
                    <td>{summaryOf(r)}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        ) : (
          <p>None retrieved.</p>
        )}
      </div>
    </section>
  );
}
