/**
 * `Policy`: everything a mux does, as one value composed from typed pieces:
 *
 * - the pool: a `Route` (tiers of weighted models, `Route.orElse` for
 *   fallbacks) and more routes by label (task routing);
 * - a `Selector` (weighted, ordered, latency-aware, cheapest, your own);
 * - `Guard`s, asked in order for every attempt (breaker, throttle cooldown,
 *   model quota, your own);
 * - the attempt timeout, the request deadline, the attempts budget;
 * - same-model retries as a `Schedule` (how many per reason is the
 *   classification's `retrySame`; a `retry-after` is honoured), and the
 *   last-model backoff `Schedule`;
 * - the classification of errors, tenant quotas, streaming settings
 *   (first-token and stall limits, hedging), refusal detection.
 *
 * The JSON config decodes into this same value (`MuxConfig.decode`), and
 * `BedrockMux.layer` takes either, so code and JSON share one source of truth.
 *
 * Laws (property-tested in test/Policy.test.ts and test/laws.test.ts; see
 * docs/policies.md):
 * - `override(tag, d)(c)` decides like `c` for every other reason tag, and
 *   like `{ ...c(e), ...d }` for `tag`; overrides of different tags commute;
 *   the same override twice is the same as once.
 * - each `with*` combinator replaces exactly one field.
 * - whatever the selector and guards, the mux never picks an excluded or
 *   ineligible model, never uses a later tier while an earlier one has an
 *   eligible model, never exceeds `attempts` (escalations aside where
 *   `countEscalations` is false), never lets an attempt or a wait pass the
 *   deadline, never fails over on a fail-fast error, ends every request in
 *   exactly one outcome and releases every permit exactly once.
 *
 * Gotchas:
 * - `attempts` counts every attempt of a request: retries, escalations and
 *   hedges included (escalations not, with `countEscalations: false`).
 * - A backoff only applies when the failing model is the last one eligible:
 *   while another model can take the request, failover is immediate.
 * - Guards are asked in order: put the cheap, decisive ones first (the
 *   breaker, then the cooldown, then the quota, which reserves).
 *
 * @example
 * ```ts
 * import { pipe, Schedule } from "effect"
 * import { Guard, Policy, Route, Selector } from "effect-bedrock-mux"
 *
 * const policy = pipe(
 *   Policy.make(
 *     Route.tier([{ modelId: "us.amazon.nova-2-lite-v1:0", weight: 100 }]).pipe(
 *       Route.orElse(Route.tier([{ modelId: "us.amazon.nova-pro-v1:0" }]))
 *     )
 *   ),
 *   Policy.withTimeout("10 seconds"),
 *   Policy.withDeadline("30 seconds"),
 *   Policy.withSelector(Selector.latency()),
 *   Policy.withGuard(Guard.breaker({ failures: 3 })),
 *   Policy.withBackoff(Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 })))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import { Duration, Effect, Schedule } from "effect"
import * as BedrockError from "./BedrockError.ts"
import * as Guard from "./Guard.ts"
import { estimateInputTokens } from "./internal/tokens.ts"
import * as Model from "./Model.ts"
import * as Route from "./Route.ts"
import * as Selector from "./Selector.ts"

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
 * How `converseStream` treats time and interruptions.
 *
 * An attempt's first phase ends at its first content event (the commit
 * point): until then it is bounded by `firstToken` (and by the model's
 * `timeout` when that is shorter), and any failure fails over like a
 * Converse error. After it, every gap between two events is bounded by
 * `stall`, and the whole stream by the request deadline.
 *
 * @since 0.1.0
 */
export interface Streaming {
  /** longest wait for an attempt's first content event (default 10 s) */
  readonly firstToken: Duration.Duration
  /** longest gap between two events once content flows (default 10 s) */
  readonly stall: Duration.Duration
  /**
   * after `messageStop`, how long to wait for the `metadata` event (default
   * 250 ms, counted from `messageStop`); a stream whose metadata does not
   * come in time ends complete, with its usage marked estimated
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

/**
 * Per-tenant quotas: requests and tokens per sliding minute. A request names
 * its tenant (`converse(req, { tenant })`); one without a tenant, or with a
 * tenant not listed, gets `default` (none: unlimited).
 * @since 0.1.0
 */
export interface Tenants {
  readonly limits: ReadonlyMap<string, Limits>
  readonly default: Limits | undefined
}

/** Requests / tokens per sliding minute. @since 0.1.0 */
export interface Limits {
  readonly rpm?: number | undefined
  readonly tpm?: number | undefined
}

/**
 * Refusal detection: a successful answer whose text `classifier` scores at
 * or above `threshold` counts as a failed attempt (reason `Refused`): the
 * request fails over, the breaker does not count it.
 * @since 0.1.0
 */
export interface Refusal {
  readonly classifier: RefusalClassifier
  /** 0..1 (default 0.5) */
  readonly threshold: number
  /**
   * streams: hold back the first this many characters of an answer (its
   * commit point moves there) so they can be scored before anything reaches
   * the caller; 0 (default): streams are not checked
   */
  readonly holdBack: number
}

/**
 * Scores an answer's text: 0 (an answer) … 1 (a refusal). See `Refusal` for the built-ins.
 * @since 0.1.0
 */
export interface RefusalClassifier {
  readonly name: string
  /** `attempt`: the request and model the answer comes from (the mux always passes it; for classifiers that report per model) */
  readonly score: (text: string, attempt?: RefusalAttempt) => Effect.Effect<number>
}

/**
 * The attempt whose answer a classifier scores.
 * @since 0.1.0
 */
export interface RefusalAttempt {
  readonly requestId: string
  readonly modelId: string
  readonly target: string
}

/**
 * The whole routing policy of a mux.
 * @since 0.1.0
 */
export interface Policy {
  /** the mux's namespace in a shared store (config `name`, default "default") */
  readonly name: string
  /** the default route: the pool, in tiers */
  readonly route: Route.Route
  /** task routing: a label's own route */
  readonly routes: ReadonlyMap<string, Route.Route>
  readonly selector: Selector.Selector
  /** asked in order for every attempt */
  readonly guards: ReadonlyArray<Guard.Guard>
  readonly tenants: Tenants
  /** total attempts per request, retries included (default 4) */
  readonly attempts: number
  /**
   * does an escalation's attempt (the same model again at its `escalate`
   * tier after a throttle) count toward `attempts`? Default true (left out:
   * true, so a policy written before this field keeps its meaning). The Promise
   * facade sets false: in the aws-samples multiplexer an escalation is not a
   * retry, and with both primaries throttled its example still reaches the
   * fallback. An escalation happens at most once per model per request, so
   * a request then makes at most `attempts` + its models' escalations; one a
   * guard refused earns nothing (with the budget then spent, the request
   * ends `AttemptsExhausted`).
   */
  readonly countEscalations?: boolean
  /** per attempt (default 30 s); a model's own `timeout` takes precedence */
  readonly timeout: Duration.Duration
  /** per request across all attempts and waits (default 60 s) */
  readonly deadline: Duration.Duration
  readonly classification: Classification
  /** the delays of same-model retries (their number per reason is the classification's `retrySame`) */
  readonly retry: Schedule.Schedule<unknown, BedrockError.BedrockError>
  /** delays between retries of the last eligible model; none by default */
  readonly backoff: Schedule.Schedule<unknown, BedrockError.BedrockError> | undefined
  /**
   * when nothing is eligible, wait for the earliest recovery (an open
   * breaker's next probe, quota room) if it falls inside the deadline; a
   * throttle cooldown is always waited for (default false)
   */
  readonly waitForRecovery: boolean
  /** input tokens of a request before it is sent (quota reservations); see `defaultTokenEstimator` */
  readonly estimateInputTokens: TokenEstimator
  readonly stream: Streaming
  readonly refusal: Refusal | undefined
  /** a shared store outage fails open (`allow`, default) or fails the request (`fail`) */
  readonly onStoreError: "allow" | "fail"
  /** record prompts and responses on the request spans (`gen_ai.input.messages` / `gen_ai.output.messages`); off by default */
  readonly captureBodies: boolean
}

/**
 * Same-model retry delays, what the config's `retry` section builds:
 * exponential from `base` (doubling), at most `max` when given before a
 * ±20 % jitter (so up to 1.2 × `max`), and every delay at least the error's `retry-after`
 * (`honourRetryAfter`; a retry-after longer than `max` still wins). It never
 * stops by itself: how many same-model retries an error gets is its
 * decision's `retrySame`, not the schedule.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const s = Policy.exponentialRetry({ base: "200 millis", max: "2 seconds" })
 * ```
 * @since 0.1.0
 */
export const exponentialRetry = (options: {
  readonly base: Duration.Input
  readonly max?: Duration.Input | undefined
}): Schedule.Schedule<unknown, BedrockError.BedrockError> =>
  honourRetryAfter(
    (options.max === undefined
      ? Schedule.exponential(options.base)
      : Schedule.min([Schedule.exponential(options.base), Schedule.spaced(options.max)])).pipe(Schedule.jittered)
  )

/**
 * The default same-model retry delays: 100 ms, doubling, ±20 % jitter, and
 * at least the error's `retry-after`, i.e.
 * `exponentialRetry({ base: "100 millis" })`. The AWS SDK's standard retry
 * mode uses the same 100 ms base for non-throttling errors. A JSON config
 * without `retry` gets it.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const p = Policy.withRetry(Policy.defaultRetry)
 * ```
 * @since 0.1.0
 */
export const defaultRetry: Schedule.Schedule<unknown, BedrockError.BedrockError> = exponentialRetry({ base: "100 millis" })

/**
 * A retry schedule whose every delay is at least the error's `retry-after`
 * (a throttle's, when Bedrock sent one).
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { Policy } from "effect-bedrock-mux"
 * const s = Policy.honourRetryAfter(Schedule.spaced("200 millis"))
 * ```
 * @since 0.1.0
 */
export function honourRetryAfter<O>(
  schedule: Schedule.Schedule<O, unknown>
): Schedule.Schedule<O, BedrockError.BedrockError> {
  return (schedule as Schedule.Schedule<O, BedrockError.BedrockError>).pipe(
    Schedule.modifyDelay(({ duration, input }) =>
      Effect.succeed(
        input.reason._tag === "Throttled" && input.reason.retryAfter !== undefined
          ? Duration.max(duration, input.reason.retryAfter)
          : duration
      )
    )
  )
}

/**
 * The default guards: breaker, throttle cooldown, model quota.
 * @since 0.1.0
 */
export const defaultGuards: ReadonlyArray<Guard.Guard> = [Guard.breaker(), Guard.cooldown(), Guard.quota()]

/**
 * The defaults every policy starts from (with an empty route: give it one
 * with `make` or `withRoute`).
 * @since 0.1.0
 */
export const defaults: Policy = {
  name: "default",
  route: Route.empty,
  routes: new Map(),
  selector: Selector.weighted,
  guards: defaultGuards,
  tenants: { limits: new Map(), default: undefined },
  attempts: 4,
  countEscalations: true,
  timeout: Duration.seconds(30),
  deadline: Duration.seconds(60),
  classification: defaultClassification,
  retry: defaultRetry,
  backoff: undefined,
  waitForRecovery: false,
  estimateInputTokens: defaultTokenEstimator,
  stream: defaultStreaming,
  refusal: undefined,
  onStoreError: "allow",
  captureBodies: false
}

/**
 * A policy over a route (or over models that say their own tier), the rest
 * from `defaults`, then `overrides`.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * const p = Policy.make([{ modelId: "a", weight: 3 }, { modelId: "b", isFallback: true }], { attempts: 6 })
 * ```
 * @since 0.1.0
 */
export const make = (
  route: Route.Route | ReadonlyArray<Model.Model | Model.Input>,
  overrides: Partial<Policy> = {}
): Policy => ({
  ...defaults,
  route: isRoute(route) ? route : Route.fromModels(route),
  ...overrides
})

const isRoute = (u: unknown): u is Route.Route => typeof u === "object" && u !== null && "tiers" in u && !Array.isArray(u)

/**
 * The problems of a policy composed in code, each with its path and the
 * allowed range (the JSON config's own checks are in `MuxConfig`): a route
 * without a primary (no model of weight > 0 in its first tier), an attempts
 * budget below 1, a timeout or deadline that is not positive, a timeout
 * longer than the deadline, a hedge budget outside 0..1.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * Policy.check(Policy.make([])) // [{ path: "route", message: "..." }]
 * ```
 * @since 0.1.0
 */
export const check = (self: Policy): Array<{ readonly path: string; readonly message: string }> => {
  const problems: Array<{ path: string; message: string }> = []
  const ms = Duration.toMillis
  if (!(self.route.tiers[0] ?? []).some((m) => m.weight > 0)) {
    problems.push({ path: "route", message: "no primary model: the route's first tier needs a model with weight > 0" })
  }
  if (!Number.isInteger(self.attempts) || self.attempts < 1) problems.push({ path: "attempts", message: `attempts ${self.attempts}; allowed: an integer >= 1` })
  if (!(ms(self.deadline) > 0)) problems.push({ path: "deadline", message: "deadline must be positive; allowed: 0 < deadline" })
  if (!(ms(self.timeout) > 0) || ms(self.timeout) > ms(self.deadline)) {
    problems.push({ path: "timeout", message: `attempt timeout ${ms(self.timeout)} ms; allowed: 0 < timeout <= deadline (${ms(self.deadline)} ms)` })
  }
  const h = self.stream.hedge
  if (h !== undefined && !(h.budget >= 0 && h.budget <= 1)) problems.push({ path: "stream.hedge.budget", message: `budget ${h.budget}; allowed: 0..1` })
  const names = new Set<string>()
  for (const g of self.guards) {
    if (names.has(g.name)) problems.push({ path: `guards.${g.name}`, message: `two guards named "${g.name}"; each name once` })
    names.add(g.name)
  }
  for (const [label, route] of self.routes) {
    if (Route.models(route).length === 0) problems.push({ path: `routes.${label}`, message: "a route without models" })
  }
  return problems
}

/**
 * Every model of a policy (its route's and its labels'), each once.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * Policy.models(Policy.make([{ modelId: "a" }])).map((m) => m.modelId) // ["a"]
 * ```
 * @since 0.1.0
 */
export const models = (self: Policy): ReadonlyArray<Model.Model> => {
  const seen = new Map<string, Model.Model>()
  for (const route of [self.route, ...self.routes.values()]) {
    for (const m of Route.models(route)) if (!seen.has(m.target)) seen.set(m.target, m)
  }
  return [...seen.values()]
}

/**
 * The default single-model backoff the config's `backoff` section builds:
 * exponential from `base`, at most `max` before a ±20 % jitter, at most `times` retries.
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

// --- combinators: each replaces one field -----------------------------------------------------

/** Replaces the default route. @since 0.1.0 */
export const withRoute = (route: Route.Route) => (self: Policy): Policy => ({ ...self, route })
/** Adds (or replaces) the route of a label. @since 0.1.0 */
export const withLabel = (label: string, route: Route.Route) => (self: Policy): Policy => ({
  ...self,
  routes: new Map([...self.routes, [label, route]])
})
/** Replaces the selector. @since 0.1.0 */
export const withSelector = (selector: Selector.Selector) => (self: Policy): Policy => ({
  ...self,
  selector
})
/** Replaces every guard. @since 0.1.0 */
export const withGuards = (guards: ReadonlyArray<Guard.Guard>) => (self: Policy): Policy => ({
  ...self,
  guards
})
/**
 * Replaces the guard of the same name in place, or adds it last.
 * @example
 * ```ts
 * import { Guard, Policy } from "effect-bedrock-mux"
 * const p = Policy.withGuard(Guard.breaker({ failures: 3 }))(Policy.make([{ modelId: "a" }]))
 * ```
 * @since 0.1.0
 */
export const withGuard = (guard: Guard.Guard) => (self: Policy): Policy => ({
  ...self,
  guards: self.guards.some((g) => g.name === guard.name)
    ? self.guards.map((g) => (g.name === guard.name ? guard : g))
    : [...self.guards, guard]
})
/** Drops the guard of that name. @since 0.1.0 */
export const withoutGuard = (name: string) => (self: Policy): Policy => ({
  ...self,
  guards: self.guards.filter((g) => g.name !== name)
})
/** Replaces the breaker guard's settings. @since 0.1.0 */
export const withBreaker = (settings: Parameters<typeof Guard.breaker>[0]) => (self: Policy): Policy =>
  withGuard(Guard.breaker(settings))(self)
/** Replaces the tenant quotas. @since 0.1.0 */
export const withTenants = (tenants: {
  readonly limits?: Readonly<Record<string, Limits>> | ReadonlyMap<string, Limits>
  readonly default?: Limits | undefined
}) =>
(self: Policy): Policy => ({
  ...self,
  tenants: {
    limits: tenants.limits instanceof Map ? tenants.limits : new Map(Object.entries(tenants.limits ?? {})),
    default: tenants.default
  }
})
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
/** Replaces the same-model retry delays. @since 0.1.0 */
export const withRetry = (retry: Schedule.Schedule<unknown, BedrockError.BedrockError>) => (self: Policy): Policy => ({
  ...self,
  retry
})
/** Replaces the single-model backoff. @since 0.1.0 */
export const withBackoff = (backoff: Schedule.Schedule<unknown, BedrockError.BedrockError> | undefined) =>
(self: Policy): Policy => ({ ...self, backoff })
/** Transforms the classification (e.g. with `override`). @since 0.1.0 */
export const mapClassification = (f: (c: Classification) => Classification) => (self: Policy): Policy => ({
  ...self,
  classification: f(self.classification)
})
/** Sets whether a request waits for the earliest recovery when nothing is eligible. @since 0.1.0 */
export const withWaitForRecovery = (waitForRecovery: boolean) => (self: Policy): Policy => ({ ...self, waitForRecovery })
/** Replaces the token estimator. @since 0.1.0 */
export const withTokenEstimator = (estimateInputTokens: TokenEstimator) => (self: Policy): Policy => ({
  ...self,
  estimateInputTokens
})
/**
 * The score at or above which an answer is a refusal, when `withRefusal` is given no `threshold`.
 * @example
 * ```ts
 * import { Policy } from "effect-bedrock-mux"
 * Policy.defaultRefusalThreshold // 0.5
 * ```
 * @since 0.1.0
 */
export const defaultRefusalThreshold = 0.5

/** Turns refusal detection on (or off with undefined). @since 0.1.0 */
export const withRefusal = (refusal: {
  readonly classifier: RefusalClassifier
  readonly threshold?: number
  readonly holdBack?: number
} | undefined) =>
(self: Policy): Policy => ({
  ...self,
  refusal: refusal === undefined
    ? undefined
    : { classifier: refusal.classifier, threshold: refusal.threshold ?? defaultRefusalThreshold, holdBack: refusal.holdBack ?? 0 }
})

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
/** Replaces the hedge settings of streams. @since 0.1.0 */
export const withHedge = (h: Hedge | undefined) => (self: Policy): Policy => withStreaming({ hedge: h })(self)
