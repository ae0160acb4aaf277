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
 * @since 0.1.0
 */
import { Data } from "effect"
import type * as BedrockError from "./BedrockError.ts"
import type { AttemptRecord } from "./Routing.ts"

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

/** @since 0.1.0 */
export class Failed extends Data.TaggedClass("Failed")<{ readonly error: BedrockError.BedrockError }> {}
/** @since 0.1.0 */
export class AttemptsExhausted extends Data.TaggedClass("AttemptsExhausted")<{ readonly attempts: number }> {}
/** @since 0.1.0 */
export class NoModelsAvailable extends Data.TaggedClass("NoModelsAvailable")<{
  readonly models: ReadonlyArray<ModelAvailability>
  /** epoch ms of the earliest recovery among the models, if any will */
  readonly earliestRecovery?: number
  /** ms from the failure to `earliestRecovery`: when to try again */
  readonly retryAfterMs?: number
}> {}
/**
 * A deadline ended the request: the request's own (`scope: "request"`), or
 * the attempt timeout of the last model left (`scope: "attempt"`).
 * @since 0.1.0
 */
export class DeadlineExceeded extends Data.TaggedClass("DeadlineExceeded")<{
  /** the request deadline (both scopes) */
  readonly deadlineMs: number
  readonly scope: "request" | "attempt"
  /** the timeout that expired: the deadline, or the last attempt's timeout */
  readonly afterMs: number
}> {}
/** @since 0.1.0 */
export class InvalidRequest extends Data.TaggedClass("InvalidRequest")<{
  readonly problems: ReadonlyArray<string>
}> {}

/** The request's tenant is over its quota. @since 0.1.0 */
export class QuotaExceeded extends Data.TaggedClass("QuotaExceeded")<{
  readonly tenant: string
  readonly kind: "requests" | "tokens"
  /** ms until a request of this size could be admitted (Infinity: never, it exceeds the limit itself) */
  readonly retryAfterMs: number
}> {}

/** The shared store failed and the mux is set to fail closed (`onStoreError: "fail"`). @since 0.1.0 */
export class StoreUnavailable extends Data.TaggedClass("StoreUnavailable")<{ readonly message: string }> {}

/**
 * A stream failed after content had been delivered to the caller: the mux
 * never continues it on another model (that would splice two answers).
 * `partial` is what the delivered part used, estimated from its text unless
 * the model reported usage.
 * @since 0.1.0
 */
export class StreamInterrupted extends Data.TaggedClass("StreamInterrupted")<{
  readonly modelId: string
  readonly target: string
  /** why the stream stopped: a cut, a stall, an in-stream exception, the request deadline */
  readonly error: BedrockError.BedrockError
  readonly partial: Usage
  /** content events delivered before the interruption */
  readonly delivered: number
}> {}

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

/** @since 0.1.0 */
export type Reason =
  | Failed
  | AttemptsExhausted
  | NoModelsAvailable
  | DeadlineExceeded
  | InvalidRequest
  | QuotaExceeded
  | StoreUnavailable
  | StreamInterrupted

/**
 * The error of `BedrockMux.converse`.
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
export class MuxError extends Data.TaggedError("MuxError")<{
  readonly reason: Reason
  readonly message: string
  readonly attempts: ReadonlyArray<AttemptRecord>
  readonly last?: BedrockError.BedrockError
  /** the request's id in `mux.events` (absent when it failed before it began: a bad request) */
  readonly requestId?: string
}> {}
