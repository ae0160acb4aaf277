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
import type {
  ConverseCommandInput,
  ConverseCommandOutput,
  ConverseStreamCommandInput
} from "@aws-sdk/client-bedrock-runtime"
import { Clock, Config, Context, Duration, Effect, Layer, Random, Stream } from "effect"
import * as BedrockError from "./BedrockError.ts"
import { BedrockRuntime, type Service as RuntimeService } from "./BedrockRuntime.ts"
import * as Breaker from "./internal/breaker.ts"
import * as Engine from "./internal/engine.ts"
import { converseProblems, streamProblems } from "./internal/requestCheck.ts"
import * as MuxStreamEngine from "./internal/stream.ts"
import * as Telemetry from "./internal/telemetry.ts"
import * as MuxConfig from "./MuxConfig.ts"
import { type AttemptRecord, InvalidRequest, MuxError } from "./MuxError.ts"
import * as MuxStore from "./MuxStore.ts"
import type * as MuxEvent from "./MuxEvent.ts"
import * as MuxStream from "./MuxStream.ts"
import * as Policy from "./Policy.ts"

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
 * A streaming request: ConverseStream input without `modelId`.
 * @since 0.1.0
 */
export type MuxStreamRequest = Omit<ConverseStreamCommandInput, "modelId">

/**
 * Per-call options of `converseStream`: those of `converse`, and the
 * policy's streaming settings overridden for this request.
 * @since 0.1.0
 */
export interface StreamOptions extends ConverseOptions {
  /** longest wait for an attempt's first content event (default: the policy's, 10 s) */
  readonly firstTokenTimeout?: Duration.Input
  /** longest gap between two events once content flows (default: the policy's, 10 s) */
  readonly stallTimeout?: Duration.Input
  /** after content was delivered: fail with StreamInterrupted (default) or restart on another model after a reset event */
  readonly onInterrupt?: "fail" | "restart"
  /** hedge this request: `true` for the policy's hedge (or `Policy.hedge()`), `false` for none, or settings */
  readonly hedge?: boolean | { readonly after?: Duration.Input | "p95"; readonly budget?: number }
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
  /** completed streams answered by this model: time to first token, time to last token, output tokens per second */
  readonly stream: {
    readonly completed: number
    /** streams this model failed after delivering content */
    readonly interrupted: number
    readonly timeToFirstTokenMs: { readonly p50: number; readonly p95: number }
    readonly timeToLastTokenMs: { readonly p50: number; readonly p95: number }
    readonly outputTokensPerSecond: { readonly p50: number; readonly p5: number }
  }
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
  /** hedged attempts started, and those that won */
  readonly hedges: number
  readonly hedgesWon: number
  /** streams failed after content was delivered, and those restarted on another model */
  readonly streamsInterrupted: number
  readonly streamsRestarted: number
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
  /**
   * ConverseStream with failover until the first content event and never a
   * splice after it (see `MuxStream`). The last event is `{ routing }`.
   */
  readonly converseStream: (
    request: MuxStreamRequest,
    options?: StreamOptions
  ) => Stream.Stream<MuxStream.Event, MuxError>
  readonly health: Effect.Effect<Health>
  readonly stats: Effect.Effect<Stats>
  readonly simpleHealth: Effect.Effect<SimpleHealth>
  /**
   * What the mux does, as events (attempts, failovers, breaker changes,
   * cooldowns, quota refusals, hedges, request ends), from the moment of
   * subscribing. Never carries prompts or responses.
   */
  readonly events: Stream.Stream<MuxEvent.MuxEvent>
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
      Effect.flatMap(MuxConfig.fromConfig(name), (config) => make(config, options))
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
  const instance = ((yield* Random.nextInt) >>> 0).toString(36)
  const observer = yield* Telemetry.makeObserver(config.name)
  const scope = yield* Effect.scope
  const engine = Engine.make({
    config,
    store,
    instance,
    observer,
    scope,
    runtimes: (m) => (m.client === undefined ? defaultRuntime : clients.get(m.client)!)
  })
  return BedrockMux.of(makeService(engine, config, observer))
})

const makeService = (engine: Engine.Engine, config: MuxConfig.MuxConfig, observer: Telemetry.Observer): Service => {
  /** The request span's attributes (GenAI conventions); bodies only when the config opts in. */
  const spanAttributes = (operation: MuxEvent.Operation, request: MuxRequest, options: ConverseOptions) => ({
    "gen_ai.operation.name": "chat",
    "gen_ai.system": Telemetry.SYSTEM,
    "gen_ai.provider.name": Telemetry.SYSTEM,
    "bedrock_mux.name": config.name,
    "bedrock_mux.operation": operation,
    ...(options.label !== undefined ? { "bedrock_mux.label": options.label } : {}),
    ...(request.inferenceConfig?.maxTokens !== undefined ? { "gen_ai.request.max_tokens": request.inferenceConfig.maxTokens } : {}),
    ...(config.captureBodies
      ? { "gen_ai.input.messages": JSON.stringify(request.messages ?? []), ...(request.system !== undefined ? { "gen_ai.system_instructions": JSON.stringify(request.system) } : {}) }
      : {})
  })
  const annotateSuccess = (routing: Routing, usage: { readonly inputTokens?: number | undefined; readonly outputTokens?: number | undefined } | undefined, output: unknown) =>
    Effect.annotateCurrentSpan({
      "gen_ai.response.model": routing.modelId,
      "bedrock_mux.attempts": routing.attempts.length,
      "bedrock_mux.fallback_used": routing.fallbackUsed,
      ...(usage?.inputTokens !== undefined ? { "gen_ai.usage.input_tokens": usage.inputTokens } : {}),
      ...(usage?.outputTokens !== undefined ? { "gen_ai.usage.output_tokens": usage.outputTokens } : {}),
      ...(config.captureBodies && output !== undefined ? { "gen_ai.output.messages": JSON.stringify(output) } : {})
    })
  const annotateFailure = (e: MuxError) =>
    Effect.annotateCurrentSpan({ "error.type": e.reason._tag, "bedrock_mux.attempts": e.attempts.length })

  const converse = (request: MuxRequest, options: ConverseOptions = {}): Effect.Effect<MuxResponse, MuxError> => {
    const problems = converseProblems(request, options)
    if (problems.length > 0) {
      return Effect.fail(
        new MuxError({ reason: new InvalidRequest({ problems }), message: `invalid request: ${problems.join("; ")}`, attempts: [] })
      )
    }
    return Effect.map(
      engine.route(
        {
          ...options,
          operation: "converse",
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
      (routed): MuxResponse => ({
        ...routed.value,
        routing: {
          modelId: routed.target.model.modelId,
          target: routed.target.model.target,
          attempts: routed.attempts,
          fallbackUsed: routed.target.model.tier > 0
        }
      })
    ).pipe(
      Effect.tap((res) => annotateSuccess(res.routing, res.usage, res.output?.message === undefined ? undefined : [res.output.message])),
      Effect.tapError(annotateFailure),
      Effect.withSpan("chat bedrock-mux", { kind: "client", attributes: spanAttributes("converse", request, options) }, {
        captureStackTrace: false
      })
    )
  }

  const converseStream = (request: MuxStreamRequest, options: StreamOptions = {}): Stream.Stream<MuxStream.Event, MuxError> => {
    const problems = streamProblems(request, options)
    if (problems.length > 0) {
      return Stream.fail(
        new MuxError({ reason: new InvalidRequest({ problems }), message: `invalid request: ${problems.join("; ")}`, attempts: [] })
      )
    }
    const p = config.policy.stream
    const ms = (d: Duration.Input | undefined, fallback: Duration.Duration) =>
      Duration.toMillis(d === undefined ? fallback : Duration.fromInputUnsafe(d))
    const hedge = options.hedge === undefined
      ? p.hedge
      : options.hedge === false
      ? undefined
      : options.hedge === true
      ? p.hedge ?? Policy.hedge()
      : Policy.hedge({ ...(p.hedge !== undefined ? { after: p.hedge.after === "p95" ? "p95" : p.hedge.after, budget: p.hedge.budget } : {}), ...options.hedge })
    const inputTokens = () => config.policy.estimateInputTokens(request)
    // the answer's text, for the request span, only when bodies are captured
    let text = ""
    return MuxStreamEngine.make<MuxStream.ResetEvent, MuxStream.RoutingEvent>({
      engine,
      route: {
        label: options.label,
        waitForRecovery: options.waitForRecovery,
        admission: {
          inputTokens,
          maxTokens: request.inferenceConfig?.maxTokens,
          tenant: options.tenant,
          waitForQuota: options.waitForQuota
        }
      },
      settings: {
        firstTokenMs: ms(options.firstTokenTimeout, p.firstToken),
        stallMs: ms(options.stallTimeout, p.stall),
        metadataGraceMs: Duration.toMillis(p.metadataGrace),
        onInterrupt: options.onInterrupt ?? p.onInterrupt,
        hedge,
        deadlineMs: ms(options.deadline, config.policy.deadline)
      },
      inputTokens,
      request: (target, attempt) =>
        target.runtime.converseStream({
          ...request,
          modelId: target.model.modelId,
          ...(attempt.serviceTier !== undefined ? { serviceTier: { type: attempt.serviceTier } } : {})
        }),
      reset: (info) => ({ reset: { ...info, reason: info.error.reason._tag } }),
      end: (info) => ({
        routing: {
          modelId: info.routed.target.model.modelId,
          target: info.routed.target.model.target,
          attempts: [...info.routed.attempts],
          fallbackUsed: info.routed.target.model.tier > 0,
          usage: info.usage,
          timeToFirstTokenMs: info.timeToFirstTokenMs,
          durationMs: info.durationMs,
          restarts: info.restarts
        }
      })
    }).pipe(
      Stream.tap((ev) => {
        if (MuxStream.isRouting(ev)) {
          return annotateSuccess(
            ev.routing,
            ev.routing.usage,
            config.captureBodies ? [{ role: "assistant", content: [{ text }] }] : undefined
          )
        }
        if (config.captureBodies) {
          if (MuxStream.isReset(ev)) text = ""
          else text += ev.contentBlockDelta?.delta?.text ?? ""
        }
        return Effect.void
      }),
      Stream.tapError(annotateFailure),
      Stream.withSpan("chat bedrock-mux", { kind: "client", captureStackTrace: false, attributes: spanAttributes("converse_stream", request, options) })
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
        stream: {
          completed: t.stats.ttft.count,
          interrupted: t.stats.interrupted,
          timeToFirstTokenMs: { p50: t.stats.ttft.quantile(0.5), p95: t.stats.ttft.quantile(0.95) },
          timeToLastTokenMs: { p50: t.stats.ttlt.quantile(0.5), p95: t.stats.ttlt.quantile(0.95) },
          // the slow end is the interesting one for throughput: p5
          outputTokensPerSecond: { p50: t.stats.tokensPerSecond.quantile(0.5), p5: t.stats.tokensPerSecond.quantile(0.05) }
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
      hedges: s.hedges,
      hedgesWon: s.hedgesWon,
      streamsInterrupted: s.interrupted,
      streamsRestarted: s.restarts,
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

  return { converse, converseStream, health, stats, simpleHealth, events: Stream.fromPubSub(observer.pubsub), config }
}

/** What a Converse response really used; `quota` as Bedrock counts it against TPM. */
const usageOf = (out: ConverseCommandOutput): Engine.TokenUsage | undefined => {
  const u = out.usage
  if (u === undefined) return undefined
  const inputTokens = u.inputTokens ?? 0
  const outputTokens = u.outputTokens ?? 0
  return { inputTokens, outputTokens, quota: inputTokens + outputTokens + (u.cacheWriteInputTokens ?? 0) }
}

const deadlineError = (scope: "attempt" | "request", after: Duration.Duration, modelId: string) =>
  BedrockError.make(
    new BedrockError.DeadlineExceeded({ scope, after }),
    `${scope === "attempt" ? "attempt timeout" : "request deadline"} of ${Duration.toMillis(after)} ms expired; the request was aborted`,
    modelId
  )
