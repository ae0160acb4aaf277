/**
 * The public vocabulary of the aws-samples multiplexer, as the facade speaks
 * it: its enum-likes (`as const` objects with the original's values), its
 * types, and the errors `processRequest` throws. Kept apart from the facade
 * class so that the error translation (`errors.ts`) and the event bridge
 * (`events.ts`) can use them without an import cycle.
 */
import type { ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"

/**
 * A breaker's state, with the original's string values.
 * @example
 * ```ts
 * import { CircuitBreakerState, createMultiplexer } from "effect-bedrock-mux"
 * declare const m: ReturnType<typeof createMultiplexer>
 * const open = Object.values(m.getCircuitBreakerStatus()).filter((s) => s.state === CircuitBreakerState.OPEN)
 * ```
 * @since 0.1.0
 */
export const CircuitBreakerState = { CLOSED: "CLOSED", OPEN: "OPEN", HALF_OPEN: "HALF_OPEN" } as const
/** @since 0.1.0 */
export type CircuitBreakerState = typeof CircuitBreakerState[keyof typeof CircuitBreakerState]

/**
 * How one model invocation ended, with the original's numeric values.
 * @example
 * ```ts
 * import { OutcomeType } from "effect-bedrock-mux"
 * const isThrottle = (o: { readonly type: OutcomeType }) => o.type === OutcomeType.RATE_LIMIT
 * ```
 * @since 0.1.0
 */
export const OutcomeType = { SUCCESS: 0, RATE_LIMIT: 1, FAIL_FAST: 2, REFUSAL: 3 } as const
/** @since 0.1.0 */
export type OutcomeType = typeof OutcomeType[keyof typeof OutcomeType]

/**
 * Error categories, with the original's string values.
 * @example
 * ```ts
 * import { ErrorType } from "effect-bedrock-mux"
 * const retryable = new Set<string>([ErrorType.THROTTLING, ErrorType.TIMEOUT, ErrorType.INTERNAL])
 * ```
 * @since 0.1.0
 */
export const ErrorType = {
  VALIDATION: "VALIDATION",
  THROTTLING: "THROTTLING",
  MODEL_UNAVAILABLE: "MODEL_UNAVAILABLE",
  TIMEOUT: "TIMEOUT",
  CANCELLED: "CANCELLED",
  CIRCUIT_OPEN: "CIRCUIT_OPEN",
  INTERNAL: "INTERNAL",
  AUTHENTICATION: "AUTHENTICATION",
  NETWORK: "NETWORK",
  UNKNOWN: "UNKNOWN"
} as const
/** @since 0.1.0 */
export type ErrorType = typeof ErrorType[keyof typeof ErrorType]

/**
 * A Bedrock service tier.
 * @example
 * ```ts
 * import type { ServiceTierType } from "effect-bedrock-mux"
 * const tier: ServiceTierType = "priority"
 * ```
 * @since 0.1.0
 */
export type ServiceTierType = "reserved" | "priority" | "default" | "flex"

/**
 * A failure as the original reports it: the HTTP status (500 when there is
 * none), the message, and details (`name`, `metadata`, `fault`, `requestId`,
 * `retryAfterSeconds` when the SDK error has them, plus our `reason`).
 * @example
 * ```ts
 * import type { ErrorResponse } from "effect-bedrock-mux"
 * const throttled = (e: ErrorResponse) => e.code === 429
 * ```
 * @since 0.1.0
 */
export interface ErrorResponse {
  code: number
  message: string
  details?: Record<string, any>
}

/**
 * An `ErrorResponse` with a category, as carried by `TimeoutError` and
 * `CancelledError` outcomes.
 * @example
 * ```ts
 * import type { EnhancedErrorResponse } from "effect-bedrock-mux"
 * const retry = (e: EnhancedErrorResponse) => e.retryable
 * ```
 * @since 0.1.0
 */
export interface EnhancedErrorResponse extends ErrorResponse {
  errorType: ErrorType
  retryable: boolean
  retryAfterMs?: number
  recoverySuggestions?: Array<string>
  requestId?: string
  modelId?: string
}

/**
 * How one model invocation ended.
 * @example
 * ```ts
 * import { createMultiplexer } from "effect-bedrock-mux"
 * declare const m: ReturnType<typeof createMultiplexer>
 * m.on("success", (_response, outcome) => console.log(outcome.modelId, outcome.latency))
 * ```
 * @since 0.1.0
 */
export interface ModelOutcome {
  modelId: string
  type: OutcomeType
  /** milliseconds */
  latency: number
  timestamp: Date
  error?: ErrorResponse
}

/**
 * A model as the aws-samples multiplexer declares it, plus (optionally) any
 * per-model field of our config (`timeout`, `escalate`, `rpm`, ...).
 * @example
 * ```ts
 * import type { ModelConfiguration } from "effect-bedrock-mux"
 * const models: ModelConfiguration[] = [
 *   { modelId: "amazon.nova-2-lite-v1:0", weight: 100, isFallback: false },
 *   { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true, timeout: "20 seconds" }
 * ]
 * ```
 * @since 0.1.0
 */
export interface ModelConfiguration {
  modelId: string
  weight: number
  isFallback: boolean
  readonly tier?: number
  readonly timeout?: DurationInput
  readonly contextWindow?: number
  readonly labels?: ReadonlyArray<string>
  readonly client?: string
  readonly rpm?: number
  readonly tpm?: number
  readonly maxTokens?: number
  readonly escalate?: "priority" | "reserved"
  /** USD per 1,000 tokens (for `selection: "cheapest"`) */
  readonly price?: { readonly input: number; readonly output: number }
}

/**
 * Latency figures, milliseconds.
 * @example
 * ```ts
 * import type { LatencyMetrics } from "effect-bedrock-mux"
 * const slow = (l: LatencyMetrics) => l.p95 > 5_000
 * ```
 * @since 0.1.0
 */
export interface LatencyMetrics {
  average: number
  p50: number
  p95: number
  p99: number
  min: number
  max: number
}

/**
 * One model's counters, in the original's shape.
 * @example
 * ```ts
 * import type { ModelStats } from "effect-bedrock-mux"
 * const attempts = (s: ModelStats) => s.successCount + s.rateLimitCount + s.failFastCount + s.refusalCount
 * ```
 * @since 0.1.0
 */
export interface ModelStats {
  modelId: string
  /** successful attempts */
  successCount: number
  /** throttled attempts */
  rateLimitCount: number
  /** every other failed attempt (here most of them fail over) */
  failFastCount: number
  /** answers classified as refusals */
  refusalCount: number
  /** mean latency of successful attempts, ms */
  averageLatency: number
  isFallback: boolean
}

/**
 * The multiplexer's counters, in the original's shape.
 * @example
 * ```ts
 * import { createMultiplexer } from "effect-bedrock-mux"
 * declare const m: ReturnType<typeof createMultiplexer>
 * const { successCount, rateLimitCount, latencyMetrics } = m.getStats()
 * ```
 * @since 0.1.0
 */
export interface MultiplexerStats {
  successCount: number
  rateLimitCount: number
  failFastCount: number
  refusalCount: number
  modelStats: Record<string, ModelStats>
  latencyMetrics: LatencyMetrics
}

/**
 * One model's health, in the original's shape.
 * @example
 * ```ts
 * import { createMultiplexer } from "effect-bedrock-mux"
 * declare const m: ReturnType<typeof createMultiplexer>
 * const h = m.getModelHealthStatus("amazon.nova-2-lite-v1:0")
 * if (h !== null) console.log(h.circuitState, h.errorRate)
 * ```
 * @since 0.1.0
 */
export interface ModelHealthStatus {
  modelId: string
  /** the model can take traffic now */
  isHealthy: boolean
  circuitState: CircuitBreakerState
  lastSuccessAt?: Date
  lastFailureAt?: Date
  avgResponseTimeMs: number
  errorRate: number
  requestsPerMinute: number
}

/**
 * The pool's health, in the original's shape.
 * @example
 * ```ts
 * import { createMultiplexer } from "effect-bedrock-mux"
 * declare const m: ReturnType<typeof createMultiplexer>
 * const { isHealthy, healthyModels, unhealthyModels } = m.getHealthStatus()
 * ```
 * @since 0.1.0
 */
export interface SystemHealthStatus {
  isHealthy: boolean
  timestamp: Date
  totalModels: number
  healthyModels: number
  degradedModels: number
  unhealthyModels: number
  models: Record<string, ModelHealthStatus>
  metrics: { totalRequests: number; successRate: number; averageLatencyMs: number; p99LatencyMs: number }
}

/**
 * A breaker's status, in the original's shape (`getCircuitBreakerStatus()`
 * returns `state` and `failureCount` per model).
 * @example
 * ```ts
 * import type { CircuitBreakerStatus } from "effect-bedrock-mux"
 * const tripped = (s: CircuitBreakerStatus) => s.state !== "CLOSED"
 * ```
 * @since 0.1.0
 */
export interface CircuitBreakerStatus {
  state: CircuitBreakerState
  /** failures counted toward the breaker within its window */
  failureCount: number
  successCount?: number
  lastOpenedAt?: Date
  nextRetryAt?: Date
}

/**
 * The `refusalDetection` option: score every successful answer and treat a
 * refusal as a failed attempt: the request fails over (the breaker does not
 * count it), `refusalCount` counts it. Without `modelPath` or `classifier`,
 * the dependency-free heuristic classifier scores.
 * @example
 * ```ts
 * import type { RefusalDetectionConfig } from "effect-bedrock-mux"
 * const refusal: RefusalDetectionConfig = { enabled: true, modelPath: "models/refusal_classifier.onnx", confidenceThreshold: 0.4 }
 * ```
 * @since 0.1.0
 */
export interface RefusalDetectionConfig {
  enabled: boolean
  /** an ONNX model (string input `input` [1, 1], output `probabilities` [1, 2]); needs `onnxruntime-node` */
  modelPath?: string
  /** score at or above which an answer is a refusal; default 0.5 */
  confidenceThreshold?: number
  /** fail over on a refusal (default true); false: answers are not classified at all, as in the original */
  retryOnRefusal?: boolean
  /** your own scorer: a function returning a score in [0, 1] (sync or a Promise), or a `Refusal.Classifier` */
  classifier?: ((text: string) => number | PromiseLike<number>) | { readonly name: string; readonly score: (text: string) => unknown }
}

/**
 * The `tierEscalation` option: on a throttle, retry the same model once at
 * `escalationTier` before failing over (every model that sets no `escalate`
 * of its own).
 * @example
 * ```ts
 * import type { TierEscalationConfig } from "effect-bedrock-mux"
 * const tiers: TierEscalationConfig = { enabled: true, escalationTier: "priority" }
 * ```
 * @since 0.1.0
 */
export interface TierEscalationConfig {
  enabled: boolean
  escalationTier: "reserved" | "priority"
}

/**
 * The `tracing` option: our OpenTelemetry spans, sent to the global
 * OpenTelemetry tracer provider (needs `@effect/opentelemetry` and
 * `@opentelemetry/api`).
 * @example
 * ```ts
 * import type { TracingConfig } from "effect-bedrock-mux"
 * const tracing: TracingConfig = { enabled: true, serviceName: "my-service", captureBodies: false }
 * ```
 * @since 0.1.0
 */
export interface TracingConfig {
  enabled: boolean
  /** the OpenTelemetry tracer name (instrumentation scope); default "effect-bedrock-mux" */
  serviceName?: string
  /** record prompts and answers on the request span */
  captureBodies?: boolean
  /** accepted: attempt spans (one per model tried) always carry the selection */
  captureModelSelection?: boolean
}

/** A duration: milliseconds, or a string like "30 seconds". @since 0.1.0 */
export type DurationInput = number | string

/**
 * Our config's fields, as the facade takes them (the JSON config's shape,
 * spelled out without Effect types so that every TypeScript setup, the
 * original's `moduleResolution: "node"` included, checks them).
 * @example
 * ```ts
 * import type { MuxConfigFields } from "effect-bedrock-mux"
 * const fields: MuxConfigFields = { deadline: "45 seconds", breaker: { failures: 3 } }
 * ```
 * @since 0.1.0
 */
export interface MuxConfigFields {
  readonly name?: string
  readonly attempts?: number
  readonly maxRetries?: number
  readonly timeout?: DurationInput
  readonly defaultTimeoutMs?: DurationInput
  readonly deadline?: DurationInput
  readonly breaker?: {
    readonly failures?: number
    readonly window?: DurationInput
    readonly probeInterval?: DurationInput
    readonly probeIntervalMax?: DurationInput
    /** the older name of `probeInterval` */
    readonly cooldown?: DurationInput
    /** the older name of `probeIntervalMax` */
    readonly cooldownMax?: DurationInput
    readonly halfOpen?: number
    readonly rampUp?: DurationInput
  }
  readonly routes?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly selection?: "weighted" | "ordered" | "latency" | "cheapest"
  readonly waitForRecovery?: boolean
  readonly decisions?: Readonly<Partial<Record<string, {
    readonly retrySame?: number
    readonly failover?: boolean
    readonly breaker?: boolean
    readonly largerContextOnly?: boolean
  }>>>
  readonly retry?: { readonly base: DurationInput; readonly max?: DurationInput }
  readonly backoff?: { readonly base: DurationInput; readonly max: DurationInput; readonly times: number }
  readonly onStoreError?: "allow" | "fail"
  readonly captureBodies?: boolean
  readonly tenants?: Readonly<Record<string, { readonly rpm?: number; readonly tpm?: number }>>
  readonly defaultTenant?: { readonly rpm?: number; readonly tpm?: number }
  readonly stream?: {
    readonly firstTokenTimeout?: DurationInput
    readonly stallTimeout?: DurationInput
    readonly metadataGrace?: DurationInput
    readonly onInterrupt?: "fail" | "restart"
    readonly hedge?: { readonly after?: DurationInput | "p95"; readonly budget?: number }
  }
  readonly cooldowns?: {
    readonly base?: DurationInput
    readonly requests?: DurationInput
    readonly tokens?: DurationInput
    readonly daily?: DurationInput
    readonly unknown?: DurationInput
  }
}

/**
 * The events and their arguments, as the original declares them.
 * @example
 * ```ts
 * import type { MultiplexerEvents } from "effect-bedrock-mux"
 * const onSelected: MultiplexerEvents["model-selected"] = (modelId, isFallback, retryCount) => {}
 * ```
 * @since 0.1.0
 */
export interface MultiplexerEvents {
  /** a request was received (before anything else) */
  "request": (input: any) => void
  /** the request succeeded: the response and the answering attempt's outcome */
  "success": (response: any, outcome: ModelOutcome) => void
  /**
   * an attempt failed (its error and outcome), or the request failed (the
   * thrown error, and `null` for the outcome, as the original passes it)
   */
  "error": (error: ErrorResponse | null, outcome: ModelOutcome) => void
  /** a model was passed over at selection because its breaker is open */
  "model-circuit-open-skipped": (modelId: string) => void
  "model-added": (modelId: string) => void
  "model-removed": (modelId: string) => void
  /** after each attempt's outcome */
  "stats": (stats: MultiplexerStats) => void
  "stats-reset": () => void
  /** `retryCount`: attempts before this one in the request */
  "model-selected": (modelId: string, isFallback: boolean, retryCount: number) => void
  "model-invocation-start": (modelId: string, requestId: string) => void
  "model-invocation-complete": (modelId: string, requestId: string, latency: number) => void
  "refusal-detected": (modelId: string, confidence: number, responseText: string) => void
  "refusal-classification": (modelId: string, isRefusal: boolean, confidence: number, latencyMs: number) => void
  "tier-escalation": (modelId: string, fromTier: ServiceTierType, toTier: ServiceTierType) => void
  "tier-escalation-success": (modelId: string, tier: ServiceTierType) => void
  "tier-escalation-failure": (modelId: string, tier: ServiceTierType, error: string) => void
}

/**
 * The input of `processRequest`: Converse input without `modelId`.
 * @since 0.1.0
 */
export type MultiplexerInput = Omit<ConverseCommandInput, "modelId">

/**
 * The codes of `MultiplexerError` this library throws.
 * @since 0.1.0
 */
export type MultiplexerErrorCode =
  | "NO_MODELS_AVAILABLE"
  | "RETRIES_EXHAUSTED"
  | "INVALID_REQUEST"
  | "QUOTA_EXCEEDED"
  | "STORE_UNAVAILABLE"
  | "STREAM_INTERRUPTED"
  | "DESTROYED"
  | "INTERRUPTED"
  | "CLASSIFIER_UNAVAILABLE"
  | "NOT_READY"

/**
 * A failure of the multiplexer itself, with a machine-readable `code`. The
 * constructor is the original's `(message, code, details?)`.
 *
 * `details` keeps the original's keys (`skippedModels`, `totalSkipped`;
 * `maxRetries`, `actualRetries`, `lastError` for `RETRIES_EXHAUSTED`) next to
 * ours (`reason`, `attempts`, `models`, `earliestRecovery`). `sdkError` is
 * the last SDK error seen, if any (also the `cause`).
 *
 * @example
 * ```ts
 * import { MultiplexerError } from "effect-bedrock-mux"
 * const busy = (e: unknown) => e instanceof MultiplexerError && e.code === "NO_MODELS_AVAILABLE"
 * throw new MultiplexerError("no capacity", "NO_MODELS_AVAILABLE", { skippedModels: [] })
 * ```
 * @since 0.1.0
 */
export class MultiplexerError extends Error {
  readonly code: MultiplexerErrorCode | (string & {})
  readonly details?: Record<string, any>
  /** the last SDK error seen, if any */
  readonly sdkError?: unknown
  constructor(message: string, code: MultiplexerErrorCode | (string & {}), details?: Record<string, any>, options?: { readonly cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined)
    this.name = "MultiplexerError"
    this.code = code
    if (details !== undefined) this.details = details
    if (options?.cause !== undefined) this.sdkError = options.cause
  }
}

/**
 * The fields the original puts on the errors of a failed invocation.
 * @since 0.1.0
 */
export interface InvocationFailure {
  readonly outcome: ModelOutcome
  readonly errorResponse: ErrorResponse
}

/**
 * A failed invocation as the original reports it: the message, `.outcome`,
 * `.errorResponse` and a `cause`. The base of `FailFastError`,
 * `TimeoutError` and `CancelledError`.
 * @example
 * ```ts
 * import { InvocationError } from "effect-bedrock-mux"
 * const modelOf = (e: unknown) => (e instanceof InvocationError ? e.outcome.modelId : undefined)
 * ```
 * @since 0.1.0
 */
export class InvocationError<R extends ErrorResponse = ErrorResponse> extends Error implements InvocationFailure {
  readonly outcome: ModelOutcome
  readonly errorResponse: R
  constructor(message: string, failure: { readonly outcome: ModelOutcome; readonly errorResponse: R }, options?: { readonly cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined)
    this.outcome = failure.outcome
    this.errorResponse = failure.errorResponse
  }
}

/**
 * `cause` spelled out, so that `error.cause` type-checks in projects whose
 * `lib` predates ES2022's `Error.cause` (the original's tsconfig has ES2020).
 * @example
 * ```ts
 * import { FailFastError } from "effect-bedrock-mux"
 * const sdkError = (e: FailFastError) => e.cause // with lib ES2020 too
 * ```
 * @since 0.1.0
 */
export interface InvocationError<R extends ErrorResponse = ErrorResponse> {
  cause?: unknown
}

/**
 * The request failed fast because of the request itself (validation, access
 * denied, a 4xx model error): the original's `FailFastError`, with the SDK's
 * message, `.outcome`, `.errorResponse`, and the SDK exception as `cause`
 * (`error.cause instanceof ValidationException`).
 * @example
 * ```ts
 * import { ValidationException } from "@aws-sdk/client-bedrock-runtime"
 * import { FailFastError } from "effect-bedrock-mux"
 * const badInput = (e: unknown) => e instanceof FailFastError && e.cause instanceof ValidationException
 * ```
 * @since 0.1.0
 */
export class FailFastError extends InvocationError {
  override readonly name = "FailFastError"
}

/**
 * The request ended on a timeout with no model left to try: "Request timed
 * out after Nms", where N is the timeout that expired (the attempt's, or the
 * request deadline). `code` is `"TIMEOUT"`; `cause` is the `MuxError`.
 * @example
 * ```ts
 * import { TimeoutError } from "effect-bedrock-mux"
 * const timedOut = (e: unknown) => e instanceof TimeoutError || (e as Error).name === "TimeoutError"
 * ```
 * @since 0.1.0
 */
export class TimeoutError extends InvocationError<EnhancedErrorResponse> {
  override readonly name = "TimeoutError"
  readonly code = "TIMEOUT"
}

/**
 * The request was cancelled through its `abortSignal`: the upstream HTTP
 * request was aborted. `cause` is the signal's reason.
 * @example
 * ```ts
 * import { CancelledError, createMultiplexer } from "effect-bedrock-mux"
 * declare const m: ReturnType<typeof createMultiplexer>
 * const controller = new AbortController()
 * m.processRequest({ messages: [] }, { abortSignal: controller.signal }).catch((e) => e instanceof CancelledError)
 * controller.abort()
 * ```
 * @since 0.1.0
 */
export class CancelledError extends InvocationError<EnhancedErrorResponse> {
  override readonly name = "CancelledError"
}
