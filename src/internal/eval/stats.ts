/**
 * The statistics of the gate: weighted means, the percentile bootstrap of a
 * mean, the paired bootstrap of a difference, nearest-rank percentiles.
 *
 * The bootstrap functions take `rng`, a generator of [0, 1): the caller
 * draws it from Effect's `Random` under a seed, so a report is reproducible.
 * `resamples` resamples of n cases each, drawn with replacement; the
 * interval is the 2.5th and 97.5th percentile of the resampled means.
 * Pure, given `rng`.
 */

/** Σ w·x / Σ w; undefined for no values. */
export const weightedMean = (xs: ReadonlyArray<number>, ws: ReadonlyArray<number>): number | undefined => {
  let num = 0
  let den = 0
  for (let i = 0; i < xs.length; i++) {
    num += xs[i]! * ws[i]!
    den += ws[i]!
  }
  return den > 0 ? num / den : undefined
}

/** The nearest-rank q-quantile of `sorted` (ascending). */
const rank = (sorted: ArrayLike<number>, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

/** Nearest-rank percentile (q in [0, 1]); undefined for no values. */
export const percentile = (xs: ReadonlyArray<number>, q: number): number | undefined =>
  xs.length === 0 ? undefined : rank([...xs].sort((a, b) => a - b), q)

/**
 * The percentile bootstrap interval of the weighted mean of `xs`:
 * `resamples` resamples of `xs.length` indices drawn with replacement.
 * Undefined for no values.
 */
export const bootstrapInterval = (
  xs: ReadonlyArray<number>,
  ws: ReadonlyArray<number>,
  resamples: number,
  rng: () => number,
  level = 0.95
): readonly [number, number] | undefined => {
  const n = xs.length
  if (n === 0) return undefined
  const means = new Float64Array(resamples)
  for (let b = 0; b < resamples; b++) {
    let num = 0
    let den = 0
    for (let j = 0; j < n; j++) {
      const i = Math.floor(rng() * n)
      num += xs[i]! * ws[i]!
      den += ws[i]!
    }
    means[b] = num / den
  }
  means.sort()
  const tail = (1 - level) / 2
  return [rank(means, tail), rank(means, 1 - tail)]
}

/**
 * The paired bootstrap of a − b over the same cases (`a[i]` and `b[i]` are
 * one case's scores): the mean difference and its interval.
 */
export const pairedBootstrap = (
  a: ReadonlyArray<number>,
  b: ReadonlyArray<number>,
  ws: ReadonlyArray<number>,
  resamples: number,
  rng: () => number,
  level = 0.95
): { readonly diff: number; readonly ci: readonly [number, number] } | undefined => {
  const d = a.map((x, i) => x - b[i]!)
  const diff = weightedMean(d, ws)
  const ci = bootstrapInterval(d, ws, resamples, rng, level)
  return diff === undefined || ci === undefined ? undefined : { diff, ci }
}
