/**
 * `MuxEvent`: what a mux does, as data, for users who want their own logs,
 * alerts or dashboards. `BedrockMux.events` is a `Stream` of them; the
 * mux's metrics are computed from the same events.
 *
 * Events carry model ids, reason tags and numbers, never prompts or
 * responses. `at` is epoch ms of the mux's `Clock`.
 *
 * Gotchas:
 * - A subscriber sees the events published after it subscribed.
 * - Each subscriber has a buffer of 4096 events; a subscriber that falls
 *   further behind loses the oldest (the mux never waits for a reader).
 * - Breaker changes are seen where the mux touches the breaker: `open →
 *   half-open` is reported when the first probe is admitted, not at the
 *   instant the cooldown ends.
 *
 * @since 0.1.0
 */
import type * as BedrockError from "./BedrockError.ts"
import type { AttemptRecord } from "./Routing.ts"

/** A call of the mux: `converse` or `converseStream`. @since 0.1.0 */
export type Operation = "converse" | "converse_stream"

/** @since 0.1.0 */
export interface AttemptStarted {
  readonly _tag: "AttemptStarted"
  readonly at: number
  /** unique per request within a mux */
  readonly requestId: string
  readonly modelId: string
  readonly target: string
  /** 1 for the first attempt of the request */
  readonly attempt: number
  /** started by hedging while another attempt is in flight */
  readonly hedge: boolean
  /** the position of the model's tier in the request's route (0: primary) */
  readonly tier: number
  /** sent at another service tier than the default (an escalation) */
  readonly serviceTier?: "priority" | "reserved"
}

/** An attempt ended; its record is the one `routing.attempts` / `MuxError.attempts` carry. @since 0.1.0 */
export interface AttemptEnded {
  readonly _tag: "AttemptEnded"
  readonly at: number
  readonly requestId: string
  readonly record: AttemptRecord
  /** a failed (or cut off) attempt's error; its `cause` is the SDK's exception where the SDK raised one */
  readonly error?: BedrockError.BedrockError
}

/** The request left a model for another after a failure. @since 0.1.0 */
export interface Failover {
  readonly _tag: "Failover"
  readonly at: number
  readonly requestId: string
  readonly modelId: string
  readonly target: string
  readonly reason: BedrockError.ReasonTag
}

/** A model's circuit breaker changed state. @since 0.1.0 */
export interface BreakerChanged {
  readonly _tag: "BreakerChanged"
  readonly at: number
  readonly modelId: string
  readonly target: string
  readonly from: "closed" | "open" | "half-open"
  readonly to: "closed" | "open" | "half-open"
}

/** A throttle took a model out of rotation until `until`. @since 0.1.0 */
export interface CooldownStarted {
  readonly _tag: "CooldownStarted"
  readonly at: number
  readonly modelId: string
  readonly target: string
  readonly until: number
  readonly kind: BedrockError.ThrottleKind
  /** the cooling service tier, when not the default (an escalated throttle) */
  readonly serviceTier?: "priority" | "reserved"
}

/** A model's throttle cooldown ended (it was not extended). @since 0.1.0 */
export interface CooldownEnded {
  readonly _tag: "CooldownEnded"
  readonly at: number
  readonly modelId: string
  readonly target: string
}

/** A client-side quota said no: a model skipped for lack of room, or a tenant's request refused (or made to wait). @since 0.1.0 */
export interface QuotaRejected {
  readonly _tag: "QuotaRejected"
  readonly at: number
  readonly scope: "model" | "tenant"
  /** the model's target, or the tenant */
  readonly key: string
  readonly kind: "requests" | "tokens"
  readonly retryAfterMs: number
}

/** A hedge started: `target` runs the request while `primary` is still without a first token. @since 0.1.0 */
export interface Hedged {
  readonly _tag: "Hedged"
  readonly at: number
  readonly requestId: string
  readonly primary: string
  readonly target: string
  readonly afterMs: number
}

/**
 * A model the request's route would have used was left out by a guard
 * (its breaker open, cooling, over its quota, or a guard of yours); once per
 * request and model.
 * @since 0.1.0
 */
export interface ModelSkipped {
  readonly _tag: "ModelSkipped"
  readonly at: number
  readonly requestId: string
  readonly modelId: string
  readonly target: string
  /** `breaker`, `cooldown`, `quota`, or the guard's own word */
  readonly why: string
  /** the position of the model's tier in the route */
  readonly tier: number
}

/** A throttled attempt is retried on the same model at another service tier. @since 0.1.0 */
export interface Escalated {
  readonly _tag: "Escalated"
  readonly at: number
  readonly requestId: string
  readonly modelId: string
  readonly target: string
  readonly serviceTier: "priority" | "reserved"
}

/** An answer was judged a refusal (refusal detection): the attempt failed with reason `Refused`. @since 0.1.0 */
export interface Refused {
  readonly _tag: "Refused"
  readonly at: number
  readonly requestId: string
  readonly modelId: string
  readonly target: string
  readonly score: number
  readonly classifier: string
}

/** A model joined the pool at run time (`BedrockMux.addModel`). @since 0.1.0 */
export interface ModelAdded {
  readonly _tag: "ModelAdded"
  readonly at: number
  readonly modelId: string
  readonly target: string
  readonly tier: number
  readonly weight: number
}

/** A model left the pool at run time (`BedrockMux.removeModel`). @since 0.1.0 */
export interface ModelRemoved {
  readonly _tag: "ModelRemoved"
  readonly at: number
  readonly modelId: string
  readonly target: string
}

/** A request ended, in exactly one outcome. @since 0.1.0 */
export interface RequestEnded {
  readonly _tag: "RequestEnded"
  readonly at: number
  readonly requestId: string
  readonly operation: Operation
  readonly outcome: "success" | "failure" | "interrupted"
  /** the model that answered (success), or the last one tried */
  readonly modelId: string | undefined
  /** the `MuxError` reason tag of a failure */
  readonly error: string | undefined
  readonly durationMs: number
  readonly attempts: number
  readonly usage: { readonly inputTokens: number; readonly outputTokens: number } | undefined
  /** streams: time to the first content event of the answering attempt */
  readonly timeToFirstTokenMs: number | undefined
}

/**
 * Every event.
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { BedrockMux, MuxEvent } from "effect-bedrock-mux"
 * const alerts = Effect.gen(function*() {
 *   const mux = yield* BedrockMux
 *   yield* mux.events.pipe(
 *     Stream.filter((e: MuxEvent.MuxEvent) => e._tag === "BreakerChanged" && e.to === "open"),
 *     Stream.runForEach((e) => Effect.logWarning(`breaker opened: ${JSON.stringify(e)}`))
 *   )
 * })
 * ```
 * @since 0.1.0
 */
export type MuxEvent =
  | AttemptStarted
  | AttemptEnded
  | Failover
  | BreakerChanged
  | CooldownStarted
  | CooldownEnded
  | QuotaRejected
  | Hedged
  | ModelSkipped
  | Escalated
  | Refused
  | ModelAdded
  | ModelRemoved
  | RequestEnded
