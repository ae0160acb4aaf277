/**
 * A Promise facade for apps without Effect, drop-in compatible with the
 * aws-samples "Amazon Bedrock Model Multiplexer": same `createMultiplexer(models,
 * options)`, same `processRequest`, `getStats`, `getHealthStatus`,
 * `getSimpleHealthCheck`, `destroy`, same model shape `{ modelId, weight,
 * isFallback }`, same error contract.
 *
 * How it behaves:
 * - Underneath is a `BedrockMux` in a `ManagedRuntime`: 500/503, timeouts
 *   and model errors fail over (the original does not), a timeout aborts the
 *   HTTP request, validation errors never open a breaker.
 * - Errors: an SDK error that ends the request (validation, access) is thrown
 *   as the SDK's own error, so `instanceof ValidationException` works; the
 *   mux's own failures throw `MultiplexerError` with `code`
 *   (`NO_MODELS_AVAILABLE`, `RETRIES_EXHAUSTED`, `TIMEOUT`, `INVALID_REQUEST`,
 *   `STORE_UNAVAILABLE`), `details.attempts`, and the last SDK error as
 *   `sdkError`.
 * - Every option of our config is accepted next to the original's
 *   (`defaultTimeoutMs`, `maxRetries`, `clientConfig`); `clientConfig` goes to
 *   the SDK client, with SDK retries off unless it sets `maxAttempts`.
 *
 * Gotchas:
 * - A bad config throws `MuxConfigError` from `createMultiplexer` itself.
 * - `destroy()` returns a Promise (closing the SDK client); the original's
 *   returned nothing, and awaiting is optional.
 *
 * @since 0.1.0
 */
import type { BedrockRuntimeClientConfig, ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import { Cause, Clock, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { BedrockMux, type MuxResponse } from "./BedrockMux.ts"
import { BedrockRuntime } from "./BedrockRuntime.ts"
import * as MuxConfig from "./MuxConfig.ts"
import type { MuxError } from "./MuxError.ts"

/**
 * A model as the aws-samples multiplexer declares it.
 * @since 0.1.0
 */
export interface ModelConfiguration {
  readonly modelId: string
  readonly weight: number
  readonly isFallback: boolean
}

/**
 * Options: the original's, plus every field of our config.
 * @since 0.1.0
 */
export type MultiplexerOptions =
  & Omit<Exclude<MuxConfig.Input, ReadonlyArray<unknown>>, "models">
  & {
    /** passed to the SDK client */
    readonly clientConfig?: BedrockRuntimeClientConfig
    /** accepted for compatibility; use the Effect API and OpenTelemetry for traces */
    readonly tracing?: unknown
    /** the Bedrock to use instead of a client built from `clientConfig` (e.g. `BedrockSimulator.layer`) */
    readonly bedrockRuntime?: Layer.Layer<BedrockRuntime, unknown>
  }

/**
 * An error of the mux itself, with a machine-readable code.
 * @since 0.1.0
 */
export class MultiplexerError extends Error {
  readonly code:
    | "NO_MODELS_AVAILABLE"
    | "RETRIES_EXHAUSTED"
    | "TIMEOUT"
    | "INVALID_REQUEST"
    | "QUOTA_EXCEEDED"
    | "STORE_UNAVAILABLE"
    | "STREAM_INTERRUPTED"
  readonly details: Record<string, unknown>
  /** the last SDK error seen, if any */
  readonly sdkError: unknown
  constructor(error: MuxError) {
    super(error.message, { cause: error })
    this.name = "MultiplexerError"
    this.code = codeOf(error)
    this.details = {
      reason: error.reason._tag,
      attempts: error.attempts,
      ...(error.reason._tag === "NoModelsAvailable"
        ? { models: error.reason.models, earliestRecovery: error.reason.earliestRecovery }
        : {})
    }
    this.sdkError = error.last?.cause
  }
}

const codeOf = (error: MuxError): MultiplexerError["code"] => {
  switch (error.reason._tag) {
    case "NoModelsAvailable":
      return "NO_MODELS_AVAILABLE"
    case "AttemptsExhausted":
    case "Failed":
      return "RETRIES_EXHAUSTED"
    case "DeadlineExceeded":
      return "TIMEOUT"
    case "InvalidRequest":
      return "INVALID_REQUEST"
    case "QuotaExceeded":
      return "QUOTA_EXCEEDED"
    case "StoreUnavailable":
      return "STORE_UNAVAILABLE"
    case "StreamInterrupted":
      return "STREAM_INTERRUPTED"
  }
}

/**
 * Latency figures in the original's shape.
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

/** @since 0.1.0 */
export interface ModelStats {
  modelId: string
  successCount: number
  rateLimitCount: number
  failFastCount: number
  refusalCount: number
  averageLatency: number
  isFallback: boolean
}

/** @since 0.1.0 */
export interface MultiplexerStats {
  successCount: number
  rateLimitCount: number
  failFastCount: number
  refusalCount: number
  modelStats: Record<string, ModelStats>
  latencyMetrics: LatencyMetrics
}

/** @since 0.1.0 */
export interface ModelHealthStatus {
  modelId: string
  isHealthy: boolean
  circuitState: "CLOSED" | "OPEN" | "HALF_OPEN"
  lastSuccessAt?: Date
  lastFailureAt?: Date
  avgResponseTimeMs: number
  errorRate: number
  requestsPerMinute: number
}

/** @since 0.1.0 */
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
 * The multiplexer.
 * @since 0.1.0
 */
export interface Multiplexer {
  processRequest(input: Omit<ConverseCommandInput, "modelId">): Promise<MuxResponse>
  getStats(): MultiplexerStats
  getHealthStatus(): SystemHealthStatus
  getSimpleHealthCheck(): { status: "healthy" | "unhealthy"; code: 200 | 503 }
  destroy(): Promise<void>
}

/**
 * Creates a multiplexer over `models`.
 *
 * @example
 * ```ts
 * import { createMultiplexer } from "effect-bedrock-mux"
 *
 * const multiplexer = createMultiplexer(
 *   [
 *     { modelId: "amazon.nova-2-lite-v1:0", weight: 100, isFallback: false },
 *     { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
 *   ],
 *   { maxRetries: 3, clientConfig: { region: "us-east-1" } }
 * )
 * const response = await multiplexer.processRequest({
 *   messages: [{ role: "user", content: [{ text: "Explain quantum computing in simple terms" }] }],
 *   inferenceConfig: { maxTokens: 1000, temperature: 0.7 }
 * })
 * await multiplexer.destroy()
 * ```
 * @since 0.1.0
 */
export const createMultiplexer = (
  models: ReadonlyArray<ModelConfiguration>,
  options: MultiplexerOptions = {}
): Multiplexer => {
  const { clientConfig, tracing: _tracing, bedrockRuntime, ...rest } = options
  // validate now, so a bad config throws here as the original's constructor does
  const config = MuxConfig.decodeSync({ defaultTimeoutMs: 30_000, ...rest, models })
  const runtimeLayer = bedrockRuntime ?? BedrockRuntime.layer(clientConfig ?? {})
  const runtime = ManagedRuntime.make(BedrockMux.layer(config).pipe(Layer.provide(runtimeLayer)))
  const mux = Effect.gen(function*() {
    return yield* BedrockMux
  })

  const sync = <A>(f: (m: BedrockMux["Service"]) => Effect.Effect<A>): A => runtime.runSync(Effect.flatMap(mux, f))

  return {
    processRequest: (input) =>
      runtime.runPromiseExit(Effect.flatMap(mux, (m) => m.converse(input))).then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        const error = Cause.squash(exit.cause)
        if (isMuxError(error)) {
          // fail-fast: the SDK's own error, as the original rethrows it
          if (error.reason._tag === "Failed" && error.last?.cause !== undefined) throw error.last.cause
          throw new MultiplexerError(error)
        }
        throw error
      }),
    getStats: () =>
      sync((m) =>
        Effect.map(m.stats, (s): MultiplexerStats => ({
          successCount: s.successes,
          rateLimitCount: s.models.reduce((n, x) => n + x.throttles, 0),
          failFastCount: s.models.reduce((n, x) => n + x.failFast, 0),
          refusalCount: 0,
          modelStats: Object.fromEntries(s.models.map((x) => [x.target, {
            modelId: x.modelId,
            successCount: x.successes,
            rateLimitCount: x.throttles,
            failFastCount: x.failFast,
            refusalCount: 0,
            averageLatency: x.latencyMs.mean,
            isFallback: x.tier > 0
          }])),
          latencyMetrics: {
            average: s.latencyMs.mean,
            p50: s.latencyMs.p50,
            p95: s.latencyMs.p95,
            p99: s.latencyMs.p99,
            min: s.latencyMs.min,
            max: s.latencyMs.max
          }
        }))
      ),
    getHealthStatus: () =>
      sync((m) =>
        Effect.map(Effect.all([m.health, m.stats, Clock.currentTimeMillis]), ([h, s, now]): SystemHealthStatus => {
          const healthy = h.models.filter((x) => x.available && x.breaker === "closed").length
          const unhealthy = h.models.filter((x) => !x.available).length
          return {
            isHealthy: h.status !== "unhealthy",
            timestamp: new Date(now),
            totalModels: h.models.length,
            healthyModels: healthy,
            degradedModels: h.models.length - healthy - unhealthy,
            unhealthyModels: unhealthy,
            models: Object.fromEntries(h.models.map((x) => [x.target, {
              modelId: x.modelId,
              isHealthy: x.available,
              circuitState: x.breaker === "closed" ? "CLOSED" : x.breaker === "open" ? "OPEN" : "HALF_OPEN",
              ...(x.lastSuccessAt !== undefined ? { lastSuccessAt: new Date(x.lastSuccessAt) } : {}),
              ...(x.lastFailureAt !== undefined ? { lastFailureAt: new Date(x.lastFailureAt) } : {}),
              avgResponseTimeMs: x.latencyMs.mean,
              errorRate: x.errorRate,
              requestsPerMinute: x.attemptsPerMinute
            } satisfies ModelHealthStatus])),
            metrics: {
              totalRequests: s.requests,
              successRate: s.requests === 0 ? 1 : s.successes / s.requests,
              averageLatencyMs: s.latencyMs.mean,
              p99LatencyMs: s.latencyMs.p99
            }
          }
        })
      ),
    getSimpleHealthCheck: () => sync((m) => Effect.map(m.simpleHealth, (h) => ({ ...h }))),
    destroy: () => runtime.dispose()
  }
}

const isMuxError = (u: unknown): u is MuxError =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "MuxError"
