/**
 * `BedrockMux`: Converse over a pool of models that survives throttling,
 * outages and slow or hanging models without the caller knowing.
 *
 * A mux runs a `Policy` (the JSON config decodes into one; code composes
 * one from `Route`, `Selector`, `Guard` and `Schedule` values). How a
 * request is routed (one loop, see docs/concepts.md):
 * 1. select: the first tier of the request's route that has an eligible
 *    model (not tried yet in this request, admitted by every guard, weight
 *    > 0 after ramp-up); the selector picks one; every guard admits it;
 * 2. attempt: the call runs under the attempt timeout (the model's own, else
 *    the policy's), bounded by what is left of the request deadline; a
 *    timeout aborts the HTTP request;
 * 3. decide: the error's decision (`BedrockError.decisionOf`, overridable
 *    per reason) says retry the same model, fail over at once, or fail fast;
 * 4. record: the guards (breaker, cooldown, quota) and the stats see the
 *    outcome.
 *
 * `route` runs any call of yours (InvokeModel, say) through the same loop.
 *
 * Gotchas:
 * - `converse` takes the request without `modelId` (the mux picks it); a
 *   request that has one fails with `InvalidRequest`.
 * - The response is the SDK's output with one more key, `routing`.
 * - Health and stats are bounded: fixed histograms and windows, nothing
 *   grows per request.
 * - State lives in a `MuxStore`: a fresh in-memory one per layer unless you
 *   provide one (to share breakers between muxes or processes).
 * - Spans are created only when a tracer is installed (OpenTelemetry, say):
 *   effect's native tracer exports nothing, and spans are the largest part
 *   of the mux's own cost per call.
 * - `layerConfig` is the only place the library reads the environment.
 *
 * @since 0.1.0
 */
import type {
  ConverseCommandInput,
  ConverseCommandOutput,
  ConverseStreamCommandInput
} from "@aws-sdk/client-bedrock-runtime"
import { Clock, type Config, Context, Duration, Effect, type Exit, Layer, Random, Stream } from "effect"
import * as BedrockError from "./BedrockError.ts"
import { BedrockRuntime, ownsOutput, type Service as RuntimeService } from "./BedrockRuntime.ts"
import * as BreakerGuard from "./internal/breakerGuard.ts"
import * as CooldownGuard from "./internal/cooldownGuard.ts"
import * as Deadlines from "./internal/deadlines.ts"
import * as Engine from "./internal/engine.ts"
import { facadeConverse, type FacadeConverse } from "./internal/facadeConverse.ts"
import type * as Guard from "./internal/guard.ts"
import { converseProblems, streamProblems } from "./internal/requestCheck.ts"
import * as MuxStreamEngine from "./internal/stream.ts"
import * as Telemetry from "./internal/telemetry.ts"
import { fromSdk } from "./internal/usage.ts"
import * as Model from "./Model.ts"
import * as MuxConfig from "./MuxConfig.ts"
import { MuxError } from "./MuxError.ts"
import type * as MuxEvent from "./MuxEvent.ts"
import * as MuxStore from "./MuxStore.ts"
import * as MuxStream from "./MuxStream.ts"
import * as Policy from "./Policy.ts"
import type { Routing } from "./Routing.ts"
import type { Target } from "./Target.ts"

export type { Routing } from "./Routing.ts"

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
 * Options of `route`: those of `converse`, and what the guards need to know
 * of a call that is not Converse.
 * @since 0.1.0
 */
export interface RouteOptions extends ConverseOptions {
  /** names the call in events and metrics (default "route") */
  readonly operation?: string
  /** the input tokens a quota reserves (default 0) */
  readonly inputTokens?: number
  /** the output tokens a quota reserves (default: each model's `maxTokens`) */
  readonly maxTokens?: number
}

/**
 * What one attempt of `route` is told: its timeout (already applied by the
 * mux: the attempt is interrupted at it), the service tier to send at.
 * @since 0.1.0
 */
export interface AttemptContext {
  readonly timeout: Duration.Duration
  readonly serviceTier: "priority" | "reserved" | undefined
  readonly request: Guard.RequestInfo
}

/**
 * A routed call's value and how it was reached.
 * @since 0.1.0
 */
export interface Routed<A> {
  readonly value: A
  readonly routing: Routing
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
  /** can take traffic now: every guard admits it (breaker, cooldown, quota room) and its weight is above 0 */
  readonly available: boolean
  /** why it cannot, when it cannot: the first guard that says no (`breaker`, `cooldown`, `quota`, …) or `weight` */
  readonly unavailable?: string
  /** epoch ms when an open breaker half-opens */
  readonly recoversAt?: number
  /** a throttle cooldown in force: until when (epoch ms of the mux's Clock) and why */
  readonly cooldown?: { readonly until: number; readonly kind: "requests" | "tokens" | "daily" | "unknown" }
  readonly successes: number
  readonly failures: number
  readonly throttles: number
  readonly failFast: number
  /** answers judged refusals (refusal detection) */
  readonly refusals: number
  /** breaker-counted failures / attempts within the breaker window */
  readonly errorRate: number
  /** breaker-counted failures within the last minute */
  readonly windowFailures: number
  /**
   * the failures the breaker counts now, from its own state: within its
   * `window` while closed; its `failures` threshold while open or half-open
   * (it opened on that many). Unlike `windowFailures`, `resetStats` leaves it.
   */
  readonly breakerFailures: number
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
  /** the reason and message of its last failure */
  readonly lastFailure?: { readonly reason: string; readonly message: string; readonly at: number }
}

/**
 * The pool's health.
 * @since 0.1.0
 */
export interface Health {
  /** healthy: every model available; degraded: some; unhealthy: none (an empty pool too) */
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
 * For load-balancer probes: 503 only when no model can take traffic (an
 * empty pool included).
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
  /**
   * Any call of yours through the same routing: failover, guards, deadlines,
   * retries. `attempt` is called with each target the mux tries (use
   * `target.model.modelId` and, for another client, `target.runtime`); it is
   * interrupted at its timeout. Its errors must be `BedrockError`s
   * (`BedrockError.fromSdkError` classifies what the SDK throws).
   *
   * @example
   * ```ts
   * import { InvokeModelCommand, BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime"
   * import { Effect } from "effect"
   * import { BedrockError, BedrockMux } from "effect-bedrock-mux"
   *
   * const client = new BedrockRuntimeClient({ region: "us-east-1" })
   * const embed = (text: string) =>
   *   Effect.flatMap(BedrockMux, (mux) =>
   *     mux.route((target) =>
   *       Effect.tryPromise({
   *         try: (signal) => client.send(new InvokeModelCommand({ modelId: target.model.modelId, body: JSON.stringify({ inputText: text }) }), { abortSignal: signal }),
   *         catch: (e) => BedrockError.fromSdkError(e, target.model.modelId)
   *       }), { label: "embed", operation: "embed" }))
   * ```
   */
  readonly route: <A>(
    attempt: (target: Target, context: AttemptContext) => Effect.Effect<A, BedrockError.BedrockError>,
    options?: RouteOptions
  ) => Effect.Effect<Routed<A>, MuxError>
  readonly health: Effect.Effect<Health>
  readonly stats: Effect.Effect<Stats>
  readonly simpleHealth: Effect.Effect<SimpleHealth>
  /**
   * What the mux does, as events (attempts, failovers, breaker changes,
   * cooldowns, quota refusals, hedges, skipped models, request ends), from
   * the moment of subscribing. Never carries prompts or responses.
   */
  readonly events: Stream.Stream<MuxEvent.MuxEvent>
  /** the policy this mux runs */
  readonly policy: Policy.Policy
  /** the models of the pool now (it changes with `addModel` / `removeModel`) */
  readonly models: Effect.Effect<ReadonlyArray<Model.Model>>
  /**
   * Adds a model to the pool while requests run: it joins the default route
   * at its tier and the routes of its labels. A bad entry or one already in
   * the pool fails with `MuxConfigError`. Requests already routing keep the
   * pool they started with.
   */
  readonly addModel: (model: Model.Input) => Effect.Effect<void, MuxConfig.MuxConfigError>
  /**
   * Takes a model (by target or modelId) out of the pool while requests run;
   * attempts already on it finish. False when there is no such model.
   *
   * With the mux's own in-memory store (no `MuxStore` provided), the model's
   * breaker and throttle cooldowns are forgotten: added again, it starts
   * closed and not cooling (its quota windows stay: they count what was
   * sent). A provided store (shared through `MuxStore.layerMemory` or Redis)
   * keeps them: other muxes or processes may still route to the model, and
   * its state is the truth about it there. An attempt still in flight on it
   * reports to its state when it ends.
   */
  readonly removeModel: (target: string) => Effect.Effect<boolean>
  /** zeroes the request and model statistics of `stats` and `health` (breakers, cooldowns and quotas stay as they are) */
  readonly resetStats: Effect.Effect<void>
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
   * Builds a mux from a JSON config, or from a `Policy` composed in code (a
   * decoded config is one). `policy` transforms it: compose your own
   * selector, guards, classification or schedules on top of a JSON config.
   */
  static readonly layer = (
    config: MuxConfig.Input | Policy.Policy,
    options: { readonly policy?: (decoded: Policy.Policy) => Policy.Policy } = {}
  ): Layer.Layer<BedrockMux, MuxConfig.MuxConfigError, BedrockRuntime> =>
    Layer.effect(BedrockMux, make(config, options))

  /**
   * Builds a mux from the JSON in a `Config` value (by default the
   * `MODEL_CONFIG` environment variable): the only place the library reads
   * the environment. A missing or malformed value fails the layer. The value
   * comes from the `ConfigProvider` in context where you provide one, else
   * from `process.env` as it is when the layer is built.
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

/** Is `u` a policy (a decoded config or one composed in code), not JSON? */
const isPolicy = (u: unknown): u is Policy.Policy =>
  typeof u === "object" && u !== null && !Array.isArray(u) && "route" in u && "guards" in u && "selector" in u

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
  input: MuxConfig.Input | Policy.Policy,
  options: { readonly policy?: (decoded: Policy.Policy) => Policy.Policy } = {}
) {
  const decoded: Policy.Policy = isPolicy(input) ? input : yield* MuxConfig.decode(input)
  const policy = options.policy === undefined ? decoded : options.policy(decoded)
  const checked = Policy.check(policy)
  const defaultRuntime = yield* BedrockRuntime
  const clients = yield* BedrockRuntimes
  const models = Policy.models(policy)
  const unknown = models.flatMap((m) =>
    m.client !== undefined && !clients.has(m.client)
      ? [{
        path: `models[${m.target}].client`,
        message: `unknown client "${m.client}"; allowed: ${
          clients.size === 0 ? "none provided (use BedrockRuntimes.layer)" : [...clients.keys()].map((k) => `"${k}"`).join(", ")
        }`
      }]
      : []
  )
  if (checked.length + unknown.length > 0) return yield* new MuxConfig.MuxConfigError({ problems: [...checked, ...unknown] })
  const provided = yield* MuxStore.MuxStore
  const store = provided ?? MuxStore.makeMemory()
  const instance = ((yield* Random.nextInt) >>> 0).toString(36)
  const observer = yield* Telemetry.makeObserver(policy.name)
  const env: Guard.Env = { name: policy.name, store, emit: observer.emit, onStoreError: policy.onStoreError }
  const guards = yield* Effect.forEach(policy.guards, (g) => g.build(env))
  const deadlines = yield* Deadlines.make
  const engine = Engine.make({
    policy,
    store,
    instance,
    observer,
    deadlines,
    guards,
    guardNames: policy.guards.map((g) => g.name),
    selector: policy.selector,
    runtimes: (m) => (m.client === undefined ? defaultRuntime : clients.get(m.client)!)
  })
  // a removed model's breaker and cooldowns are forgotten only in a store of this mux's own: a store provided to it
  // (shared with other muxes or processes) keeps them, for those that still route to the model
  const forget: Forget | undefined = provided !== undefined ? undefined : (target) =>
    Effect.ignore(Effect.andThen(BreakerGuard.forget(store, policy.name, target), CooldownGuard.forget(store, policy.name, target)))
  return BedrockMux.of(makeService(engine, policy, observer, clients, forget))
})

/** Forgets a removed model's guard states (breaker, cooldowns), by target. */
type Forget = (target: string) => Effect.Effect<void>

const makeService = (
  engine: Engine.Engine,
  policy: Policy.Policy,
  observer: Telemetry.Observer,
  clients: ReadonlyMap<string, RuntimeService>,
  forget: Forget | undefined
): Service => {
  /** The request span's attributes (GenAI conventions); bodies only when the policy opts in. */
  const spanAttributes = (operation: MuxEvent.Operation, request: MuxRequest, options: ConverseOptions) => ({
    "gen_ai.operation.name": "chat",
    "gen_ai.system": Telemetry.SYSTEM,
    "gen_ai.provider.name": Telemetry.SYSTEM,
    "bedrock_mux.name": policy.name,
    "bedrock_mux.operation": operation,
    ...(options.label !== undefined ? { "bedrock_mux.label": options.label } : {}),
    ...(request.inferenceConfig?.maxTokens !== undefined ? { "gen_ai.request.max_tokens": request.inferenceConfig.maxTokens } : {}),
    ...(policy.captureBodies
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
      ...(policy.captureBodies && output !== undefined ? { "gen_ai.output.messages": JSON.stringify(output) } : {})
    })
  const annotateFailure = (e: MuxError) =>
    Effect.annotateCurrentSpan({ "error.type": e.reason._tag, "bedrock_mux.attempts": e.attempts.length })

  const routingOf = (routed: Engine.Routed<unknown>): Routing => ({
    requestId: routed.requestId,
    modelId: routed.target.model.modelId,
    target: routed.target.model.target,
    attempts: routed.attempts,
    fallbackUsed: routed.tier > 0
  })

  const startOptions = (operation: string, request: MuxRequest, options: ConverseOptions): Engine.StartOptions => ({
    operation,
    label: options.label,
    deadline: options.deadline,
    waitForRecovery: options.waitForRecovery,
    tenant: options.tenant,
    waitForQuota: options.waitForQuota,
    inputTokens: () => policy.estimateInputTokens(request),
    maxTokens: request.inferenceConfig?.maxTokens
  })

  /** The request as sent to one target: its model, and the service tier an escalation asks for. */
  // one literal per shape: a conditional spread costs a generic property copy on every call
  const forTarget = <I extends MuxRequest>(request: I, target: Target, serviceTier: "priority" | "reserved" | undefined) =>
    (serviceTier === undefined
      ? { ...request, modelId: target.model.modelId }
      : { ...request, modelId: target.model.modelId, serviceTier: { type: serviceTier } }) as I & { readonly modelId: string }

  /** Converse as the runtime's own Promise, for the engine's fast path (undefined for a runtime without one). */
  const rawConverse = (request: MuxRequest): Engine.RawAttempt<ConverseCommandOutput> => (target, ctx) => {
    const send = target.runtime.sendConverse
    return send === undefined ? undefined : (controller) => send(forTarget(request, target, ctx.serviceTier), controller.signal)
  }

  /** Refusal detection on a Converse answer: a refusal fails the attempt (reason Refused), so it fails over. */
  const refusal = policy.refusal
  const checkRefusal = (target: Target, request: Guard.RequestInfo) => (out: ConverseCommandOutput) => {
    if (refusal === undefined) return Effect.succeed(out)
    const text = (out.output?.message?.content ?? []).map((b) => b.text ?? "").join("")
    return Effect.flatMap(refusal.classifier.score(text, { requestId: request.id, modelId: target.model.modelId, target: target.model.target }), (score) =>
      score < refusal.threshold
        ? Effect.succeed(out)
        : Effect.flatMap(Clock.currentTimeMillis, (at) =>
          Effect.andThen(
            observer.emit({ _tag: "Refused", at, requestId: request.id, modelId: target.model.modelId, target: target.model.target, score, classifier: refusal.classifier.name }),
            Effect.fail(BedrockError.make(
              new BedrockError.Refused({ score, classifier: refusal.classifier.name }),
              `the answer was judged a refusal (${refusal.classifier.name} score ${score.toFixed(2)} >= ${refusal.threshold})`,
              target.model.modelId
            ))
          )))
  }

  // built once, not per call (measured: memory per request in flight, bench/results/README.md)
  const converseUsage = (out: ConverseCommandOutput) => fromSdk(out.usage)
  const converseResult = (r: Engine.Routed<ConverseCommandOutput>): MuxResponse => ({ ...r.value, routing: routingOf(r) })
  /**
   * The facade's answer, `routing` defined on it, not enumerable (internal/facadeConverse.ts): the SDK's own
   * output where the target's runtime is one `makeBedrockRuntime` built (a fresh object per call); any other
   * runtime's output is copied, one of the user's own with `sendConverse` included (it may answer one object
   * every time, or a frozen one).
   */
  const facadeResult = (r: Engine.Routed<ConverseCommandOutput>): MuxResponse => {
    const out = ownsOutput(r.target.runtime) && Object.isExtensible(r.value) && !Object.hasOwn(r.value, "routing")
      ? r.value
      : { ...r.value }
    return Object.defineProperty(out, "routing", { value: routingOf(r), writable: true, configurable: true, enumerable: false }) as MuxResponse
  }

  /**
   * A Converse call through the engine, for the answer `result` builds: its Effect; or, given `plain`, the
   * call started from plain code (`Engine.runUnsafe`, the facade's). One function for both: a helper that
   * hands the pieces back to each caller cost `mux.converse` 2.6 µs a call (same-process A/B, both orders).
   */
  function converseCall(result: Result, request: MuxRequest, options: ConverseOptions): Effect.Effect<MuxResponse, MuxError>
  function converseCall(result: Result, request: MuxRequest, options: ConverseOptions, plain: PlainStart): Engine.Running<MuxResponse> | undefined
  function converseCall(result: Result, request: MuxRequest, options: ConverseOptions, plain?: PlainStart) {
    const start = startOptions("converse", request, options)
    const attempt: Engine.Attempt<ConverseCommandOutput> = (target, ctx) => {
      const call = target.runtime.converse(forTarget(request, target, ctx.serviceTier))
      return refusal === undefined ? call : Effect.flatMap(call, checkRefusal(target, ctx.request))
    }
    const run: Engine.RunOptions<ConverseCommandOutput, MuxResponse> = {
      usage: converseUsage,
      // the SDK call itself, where the runtime offers it and no refusal check follows the answer
      raw: refusal === undefined ? rawConverse(request) : undefined,
      result,
      traced: (self) =>
        self.pipe(
          Effect.tap((res) => annotateSuccess(res.routing, res.usage, res.output?.message === undefined ? undefined : [res.output.message])),
          Effect.tapError(annotateFailure),
          Effect.withSpan("chat bedrock-mux", { kind: "client", attributes: spanAttributes("converse", request, options) }, { captureStackTrace: false })
        )
    }
    return plain === undefined ? engine.run(start, attempt, run) : engine.runUnsafe(plain.context, start, attempt, run, plain.onExit)
  }

  const converseWith = (result: Result) => (request: MuxRequest, options: ConverseOptions = {}): Effect.Effect<MuxResponse, MuxError> => {
    const problems = converseProblems(request, options)
    if (problems.length > 0) return Effect.fail(Engine.invalidRequest(problems))
    return converseCall(result, request, options)
  }

  /** The facade's Converse started from plain code; undefined: run its Effect (which reports a bad request). */
  const facadeStart: Facade["start"] = (context, request, options = {}, onExit) =>
    converseProblems(request, options).length > 0 ? undefined : converseCall(facadeResult, request, options, { context, onExit })

  const route: Service["route"] = (attempt, options = {}) => {
    const problems = converseProblems({ messages: [{}] }, routeOptionsOnly(options))
    if (problems.length > 0) return Effect.fail(Engine.invalidRequest(problems))
    return engine.run(
      {
        operation: options.operation ?? "route",
        label: options.label,
        deadline: options.deadline,
        waitForRecovery: options.waitForRecovery,
        tenant: options.tenant,
        waitForQuota: options.waitForQuota,
        inputTokens: () => options.inputTokens ?? 0,
        maxTokens: options.maxTokens
      },
      (target, ctx) => attempt(target, { timeout: ctx.timeout, serviceTier: ctx.serviceTier, request: ctx.request }),
      { result: (r) => ({ value: r.value, routing: routingOf(r) }) }
    )
  }

  /** The stream settings of a call that sets none of its own: built once. */
  const defaultStreamSettings: MuxStreamEngine.Settings = {
    firstTokenMs: Duration.toMillis(policy.stream.firstToken),
    stallMs: Duration.toMillis(policy.stream.stall),
    metadataGraceMs: Duration.toMillis(policy.stream.metadataGrace),
    onInterrupt: policy.stream.onInterrupt,
    hedge: policy.stream.hedge,
    refusal: refusal !== undefined && refusal.holdBack > 0 ? refusal : undefined,
    emit: observer.emit
  }

  const converseStream = (request: MuxStreamRequest, options: StreamOptions = {}): Stream.Stream<MuxStream.Event, MuxError> => {
    const problems = streamProblems(request, options)
    if (problems.length > 0) return Stream.fail(Engine.invalidRequest(problems))
    const p = policy.stream
    const ms = (d: Duration.Input | undefined, fallback: Duration.Duration) =>
      Duration.toMillis(d === undefined ? fallback : Duration.fromInputUnsafe(d))
    const hedge = options.hedge === undefined
      ? p.hedge
      : options.hedge === false
      ? undefined
      : options.hedge === true
      ? p.hedge ?? Policy.hedge()
      : Policy.hedge({ ...(p.hedge !== undefined ? { after: p.hedge.after === "p95" ? "p95" : p.hedge.after, budget: p.hedge.budget } : {}), ...options.hedge })
    // the answer's text, for the request span, only when bodies are captured; one per run of the stream
    const traced = (plain: Stream.Stream<MuxStream.Event, MuxError>) => {
      let text = ""
      return plain.pipe(
        Stream.tap((ev) => {
          if (MuxStream.isRouting(ev)) {
            return annotateSuccess(ev.routing, ev.routing.usage, policy.captureBodies ? [{ role: "assistant", content: [{ text }] }] : undefined)
          }
          if (policy.captureBodies) {
            if (MuxStream.isReset(ev)) text = ""
            else text += ev.contentBlockDelta?.delta?.text ?? ""
          }
          return Effect.void
        }),
        Stream.tapError(annotateFailure),
        Stream.withSpan("chat bedrock-mux", { kind: "client", captureStackTrace: false, attributes: spanAttributes("converse_stream", request, options) })
      )
    }
    return MuxStreamEngine.make({
      engine,
      start: startOptions("converse_stream", request, options),
      settings: options.firstTokenTimeout === undefined && options.stallTimeout === undefined &&
          options.onInterrupt === undefined && options.hedge === undefined
        ? defaultStreamSettings
        : {
          ...defaultStreamSettings,
          firstTokenMs: ms(options.firstTokenTimeout, p.firstToken),
          stallMs: ms(options.stallTimeout, p.stall),
          onInterrupt: options.onInterrupt ?? p.onInterrupt,
          hedge
        },
      inputTokens: () => policy.estimateInputTokens(request),
      request: (target, ctx) => target.runtime.converseStream(forTarget(request, target, ctx.serviceTier)),
      raw: (target, ctx) => {
        const send = target.runtime.sendConverseStream
        return send === undefined ? undefined : (signal) => send(forTarget(request, target, ctx.serviceTier), signal)
      },
      routing: routingOf,
      traced
    })
  }

  const modelsHealth = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const { pool, views } = yield* engine.health
    const names = policy.guards.map((g) => g.name)
    const breakerAt = names.indexOf("breaker")
    const cooldownAt = names.indexOf("cooldown")
    return pool.targets.map((t, i): ModelHealth => {
      const blocking = views.find((v) => !v[i]!.admits)?.[i]
      let weightFactor = 1
      for (const v of views) weightFactor *= v[i]!.admits ? v[i]!.weight : 0
      const b = breakerAt >= 0 ? views[breakerAt]![i]! : undefined
      const c = cooldownAt >= 0 ? views[cooldownAt]![i]! : undefined
      const breaker: ModelHealth["breaker"] = b === undefined || b.free === true
        ? "closed"
        : b.admits || b.recoversAt === now
        ? "half-open"
        : "open"
      const available = blocking === undefined && t.model.weight > 0
      const [ok, failed] = t.stats.window.totals(now)
      // a cooling default tier shows, even while the escalation tier takes the model's requests
      const cooling = c !== undefined && c.why === "cooldown" && c.recoversAt !== undefined && c.recoversAt > now
      return {
        modelId: t.model.modelId,
        target: t.model.target,
        tier: t.model.tier,
        weight: t.model.weight,
        effectiveWeight: t.model.weight * weightFactor,
        breaker,
        available,
        ...(!available ? { unavailable: blocking?.why ?? "weight" } : {}),
        ...(!available && blocking?.recoversAt !== undefined ? { recoversAt: blocking.recoversAt } : {}),
        ...(cooling ? { cooldown: { until: c!.recoversAt!, kind: (c!.kind ?? "unknown") as BedrockError.ThrottleKind } } : {}),
        successes: t.stats.successes,
        failures: t.stats.failures,
        throttles: t.stats.throttles,
        failFast: t.stats.failFast,
        refusals: t.stats.refusals,
        errorRate: ok + failed === 0 ? 0 : failed / (ok + failed),
        windowFailures: failed,
        breakerFailures: b?.failures ?? 0,
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
        ...(t.stats.lastFailureAt !== undefined ? { lastFailureAt: t.stats.lastFailureAt } : {}),
        ...(t.stats.lastFailure !== undefined ? { lastFailure: t.stats.lastFailure } : {})
      }
    })
  })

  const health = Effect.map(modelsHealth, (models): Health => {
    const up = models.filter((m) => m.available).length
    // an empty pool (every model removed) cannot serve: unhealthy, as a request fails with NoModelsAvailable
    return { status: up === 0 ? "unhealthy" : up === models.length ? "healthy" : "degraded", models }
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

  const addModel: Service["addModel"] = (input) =>
    Effect.gen(function*() {
      const model = yield* MuxConfig.decodeModel(input)
      const taken = engine.pool().targets.some((t) => t.model.target === model.target)
      if (taken) {
        return yield* new MuxConfig.MuxConfigError({ problems: [{ path: "modelId", message: `model "${model.target}" is already in the pool` }] })
      }
      if (model.client !== undefined && !clients.has(model.client)) {
        return yield* new MuxConfig.MuxConfigError({ problems: [{ path: "client", message: `unknown client "${model.client}"` }] })
      }
      yield* engine.addModel(model)
      const at = yield* Clock.currentTimeMillis
      yield* observer.emit({ _tag: "ModelAdded", at, modelId: model.modelId, target: model.target, tier: model.tier, weight: model.weight })
    })

  const removeModel: Service["removeModel"] = (target) =>
    Effect.gen(function*() {
      const removed = yield* engine.removeModel(target)
      if (removed === undefined) return false
      if (forget !== undefined) yield* forget(removed.model.target)
      const at = yield* Clock.currentTimeMillis
      yield* observer.emit({ _tag: "ModelRemoved", at, modelId: removed.model.modelId, target: removed.model.target })
      return true
    })

  const converse = converseWith(converseResult)
  const service: Service = {
    converse,
    converseStream,
    route,
    health,
    stats,
    simpleHealth,
    events: observer.events,
    policy,
    models: Effect.sync(() => engine.pool().targets.map((t) => t.model)),
    addModel,
    removeModel,
    resetStats: engine.resetStats
  }
  const facade: Facade = {
    converse: converseWith(facadeResult),
    start: facadeStart,
    labelTargets: (label) => (engine.pool().routes.get(label) ?? []).flat().map((t) => t.model.target)
  }
  return Object.defineProperty(service, facadeConverse, { value: facade })
}

/** The facade's Converse (internal/facadeConverse.ts). */
type Facade = FacadeConverse<MuxRequest, ConverseOptions, MuxResponse>
/** How a Converse answer is built from its routing. */
type Result = (r: Engine.Routed<ConverseCommandOutput>) => MuxResponse
/** Where and to whom a call started from plain code answers. */
interface PlainStart {
  readonly context: Context.Context<never>
  readonly onExit: (exit: Exit.Exit<MuxResponse, MuxError>) => void
}

/** The options of `route` that `converse`'s check knows (the rest are route's own). */
const routeOptionsOnly = (options: RouteOptions): ConverseOptions => {
  const { operation: _o, inputTokens: _i, maxTokens: _m, ...rest } = options
  return rest
}
