/**
 * `Target`: a model of the pool as the mux runs it: its `Model` (the
 * config), the `BedrockRuntime` that calls it, and its live statistics.
 * Selectors, guards and attempts all receive targets.
 *
 * Gotchas:
 * - `stats` is live and read-only: it changes as requests end. A selector
 *   that reads it sees the figures of the moment it runs.
 * - Two muxes never share targets (or stats), even over one store; breaker,
 *   cooldown and quota state is shared through the store, by `model.target`.
 *
 * @since 0.1.0
 */
import type { Service as Runtime } from "./BedrockRuntime.ts"
import type { Model } from "./Model.ts"

/**
 * A pool entry at run time.
 *
 * @example
 * ```ts
 * import type { Target } from "effect-bedrock-mux"
 * const describe = (t: Target.Target) => `${t.model.modelId} (tier ${t.model.tier}, ewma ${t.stats.latencyEwmaMs ?? "n/a"} ms)`
 * ```
 * @since 0.1.0
 */
export interface Target {
  readonly model: Model
  readonly runtime: Runtime
  readonly stats: Stats
}

/**
 * A target's live statistics, as selectors read them. Latencies are
 * exponentially weighted moving averages (weight 0.2 for each new sample) of
 * successful attempts; undefined until the first sample.
 *
 * @example
 * ```ts
 * import type { Target } from "effect-bedrock-mux"
 * const fastest = (a: Target.Target, b: Target.Target) => (a.stats.latencyEwmaMs ?? 0) - (b.stats.latencyEwmaMs ?? 0)
 * ```
 * @since 0.1.0
 */
export interface Stats {
  /** Converse attempts, and streams to their end: from the attempt's start to its answer */
  readonly latencyEwmaMs: number | undefined
  /** streams: from the attempt's start to its first content event */
  readonly timeToFirstTokenEwmaMs: number | undefined
  /** output tokens of successful answers, averaged the same way */
  readonly outputTokensEwma: number | undefined
  readonly successes: number
  readonly failures: number
  readonly throttles: number
}
