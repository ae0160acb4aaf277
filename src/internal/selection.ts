/**
 * Model selection as pure functions over the candidates the engine found
 * eligible (breaker admits, not excluded, weight > 0 after ramp-up).
 */

/** An eligible model, with its effective weight (configured weight × ramp factor). */
export interface Candidate {
  /** position in the pool (declaration order) */
  readonly index: number
  readonly tier: number
  readonly weight: number
}

/** Picks a candidate given a uniform random number in [0, 1). */
export type Strategy = <C extends Candidate>(candidates: ReadonlyArray<C>, random: number) => C | undefined

/** The lowest tier that has a candidate (Infinity when none). */
export const lowestTier = (candidates: ReadonlyArray<Candidate>): number => {
  let tier = Infinity
  for (const c of candidates) if (c.weight > 0 && c.tier < tier) tier = c.tier
  return tier
}

/**
 * Weighted random among the candidates of the lowest tier that has one:
 * P(c) = weight(c) / Σ weight within that tier.
 */
export const weighted: Strategy = <C extends Candidate>(candidates: ReadonlyArray<C>, random: number): C | undefined => {
  const tier = lowestTier(candidates)
  if (tier === Infinity) return undefined
  let total = 0
  for (const c of candidates) if (c.tier === tier && c.weight > 0) total += c.weight
  let point = random * total
  let last: C | undefined
  for (const c of candidates) {
    if (c.tier !== tier || c.weight <= 0) continue
    last = c
    point -= c.weight
    if (point < 0) return c
  }
  // float rounding at the top end
  return last
}

/** The first candidate in declaration order within the lowest tier (a strict priority list). */
export const ordered: Strategy = <C extends Candidate>(candidates: ReadonlyArray<C>): C | undefined => {
  const tier = lowestTier(candidates)
  if (tier === Infinity) return undefined
  let best: C | undefined
  for (const c of candidates) {
    if (c.tier === tier && c.weight > 0 && (best === undefined || c.index < best.index)) best = c
  }
  return best
}
