/**
 * `BedrockMux`: Converse over a pool of models that survives throttling,
 * outages and slow or hanging models without the caller knowing.
 *
 * How a request is routed (one loop, see docs/concepts.md):
 * 1. select: weighted random among the eligible models of the lowest tier
 *    that still has one (eligible: not tried yet in this request, breaker
 *    closed or probing, weight > 0 after ramp-up, in the label's route);
 * 2. attempt: the call runs under the attempt timeout (the model's own, else
 *    the policy's), bounded by what is left of the request deadline; a
 *    timeout aborts the HTTP request;
 * 3. classify: the error's decision (`BedrockError.decisionOf`, overridable
 *    per reason) says retry the same model, fail over at once, or fail fast;
 * 4. record: the breaker and the stats see the outcome.
 *
 * Breakers: per model, opened by `failures` counted failures within `window`
 * (a success does not wipe the window), open for `cooldown` (doubling on
 * repeated trips, capped at `cooldownMax`), then half-open with `halfOpen`
 * probes; after closing, the model's weight ramps from 10 % to 100 % over
 * `rampUp`. Throttles and validation errors never count: quota is not health.
 *
 * Gotchas:
 * - `converse` takes the request without `modelId` (the mux picks it); a
 *   request that has one fails with `InvalidRequest`.
 * - Health and stats are bounded: fixed histograms and windows, nothing
 *   grows per request.
 * - State lives in a `MuxStore`: a fresh in-memory one per layer unless you
 *   provide one (to share breakers between muxes or processes).
 * - `layerConfig` is the only place the library reads the environment.
 *
 * @since 0.1.0
 */
import type { ConverseCommandInput, ConverseCommandOutput } from "@aws-sdk/client-bedrock-runtime"
import { Clock, Config, Context, Duration, Effect, Layer, Random, Schema } from "effect"
import * as BedrockError from "./BedrockError.ts"
import { BedrockRuntime, type Service as RuntimeService } from "./BedrockRuntime.ts"
import * as Breaker from "./internal/breaker.ts"
import * as Engine from "./internal/engine.ts"
import * as MuxConfig from "./MuxConfig.ts"
import { type AttemptRecord, InvalidRequest, MuxError } from "./MuxError.ts"
import * as MuxStore from "./MuxStore.ts"
import type * as Policy from "./Policy.ts"

/**
 * A request: Converse input without `modelId`.
 * @since 0.1.0
 */
export type MuxRequest = Omit<ConverseCommandInput, "modelId">

/**
 * Per-call options.
 * @since 0.1.0
 */
export interface ConverseOptions {
  /** task routing: only the models of this label's route */
  readonly label?: string
  /** this request's deadline, instead of the policy's */
  readonly deadline?: Duration.Input
  /** the tenant the request is for (per-tenant quotas) */
  readonly tenant?: string
  /** when nothing is eligible, wait for the earliest recovery inside the deadline */
  readonly waitForRecovery?: boolean
  /** a tenant over its quota waits for room (inside the deadline) instead of failing with QuotaExceeded */
  readonly waitForQuota?: boolean
}

/**
 * How a response was reached.
 * @since 0.1.0
 */
export interface Routing {
  /** the model that answered */
  readonly modelId: string
  readonly target: string
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** the answering model is in a fallback tier (tier > 0) */
  readonly fallbackUsed: boolean
}

/**
 * The SDK's ConverseCommandOutput, untouched, plus `routing`.
 * @since 0.1.0
 */
export type MuxResponse = ConverseCommandOutput & { readonly routing: Routing }

/**
 * One model's health.
 * @since 0.1.0
 */
export interface ModelHealth {
  readonly modelId: string
  readonly target: string
  readonly tier: number
  readonly weight: number
  /** weight × ramp-up factor now (0 while open) */
  readonly effectiveWeight: number
  readonly breaker: "closed" | "open" | "half-open"
  /** can take traffic now */
  readonly available: boolean
  /** epoch ms when an open breaker half-opens */
  readonly recoversAt?: number
  /** a throttle cooldown in force: until when (epoch ms of the mux's Clock) and why */
  readonly cooldown?: { readonly until: number; readonly kind: "requests" | "tokens" | "daily" | "unknown" }
  readonly successes: number
  readonly failures: number
  readonly throttles: number
  readonly failFast: number
  /** breaker-counted failures / attempts within the breaker window */
  readonly errorRate: number
  /** attempts per minute, averaged over the breaker window */
  readonly attemptsPerMinute: number
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly mean: number }
  readonly lastSuccessAt?: number
  readonly lastFailureAt?: number
}

/**
 * The pool's health.
 * @since 0.1.0
 */
export interface Health {
  /** healthy: every model available; degraded: some; unhealthy: none */
  readonly status: "healthy" | "degraded" | "unhealthy"
  readonly models: ReadonlyArray<ModelHealth>
}

/**
 * Request-level statistics.
 * @since 0.1.0
 */
export interface Stats {
  readonly requests: number
  readonly successes: number
  readonly failures: number
  readonly failovers: number
  readonly latencyMs: {
    readonly p50: number
    readonly p95: number
    readonly p99: number
    readonly mean: number
    readonly min: number
    readonly max: number
  }
  readonly models: ReadonlyArray<ModelHealth>
}

/**
 * For load-balancer probes: 503 only when no model can take traffic.
 * @since 0.1.0
 */
export interface SimpleHealth {
  readonly status: "healthy" | "unhealthy"
  readonly code: 200 | 503
}

/**
 * The service.
 * @since 0.1.0
 */
export interface Service {
  readonly converse: (request: MuxRequest, options?: ConverseOptions) => Effect.Effect<MuxResponse, MuxError>
  readonly health: Effect.Effect<Health>
  readonly stats: Effect.Effect<Stats>
  readonly simpleHealth: Effect.Effect<SimpleHealth>
  /** the decoded config this mux runs */
  readonly config: MuxConfig.MuxConfig
}

/**
 * Extra `BedrockRuntime`s, by key, for models whose config names a `client`
 * (other Regions or accounts). Models without `client` use the layer's
 * `BedrockRuntime`.
 *
 * @example
 * ```ts
 * import { BedrockMux, BedrockRuntime, BedrockRuntimes } from "effect-bedrock-mux"
 * const clients = BedrockRuntimes.layer({ west: BedrockRuntime.layer({ region: "us-west-2" }) })
 * ```
 * @since 0.1.0
 */
export class BedrockRuntimes extends Context.Reference<ReadonlyMap<string, RuntimeService>>(
  "effect-bedrock-mux/BedrockRuntimes",
  { defaultValue: () => new Map() }
) {
  /** Builds each `BedrockRuntime` layer and provides them by key. */
  static readonly layer = <E, R>(
    clients: Record<string, Layer.Layer<BedrockRuntime, E, R>>
  ): Layer.Layer<never, E, R> =>
    Layer.effect(
      BedrockRuntimes,
      Effect.gen(function*() {
        const map = new Map<string, RuntimeService>()
        for (const [key, layer] of Object.entries(clients)) {
          const context = yield* Layer.build(layer)
          map.set(key, Context.get(context, BedrockRuntime))
        }
        return map
      })
    ) as unknown as Layer.Layer<never, E, R>
}

/**
 * The mux service.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { BedrockMux, BedrockSimulator } from "effect-bedrock-mux"
 *
 * const MuxLive = BedrockMux.layer({
 *   models: [
 *     { modelId: "primary", weight: 100 },
 *     { modelId: "fallback", weight: 30, isFallback: true }
 *   ]
 * }).pipe(Layer.provide(BedrockSimulator.layer({ models: { primary: { rpm: 3 }, fallback: {} } })))
 *
 * const program = Effect.gen(function*() {
 *   const mux = yield* BedrockMux
 *   const res = yield* mux.converse({ messages: [{ role: "user", content: [{ text: "hi" }] }] })
 *   return res.routing.modelId
 * }).pipe(Effect.provide(MuxLive))
 * ```
 * @since 0.1.0
 */
export class BedrockMux extends Context.Service<BedrockMux, Service>()("effect-bedrock-mux/BedrockMux") {
  /**
   * Builds a mux from a JSON config (or an already decoded one). `policy`
   * transforms the decoded policy: compose your own selection,
   * classification or backoff in code.
   */
  static readonly layer = (
    config: MuxConfig.Input | MuxConfig.MuxConfig,
    options: { readonly policy?: (decoded: Policy.Policy) => Policy.Policy } = {}
  ): Layer.Layer<BedrockMux, MuxConfig.MuxConfigError, BedrockRuntime> =>
    Layer.effect(BedrockMux, make(config, options))

  /**
   * Builds a mux from the JSON in a `Config` value (by default the
   * `MODEL_CONFIG` environment variable): the only place the library reads
   * the environment. A missing or malformed value fails the layer.
   */
  static readonly layerConfig = (
    name = "MODEL_CONFIG",
    options: { readonly policy?: (decoded: Policy.Policy) => Policy.Policy } = {}
  ): Layer.Layer<BedrockMux, MuxConfig.MuxConfigError | Config.ConfigError, BedrockRuntime> =>
    Layer.effect(
      BedrockMux,
      Effect.gen(function*() {
        const json = yield* Config.schema(Schema.fromJsonString(Schema.Unknown), name)
        return yield* make(json as MuxConfig.Input, options)
      })
    )
}

const isDecoded = (u: unknown): u is MuxConfig.MuxConfig =>
  typeof u === "object" && u !== null && "policy" in u && "routes" in u && (u as { routes: unknown }).routes instanceof Map

/**
 * Builds the service (what `BedrockMux.layer` provides).
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockMux } from "effect-bedrock-mux"
 * const mux = BedrockMux.make({ models: [{ modelId: "a" }] })
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  input: MuxConfig.Input | MuxConfig.MuxConfig,
  options: { readonly policy?: (decoded: Policy.Policy) => Policy.Policy } = {}
) {
  const decoded = isDecoded(input) ? input : yield* MuxConfig.decode(input)
  const config: MuxConfig.MuxConfig = options.policy === undefined
    ? decoded
    : { ...decoded, policy: options.policy(decoded.policy) }
  const defaultRuntime = yield* BedrockRuntime
  const clients = yield* BedrockRuntimes
  const unknown = config.models.flatMap((m, i) =>
    m.client !== undefined && !clients.has(m.client)
      ? [{
        path: `models[${i}].client`,
        message: `unknown client "${m.client}"; allowed: ${
          clients.size === 0 ? "none provided (use BedrockRuntimes.layer)" : [...clients.keys()].map((k) => `"${k}"`).join(", ")
        }`
      }]
      : []
  )
  if (unknown.length > 0) return yield* new MuxConfig.MuxConfigError({ problems: unknown })
  const store = (yield* MuxStore.MuxStore) ?? MuxStore.makeMemory()
  const instance = `${(yield* Random.nextInt).toString(36)}`
  const engine = Engine.make({
    config,
    store,
    instance,
    runtimes: (m) => (m.client === undefined ? defaultRuntime : clients.get(m.client)!)
  })
  return BedrockMux.of(makeService(engine, config))
})

const makeService = (engine: Engine.Engine, config: MuxConfig.MuxConfig): Service => {
  const converse = (request: MuxRequest, options: ConverseOptions = {}): Effect.Effect<MuxResponse, MuxError> => {
    const problems = requestProblems(request, options)
    if (problems.length > 0) {
      return Effect.fail(
        new MuxError({ reason: new InvalidRequest({ problems }), message: `invalid request: ${problems.join("; ")}`, attempts: [] })
      )
    }
    return Effect.map(
      engine.route(
        {
          ...options,
          admission: {
            inputTokens: () => config.policy.estimateInputTokens(request),
            maxTokens: request.inferenceConfig?.maxTokens,
            tenant: options.tenant,
            waitForQuota: options.waitForQuota
          }
        },
        (target, attempt) =>
          target.runtime.converse({
            ...request,
            modelId: target.model.modelId,
            ...(attempt.serviceTier !== undefined ? { serviceTier: { type: attempt.serviceTier } } : {})
          }).pipe(
            Effect.timeoutOrElse({
              duration: attempt.timeout,
              orElse: () => Effect.fail(deadlineError(attempt.deadlineScope, attempt.timeout, target.model.modelId))
            })
          ),
        usageOf
      ),
      (routed) => ({
        ...routed.value,
        routing: {
          modelId: routed.target.model.modelId,
          target: routed.target.model.target,
          attempts: routed.attempts,
          fallbackUsed: routed.target.model.tier > 0
        }
      })
    )
  }

  const modelsHealth = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const { breakers: states, cooldowns } = yield* engine.snapshot
    return engine.targets.map((t): ModelHealth => {
      const state = states[t.index]!
      const cooldown = cooldowns[t.index]
      const cooling = cooldown !== undefined && cooldown.until > now
      const [ok, failed] = t.stats.window.totals(now)
      const recoversAt = Breaker.recoversAt(engine.settings, state, now)
      const available = Breaker.admits(engine.settings, state, now) && t.model.weight > 0 && !cooling
      return {
        modelId: t.model.modelId,
        target: t.model.target,
        tier: t.model.tier,
        weight: t.model.weight,
        effectiveWeight: t.model.weight * Breaker.weightFactor(engine.settings, state, now),
        breaker: Breaker.stateName(state, now),
        available,
        ...(recoversAt !== undefined && !available ? { recoversAt } : {}),
        ...(cooling ? { cooldown: { until: cooldown.until, kind: cooldown.kind } } : {}),
        successes: t.stats.successes,
        failures: t.stats.failures,
        throttles: t.stats.throttles,
        failFast: t.stats.failFast,
        errorRate: ok + failed === 0 ? 0 : failed / (ok + failed),
        attemptsPerMinute: ((ok + failed) * 60) / t.stats.window.windowSeconds,
        latencyMs: {
          p50: t.stats.latency.quantile(0.5),
          p95: t.stats.latency.quantile(0.95),
          p99: t.stats.latency.quantile(0.99),
          mean: t.stats.latency.mean
        },
        ...(t.stats.lastSuccessAt !== undefined ? { lastSuccessAt: t.stats.lastSuccessAt } : {}),
        ...(t.stats.lastFailureAt !== undefined ? { lastFailureAt: t.stats.lastFailureAt } : {})
      }
    })
  })

  const health = Effect.map(modelsHealth, (models): Health => {
    const up = models.filter((m) => m.available).length
    return { status: up === models.length ? "healthy" : up === 0 ? "unhealthy" : "degraded", models }
  })

  const stats = Effect.map(modelsHealth, (models): Stats => {
    const s = engine.stats
    return {
      requests: s.requests,
      successes: s.successes,
      failures: s.failures,
      failovers: s.failovers,
      latencyMs: {
        p50: s.latency.quantile(0.5),
        p95: s.latency.quantile(0.95),
        p99: s.latency.quantile(0.99),
        mean: s.latency.mean,
        min: s.latency.count === 0 ? 0 : s.latency.min,
        max: s.latency.max
      },
      models
    }
  })

  const simpleHealth = Effect.map(health, (h): SimpleHealth =>
    h.status === "unhealthy" ? { status: "unhealthy", code: 503 } : { status: "healthy", code: 200 })

  return { converse, health, stats, simpleHealth, config }
}

/** What a Converse response really used, as Bedrock counts it against TPM. */
const usageOf = (out: ConverseCommandOutput): number | undefined => {
  const u = out.usage
  if (u === undefined) return undefined
  return (u.inputTokens ?? 0) + (u.outputTokens ?? 0) + (u.cacheWriteInputTokens ?? 0)
}

const deadlineError = (scope: "attempt" | "request", after: Duration.Duration, modelId: string) =>
  BedrockError.make(
    new BedrockError.DeadlineExceeded({ scope, after }),
    `${scope === "attempt" ? "attempt timeout" : "request deadline"} of ${Duration.toMillis(after)} ms expired; the request was aborted`,
    modelId
  )

const requestProblems = (request: MuxRequest, options: ConverseOptions): Array<string> => {
  const problems: Array<string> = []
  if (typeof request !== "object" || request === null) return ["the request must be an object"]
  if ("modelId" in request && (request as { modelId?: unknown }).modelId !== undefined) {
    problems.push("modelId: the mux chooses the model; leave modelId out (use a route label to steer)")
  }
  if (!Array.isArray(request.messages) || request.messages.length === 0) {
    problems.push("messages: expected a non-empty array of messages")
  }
  if (options.deadline !== undefined) {
    const d = Duration.fromInput(options.deadline)
    if (d._tag === "None" || Duration.toMillis(d.value) <= 0) {
      problems.push(`deadline: expected a positive duration, got ${String(options.deadline)}`)
    }
  }
  return problems
}
