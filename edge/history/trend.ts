// Robust trend of daily peaks: Theil–Sen (the median of pairwise slopes), which a few outlier days
// (a sale, an incident) cannot tilt. Weekly seasonality: with two weeks or more, only pairs of days a
// whole number of weeks apart are compared, so a weekday/weekend pattern cancels in every slope it
// uses and is never read as growth; the pattern is then estimated as the median residual per weekday
// and kept in the forecast. Uncertainty: Sen's 95 % confidence interval of the slope (normal
// approximation of Kendall's S: ranks (N ∓ 1.96 √(n(n−1)(2n+5)/18)) / 2 among the N sorted slopes).

export interface Trend {
  method: string;
  /** Utilisation change per day (e.g. 0.0014 = +0.14 points of utilisation per day). */
  slope: number;
  /** 95 % interval of the slope. */
  slopeLow: number;
  slopeHigh: number;
  intercept: number;
  /** Offset per weekday (0 = Sunday), zero when not seasonal. */
  weekday: number[];
  seasonal: boolean;
  days: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `x`: day numbers (days since epoch), `y`: the value of each day; weekday of day x is (x + 4) % 7. */
export function theilSen(x: readonly number[], y: readonly number[]): Trend | null {
  const n = x.length;
  if (n < 3) return null;
  const span = x[n - 1] - x[0];
  const seasonal = span >= 14;
  const slopes: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = x[j] - x[i];
      if (dx === 0 || (seasonal && dx % 7 !== 0)) continue;
      slopes.push((y[j] - y[i]) / dx);
    }
  }
  if (slopes.length === 0) return null;
  slopes.sort((a, b) => a - b);
  const N = slopes.length;
  const slope = N % 2 === 1 ? slopes[N >> 1] : (slopes[(N >> 1) - 1] + slopes[N >> 1]) / 2;
  const c = 1.96 * Math.sqrt((n * (n - 1) * (2 * n + 5)) / 18);
  const lo = Math.max(0, Math.floor((N - c) / 2));
  const hi = Math.min(N - 1, Math.ceil((N + c) / 2));
  const intercept = median(x.map((xi, i) => y[i] - slope * xi));
  const weekday = [0, 0, 0, 0, 0, 0, 0];
  if (seasonal) {
    const byDay: number[][] = [[], [], [], [], [], [], []];
    for (let i = 0; i < n; i++) byDay[(x[i] + 4) % 7].push(y[i] - intercept - slope * x[i]);
    for (let d = 0; d < 7; d++) weekday[d] = byDay[d].length > 0 ? median(byDay[d]) : 0;
  }
  return {
    method: seasonal ? 'Theil–Sen on daily peaks, same-weekday pairs (weekly seasonality removed), weekday offsets kept' : 'Theil–Sen on daily peaks (under 14 days: no seasonality removed)',
    slope, slopeLow: slopes[lo], slopeHigh: slopes[hi], intercept, weekday, seasonal, days: n,
  };
}

export function forecast(t: Trend, day: number, slope = t.slope): number {
  return t.intercept + slope * day + t.weekday[(day + 4) % 7];
}

/**
 * First day after `today` whose forecast reaches `target`, searching `horizonDays` ahead; null when
 * not within the horizon. With another slope (the interval's ends) the intercept pivots around
 * today's fitted level, so the interval widens with the distance, as it should.
 */
export function crossingDay(t: Trend, today: number, target: number, slope = t.slope, horizonDays = 730): number | null {
  const base = forecast(t, today) - t.weekday[(today + 4) % 7];
  for (let d = today + 1; d <= today + horizonDays; d++) {
    const v = base + slope * (d - today) + t.weekday[(d + 4) % 7];
    if (v >= target) return d;
  }
  return null;
}
