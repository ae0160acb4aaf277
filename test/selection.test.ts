import { assert, describe, it } from "@effect/vitest"
import { type Array as Arr, Effect, Random, Stream } from "effect"
import * as fc from "fast-check"
import type * as BedrockRuntime from "../src/BedrockRuntime.ts"
import type * as Guard from "../src/Guard.ts"
import { type Candidate, lowestTier, ordered, weighted } from "../src/internal/selection.ts"
import * as Model from "../src/Model.ts"
import * as Selector from "../src/Selector.ts"

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

describe("selection strategies are generic", () => {
  it("they return the candidate object given, with its own fields", () => {
    const candidates = [
      { index: 1, tier: 0, weight: 1, name: "b" },
      { index: 0, tier: 0, weight: 1, name: "a" },
      { index: 2, tier: 1, weight: 5, name: "c" }
    ]
    // typed as the caller's candidate: no cast needed to read `name`
    const w: { readonly name: string } | undefined = weighted(candidates, 0.75)
    const o: { readonly name: string } | undefined = ordered(candidates, 0)
    assert.strictEqual(w, candidates[1])
    assert.strictEqual(o?.name, "a")
    assert.strictEqual(weighted(candidates, 0.25)?.name, "b")
  })
})

// --- the Selector module (src/Selector.ts), run with effect ------------------------------------

/** A selector never calls Bedrock: any call is a defect. */
const runtime: BedrockRuntime.Service = {
  converse: () => Effect.die("a selector called Bedrock"),
  converseStream: () => Stream.die("a selector called Bedrock")
}

interface Spec {
  readonly weight?: number
  readonly latency?: number | undefined
  readonly ttft?: number | undefined
  readonly output?: number | undefined
  readonly price?: Model.Price | undefined
  readonly maxTokens?: number
}

/** A candidate as the mux hands it to a selector (one tier; declaration index as given). */
const candidate = (index: number, spec: Spec = {}): Selector.Candidate => {
  const weight = spec.weight ?? 1
  return {
    target: {
      model: Model.make({
        modelId: `m${index}`,
        weight,
        ...(spec.price === undefined ? {} : { price: spec.price }),
        ...(spec.maxTokens === undefined ? {} : { maxTokens: spec.maxTokens })
      }),
      runtime,
      stats: {
        latencyEwmaMs: spec.latency,
        timeToFirstTokenEwmaMs: spec.ttft,
        outputTokensEwma: spec.output,
        successes: 0,
        failures: 0,
        throttles: 0
      }
    },
    weight,
    tier: 0,
    index
  }
}

const candidates = (...specs: Array<Spec>): Arr.NonEmptyReadonlyArray<Selector.Candidate> =>
  specs.map((spec, i) => candidate(i, spec)) as unknown as Arr.NonEmptyReadonlyArray<Selector.Candidate>

const request = (options: { readonly operation?: string; readonly inputTokens?: number; readonly maxTokens?: number } = {}): Guard.RequestInfo => ({
  id: "r1",
  operation: options.operation ?? "converse",
  label: undefined,
  tenant: undefined,
  inputTokens: () => options.inputTokens ?? 100,
  maxTokens: options.maxTokens,
  serviceTier: undefined
})

/** The indexes `n` picks of `selector` land on, under a seeded Random. */
const picks = (
  selector: Selector.Selector,
  cs: Arr.NonEmptyReadonlyArray<Selector.Candidate>,
  n: number,
  seed: string,
  req: Guard.RequestInfo = request()
): Array<number> =>
  Effect.runSync(
    Effect.gen(function*() {
      const out: Array<number> = []
      for (let i = 0; i < n; i++) {
        const c = yield* selector.pick(cs, req)
        // a selector returns one of its candidates, never a copy
        if (!cs.includes(c)) return yield* Effect.die(`picked a value that is not a candidate: ${c.target.model.target}`)
        out.push(c.index)
      }
      return out
    }).pipe(Random.withSeed(seed))
  )

const countsOf = (indexes: ReadonlyArray<number>, size: number): Array<number> => {
  const counts = Array.from({ length: size }, () => 0)
  for (const i of indexes) counts[i]!++
  return counts
}

const chiSquare = (counts: ReadonlyArray<number>, probabilities: ReadonlyArray<number>): number => {
  const n = counts.reduce((a, b) => a + b, 0)
  return counts.reduce((chi2, observed, i) => chi2 + (observed - n * probabilities[i]!) ** 2 / (n * probabilities[i]!), 0)
}

/** Positive weights for 2..6 candidates of one tier (what the mux hands a selector). */
const weightsArb = fc.array(fc.oneof(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0.01, max: 100, noNaN: true })), { minLength: 2, maxLength: 6 })

describe("Selector: names", () => {
  it("the built-ins are named as the config's `selection` values; make keeps the name", () => {
    assert.deepStrictEqual(
      [Selector.weighted.name, Selector.ordered.name, Selector.latency().name, Selector.cheapest().name],
      ["weighted", "ordered", "latency", "cheapest"]
    )
    assert.strictEqual(Selector.make("last", (cs) => Effect.succeed(cs[cs.length - 1]!)).name, "last")
  })
})

describe("Selector.weighted", () => {
  it("property: each pick is selection.weighted of the next Random number (seeded)", () => {
    fc.assert(
      fc.property(weightsArb, fc.string({ minLength: 1, maxLength: 8 }), (weights, seed) => {
        const cs = candidates(...weights.map((weight) => ({ weight })))
        const draws = Effect.runSync(
          Effect.gen(function*() {
            const rs: Array<number> = []
            for (let i = 0; i < 30; i++) rs.push(yield* Random.next)
            return rs
          }).pipe(Random.withSeed(seed))
        )
        assert.deepStrictEqual(picks(Selector.weighted, cs, 30, seed), draws.map((r) => weighted(cs, r)!.index))
      }),
      { seed: 5150, numRuns: 100 }
    )
  })

  it("frequencies follow the weights (chi-square below the 99.9% critical value)", () => {
    const weights = [1, 3, 6, 10]
    const counts = countsOf(picks(Selector.weighted, candidates(...weights.map((weight) => ({ weight }))), 10_000, "weighted-freq"), 4)
    assert.isBelow(chiSquare(counts, weights.map((w) => w / 20)), CHI2_999[3]!, `counts ${counts}`)
  })

  it("a single candidate is picked", () => {
    assert.deepStrictEqual(picks(Selector.weighted, candidates({ weight: 0.5 }), 20, "one"), Array.from({ length: 20 }, () => 0))
  })
})

describe("Selector.ordered", () => {
  it("property: picks the candidate declared first, whatever the weights and the order handed in", () => {
    fc.assert(
      fc.property(weightsArb.chain((ws) => fc.tuple(fc.constant(ws), fc.shuffledSubarray([...ws.keys()], { minLength: ws.length }))), fc.string(), ([weights, order], seed) => {
        // declaration indexes in a shuffled order: the array position means nothing
        const cs = order.map((index, i) => candidate(index, { weight: weights[i]! })) as unknown as Arr.NonEmptyReadonlyArray<Selector.Candidate>
        const picked = picks(Selector.ordered, cs, 5, seed)
        assert.deepStrictEqual(picked, Array.from({ length: 5 }, () => 0))
      }),
      { seed: 77, numRuns: 200 }
    )
  })
})

describe("Selector.latency()", () => {
  it("a model without samples goes first (the first such, in the order handed in), even when exploring always", () => {
    const cs = candidates({ latency: 10 }, { latency: undefined }, { latency: undefined }, { latency: 5 })
    for (const explore of [0, 0.1, 1]) {
      assert.deepStrictEqual(new Set(picks(Selector.latency({ explore }), cs, 50, `unseen-${explore}`)), new Set([1]), `explore ${explore}`)
    }
  })

  it("property: without exploring, the lowest moving average (the first of equals)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 6 }), (latencies) => {
        const cs = candidates(...latencies.map((latency) => ({ latency, weight: 1 + latency })))
        const best = latencies.indexOf(Math.min(...latencies))
        assert.deepStrictEqual(new Set(picks(Selector.latency({ explore: 0 }), cs, 10, "best")), new Set([best]))
      }),
      { seed: 11, numRuns: 200 }
    )
  })

  it("measure: auto reads time to first token for streams and latency otherwise; either can be forced", () => {
    // m0: quick to answer a whole Converse, slow to start a stream; m1 the other way round
    const cs = candidates({ latency: 100, ttft: 900 }, { latency: 500, ttft: 50 })
    const stream = request({ operation: "converse_stream" })
    const one = (selector: Selector.Selector, req: Guard.RequestInfo) => new Set(picks(selector, cs, 20, "measure", req))
    assert.deepStrictEqual(one(Selector.latency({ explore: 0 }), request()), new Set([0]))
    assert.deepStrictEqual(one(Selector.latency({ explore: 0 }), stream), new Set([1]))
    assert.deepStrictEqual(one(Selector.latency({ explore: 0, measure: "latency" }), stream), new Set([0]))
    assert.deepStrictEqual(one(Selector.latency({ explore: 0, measure: "timeToFirstToken" }), request()), new Set([1]))
    // a model with latency samples but no stream yet is unsampled for time to first token
    const noTtft = candidates({ latency: 100, ttft: 50 }, { latency: 500, ttft: undefined })
    assert.deepStrictEqual(new Set(picks(Selector.latency({ explore: 0 }), noTtft, 20, "ttft", stream)), new Set([1]))
  })

  it("explores at about the `explore` share (default 0.1), by weight", () => {
    // m0 is the fastest; exploring draws by weight 2 : 1 : 3, so it leaves m0 with probability explore x 4/6
    const cs = candidates({ latency: 50, weight: 2 }, { latency: 80, weight: 1 }, { latency: 120, weight: 3 })
    const n = 10_000
    for (const [selector, explore] of [[Selector.latency(), 0.1], [Selector.latency({ explore: 0.3 }), 0.3]] as const) {
      const counts = countsOf(picks(selector, cs, n, `explore-${explore}`), 3)
      const away = counts[1]! + counts[2]!
      const p = explore * (4 / 6)
      const sd = Math.sqrt(n * p * (1 - p))
      assert.isBelow(Math.abs(away - n * p), 5 * sd, `explore ${explore}: ${away} of ${n} away from the fastest`)
      const probabilities = [1 - explore + explore * (2 / 6), explore / 6, explore * (3 / 6)]
      assert.isBelow(chiSquare(counts, probabilities), CHI2_999[2]!, `explore ${explore}: counts ${counts}`)
    }
    assert.deepStrictEqual(countsOf(picks(Selector.latency({ explore: 0 }), cs, 1_000, "no-explore"), 3), [1_000, 0, 0])
  })
})

describe("Selector.cheapest()", () => {
  /**
   * the documented estimate: input estimate x input price + expected output x output price, per 1,000 tokens; the
   * expected output of a model without an average is the mean of the candidates' averages
   */
  const costOf = (c: Selector.Candidate, req: Guard.RequestInfo, all: ReadonlyArray<Selector.Candidate>): number => {
    const price = c.target.model.price
    if (price === undefined) return Infinity
    const seen = all.flatMap((x) => (x.target.stats.outputTokensEwma === undefined ? [] : [x.target.stats.outputTokensEwma]))
    const typical = seen.length === 0 ? undefined : seen.reduce((a, b) => a + b, 0) / seen.length
    return (price.input * req.inputTokens() + price.output * (c.target.stats.outputTokensEwma ?? typical ?? req.maxTokens ?? c.target.model.maxTokens)) / 1000
  }

  it("the lowest estimated cost of this request: the input estimate decides between input- and output-heavy prices", () => {
    // m0: cheap output; m1: cheap input
    const cs = candidates({ price: { input: 1, output: 1 } }, { price: { input: 0.5, output: 10 } })
    // 1,000 in, 100 out: m0 1.1 vs m1 1.5
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), cs, 20, "short", request({ inputTokens: 1_000, maxTokens: 100 }))), new Set([0]))
    // 10,000 in, 100 out: m0 10.1 vs m1 6
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), cs, 20, "long", request({ inputTokens: 10_000, maxTokens: 100 }))), new Set([1]))
  })

  it("expected output: the model's observed average, else the candidates' mean, else the request's maxTokens, else the model's", () => {
    const req = request({ inputTokens: 1_000, maxTokens: 100 })
    // with maxTokens 100: m0 1.1, m1 1.5; but m1 is seen to answer in 10 tokens: 0.6 (m0, not seen, at that mean: 1.01)
    const observed = candidates({ price: { input: 1, output: 1 } }, { price: { input: 0.5, output: 10 }, output: 10 })
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), observed, 20, "observed", req)), new Set([1]))
    // m1 seen answering at length, m0 not yet: m0 is costed at that length too (1 + 2 = 3 vs 0.5 + 20 = 20.5)
    const long = candidates({ price: { input: 1, output: 1 } }, { price: { input: 0.5, output: 10 }, output: 2_000 })
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), long, 20, "long", req)), new Set([0]))
    // no maxTokens on the request: the models' own (m0 4,096 -> 5.096; m1 50 -> 1.0)
    const own = candidates({ price: { input: 1, output: 1 } }, { price: { input: 0.5, output: 10 }, maxTokens: 50 })
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), own, 20, "own", request({ inputTokens: 1_000 }))), new Set([1]))
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), own, 20, "own-100", req)), new Set([0]))
  })

  it("unpriced models come last: never picked while a priced one is a candidate; among only unpriced, by weight", () => {
    const mixed = candidates({ weight: 100 }, { price: { input: 100, output: 100 }, weight: 1 }, { weight: 100 })
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), mixed, 200, "mixed")), new Set([1]))
    const unpriced = candidates({ weight: 1 }, { weight: 3 })
    const counts = countsOf(picks(Selector.cheapest(), unpriced, 4_000, "unpriced"), 2)
    assert.isBelow(chiSquare(counts, [0.25, 0.75]), CHI2_999[1]!, `counts ${counts}`)
  })

  it("a model not seen answering yet is not costed at its worst case: a cheaper one is tried, an equal one shares", () => {
    const req = request({ inputTokens: 100 })
    // m1 answered (5 tokens), m0 never has (say its first call failed): m0 is a quarter of the price
    const cheaper = candidates({ price: { input: 1, output: 1 } }, { price: { input: 4, output: 4 }, output: 5 })
    assert.deepStrictEqual(new Set(picks(Selector.cheapest(), cheaper, 20, "cheaper", req)), new Set([0]))
    // equal prices, weights 1:3, only m1 seen: both cost the same, so they share by weight
    const equal = candidates({ price: { input: 1, output: 1 }, weight: 1 }, { price: { input: 1, output: 1 }, weight: 3, output: 5 })
    const counts = countsOf(picks(Selector.cheapest(), equal, 4_000, "equal-unseen", req), 2)
    assert.isBelow(chiSquare(counts, [0.25, 0.75]), CHI2_999[1]!, `counts ${counts}`)
  })

  it("equal costs share the traffic by weight; a costlier model gets none", () => {
    const cs = candidates({ price: { input: 1, output: 2 }, weight: 1 }, { price: { input: 3, output: 3 }, weight: 50 }, { price: { input: 1, output: 2 }, weight: 3 })
    const counts = countsOf(picks(Selector.cheapest(), cs, 4_000, "ties"), 3)
    assert.strictEqual(counts[1], 0)
    assert.isBelow(chiSquare([counts[0]!, counts[2]!], [0.25, 0.75]), CHI2_999[1]!, `counts ${counts}`)
  })

  it("property: the pick has the lowest estimated cost, and is unpriced only when every candidate is", () => {
    const specArb = fc.record({
      weight: fc.integer({ min: 1, max: 10 }),
      price: fc.option(fc.record({ input: fc.integer({ min: 0, max: 20 }), output: fc.integer({ min: 0, max: 20 }) }), { nil: undefined }),
      output: fc.option(fc.integer({ min: 1, max: 2_000 }), { nil: undefined }),
      maxTokens: fc.integer({ min: 1, max: 8_000 })
    })
    fc.assert(
      fc.property(
        fc.array(specArb, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.option(fc.integer({ min: 1, max: 4_000 }), { nil: undefined }),
        fc.string(),
        (specs, inputTokens, maxTokens, seed) => {
          const cs = candidates(...specs)
          const req = request(maxTokens === undefined ? { inputTokens } : { inputTokens, maxTokens })
          const lowest = Math.min(...cs.map((c) => costOf(c, req, cs)))
          for (const i of picks(Selector.cheapest(), cs, 5, seed, req)) {
            assert.strictEqual(costOf(cs[i]!, req, cs), lowest)
            if (cs[i]!.target.model.price === undefined) assert.isTrue(cs.every((c) => c.target.model.price === undefined))
          }
        }
      ),
      { seed: 2718, numRuns: 300 }
    )
  })
})
