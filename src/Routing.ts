/**
 * `Routing`: how a routed request was answered, as data. Every response of
 * the mux carries one (`response.routing`, the last event of a stream), and
 * every `MuxError` carries the same attempt records.
 *
 * This module is a leaf: it imports nothing of the library but types, so the
 * modules that build, carry or read routing records (the engine, `MuxError`,
 * `MuxEvent`, `MuxStream`, `BedrockMux`) never import one another for it.
 *
 * @since 0.1.0
 */
import type * as BedrockError from "./BedrockError.ts"

/**
 * One attempt of a routed request.
 *
 * - `outcome: "failure"`: the model answered with an error (or a broken
 *   answer); `reason` says which.
 * - `outcome: "interrupted"`: the mux aborted the attempt (its timeout or the
 *   request deadline, with `reason: "DeadlineExceeded"`; a lost hedge, with
 *   `decision: "hedge-lost"`) or the caller gave up; the HTTP request was
 *   aborted.
 *
 * @example
 * ```ts
 * import type { Routing } from "effect-bedrock-mux"
 * const failed = (r: Routing.AttemptRecord) => r.outcome !== "success"
 * ```
 * @since 0.1.0
 */
export interface AttemptRecord {
  readonly modelId: string
  /** the pool entry's key: `client:modelId`, or `modelId` without a client */
  readonly target: string
  readonly outcome: "success" | "failure" | "interrupted"
  /** the failure's (or a timeout's) reason tag */
  readonly reason?: BedrockError.ReasonTag
  /**
   * what the router did next; `hedge-lost`: a hedged attempt aborted because
   * the other one delivered first
   */
  readonly decision?: Decision
  /** the service tier the attempt was sent at, when not the default (escalation) */
  readonly serviceTier?: "priority" | "reserved"
  /** a failure's HTTP status, when Bedrock answered with one */
  readonly httpStatusCode?: number
  /** a failure's message (Bedrock's or the SDK's; never the prompt or the answer) */
  readonly message?: string
  /**
   * on an attempt the mux cut off (reason `DeadlineExceeded`): the limit that expired, in ms (its timeout,
   * what was left of the request deadline, or a stream's first-token or stall limit)
   */
  readonly limitMs?: number
  readonly durationMs: number
}

/**
 * What the router did after a failed attempt.
 * @since 0.1.0
 */
export type Decision = "retry-same" | "escalate" | "failover" | "fail-fast" | "stop" | "hedge-lost"

/**
 * How a response was reached.
 *
 * @example
 * ```ts
 * import type { Routing } from "effect-bedrock-mux"
 * const summary = (r: Routing.Routing) => `${r.modelId} after ${r.attempts.length} attempt(s)`
 * ```
 * @since 0.1.0
 */
export interface Routing {
  /** the request's id in `mux.events` */
  readonly requestId: string
  /** the model that answered */
  readonly modelId: string
  readonly target: string
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** the answering model is in a fallback tier of its route (not the first) */
  readonly fallbackUsed: boolean
}
