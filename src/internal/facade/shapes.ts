/**
 * Our stats and health in the original's shapes. Pure: the facade reads
 * `mux.stats` / `mux.health` and passes them here.
 *
 * - `failFastCount` counts every failed attempt that was not a throttle, as
 *   the original's FAIL_FAST does ("other errors"); here most of them fail
 *   over instead of ending the request.
 * - Models are keyed by target (`modelId`, or `client:modelId`).
 * - `resetStats` keeps a baseline: counters read after it are differences.
 */
import type { Health, ModelHealth, Stats } from "../../BedrockMux.ts"
import {
  CircuitBreakerState,
  type CircuitBreakerStatus,
  type ModelHealthStatus,
  type ModelStats,
  type MultiplexerStats,
  type SystemHealthStatus
} from "./model.ts"

/** Counters as of a `resetStats`, by target. */
export interface Baseline {
  readonly models: ReadonlyMap<string, { readonly successes: number; readonly throttles: number; readonly failed: number; readonly refusals: number }>
  /** successful requests at the reset */
  readonly successes: number
}

export const emptyBaseline: Baseline = { models: new Map(), successes: 0 }

export const baselineOf = (s: Stats): Baseline => ({
  models: new Map(s.models.map((m) => [m.target, { successes: m.successes, throttles: m.throttles, failed: m.failFast + m.failures, refusals: m.refusals }])),
  successes: s.successes
})

/** The baseline without a model's counters (a model added again starts from zero). */
export const withoutModel = (b: Baseline, target: string): Baseline => {
  if (!b.models.has(target)) return b
  const models = new Map(b.models)
  models.delete(target)
  return { models, successes: b.successes }
}

export const stateOf = (breaker: ModelHealth["breaker"]): CircuitBreakerState =>
  breaker === "closed" ? CircuitBreakerState.CLOSED : breaker === "open" ? CircuitBreakerState.OPEN : CircuitBreakerState.HALF_OPEN

/** `getStats()`. */
export const multiplexerStats = (s: Stats, baseline: Baseline): MultiplexerStats => {
  const modelStats: Record<string, ModelStats> = {}
  let successCount = 0
  let rateLimitCount = 0
  let failFastCount = 0
  let refusalCount = 0
  for (const m of s.models) {
    const b = baseline.models.get(m.target)
    const ms: ModelStats = {
      modelId: m.modelId,
      successCount: m.successes - (b?.successes ?? 0),
      rateLimitCount: m.throttles - (b?.throttles ?? 0),
      failFastCount: m.failFast + m.failures - (b?.failed ?? 0),
      refusalCount: m.refusals - (b?.refusals ?? 0),
      averageLatency: m.successes - (b?.successes ?? 0) === 0 ? 0 : m.latencyMs.mean,
      isFallback: m.tier > 0
    }
    modelStats[m.target] = ms
    successCount += ms.successCount
    rateLimitCount += ms.rateLimitCount
    failFastCount += ms.failFastCount
    refusalCount += ms.refusalCount
  }
  const fresh = s.successes - baseline.successes === 0
  return {
    successCount,
    rateLimitCount,
    failFastCount,
    refusalCount,
    modelStats,
    latencyMetrics: fresh
      ? { average: 0, p50: 0, p95: 0, p99: 0, min: 0, max: 0 }
      : {
        average: s.latencyMs.mean,
        p50: s.latencyMs.p50,
        p95: s.latencyMs.p95,
        p99: s.latencyMs.p99,
        min: s.latencyMs.min,
        max: s.latencyMs.max
      }
  }
}

export const modelHealth = (m: ModelHealth): ModelHealthStatus => ({
  modelId: m.modelId,
  isHealthy: m.available,
  circuitState: stateOf(m.breaker),
  ...(m.lastSuccessAt !== undefined ? { lastSuccessAt: new Date(m.lastSuccessAt) } : {}),
  ...(m.lastFailureAt !== undefined ? { lastFailureAt: new Date(m.lastFailureAt) } : {}),
  avgResponseTimeMs: m.latencyMs.mean,
  errorRate: m.errorRate,
  requestsPerMinute: m.attemptsPerMinute
})

export const systemHealth = (h: Health, s: Stats, now: number): SystemHealthStatus => {
  const healthy = h.models.filter((x) => x.available && x.breaker === "closed").length
  const unhealthy = h.models.filter((x) => !x.available).length
  return {
    isHealthy: h.status !== "unhealthy",
    timestamp: new Date(now),
    totalModels: h.models.length,
    healthyModels: healthy,
    degradedModels: h.models.length - healthy - unhealthy,
    unhealthyModels: unhealthy,
    models: Object.fromEntries(h.models.map((x) => [x.target, modelHealth(x)])),
    metrics: {
      totalRequests: s.requests,
      successRate: s.requests === 0 ? 1 : s.successes / s.requests,
      averageLatencyMs: s.latencyMs.mean,
      p99LatencyMs: s.latencyMs.p99
    }
  }
}

/**
 * `getCircuitBreakerStatus()`: each model's breaker state and the failures
 * its breaker counts, both from the breaker's own state (so an OPEN breaker
 * never reads 0 failures, after `resetStats` either).
 */
export const breakerStatus = (h: Health): Record<string, CircuitBreakerStatus> =>
  Object.fromEntries(h.models.map((m) => [m.target, { state: stateOf(m.breaker), failureCount: m.breakerFailures }]))
