/**
 * `Selector`: which eligible model a request goes to. The mux hands a
 * selector only the eligible models of the first tier that has any (not
 * tried yet in this request, admitted by every guard, weight > 0 after
 * ramp-up), so every selector, a user's own included, keeps the tier order
 * and never picks an ineligible model. A selector that returns something
 * else than one of its candidates is a defect.
 *
 * Built-ins:
 * - `weighted` (the default): at random, in proportion to the effective
 *   weights (configured weight × ramp-up factor).
 * - `ordered`: the first in declaration order: a strict priority list.
 * - `latency()`: the lowest moving average of observed latency (time to
 *   first token for streams), with a share of requests (`explore`, default
 *   10 %) sent by weight so the averages stay fresh; a model without samples
 *   is tried first.
 * - `cheapest()`: the lowest estimated cost of this request from each
 *   model's `price` (input estimate × input price + expected output ×
 *   output price); models without a price come last. The expected output is
 *   the model's observed average; for a model without one yet, the mean of
 *   the candidates' averages (not its worst case, which would keep it out
 *   for good), else the request's `maxTokens`, else the model's.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Policy, Selector } from "effect-bedrock-mux"
 *
 * // the model with the fewest failures so far
 * const steadiest = Selector.make("steadiest", (candidates) =>
 *   Effect.succeed(candidates.reduce((a, b) => (b.target.stats.failures < a.target.stats.failures ? b : a))))
 * const policy = Policy.withSelector(steadiest)
 * ```
 *
 * @since 0.1.0
 */
import { type Array as Arr, Effect, Random } from "effect"
import type { RequestInfo } from "./internal/guard.ts"
import * as selection from "./internal/selection.ts"
import type { Target } from "./Target.ts"

/**
 * An eligible model as a selector sees it.
 * @since 0.1.0
 */
export interface Candidate {
  readonly target: Target
  /** the effective weight: configured weight × the guards' factors (ramp-up), > 0 */
  readonly weight: number
  /** the position of its tier in the route (all candidates share it) */
  readonly tier: number
  /** its position in the route: declaration order */
  readonly index: number
}

/**
 * A selection strategy.
 * @since 0.1.0
 */
export interface Selector {
  readonly name: string
  readonly pick: (candidates: Arr.NonEmptyReadonlyArray<Candidate>, request: RequestInfo) => Effect.Effect<Candidate>
  /**
   * Optional: `pick` without an Effect, given the fiber's random numbers in
   * [0, 1) (the mux's fast path uses it when present). Must agree with `pick`.
   */
  readonly pickUnsafe?: ((candidates: Arr.NonEmptyReadonlyArray<Candidate>, request: RequestInfo, random: () => number) => Candidate) | undefined
}

/**
 * A selector from a name and a pick function.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Selector } from "effect-bedrock-mux"
 * const last = Selector.make("last", (cs) => Effect.succeed(cs[cs.length - 1]!))
 * ```
 * @since 0.1.0
 */
export const make = (name: string, pick: Selector["pick"]): Selector => ({ name, pick })

/** A selector from its synchronous pick: `pick` draws from the fiber's `Random`. */
const fromUnsafe = (
  name: string,
  pickUnsafe: (candidates: Arr.NonEmptyReadonlyArray<Candidate>, request: RequestInfo, random: () => number) => Candidate
): Selector => ({
  name,
  pickUnsafe,
  pick: (candidates, request) =>
    Effect.withFiber((fiber) => {
      const r = fiber.getRef(Random.Random)
      return Effect.succeed(pickUnsafe(candidates, request, () => r.nextDoubleUnsafe()))
    })
})

/**
 * Weighted random: each candidate with probability weight / total.
 * @example
 * ```ts
 * import { Policy, Selector } from "effect-bedrock-mux"
 * const p = Policy.withSelector(Selector.weighted)
 * ```
 * @since 0.1.0
 */
export const weighted: Selector = fromUnsafe("weighted", (candidates, _request, random) =>
  candidates.length === 1 ? candidates[0] : selection.weighted(candidates, random()) ?? candidates[0])

/**
 * The first candidate in declaration order.
 * @example
 * ```ts
 * import { Policy, Selector } from "effect-bedrock-mux"
 * const p = Policy.withSelector(Selector.ordered)
 * ```
 * @since 0.1.0
 */
export const ordered: Selector = fromUnsafe("ordered", (candidates) => selection.ordered(candidates, 0) ?? candidates[0])

/**
 * The lowest observed latency (see the module doc).
 * @example
 * ```ts
 * import { Policy, Selector } from "effect-bedrock-mux"
 * const p = Policy.withSelector(Selector.latency({ measure: "timeToFirstToken", explore: 0.05 }))
 * ```
 * @since 0.1.0
 */
export const latency = (options: {
  /** `auto` (default): time to first token for streams, latency otherwise */
  readonly measure?: "auto" | "latency" | "timeToFirstToken"
  /** the share of requests sent by weight instead (0..1, default 0.1) */
  readonly explore?: number
} = {}): Selector => {
  const explore = options.explore ?? 0.1
  const measure = options.measure ?? "auto"
  return fromUnsafe("latency", (candidates, request, random) => {
    const ttft = measure === "timeToFirstToken" || (measure === "auto" && request.operation === "converse_stream")
    const of = (c: Candidate) => (ttft ? c.target.stats.timeToFirstTokenEwmaMs : c.target.stats.latencyEwmaMs)
    const unseen = candidates.find((c) => of(c) === undefined)
    if (unseen !== undefined) return unseen
    if (explore > 0 && random() < explore) return weighted.pickUnsafe!(candidates, request, random)
    let best = candidates[0]
    for (const c of candidates) if (of(c)! < of(best)!) best = c
    return best
  })
}

/**
 * The lowest estimated cost (see the module doc).
 * @example
 * ```ts
 * import { Policy, Selector } from "effect-bedrock-mux"
 * const p = Policy.withSelector(Selector.cheapest())
 * ```
 * @since 0.1.0
 */
export const cheapest = (): Selector =>
  fromUnsafe("cheapest", (candidates, request, random) => {
    // a model not seen answering yet is costed at the candidates' observed mean output, not at its maxTokens:
    // against one model's observed average, a worst case would keep it out for good (an unsampled model is
    // never picked, so it never gets the sample that would correct it)
    let sum = 0
    let seen = 0
    for (const c of candidates) {
      const avg = c.target.stats.outputTokensEwma
      if (avg !== undefined) {
        sum += avg
        seen += 1
      }
    }
    const typical = seen > 0 ? sum / seen : undefined
    const cost = (c: Candidate): number => {
      const price = c.target.model.price
      if (price === undefined) return Infinity
      const output = c.target.stats.outputTokensEwma ?? typical ?? request.maxTokens ?? c.target.model.maxTokens
      return (price.input * request.inputTokens() + price.output * output) / 1000
    }
    let best = Infinity
    for (const c of candidates) best = Math.min(best, cost(c))
    const cheapest = candidates.filter((c) => cost(c) === best) as unknown as Arr.NonEmptyReadonlyArray<Candidate>
    return weighted.pickUnsafe!(cheapest, request, random)
  })
