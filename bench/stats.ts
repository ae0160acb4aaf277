/** What every bench suite computes over its samples. */

/** The q-quantile (0..1) of the samples: the sorted sample at index floor(q·n). */
export const quantile = (xs: ArrayLike<number>, q: number): number => {
  const sorted = Float64Array.from(xs).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/** Rounds of samples, end to end. */
export const concat = (xs: ReadonlyArray<Float64Array>): Float64Array => {
  const out = new Float64Array(xs.reduce((n, x) => n + x.length, 0))
  let o = 0
  for (const x of xs) {
    out.set(x, o)
    o += x.length
  }
  return out
}
