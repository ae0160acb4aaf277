/**
 * `MuxError`: how a routed request fails. Every `MuxError` carries every
 * attempt the request made (model, outcome, reason, duration), whatever its
 * reason, so a caller (or an alert) can see the whole story.
 *
 * Reasons:
 * - `Failed`: an attempt failed with an error that fails fast (validation,
 *   access, a 4xx model error): the request, not the model, is at fault.
 * - `AttemptsExhausted`: the `attempts` budget ran out.
 * - `NoModelsAvailable`: nothing eligible was left (breakers open, every
 *   model tried, or throttled); carries each model's state and the earliest
 *   time one recovers.
 * - `DeadlineExceeded`: the request deadline expired; the in-flight attempt
 *   was aborted.
 * - `QuotaExceeded`: the request's tenant is over its RPM/TPM; `retryAfterMs`
 *   says when a request of this size fits.
 * - `StoreUnavailable`: the shared store failed and the mux fails closed.
 * - `InvalidRequest`: the request itself is malformed (no messages, a
 *   `modelId` given, an unknown route label, a bad deadline).
 * - `StreamInterrupted`: a stream failed after its first content event was
 *   delivered (`converseStream` without `restart`); carries the reason and
 *   the partial usage.
 *
 * `last` is the last attempt's `BedrockError` when there is one: its `cause`
 * is the SDK's error.
 *
 * As data: `MuxError` is a `Schema.TaggedError` and each reason a
 * `Schema.TaggedClass` (`MuxError.Reason` is their union), so a `MuxError`
 * round-trips through Schema with its attempts, its reason and every nested
 * `BedrockError` (encoded with that error's own schema: durations in ms,
 * `cause` as `{ name, message }`), and `Effect.catchReason("MuxError",
 * "NoModelsAvailable", ...)` picks a reason out. A `QuotaExceeded` that can
 * never fit has `retryAfterMs: Infinity`, which `JSON.stringify` writes as
 * `null`: go through `Schema.toCodecJson(MuxError)` for JSON text.
 *
 * Gotcha: the arrays a reason or a `MuxError` holds (`attempts`, `models`,
 * `problems`) are kept as given when one is constructed, not checked element
 * by element (the library builds them; the types vouch for them): checking
 * and copying them made `new MuxError(...)` with two attempts and two models
 * cost 3-5 µs more (`node bench/errors.ts --no-stack`: 5.2-7.1 µs with
 * `Schema.Array`, 2.0-2.2 µs without), and it grows with every attempt.
 * Encoding and decoding check every element. As built, `new MuxError(...)`
 * with two attempts and two models went from 8.6 to 12.7 µs against the
 * former Data version (1.7 to 2.7 µs without stack traces; medians of 5
 * interleaved runs of bench/errors.ts on a busy 2-core box).
 *
 * @since 0.1.0
 */
import { Schema, SchemaTransformation } from "effect"
import * as BedrockError from "./BedrockError.ts"
import type { AttemptRecord, Decision } from "./Routing.ts"

export type { AttemptRecord } from "./Routing.ts"

/**
 * A model's state when nothing was eligible.
 * @since 0.1.0
 */
export interface ModelAvailability {
  readonly modelId: string
  readonly target: string
  readonly breaker: "closed" | "open" | "half-open"
  /**
   * why the model could not take this request: `tried` (it failed in this
   * request), `breaker`, `cooldown`, `quota`, `weight`, `context-window`,
   * `route` (not in the label's route), or the word of a guard of yours
   */
  readonly excluded: string
  /** epoch ms when it can take traffic again, if known */
  readonly recoversAt?: number
  /** the model's last failure (in this request, else its last one before), so the reason is never lost */
  readonly lastFailure?: { readonly reason: BedrockError.ReasonTag | string; readonly message: string; readonly at: number }
}

/**
 * Token usage of a call; `estimated` when the model did not report it (no
 * metadata event) and it was counted from the text instead.
 * @since 0.1.0
 */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly totalTokens: number
  readonly estimated: boolean
}

// --- schemas of the plain records a reason carries ------------------------------------------
// The interfaces above (and `AttemptRecord` in the leaf module Routing.ts) stay
// the documented types; each schema below is checked against its interface in
// both directions, so the two cannot drift apart. Their optional keys are
// `optionalKey`, as the interfaces say (an absent key, never `undefined`).

const ModelAvailabilitySchema = Schema.Struct({
  modelId: Schema.String,
  target: Schema.String,
  breaker: Schema.Literals(["closed", "open", "half-open"]),
  excluded: Schema.String,
  recoversAt: Schema.optionalKey(Schema.Number),
  lastFailure: Schema.optionalKey(Schema.Struct({ reason: Schema.String, message: Schema.String, at: Schema.Number }))
})

const UsageSchema = Schema.Struct({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  totalTokens: Schema.Number,
  estimated: Schema.Boolean
})

const decisions = ["retry-same", "escalate", "failover", "fail-fast", "stop", "hedge-lost"] as const

const AttemptRecordSchema = Schema.Struct({
  modelId: Schema.String,
  target: Schema.String,
  outcome: Schema.Literals(["success", "failure", "interrupted"]),
  reason: Schema.optionalKey(Schema.Literals(BedrockError.reasonTags)),
  decision: Schema.optionalKey(Schema.Literals(decisions)),
  serviceTier: Schema.optionalKey(Schema.Literals(["priority", "reserved"])),
  httpStatusCode: Schema.optionalKey(Schema.Number),
  message: Schema.optionalKey(Schema.String),
  limitMs: Schema.optionalKey(Schema.Number),
  durationMs: Schema.Number
})

/**
 * An array the library builds: constructing a reason or a `MuxError` checks
 * only that it is an array (the types vouch for its elements) and keeps it as
 * it is, where `Schema.Array` would check and copy every element on every
 * construction. Decoding and encoding check every element.
 */
const BuiltArray = <S extends Schema.Top>(item: S) => {
  const checked = Schema.Array(item)
  return checked.pipe(
    Schema.decodeTo(
      Schema.declare((u): u is typeof checked.Type => Array.isArray(u), { expected: "an array" }),
      SchemaTransformation.passthrough()
    )
  )
}

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const same = <A, B>(_: Same<A, B>): void => undefined
same<typeof ModelAvailabilitySchema.Type, ModelAvailability>(true)
same<typeof UsageSchema.Type, Usage>(true)
same<typeof AttemptRecordSchema.Type, AttemptRecord>(true)
same<typeof decisions[number], Decision>(true)

/**
 * An attempt failed with an error that fails fast: the request, not the
 * model, is at fault.
 *
 * @example
 * ```ts
 * import { BedrockError, MuxError } from "effect-bedrock-mux"
 * new MuxError.Failed({ error: BedrockError.make(new BedrockError.Validation({ kind: "other" }), "bad input") })
 * ```
 * @since 0.1.0
 */
export class Failed extends Schema.TaggedClass<Failed>()("Failed", { error: BedrockError.BedrockError }) {}
/**
 * The `attempts` budget ran out.
 *
 * @example
 * ```ts
 * import { MuxError } from "effect-bedrock-mux"
 * new MuxError.AttemptsExhausted({ attempts: 3 })
 * ```
 * @since 0.1.0
 */
export class AttemptsExhausted extends Schema.TaggedClass<AttemptsExhausted>()("AttemptsExhausted", {
  attempts: Schema.Number
}) {}
/**
 * Nothing eligible was left; carries each model's state and the earliest time
 * one recovers.
 *
 * @example
 * ```ts
 * import { MuxError } from "effect-bedrock-mux"
 * new MuxError.NoModelsAvailable({ models: [{ modelId: "m", target: "m", breaker: "open", excluded: "breaker" }] })
 * ```
 * @since 0.1.0
 */
export class NoModelsAvailable extends Schema.TaggedClass<NoModelsAvailable>()("NoModelsAvailable", {
  models: BuiltArray(ModelAvailabilitySchema),
  /** epoch ms of the earliest recovery among the models, if any will */
  earliestRecovery: Schema.optional(Schema.Number),
  /** ms from the failure to `earliestRecovery`: when to try again */
  retryAfterMs: Schema.optional(Schema.Number)
}) {}
/**
 * A deadline ended the request: the request's own (`scope: "request"`), or
 * the attempt timeout of the last model left (`scope: "attempt"`).
 *
 * @example
 * ```ts
 * import { MuxError } from "effect-bedrock-mux"
 * new MuxError.DeadlineExceeded({ deadlineMs: 30_000, scope: "request", afterMs: 30_000 })
 * ```
 * @since 0.1.0
 */
export class DeadlineExceeded extends Schema.TaggedClass<DeadlineExceeded>()("DeadlineExceeded", {
  /** the request deadline (both scopes) */
  deadlineMs: Schema.Number,
  scope: Schema.Literals(["request", "attempt"]),
  /** the timeout that expired: the deadline, or the last attempt's timeout */
  afterMs: Schema.Number
}) {}
/**
 * The request itself is malformed; one problem per line, each with its path.
 *
 * @example
 * ```ts
 * import { MuxError } from "effect-bedrock-mux"
 * new MuxError.InvalidRequest({ problems: ["messages: must not be empty"] })
 * ```
 * @since 0.1.0
 */
export class InvalidRequest extends Schema.TaggedClass<InvalidRequest>()("InvalidRequest", {
  problems: BuiltArray(Schema.String)
}) {}

/**
 * The request's tenant is over its quota.
 *
 * @example
 * ```ts
 * import { MuxError } from "effect-bedrock-mux"
 * new MuxError.QuotaExceeded({ tenant: "acme", kind: "tokens", retryAfterMs: 1_500 })
 * ```
 * @since 0.1.0
 */
export class QuotaExceeded extends Schema.TaggedClass<QuotaExceeded>()("QuotaExceeded", {
  tenant: Schema.String,
  kind: Schema.Literals(["requests", "tokens"]),
  /** ms until a request of this size could be admitted (Infinity: never, it exceeds the limit itself) */
  retryAfterMs: Schema.Number
}) {}

/**
 * The shared store failed and the mux is set to fail closed (`onStoreError: "fail"`).
 *
 * @example
 * ```ts
 * import { MuxError } from "effect-bedrock-mux"
 * new MuxError.StoreUnavailable({ message: "ECONNREFUSED 127.0.0.1:6379" })
 * ```
 * @since 0.1.0
 */
export class StoreUnavailable extends Schema.TaggedClass<StoreUnavailable>()("StoreUnavailable", {
  message: Schema.String
}) {}

/**
 * A stream failed after content had been delivered to the caller: the mux
 * never continues it on another model (that would splice two answers).
 * `partial` is what the delivered part used, estimated from its text unless
 * the model reported usage.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { BedrockError, MuxError } from "effect-bedrock-mux"
 * new MuxError.StreamInterrupted({
 *   modelId: "m",
 *   target: "m",
 *   error: BedrockError.deadline("stall", Duration.seconds(10), "m"),
 *   partial: { inputTokens: 12, outputTokens: 40, totalTokens: 52, estimated: true },
 *   delivered: 9
 * })
 * ```
 * @since 0.1.0
 */
export class StreamInterrupted extends Schema.TaggedClass<StreamInterrupted>()("StreamInterrupted", {
  modelId: Schema.String,
  target: Schema.String,
  /** why the stream stopped: a cut, a stall, an in-stream exception, the request deadline */
  error: BedrockError.BedrockError,
  partial: UsageSchema,
  /** content events delivered before the interruption */
  delivered: Schema.Number
}) {}

/**
 * Every reason of a `MuxError`, as a Schema (the tagged union of the classes
 * above); an unknown `_tag` fails to decode.
 *
 * @example
 * ```ts
 * import { Schema, SchemaTransformation } from "effect"
 * import { MuxError } from "effect-bedrock-mux"
 * const encoded = Schema.encodeSync(MuxError.Reason)(new MuxError.AttemptsExhausted({ attempts: 3 }))
 * Schema.decodeUnknownSync(MuxError.Reason)(encoded) // AttemptsExhausted { attempts: 3 }
 * ```
 * @since 0.1.0
 */
export const Reason = Schema.Union([
  Failed,
  AttemptsExhausted,
  NoModelsAvailable,
  DeadlineExceeded,
  InvalidRequest,
  QuotaExceeded,
  StoreUnavailable,
  StreamInterrupted
]).pipe(Schema.toTaggedUnion("_tag"))

/** @since 0.1.0 */
export type Reason = typeof Reason.Type

/**
 * The error of `BedrockMux.converse`. A Schema class: `Schema.encodeSync(MuxError)`
 * gives plain data (the attempts, the reason, `last` with its SDK error as
 * `{ name, message }`), and `Schema.decodeUnknownSync(MuxError)` makes a
 * `MuxError` of it again.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockMux } from "effect-bedrock-mux"
 * const answer = Effect.gen(function*() {
 *   const mux = yield* BedrockMux
 *   return yield* mux.converse({ messages: [{ role: "user", content: [{ text: "hi" }] }] })
 * }).pipe(Effect.catchReason("MuxError", "NoModelsAvailable", (r) => Effect.succeed(r.earliestRecovery)))
 * ```
 * @since 0.1.0
 */
export class MuxError extends Schema.TaggedError<MuxError>()("MuxError", {
  reason: Reason,
  message: Schema.String,
  attempts: BuiltArray(AttemptRecordSchema),
  last: Schema.optional(BedrockError.BedrockError),
  /** the request's id in `mux.events` (absent when it failed before it began: a bad request) */
  requestId: Schema.optional(Schema.String)
}) {}
