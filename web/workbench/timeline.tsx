// The chart as a timeline, newest first. Virtualised: only the rows in view (and a few around) are in
// the page, so a case of thousands of records scrolls as fast as one of ten.
import { useMemo, useState } from 'preact/hooks';
import type { Resource } from '@medplum/fhirtypes';
import { formatDate } from './cases.js';
import { dateOf, summaryOf } from './records.js';

const rowHeight = 34;
const viewHeight = 480;
const overscan = 8;

export function Timeline({ records }: { records: Resource[] }) {
  const sorted = useMemo(() => [...records].sort((a, b) => dateOf(b).localeCompare(dateOf(a))), [records]);
  const [top, setTop] = useState(0);
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(sorted.length, Math.ceil((top + viewHeight) / rowHeight) + overscan);
  return (
    <div
      class="timeline"
      style={{ height: `${viewHeight}px` }}
      tabIndex={0}
      role="region"
      aria-label={`Timeline of ${sorted.length} records, newest first; scroll to read`}
      onScroll={(e) => setTop((e.target as HTMLElement).scrollTop)}
    >
      <ul style={{ height: `${sorted.length * rowHeight}px` }} data-total={sorted.length}>
        {sorted.slice(first, last).map((record, i) => (
          <li
            key={`${record.resourceType}/${record.id}`}
            style={{ top: `${(first + i) * rowHeight}px`, height: `${rowHeight}px` }}
            aria-setsize={sorted.length}
            aria-posinset={first + i + 1}
          >
            <time>{formatDate(dateOf(record)) || '—'}</time>
            <span class="type">{record.resourceType}</span>
            <span class="summary">{summaryOf(record)}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
