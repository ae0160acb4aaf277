/**
 * How the facade reports failures in the original's terms: `ErrorResponse`s
 * and `ModelOutcome`s for events, and the error `processRequest` throws for
 * a `MuxError`. Pure functions; the caller passes the time.
 *
 * Where both libraries end a request the same way they throw the same thing:
 * a fail-fast error is a `FailFastError` (the SDK exception as `cause`), a
 * request that ended on a timeout with no model left is a `TimeoutError`,
 * and the mux's own failures are `MultiplexerError`s whose `details` keep the
 * original's keys next to ours.
 */
import { Duration } from "effect"
import type * as BedrockError from "../../BedrockError.ts"
import type { AttemptRecord, MuxError } from "../../MuxError.ts"
import type { ModelHealth } from "../../BedrockMux.ts"
import {
  type EnhancedErrorResponse,
  type ErrorResponse,
  ErrorType,
  FailFastError,
  type ModelOutcome,
  MultiplexerError,
  type MultiplexerErrorCode,
  OutcomeType,
  TimeoutError
} from "./model.ts"

/** The HTTP status Bedrock answers each reason with (ours: 500, as the original reports errors without one). */
const statusOf: Record<string, number> = {
  Throttled: 429,
  ServiceUnavailable: 503,
  InternalServer: 500,
  ModelNotReady: 429,
  ModelTimeout: 408,
  ModelError: 424,
  ModelStreamError: 424,
  Validation: 400,
  AccessDenied: 403,
  ResourceNotFound: 404,
  ServiceQuotaExceeded: 400
}

/** The original's outcome type for an attempt that failed with `reason`. */
export const outcomeTypeOf = (reason: string | undefined): OutcomeType =>
  reason === "Throttled" ? OutcomeType.RATE_LIMIT : reason === "Refused" ? OutcomeType.REFUSAL : OutcomeType.FAIL_FAST

/** The original's error category of a reason. */
export const errorTypeOf = (reason: string | undefined): ErrorType => {
  switch (reason) {
    case "Validation":
      return ErrorType.VALIDATION
    case "Throttled":
    case "ServiceQuotaExceeded":
      return ErrorType.THROTTLING
    case "AccessDenied":
      return ErrorType.AUTHENTICATION
    case "DeadlineExceeded":
    case "ModelTimeout":
      return ErrorType.TIMEOUT
    case "ModelNotReady":
    case "ServiceUnavailable":
    case "ResourceNotFound":
      return ErrorType.MODEL_UNAVAILABLE
    case "Network":
      return ErrorType.NETWORK
    case "InternalServer":
    case "ModelError":
    case "ModelStreamError":
      return ErrorType.INTERNAL
    default:
      return ErrorType.UNKNOWN
  }
}

interface SdkErrorLike {
  readonly name?: string
  readonly message?: string
  readonly stack?: string
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string }
  readonly $fault?: string
  readonly requestId?: string
  readonly retryAfterSeconds?: number
}

/**
 * The `ErrorResponse` of a failed attempt: from its `BedrockError` (and the
 * SDK error behind it) when there is one, else from the attempt's record.
 */
export const errorResponseOf = (record: AttemptRecord | undefined, error?: BedrockError.BedrockError): ErrorResponse => {
  const reason = error?.reason._tag ?? record?.reason
  const sdk = (typeof error?.cause === "object" && error.cause !== null ? error.cause : undefined) as SdkErrorLike | undefined
  const code = sdk?.$metadata?.httpStatusCode ?? error?.httpStatusCode ?? record?.httpStatusCode ?? statusOf[reason ?? ""] ?? 500
  const details: Record<string, unknown> = {
    ...(sdk?.name !== undefined ? { name: sdk.name } : reason !== undefined ? { name: reason } : {}),
    ...(sdk?.stack !== undefined ? { stack: sdk.stack } : {}),
    ...(sdk?.$metadata !== undefined ? { metadata: sdk.$metadata } : {}),
    ...(sdk?.$fault !== undefined ? { fault: sdk.$fault } : {}),
    ...((sdk?.requestId ?? error?.requestId) !== undefined ? { requestId: sdk?.requestId ?? error?.requestId } : {}),
    ...(sdk?.retryAfterSeconds !== undefined ? { retryAfterSeconds: sdk.retryAfterSeconds } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(record?.decision !== undefined ? { decision: record.decision } : {})
  }
  const message = sdk?.message ?? error?.message ?? record?.message ?? `${reason ?? "failure"} on ${record?.modelId ?? "the model"}`
  return { code, message, details }
}

/**
 * An attempt the mux cut off at its timeout (or at the request deadline):
 * recorded `interrupted` with reason `DeadlineExceeded`. A hedge's loser and
 * an attempt the caller gave up on are `interrupted` with no reason: they
 * did not time out.
 */
export const timedOut = (record: AttemptRecord): boolean => record.outcome === "interrupted" && record.reason === "DeadlineExceeded"

/** The original's `ErrorResponse` for a timeout: "Request timed out after Nms", TIMEOUT, retryable. */
const timeoutResponse = (ms: number, modelId: string, details: Record<string, unknown>): EnhancedErrorResponse => ({
  code: 500,
  message: `Request timed out after ${ms}ms`,
  details: { name: "TimeoutError", ...details },
  errorType: ErrorType.TIMEOUT,
  retryable: true,
  modelId
})

/** The limit that expired on a timed-out attempt (its record's `limitMs`); else the attempt's duration. */
const expiredMs = (record: AttemptRecord): number => record.limitMs ?? record.durationMs

/** The `ErrorResponse` of an attempt that timed out (`timedOut`), as the original reports one. */
export const timeoutResponseOf = (record: AttemptRecord): EnhancedErrorResponse =>
  timeoutResponse(expiredMs(record), record.modelId, {
    reason: "DeadlineExceeded",
    ...(record.decision !== undefined ? { decision: record.decision } : {})
  })

/** The outcome of an attempt, as the events and thrown errors carry it. */
export const outcomeOf = (record: AttemptRecord, at: number, error?: ErrorResponse): ModelOutcome => ({
  modelId: record.modelId,
  type: record.outcome === "success" ? OutcomeType.SUCCESS : outcomeTypeOf(record.reason),
  latency: record.durationMs,
  timestamp: new Date(at),
  ...(error !== undefined ? { error } : {})
})

/** What the translation needs beyond the error. */
export interface Context {
  /** epoch ms now (the mux's Clock) */
  readonly now: number
  /** the configured attempts (`maxRetries` + 1) */
  readonly attempts: number
  /**
   * the health of the request's route's models when none of them can take traffic now (every one cooling, its
   * breaker open, or its weight 0); undefined while one can
   */
  readonly unavailable?: ReadonlyArray<ModelHealth> | undefined
}

/**
 * The attempts sent as escalations: for each model's `escalate` decision, its next attempt at a service tier
 * (records are in the order attempts ended: a hedge's may come between).
 */
const escalatedAttempts = (records: ReadonlyArray<AttemptRecord>): number => {
  let n = 0
  const pending = new Set<string>()
  for (const r of records) {
    if (r.serviceTier !== undefined && pending.delete(r.target)) n += 1
    if (r.decision === "escalate") pending.add(r.target)
  }
  return n
}

const timeoutOf = (e: MuxError): number | undefined => {
  // the request deadline, or the last attempt's timeout when it expired with no model left
  if (e.reason._tag === "DeadlineExceeded") return e.reason.afterMs
  const last = e.last?.reason
  // an attempt timed out and nothing was left to try: the original's TimeoutError
  if ((e.reason._tag === "NoModelsAvailable" || e.reason._tag === "AttemptsExhausted") && last?._tag === "DeadlineExceeded") {
    return Duration.toMillis(last.after)
  }
  return undefined
}

const codeOf = (e: MuxError): MultiplexerErrorCode => {
  switch (e.reason._tag) {
    case "NoModelsAvailable":
      return "NO_MODELS_AVAILABLE"
    case "InvalidRequest":
      return "INVALID_REQUEST"
    case "QuotaExceeded":
      return "QUOTA_EXCEEDED"
    case "StoreUnavailable":
      return "STORE_UNAVAILABLE"
    case "StreamInterrupted":
      return "STREAM_INTERRUPTED"
    default:
      return "RETRIES_EXHAUSTED"
  }
}

/** The error `processRequest` throws for a `MuxError`. */
export const fromMuxError = (e: MuxError, ctx: Context): Error => {
  const lastRecord = e.attempts[e.attempts.length - 1]
  const sdk = e.last?.cause
  if (e.reason._tag === "Failed") {
    const errorResponse = errorResponseOf(lastRecord, e.reason.error)
    const outcome = lastRecord === undefined
      ? { modelId: e.reason.error.modelId ?? "", type: OutcomeType.FAIL_FAST, latency: 0, timestamp: new Date(ctx.now), error: errorResponse }
      : outcomeOf(lastRecord, ctx.now, errorResponse)
    return new FailFastError(errorResponse.message, { outcome, errorResponse }, { cause: sdk ?? e.reason.error })
  }
  const timeout = timeoutOf(e)
  if (timeout !== undefined) {
    const modelId = lastRecord?.modelId ?? ""
    const errorResponse = timeoutResponse(timeout, modelId, { reason: e.reason._tag, attempts: e.attempts })
    const message = errorResponse.message
    const outcome: ModelOutcome = {
      modelId,
      type: OutcomeType.FAIL_FAST,
      latency: lastRecord?.durationMs ?? 0,
      timestamp: new Date(ctx.now),
      error: errorResponse
    }
    return new TimeoutError(message, { outcome, errorResponse }, { cause: e })
  }
  const skippedModels = [...new Set(e.attempts.map((a) => a.modelId))]
  const ours = { reason: e.reason._tag, attempts: e.attempts }
  switch (e.reason._tag) {
    case "NoModelsAvailable":
      return new MultiplexerError(`No models available to process the request: ${e.message}`, "NO_MODELS_AVAILABLE", {
        skippedModels,
        totalSkipped: skippedModels.length,
        ...ours,
        models: e.reason.models,
        ...(e.reason.earliestRecovery !== undefined ? { earliestRecovery: e.reason.earliestRecovery } : {})
      }, { cause: sdk })
    case "AttemptsExhausted": {
      // the attempts ran out with every model of the request's route unavailable (all of them throttled, say):
      // the original's NO_MODELS_AVAILABLE, which it throws once every model was skipped, and which its users
      // back off on; RETRIES_EXHAUSTED is the budget running out while a model could still take the request
      if (ctx.unavailable !== undefined) {
        // the shape of NoModelsAvailable's models (the engine's, when nothing was eligible); a model is back once
        // every guard that keeps it out lets it in (the later of its breaker's and its cooldown's times); one of
        // weight 0 never is
        const models = ctx.unavailable.map((m) => {
          const times = [m.recoversAt, m.cooldown?.until].filter((t): t is number => t !== undefined)
          const back = m.unavailable === "weight" || times.length === 0 ? undefined : Math.max(...times)
          return { modelId: m.modelId, target: m.target, breaker: m.breaker, excluded: m.unavailable ?? "unavailable", ...(back !== undefined ? { recoversAt: back } : {}) }
        })
        const recoveries = models.flatMap((m) => (m.recoversAt === undefined ? [] : [m.recoversAt]))
        return new MultiplexerError(`No models available to process the request: every model failed or is unavailable after ${e.attempts.length} attempts`, "NO_MODELS_AVAILABLE", {
          skippedModels,
          totalSkipped: skippedModels.length,
          ...(e.last !== undefined ? { lastError: e.last.message } : {}),
          ...ours,
          models,
          ...(recoveries.length > 0 ? { earliestRecovery: Math.min(...recoveries) } : {})
        }, { cause: sdk })
      }
      // escalations are not retries, as in the original (the facade's policy does not count them)
      const retries = e.attempts.length - 1 - escalatedAttempts(e.attempts)
      return new MultiplexerError(`All retry attempts exhausted (${retries} retries)`, "RETRIES_EXHAUSTED", {
        maxRetries: ctx.attempts - 1,
        actualRetries: retries,
        skippedModels,
        totalSkipped: skippedModels.length,
        ...(e.last !== undefined ? { lastError: e.last.message } : {}),
        ...ours
      }, { cause: sdk })
    }
    case "InvalidRequest":
      return new MultiplexerError(e.message, codeOf(e), { ...ours, problems: e.reason.problems })
    case "QuotaExceeded":
      return new MultiplexerError(e.message, codeOf(e), {
        ...ours,
        tenant: e.reason.tenant,
        kind: e.reason.kind,
        retryAfterMs: e.reason.retryAfterMs
      })
    default:
      return new MultiplexerError(e.message, codeOf(e), ours, { cause: sdk })
  }
}
