// Labs and findings by test: each test's results in time order, and for a test measured more than
// once with numbers, a trend chart (chart.js) beside a table with the same values.
import { useEffect, useRef } from 'preact/hooks';
import type { Observation } from '@medplum/fhirtypes';
import { Chart, LinearScale, LineController, LineElement, PointElement, CategoryScale, Tooltip } from 'chart.js';
import { formatDate, text } from './cases.js';
import { dateOf, summaryOf } from './records.js';

Chart.register(LinearScale, CategoryScale, LineController, LineElement, PointElement, Tooltip);

function Trend({ name, points }: { name: string; points: { date: string; value: number; unit: string }[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const chart = new Chart(canvas.current as HTMLCanvasElement, {
      type: 'line',
      data: {
        labels: points.map((p) => formatDate(p.date)),
        datasets: [{ label: name, data: points.map((p) => p.value), borderColor: '#0b5cad', pointRadius: 3 }],
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { title: { display: true, text: points[0]?.unit ?? '' } } } },
    });
    return () => chart.destroy();
  }, [points]);
  return (
    <div class="trend">
      <canvas ref={canvas} role="img" aria-label={`Trend of ${name}: ${points.map((p) => `${p.value} ${p.unit} on ${formatDate(p.date)}`).join(', ')}`} />
    </div>
  );
}

export function Labs({ observations }: { observations: Observation[] }) {
  const byTest = new Map<string, Observation[]>();
  for (const o of [...observations].sort((a, b) => dateOf(a).localeCompare(dateOf(b)))) {
    const name = text(o.code) || 'Unnamed test';
    byTest.set(name, [...(byTest.get(name) ?? []), o]);
  }
  return (
    <div class="labs">
      {[...byTest].map(([name, results]) => {
        const numeric = results.filter((o) => typeof o.valueQuantity?.value === 'number');
        return (
          <section class="lab" data-test={name}>
            <h4>{name}</h4>
            {numeric.length > 1 && (
              <Trend
                name={name}
                points={numeric.map((o) => ({ date: dateOf(o), value: o.valueQuantity?.value as number, unit: o.valueQuantity?.unit ?? '' }))}
              />
            )}
            <ul>
              {results.map((o) => (
                <li>
                  <time>{formatDate(dateOf(o))}</time> {summaryOf(o).slice(name.length + 2) || summaryOf(o)}
                </li>
              ))}
            </ul>
          </section>
        );
      })}
    </div>
  );
}
