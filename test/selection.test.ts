import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type Candidate, lowestTier, ordered, weighted } from "../src/internal/selection.ts"

/** mulberry32: a small seeded PRNG giving uniform numbers in [0, 1). */
const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Chi-square critical values at 99.9 % for 1..9 degrees of freedom. */
const CHI2_999 = [NaN, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877]

/** Random candidate lists: 1-8 candidates, tiers 0-3, weights 0-100 (some exactly 0). */
const candidatesArb = fc
  .array(
    fc.record({
      tier: fc.integer({ min: 0, max: 3 }),
      weight: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100 }), fc.double({ min: 0.01, max: 100, noNaN: true }))
    }),
    { minLength: 1, maxLength: 8 }
  )
  .map((xs): Array<Candidate> => xs.map((x, index) => ({ index, ...x })))

/** For the chi-square test: integer weights 1-100 (expected count per cell >= 20000/701 > 5) or 0. */
const integerWeightsArb = fc
  .array(
    fc.record({ tier: fc.integer({ min: 0, max: 2 }), weight: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100 })) }),
    { minLength: 2, maxLength: 8 }
  )
  .map((xs): Array<Candidate> => xs.map((x, index) => ({ index, ...x })))

const randomArb = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })

/** What any strategy may pick: a positive-weight candidate of the lowest tier that has one. */
const assertLegalPick = (candidates: ReadonlyArray<Candidate>, picked: Candidate | undefined) => {
  const live = candidates.filter((c) => c.weight > 0)
  if (live.length === 0) {
    assert.isUndefined(picked)
    return
  }
  assert.isDefined(picked)
  assert.isTrue(candidates.includes(picked!), "picks one of the candidates")
  assert.isAbove(picked!.weight, 0, "never a weight-0 candidate")
  const minTier = Math.min(...live.map((c) => c.tier))
  assert.strictEqual(picked!.tier, minTier, "never a higher tier while a lower tier has a candidate")
}

describe("selection.lowestTier", () => {
  it("ignores weight-0 candidates and is Infinity when none has weight", () => {
    assert.strictEqual(lowestTier([]), Infinity)
    assert.strictEqual(lowestTier([{ index: 0, tier: 0, weight: 0 }]), Infinity)
    assert.strictEqual(lowestTier([{ index: 0, tier: 0, weight: 0 }, { index: 1, tier: 2, weight: 1 }]), 2)
  })
})

describe("selection.weighted", () => {
  it("property: picks a positive-weight candidate of the lowest non-empty tier, for every random number", () => {
    fc.assert(
      fc.property(candidatesArb, randomArb, (candidates, r) => {
        assertLegalPick(candidates, weighted(candidates, r))
      }),
      { seed: 20240601, numRuns: 2000 }
    )
  })

  it("property: the edges of [0, 1) pick the first and last positive-weight candidate of the tier", () => {
    fc.assert(
      fc.property(candidatesArb, (candidates) => {
        const tier = lowestTier(candidates)
        const inTier = candidates.filter((c) => c.tier === tier && c.weight > 0)
        if (inTier.length === 0) return
        assert.strictEqual(weighted(candidates, 0), inTier[0])
        assert.strictEqual(weighted(candidates, 1 - Number.EPSILON), inTier[inTier.length - 1])
      }),
      { seed: 7, numRuns: 500 }
    )
  })

  it("property: frequencies within the chosen tier follow the weights (chi-square below the 99.9% critical value)", () => {
    const draws = 20_000
    fc.assert(
      fc.property(integerWeightsArb, fc.integer({ min: 1, max: 2 ** 31 - 1 }), (candidates, seed) => {
        const tier = lowestTier(candidates)
        const inTier = candidates.filter((c) => c.tier === tier && c.weight > 0)
        if (inTier.length < 2) return
        const next = prng(seed)
        const counts = new Map<number, number>()
        for (let i = 0; i < draws; i++) {
          const picked = weighted(candidates, next())!
          counts.set(picked.index, (counts.get(picked.index) ?? 0) + 1)
        }
        const total = inTier.reduce((s, c) => s + c.weight, 0)
        let chi2 = 0
        for (const c of inTier) {
          const expected = (draws * c.weight) / total
          const observed = counts.get(c.index) ?? 0
          chi2 += (observed - expected) ** 2 / expected
        }
        // nothing outside the tier was drawn at all
        assert.strictEqual([...counts.values()].reduce((a, b) => a + b, 0), draws)
        for (const index of counts.keys()) assert.isTrue(inTier.some((c) => c.index === index))
        assert.isBelow(chi2, CHI2_999[inTier.length - 1]!, `chi2 ${chi2} for weights ${inTier.map((c) => c.weight)}`)
      }),
      { seed: 99, numRuns: 60 }
    )
  })

  it("the chi-square bound has power: a biased sampler fails it", () => {
    // negative control of the statistic itself: a strategy that always under-weights the first
    // candidate (uses weight/2 for it) must be rejected by the same bound
    const candidates: Array<Candidate> = [{ index: 0, tier: 0, weight: 50 }, { index: 1, tier: 0, weight: 50 }]
    const biased = (r: number) => (r < 0.25 ? candidates[0]! : candidates[1]!)
    const next = prng(1)
    let first = 0
    for (let i = 0; i < 20_000; i++) if (biased(next()) === candidates[0]) first++
    const expected = 10_000
    const chi2 = (first - expected) ** 2 / expected + (20_000 - first - expected) ** 2 / expected
    assert.isAbove(chi2, CHI2_999[1]!)
  })

  it("a tier whose candidates all have weight 0 is skipped for the next tier", () => {
    const candidates: Array<Candidate> = [
      { index: 0, tier: 0, weight: 0 },
      { index: 1, tier: 1, weight: 3 },
      { index: 2, tier: 2, weight: 100 }
    ]
    for (const r of [0, 0.3, 0.999]) assert.strictEqual(weighted(candidates, r)!.index, 1)
    assert.isUndefined(weighted([], 0.5))
  })
})

describe("selection.ordered", () => {
  it("property: picks the lowest index of the lowest tier (among positive weights), whatever the random number", () => {
    fc.assert(
      fc.property(fc.shuffledSubarray([0, 1, 2, 3, 4, 5, 6, 7]), candidatesArb, randomArb, (order, cands, r) => {
        // declaration indexes need not match array order
        const candidates = cands.map((c, i) => ({ ...c, index: order[i] ?? 100 + i }))
        const picked = ordered(candidates, r)
        assertLegalPick(candidates, picked)
        if (picked === undefined) return
        for (const c of candidates) {
          if (c.tier === picked.tier && c.weight > 0) assert.isAtLeast(c.index, picked.index)
        }
      }),
      { seed: 3, numRuns: 2000 }
    )
  })

  it("is a strict priority list", () => {
    const candidates: Array<Candidate> = [
      { index: 3, tier: 0, weight: 100 },
      { index: 1, tier: 0, weight: 1 },
      { index: 0, tier: 1, weight: 100 },
      { index: 2, tier: 0, weight: 0 }
    ]
    for (const r of [0, 0.5, 0.999]) assert.strictEqual(ordered(candidates, r)!.index, 1)
  })
})
