// Robust trend of daily peaks: Theil–Sen (the median of pairwise slopes), which a few outlier days
// (a sale, an incident) cannot tilt. Weekly seasonality, with two weeks of data or more, is taken
// as multiplicative (a Saturday is some fraction of a weekday, whatever the level):
//  1. a first slope from pairs of days a whole number of weeks apart only (Hirsch's seasonal
//     Kendall slope: the weekly pattern cancels in every pair);
//  2. one factor per weekday: the median of (day ÷ that line) over the days of that weekday;
//  3. the days divided by their weekday factor, then Theil–Sen over all pairs of these
//     deseasonalised days: the final slope, intercept and interval; factors re-estimated once.
// The forecast is (intercept + slope × day) × factor of its weekday, so the band is reached first
// on the busiest weekdays and a weekend dip is never read as a trend. Uncertainty: Sen's 95 %
// confidence interval of the slope (ranks (N ∓ 1.96 √(n(n−1)(2n+5)/18)) / 2 among the N sorted
// pairwise slopes), shown as the earliest and latest crossing day.

export interface Trend {
  method: string;
  /** Utilisation change per day (of an average day: factors average 1). */
  slope: number;
  /** 95 % interval of the slope. */
  slopeLow: number;
  slopeHigh: number;
  intercept: number;
  /** Multiplicative factor per weekday (0 = Sunday), all 1 when not seasonal. */
  weekday: number[];
  seasonal: boolean;
  days: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const weekdayOf = (day: number): number => (day + 4) % 7; // day 0 = 1970-01-01, a Thursday

interface Fit { slope: number; lo: number; hi: number; intercept: number }

function sen(x: readonly number[], y: readonly number[], sameWeekday: boolean): Fit | null {
  const n = x.length;
  const slopes: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = x[j] - x[i];
      if (dx === 0 || (sameWeekday && dx % 7 !== 0)) continue;
      slopes.push((y[j] - y[i]) / dx);
    }
  }
  if (slopes.length === 0) return null;
  slopes.sort((a, b) => a - b);
  const N = slopes.length;
  const slope = N % 2 === 1 ? slopes[N >> 1] : (slopes[(N >> 1) - 1] + slopes[N >> 1]) / 2;
  const c = 1.96 * Math.sqrt((n * (n - 1) * (2 * n + 5)) / 18);
  const lo = slopes[Math.max(0, Math.floor((N - c) / 2))];
  const hi = slopes[Math.min(N - 1, Math.ceil((N + c) / 2))];
  return { slope, lo, hi, intercept: median(x.map((xi, i) => y[i] - slope * xi)) };
}

function factorsOf(x: readonly number[], y: readonly number[], f: Fit): number[] {
  const by: number[][] = [[], [], [], [], [], [], []];
  for (let i = 0; i < x.length; i++) {
    const line = f.intercept + f.slope * x[i];
    if (line > 0) by[weekdayOf(x[i])].push(y[i] / line);
  }
  const raw = by.map((v) => (v.length > 0 ? median(v) : NaN));
  const known = raw.filter((v) => Number.isFinite(v));
  const mean = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
  return raw.map((v) => (Number.isFinite(v) && mean > 0 ? v / mean : 1));
}

/** `x`: day numbers (days since 1970-01-01, ascending), `y`: the value of each day. */
export function theilSen(x: readonly number[], y: readonly number[]): Trend | null {
  const n = x.length;
  if (n < 3) return null;
  const seasonal = x[n - 1] - x[0] >= 14;
  if (!seasonal) {
    const f = sen(x, y, false);
    if (f === null) return null;
    return { method: 'Theil–Sen on daily peaks (under 14 days of data: no weekly seasonality removed)', slope: f.slope, slopeLow: f.lo, slopeHigh: f.hi, intercept: f.intercept, weekday: [1, 1, 1, 1, 1, 1, 1], seasonal, days: n };
  }
  const first = sen(x, y, true);
  if (first === null) return null;
  let factors = factorsOf(x, y, first);
  let fit: Fit = first;
  for (let k = 0; k < 2; k++) {
    const ds = y.map((v, i) => v / factors[weekdayOf(x[i])]);
    const f = sen(x, ds, false);
    if (f === null) break;
    fit = f;
    if (k === 0) factors = factorsOf(x, y, fit);
  }
  return {
    method: 'Theil–Sen on daily peaks, weekly seasonality removed (seasonal Kendall slope, multiplicative weekday factors), Sen 95 % interval',
    slope: fit.slope, slopeLow: fit.lo, slopeHigh: fit.hi, intercept: fit.intercept, weekday: factors, seasonal, days: n,
  };
}

export function forecast(t: Trend, day: number, slope = t.slope): number {
  return (t.intercept + slope * day) * t.weekday[weekdayOf(day)];
}

/**
 * First day after `today` whose forecast reaches `target`, searching `horizonDays` ahead; null when
 * not within the horizon. With another slope (the interval's ends) the line pivots around today's
 * fitted level, so the interval widens with the distance, as it should.
 */
export function crossingDay(t: Trend, today: number, target: number, slope = t.slope, horizonDays = 730): number | null {
  const base = t.intercept + t.slope * today;
  for (let d = today + 1; d <= today + horizonDays; d++) {
    if ((base + slope * (d - today)) * t.weekday[weekdayOf(d)] >= target) return d;
  }
  return null;
}
