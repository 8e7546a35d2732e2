// The arithmetic of the outcome figures: Wilson score intervals for shares, and turnaround kept as a
// histogram of geometric buckets (each 10% wider than the last) whose percentiles are bucket edges.

/** The standard normal quantile for a two-sided 95% interval. */
const z95 = 1.959963984540054;

export interface Share {
  count: number;
  /** count / of; null when there is nothing to divide by. */
  share: number | null;
  /** Wilson score interval, 95%; null when there is nothing to divide by. */
  ci95: [number, number] | null;
}

/** The share `count / of` with its Wilson score 95% interval (better than the normal one for small counts and shares near 0 or 1). */
export function shareOf(count: number, of: number): Share {
  if (of <= 0) return { count, share: null, ci95: null };
  const p = count / of;
  const z2 = z95 * z95;
  const centre = (p + z2 / (2 * of)) / (1 + z2 / of);
  const half = (z95 / (1 + z2 / of)) * Math.sqrt((p * (1 - p)) / of + z2 / (4 * of * of));
  return { count, share: p, ci95: [Math.max(0, centre - half), Math.min(1, centre + half)] };
}

const growth = 1.1;
/** Buckets t0..t159: up to 1 minute, then 10% steps up to about eight years. */
export const turnaroundBuckets = 160;

/** The histogram bucket of a turnaround in minutes. */
export function turnaroundBucket(minutes: number): number {
  return minutes <= 1 ? 0 : Math.min(turnaroundBuckets - 1, Math.ceil(Math.log(minutes) / Math.log(growth)));
}

/** The upper edge of a bucket, in hours. */
export function bucketEdgeHours(bucket: number): number {
  return growth ** bucket / 60;
}

/** The nearest-rank percentile `q` (0..1) of a histogram, as its bucket's upper edge in hours (at most 10% high). */
export function percentileHours(histogram: number[], q: number): number | null {
  const total = histogram.reduce((sum, n) => sum + n, 0);
  if (!total) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [bucket, n] of histogram.entries()) {
    seen += n;
    if (seen >= rank) return bucketEdgeHours(bucket);
  }
  return null;
}
