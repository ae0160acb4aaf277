/**
 * Routing policies as values: how a model is selected, how an error is
 * classified, how the breaker behaves, the deadlines, and the backoff for
 * when a single model is left. The JSON config decodes into these same
 * values; code composes them with the combinators below.
 *
 * Laws (checked by test/Policy.test.ts; see docs/policies.md):
 * - `override(tag, d)(c)` decides like `c` for every other reason tag, and
 *   like `{ ...c(e), ...d }` for `tag`. Overrides of different tags commute;
 *   the same override twice is the same as once.
 * - `weighted` and `ordered` never pick from tier n+1 while tier n has an
 *   eligible model, never pick a model of weight 0, and `weighted` picks
 *   each model of the chosen tier with probability weight / tier's total.
 * - `Policy.make(p)` fills unspecified fields from `Policy.defaults`;
 *   `with*` combinators replace exactly one field.
 *
 * Gotchas:
 * - `attempts` counts every attempt of a request, retries of the same model
 *   included.
 * - A backoff only applies when the failing model is the last one eligible:
 *   while another model can take the request, failover is immediate.
 *
 * @since 0.1.0
 */
import type { ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import { Duration, Schedule } from "effect"
import * as BedrockError from "./BedrockError.ts"
import * as selection from "./internal/selection.ts"
import { estimateInputTokens } from "./internal/tokens.ts"

export type { Candidate } from "./internal/selection.ts"

/**
 * A selection strategy.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const p = Policy.make({ selection: Policy.ordered })
 * ```
 * @since 0.1.0
 */
export interface Selection {
  readonly name: string
  readonly pick: selection.Strategy
}

/** Weighted random within the lowest tier that has an eligible model (the default). @since 0.1.0 */
export const weighted: Selection = { name: "weighted", pick: selection.weighted }
/** Declaration order within the lowest eligible tier: a strict priority list. @since 0.1.0 */
export const ordered: Selection = { name: "ordered", pick: selection.ordered }

/**
 * Decides what to do with a failed attempt.
 * @example
 * ```ts
 * import { BedrockError, Policy } from "effect-bedrock-mux"
 * const c: Policy.Classification = (e) => BedrockError.decisionOf(e.reason)
 * ```
 * @since 0.1.0
 */
export type Classification = (error: BedrockError.BedrockError) => BedrockError.Decision

/** The taxonomy's defaults (`BedrockError.decisionOf`). @since 0.1.0 */
export const defaultClassification: Classification = (error) => BedrockError.decisionOf(error.reason)

/**
 * Overrides the decision for one reason tag.
 *
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * // fail over on AccessDenied (a pool spanning accounts with different model access)
 * const c = Policy.override("AccessDenied", { failover: true })(Policy.defaultClassification)
 * ```
 * @since 0.1.0
 */
export const override = (tag: BedrockError.ReasonTag, decision: Partial<BedrockError.Decision>) =>
(self: Classification): Classification =>
(error) => error.reason._tag === tag ? { ...self(error), ...decision } : self(error)

/**
 * Circuit breaker settings.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const b = Policy.breaker({ failures: 3, cooldown: "10 seconds" })
 * ```
 * @since 0.1.0
 */
export interface Breaker {
  /** counted failures within `window` that open the breaker */
  readonly failures: number
  readonly window: Duration.Duration
  /** first open period; doubles on each consecutive trip, capped at `cooldownMax` */
  readonly cooldown: Duration.Duration
  readonly cooldownMax: Duration.Duration
  /** probes admitted at once when half-open; that many successes close it */
  readonly halfOpen: number
  /** after closing, the model's weight ramps from 10 % to 100 % over this */
  readonly rampUp: Duration.Duration
}

/** @since 0.1.0 */
export const defaultBreaker: Breaker = {
  failures: 5,
  window: Duration.seconds(60),
  cooldown: Duration.seconds(30),
  cooldownMax: Duration.minutes(5),
  halfOpen: 1,
  rampUp: Duration.seconds(30)
}

/** Breaker settings from partial input; durations as `Duration.Input`. @since 0.1.0 */
export const breaker = (input: {
  readonly failures?: number
  readonly window?: Duration.Input
  readonly cooldown?: Duration.Input
  readonly cooldownMax?: Duration.Input
  readonly halfOpen?: number
  readonly rampUp?: Duration.Input
} = {}): Breaker => ({
  failures: input.failures ?? defaultBreaker.failures,
  window: input.window !== undefined ? Duration.fromInputUnsafe(input.window) : defaultBreaker.window,
  cooldown: input.cooldown !== undefined ? Duration.fromInputUnsafe(input.cooldown) : defaultBreaker.cooldown,
  cooldownMax: input.cooldownMax !== undefined ? Duration.fromInputUnsafe(input.cooldownMax) : defaultBreaker.cooldownMax,
  halfOpen: input.halfOpen ?? defaultBreaker.halfOpen,
  rampUp: input.rampUp !== undefined ? Duration.fromInputUnsafe(input.rampUp) : defaultBreaker.rampUp
})

/**
 * The whole routing policy of a mux.
 * @since 0.1.0
 */
export interface Policy {
  /** total attempts per request, retries included (default 4) */
  readonly attempts: number
  /** per attempt (default 30 s); a model's own `timeout` takes precedence */
  readonly timeout: Duration.Duration
  /** per request across all attempts and waits (default 60 s) */
  readonly deadline: Duration.Duration
  readonly breaker: Breaker
  readonly selection: Selection
  readonly classification: Classification
  /** delays between retries of the last eligible model; none by default */
  readonly backoff: Schedule.Schedule<unknown, BedrockError.BedrockError> | undefined
  /** when nothing is eligible, wait for the earliest recovery if it falls inside the deadline */
  readonly waitForRecovery: boolean
  /** input tokens of a request before it is sent (quota reservations); see `defaultTokenEstimator` */
  readonly estimateInputTokens: TokenEstimator
  /** ConverseStream: first-token and stall limits, what happens after content was delivered, hedging */
  readonly stream: Streaming
}

/**
 * How `converseStream` treats time and interruptions.
 *
 * An attempt's first phase ends at its first content event (the commit
 * point): until then it is bounded by `firstToken` (and by the model's
 * `timeout` when that is shorter), and any failure fails over like a
 * Converse error. After it, every gap between two events is bounded by
 * `stall`, and the whole stream by the request deadline.
 *
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const p = Policy.withStreaming({ firstToken: "3 seconds", hedge: Policy.hedge({ after: "p95" }) })(Policy.defaults)
 * ```
 * @since 0.1.0
 */
export interface Streaming {
  /** longest wait for an attempt's first content event (default 10 s) */
  readonly firstToken: Duration.Duration
  /** longest gap between two events once content flows (default 10 s) */
  readonly stall: Duration.Duration
  /**
   * after `messageStop`, how long to wait for the `metadata` event (default
   * 250 ms); a stream whose metadata does not come in time ends complete,
   * with its usage marked estimated
   */
  readonly metadataGrace: Duration.Duration
  /**
   * after content was delivered and the model fails: `"fail"` (default) ends
   * the stream with `StreamInterrupted`; `"restart"` emits a `reset` event and
   * then another model's whole answer
   */
  readonly onInterrupt: "fail" | "restart"
  /** hedged first tokens; off when undefined (the default) */
  readonly hedge: Hedge | undefined
}

/**
 * Hedging: when an attempt has produced no content after `after`, the same
 * request starts on the next eligible model; the first to deliver content
 * wins and the other is aborted.
 * @since 0.1.0
 */
export interface Hedge {
  /** a fixed delay, or `"p95"`: the model's observed p95 time to first token (no hedge before 20 samples) */
  readonly after: Duration.Duration | "p95"
  /** the largest share of hedgeable requests that may be hedged, over the last minute (0..1, default 0.1) */
  readonly budget: number
}

/**
 * Hedge settings from partial input.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const h = Policy.hedge({ after: "1500 millis", budget: 0.2 })
 * ```
 * @since 0.1.0
 */
export const hedge = (input: { readonly after?: Duration.Input | "p95"; readonly budget?: number } = {}): Hedge => ({
  after: input.after === undefined || input.after === "p95" ? "p95" : Duration.fromInputUnsafe(input.after),
  budget: input.budget ?? 0.1
})

/** @since 0.1.0 */
export const defaultStreaming: Streaming = {
  firstToken: Duration.seconds(10),
  stall: Duration.seconds(10),
  metadataGrace: Duration.millis(250),
  onInterrupt: "fail",
  hedge: undefined
}

/**
 * Replaces some streaming settings; durations as `Duration.Input`.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const p = Policy.withStreaming({ stall: "5 seconds", onInterrupt: "restart" })(Policy.defaults)
 * ```
 * @since 0.1.0
 */
export const withStreaming = (input: {
  readonly firstToken?: Duration.Input
  readonly stall?: Duration.Input
  readonly metadataGrace?: Duration.Input
  readonly onInterrupt?: "fail" | "restart"
  readonly hedge?: Hedge | undefined
}) =>
(self: Policy): Policy => ({
  ...self,
  stream: {
    firstToken: input.firstToken !== undefined ? Duration.fromInputUnsafe(input.firstToken) : self.stream.firstToken,
    stall: input.stall !== undefined ? Duration.fromInputUnsafe(input.stall) : self.stream.stall,
    metadataGrace: input.metadataGrace !== undefined ? Duration.fromInputUnsafe(input.metadataGrace) : self.stream.metadataGrace,
    onInterrupt: input.onInterrupt ?? self.stream.onInterrupt,
    hedge: "hedge" in input ? input.hedge : self.stream.hedge
  }
})

/**
 * Estimates a request's input tokens before it is sent.
 * @since 0.1.0
 */
export type TokenEstimator = (request: Pick<ConverseCommandInput, "messages" | "system">) => number

/**
 * The default estimator: one token per four characters of text, rounded up,
 * plus 3 per message. For English prose on Claude, Nova and Llama tokenizers it
 * lands within about ±25 % of the real count; code and non-Latin scripts
 * tokenize denser, so their estimates run low. Plug in a real tokenizer with
 * `withTokenEstimator` when that matters.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * Policy.defaultTokenEstimator({ messages: [{ role: "user", content: [{ text: "Hello there" }] }] }) // 6
 * ```
 * @since 0.1.0
 */
export const defaultTokenEstimator: TokenEstimator = estimateInputTokens

/** Replaces the token estimator. @since 0.1.0 */
export const withTokenEstimator = (estimateInputTokens: TokenEstimator) => (self: Policy): Policy => ({
  ...self,
  estimateInputTokens
})

/** @since 0.1.0 */
export const defaults: Policy = {
  attempts: 4,
  timeout: Duration.seconds(30),
  deadline: Duration.seconds(60),
  breaker: defaultBreaker,
  selection: weighted,
  classification: defaultClassification,
  backoff: undefined,
  waitForRecovery: false,
  estimateInputTokens: defaultTokenEstimator,
  stream: defaultStreaming
}

/**
 * A policy from partial input, the rest from `defaults`.
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { Policy } from "effect-bedrock-mux"
 * const p = Policy.make({ attempts: 6, backoff: Schedule.exponential("200 millis") })
 * ```
 * @since 0.1.0
 */
export const make = (input: Partial<Policy> = {}): Policy => ({ ...defaults, ...input })

/**
 * The default single-model backoff the config's `backoff` section builds:
 * exponential from `base`, capped at `max`, jittered, at most `times` retries.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const s = Policy.exponentialBackoff({ base: "250 millis", max: "4 seconds", times: 3 })
 * ```
 * @since 0.1.0
 */
export const exponentialBackoff = (options: {
  readonly base: Duration.Input
  readonly max: Duration.Input
  readonly times: number
}): Schedule.Schedule<unknown, BedrockError.BedrockError> =>
  Schedule.min([Schedule.exponential(options.base), Schedule.spaced(options.max)]).pipe(
    Schedule.jittered,
    Schedule.upTo({ times: options.times }),
    Schedule.setInputType<BedrockError.BedrockError>()
  ) as Schedule.Schedule<unknown, BedrockError.BedrockError>

/** Replaces the attempts budget. @since 0.1.0 */
export const withAttempts = (attempts: number) => (self: Policy): Policy => ({ ...self, attempts })
/** Replaces the per-attempt timeout. @since 0.1.0 */
export const withTimeout = (timeout: Duration.Input) => (self: Policy): Policy => ({
  ...self,
  timeout: Duration.fromInputUnsafe(timeout)
})
/** Replaces the request deadline. @since 0.1.0 */
export const withDeadline = (deadline: Duration.Input) => (self: Policy): Policy => ({
  ...self,
  deadline: Duration.fromInputUnsafe(deadline)
})
/** Replaces the selection strategy. @since 0.1.0 */
export const withSelection = (selection: Selection) => (self: Policy): Policy => ({ ...self, selection })
/** Replaces the breaker settings. @since 0.1.0 */
export const withBreaker = (b: Breaker) => (self: Policy): Policy => ({ ...self, breaker: b })
/** Replaces the single-model backoff. @since 0.1.0 */
export const withBackoff = (backoff: Schedule.Schedule<unknown, BedrockError.BedrockError> | undefined) =>
(self: Policy): Policy => ({ ...self, backoff })
/** Transforms the classification (e.g. with `override`). @since 0.1.0 */
export const mapClassification = (f: (c: Classification) => Classification) => (self: Policy): Policy => ({
  ...self,
  classification: f(self.classification)
})
