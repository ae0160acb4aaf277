/**
 * A Promise facade for apps without Effect, drop-in for the aws-samples
 * "Amazon Bedrock Model Multiplexer" (`bedrock-model-multiplexer`): the same
 * `createMultiplexer(models, options)` (and `new BedrockMultiplexer(config)`),
 * an `EventEmitter` with the original's events, the same methods, types,
 * enum values and errors. Underneath is a `BedrockMux`.
 *
 * How it behaves:
 * - Events are derived from `mux.events` (what the mux did), in the
 *   original's order, before `processRequest` settles: `request`, then per
 *   attempt `model-selected`, `model-invocation-start`,
 *   `model-invocation-complete` (and `error(errorResponse, outcome)` when it
 *   failed or timed out, then `stats`), then `success(response, outcome)` and
 *   `stats`, or the final `error(error, null)`. With no listener for a derived event, nothing
 *   subscribes to `mux.events`.
 * - Errors: fail-fast → `FailFastError` (`.outcome`, `.errorResponse`, the
 *   SDK exception as `cause`); a timeout with no model left → `TimeoutError`
 *   ("Request timed out after N ms"); the mux's own failures →
 *   `MultiplexerError` with `code` and `details` (the original's keys and
 *   ours); an abort through `{ abortSignal }` → `CancelledError`.
 * - 500/503, timeouts and model errors fail over (the original fails the
 *   request); a timeout aborts the HTTP request; validation errors never
 *   open a breaker; health is 503 only when no model can serve.
 * - Options: the original's, plus every field of our config. An option we
 *   don't know is an error (with a suggestion), never silence.
 * - `refusalDetection`: a refusal fails the attempt over (reason `Refused`,
 *   never a breaker failure, counted in `refusalCount`); with a `modelPath`
 *   calls wait for the ONNX model to load, and reject with
 *   `CLASSIFIER_UNAVAILABLE` when it cannot be.
 * - `addModel` / `removeModel` change the pool while requests run (those in
 *   flight keep the pool they started with); `model-added` /
 *   `model-removed` come from the mux's `ModelAdded` / `ModelRemoved`.
 *
 * Gotchas:
 * - A bad config throws `MuxConfigError` from `createMultiplexer` itself.
 * - `destroy()` returns a Promise (it aborts requests in flight, which
 *   reject with `MultiplexerError` code `DESTROYED`, and closes the SDK
 *   client); awaiting it is optional. Every method called after it throws
 *   `MultiplexerError` code `DESTROYED` (`processRequest` rejects).
 * - `response.routing` (which model answered, every attempt) is
 *   non-enumerable: `JSON.stringify(response)` is the SDK's output.
 *
 * @since 0.1.0
 */
import type { BedrockRuntimeClientConfig } from "@aws-sdk/client-bedrock-runtime"
import {
  Cause,
  Clock,
  Context,
  Effect,
  Exit,
  type Fiber,
  Layer,
  ManagedRuntime,
  References,
  Stream
} from "effect"
import { EventEmitter } from "node:events"
import { BedrockMux, type ConverseOptions, type ModelHealth, type MuxRequest, type MuxResponse } from "./BedrockMux.ts"
import { BedrockRuntime } from "./BedrockRuntime.ts"
import { fromMuxError, outcomeOf } from "./internal/facade/errors.ts"
import { facadeConverse, type FacadeConverse } from "./internal/facadeConverse.ts"
import { BRIDGED, type Emission, makeTranslator } from "./internal/facade/events.ts"
import {
  CancelledError,
  type CircuitBreakerStatus,
  ErrorType,
  type ModelConfiguration,
  type ModelHealthStatus,
  MultiplexerError,
  type MultiplexerEvents,
  type MultiplexerInput,
  type MultiplexerStats,
  type MuxConfigFields,
  OutcomeType,
  type RefusalDetectionConfig,
  type SystemHealthStatus,
  type TierEscalationConfig,
  type TracingConfig
} from "./internal/facade/model.ts"
import { callOptionProblems, clientConfigOf, modelInput, optionProblems, toMuxInput } from "./internal/facade/options.ts"
import * as FacadeRefusal from "./internal/facade/refusal.ts"
import * as Shapes from "./internal/facade/shapes.ts"
import * as Onnx from "./internal/refusal/onnx.ts"
import type { Problem } from "./internal/schema.ts"
import type * as Model from "./Model.ts"
import * as MuxConfig from "./MuxConfig.ts"
import * as Policy from "./Policy.ts"
import type { MuxError } from "./MuxError.ts"

export * from "./internal/facade/model.ts"

/**
 * This library's version (the original exported its own as `VERSION`).
 * @example
 * ```ts
 * import { VERSION } from "effect-bedrock-mux"
 * console.log(VERSION) // "0.1.0"
 * ```
 * @since 0.1.0
 */
export const VERSION = "0.1.0"

/**
 * The options of `createMultiplexer`: the original's (`defaultTimeoutMs`,
 * `maxRetries`, `clientConfig`, `maxAttempts`, `tracing`,
 * `refusalDetection`, `tierEscalation`), plus every field of our config
 * (`deadline`, `breaker`, `cooldowns`, ...).
 * @since 0.1.0
 */
export interface MultiplexerOptions extends MuxConfigFields {
  /** overrides the models argument, as in the original */
  readonly models?: ReadonlyArray<ModelConfiguration>
  /** passed to the SDK client (SDK retries are off unless you set `maxAttempts`) */
  readonly clientConfig?: BedrockRuntimeClientConfig
  /**
   * The SDK's attempts per call, the same as `clientConfig.maxAttempts`
   * (given in both places, the two must agree). The original's failover
   * example passes `maxAttempts: 1` here; SDK retries are off by default
   * anyway. The mux's own retries are `maxRetries`.
   */
  readonly maxAttempts?: number
  readonly tracing?: TracingConfig
  readonly refusalDetection?: RefusalDetectionConfig
  readonly tierEscalation?: TierEscalationConfig
  /**
   * the Bedrock to use instead of a client built from `clientConfig` (e.g. `BedrockSimulator.layer`);
   * `clientConfig` or `maxAttempts` beside it is a config problem (there is no client of the facade's to
   * configure)
   */
  readonly bedrockRuntime?: Layer.Layer<BedrockRuntime, unknown>
}

/**
 * The original's `MultiplexerConfig`: the models and the options in one
 * object (`new BedrockMultiplexer(config)`).
 * @since 0.1.0
 */
export type MultiplexerConfig = MultiplexerOptions & { readonly models: ReadonlyArray<ModelConfiguration> }

/**
 * The per-call options of `processRequest`: an `abortSignal` (an abort
 * closes the upstream request and rejects with `CancelledError`), and our
 * per-call options (`label`, `deadline`, `tenant`, ...).
 * @since 0.1.0
 */
export interface ProcessRequestOptions extends ConverseOptions {
  readonly abortSignal?: AbortSignal
}

const noop = () => {}
const isMuxError = (u: unknown): u is MuxError =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "MuxError"
/** A call in flight: what `destroy` waits for and interrupts (a fiber, or a call the engine started from plain code). */
interface InFlight {
  readonly addObserver: (observer: (exit: Exit.Exit<MuxResponse, unknown>) => void) => unknown
  readonly interruptUnsafe: () => void
}
type Facade = FacadeConverse<MuxRequest, ConverseOptions, MuxResponse>
const destroyedError = () => new MultiplexerError("the multiplexer was destroyed", "DESTROYED")

/** Loads `@effect/opentelemetry`'s tracer over the global OpenTelemetry provider. */
const loadTracer = async (name: string) => {
  const [otel, api] = await Promise.all([import("@effect/opentelemetry/OtelTracer"), import("@opentelemetry/api")])
  return Effect.runSync(otel.make.pipe(Effect.provideService(otel.OtelTracer, api.trace.getTracer(name, VERSION))))
}

const resolvable = (specifier: string): boolean => {
  try {
    import.meta.resolve(specifier)
    return true
  } catch {
    return false
  }
}

/**
 * The multiplexer: an `EventEmitter` with the original's events and methods.
 *
 * @example
 * ```ts
 * import { BedrockMultiplexer } from "effect-bedrock-mux"
 * const multiplexer = new BedrockMultiplexer({
 *   models: [{ modelId: "amazon.nova-2-lite-v1:0", weight: 100, isFallback: false }],
 *   defaultTimeoutMs: 30_000,
 *   maxRetries: 3,
 *   clientConfig: { region: "us-east-1" }
 * })
 * multiplexer.on("model-selected", (modelId, isFallback, retryCount) => console.log(modelId, isFallback, retryCount))
 * ```
 * @since 0.1.0
 */
export class BedrockMultiplexer extends EventEmitter {
  readonly #policy: Policy.Policy
  /** what `tierEscalation` gives a model added at run time */
  readonly #escalate: "priority" | "reserved" | undefined
  readonly #runtime: ManagedRuntime.ManagedRuntime<BedrockMux, unknown>
  /** the calls in flight: fibers, or calls the engine started from plain code */
  readonly #inFlight = new Set<InFlight>()
  #mux: BedrockMux["Service"] | undefined
  /** the mux's Converse whose answer's `routing` is not enumerable (internal/facadeConverse.ts) */
  #converse: Facade | undefined
  /** the mux's context, once built (synchronously, unless `bedrockRuntime` is an async layer) */
  #context: Context.Context<BedrockMux> | undefined
  /** the context a call runs in: the mux's plus the tracer (or tracing off); set once calls can run */
  #callContext: Context.Context<BedrockMux> | undefined
  readonly #ready: Promise<void>
  #baseline: Shapes.Baseline = Shapes.emptyBaseline
  #bridge: Fiber.Fiber<void> | undefined
  #translator: ReturnType<typeof makeTranslator> | undefined
  /** the ONNX refusal model being loaded, when `refusalDetection.modelPath` names one */
  readonly #onnx: Promise<Onnx.Loaded> | undefined
  #destroyed: Promise<void> | undefined

  constructor(config: MultiplexerConfig) {
    super()
    const problems: Array<Problem> = optionProblems(config)
    const options = (typeof config === "object" && config !== null ? config : {}) as Record<string, unknown>
    const models = options["models"]
    const refusal = options["refusalDetection"] as RefusalDetectionConfig | undefined
    const detect = FacadeRefusal.isOn(refusal) && problems.every((p) => !p.path.startsWith("refusalDetection"))
    if (detect && refusal.classifier === undefined && refusal.modelPath !== undefined && !resolvable("onnxruntime-node")) {
      problems.push({ path: "refusalDetection.modelPath", message: "an ONNX model needs the optional peer onnxruntime-node (npm install onnxruntime-node)" })
    }
    const tracing = options["tracing"] as TracingConfig | undefined
    if (tracing?.enabled === true) {
      for (const peer of ["@effect/opentelemetry", "@opentelemetry/api"]) {
        if (!resolvable(peer)) {
          problems.push({ path: "tracing.enabled", message: `tracing needs the optional peer ${peer} (npm install ${peer})` })
        }
      }
    }
    let decoded: MuxConfig.MuxConfig | undefined
    try {
      decoded = MuxConfig.decodeSync(toMuxInput(Array.isArray(models) ? models : [], options))
    } catch (e) {
      if (!(e instanceof MuxConfig.MuxConfigError)) throw e
      problems.push(...e.problems)
    }
    if (problems.length > 0 || decoded === undefined) throw new MuxConfig.MuxConfigError({ problems })
    const tier = options["tierEscalation"] as TierEscalationConfig | undefined
    this.#escalate = tier?.enabled === true ? tier.escalationTier as "priority" | "reserved" : undefined
    // as in the original, an escalation is not one of the `maxRetries` (its example 03 reaches the fallback
    // after both primaries were throttled and escalated)
    let policy: Policy.Policy = { ...decoded, countEscalations: false }
    if (detect) {
      const modelPath = refusal.classifier === undefined ? refusal.modelPath : undefined
      this.#onnx = modelPath === undefined ? undefined : Onnx.load({ modelPath }).catch((cause: unknown) => {
        throw new MultiplexerError(`refusal detection: the ONNX model at ${modelPath} could not be loaded: ${String(cause)}`, "CLASSIFIER_UNAVAILABLE", { modelPath, error: cause })
      })
      const threshold = refusal.confidenceThreshold ?? 0.5
      const classifier = FacadeRefusal.observe(
        FacadeRefusal.classifierOf(refusal, this.#onnx),
        () => this.#translator !== undefined && this.listenerCount("refusal-classification") + this.listenerCount("refusal-detected") > 0,
        (attempt, text, score, durationMs) => this.#translator?.classified(attempt.requestId, attempt.target, { refused: score >= threshold, score, durationMs, text })
      )
      policy = Policy.withRefusal({ classifier, threshold })(policy)
    } else {
      this.#onnx = undefined
    }
    this.#policy = policy
    super.on("error", noop)

    const runtimeLayer = (options["bedrockRuntime"] as Layer.Layer<BedrockRuntime, unknown> | undefined) ??
      BedrockRuntime.layer(clientConfigOf(options) as BedrockRuntimeClientConfig)
    this.#runtime = ManagedRuntime.make(BedrockMux.layer(policy).pipe(Layer.provide(runtimeLayer)))
    const built = (context: Context.Context<BedrockMux>) => {
      this.#context = context
      this.#mux = Context.get(context, BedrockMux)
      this.#converse = (this.#mux as unknown as { readonly [facadeConverse]: Facade })[facadeConverse]
    }
    let ready: Promise<void>
    try {
      // the layer's own context (Effect.context() inside runSync would also carry runSync's scheduler into every call)
      built(this.#runtime.runSync(this.#runtime.contextEffect))
      ready = Promise.resolve()
    } catch {
      // an async layer (a test hook): calls wait for it
      ready = this.#runtime.context().then(built)
    }
    // calls wait for the ONNX model, as the original's classification waits for it
    if (this.#onnx !== undefined) ready = Promise.all([ready, this.#onnx]).then(noop)
    const withTracer = tracing?.enabled === true
      ? ready.then(() => loadTracer(tracing.serviceName ?? "effect-bedrock-mux")).then((tracer) =>
        Context.add(this.#context!, References.Tracer, tracer)
      )
      : ready.then(() => Context.add(this.#context!, References.TracerEnabled, false))
    const setCall = (context: Context.Context<BedrockMux>) => {
      this.#callContext = context
    }
    if (this.#context !== undefined && tracing?.enabled !== true && this.#onnx === undefined) {
      setCall(Context.add(this.#context, References.TracerEnabled, false))
    }
    this.#ready = withTracer.then(setCall)
    // unobserved until a call waits on it; a failure is reported by that call
    this.#ready.catch(noop)

    super.on("newListener", (event: string | symbol) => {
      if (BRIDGED.includes(event as keyof MultiplexerEvents)) this.#startBridge()
    })
    super.on("removeListener", () => this.#stopBridgeIfUnused())
  }

  /** Listeners of the derived events (the built-in no-op `error` listener aside). */
  #bridgedListeners(): number {
    let n = 0
    for (const name of BRIDGED) n += this.listenerCount(name) - (name === "error" ? 1 : 0)
    return n
  }

  #startBridge() {
    if (this.#bridge !== undefined || this.#destroyed !== undefined) return
    const context = this.#context
    const mux = this.#mux
    if (context === undefined || mux === undefined) {
      this.#ready.then(() => {
        if (this.#bridgedListeners() > 0) this.#startBridge()
      }, noop)
      return
    }
    const translator = makeTranslator(Effect.runSyncWith(context)(mux.models))
    this.#translator = translator
    // runForkWith starts the fiber at once: the subscription exists when this returns
    this.#bridge = Effect.runForkWith(context)(
      Stream.runForEach(mux.events, (e) => Effect.sync(() => this.#deliver(translator.translate(e, this.listenerCount("stats") > 0))))
    )
  }

  #stopBridgeIfUnused() {
    if (this.#bridge !== undefined && this.#bridgedListeners() <= 0) {
      this.#bridge.interruptUnsafe()
      this.#bridge = undefined
      this.#translator = undefined
    }
  }

  /** Emits inside the mux's fiber: a listener's exception is rethrown outside it, as any async listener's would be. */
  #deliver(emissions: ReadonlyArray<Emission>) {
    for (const emission of emissions) {
      try {
        if (emission[0] === "stats") super.emit("stats", this.getStats())
        else super.emit(...(emission as unknown as [string, ...Array<unknown>]))
      } catch (e) {
        queueMicrotask(() => {
          throw e
        })
      }
    }
  }

  /**
   * Sends a request to a model chosen by the pool's weights, failing over as
   * the policy says. Resolves with the SDK's `ConverseCommandOutput` (plus a
   * non-enumerable `routing`).
   */
  processRequest(input: MultiplexerInput, options?: ProcessRequestOptions): Promise<MuxResponse> {
    if (this.#destroyed !== undefined) return Promise.reject(destroyedError())
    try {
      if (this.listenerCount("request") > 0) this.emit("request", input)
    } catch (e) {
      return Promise.reject(e)
    }
    if (options !== undefined) {
      const problems = callOptionProblems(options)
      if (problems.length > 0) {
        return Promise.reject(new MultiplexerError(`invalid request: ${problems.join("; ")}`, "INVALID_REQUEST", { reason: "InvalidRequest", problems }))
      }
    }
    if (this.#callContext === undefined) return this.#ready.then(() => this.#run(input, options))
    return this.#run(input, options)
  }

  #run(input: MultiplexerInput, options: ProcessRequestOptions | undefined): Promise<MuxResponse> {
    if (this.#destroyed !== undefined) return Promise.reject(destroyedError())
    const signal = options?.abortSignal
    if (signal?.aborted === true) return Promise.reject(this.#cancelled(signal))
    const converse = this.#converse!
    let rest: ConverseOptions | undefined
    if (options !== undefined) {
      const { abortSignal: _, ...others } = options
      rest = others
    }
    return new Promise((resolve, reject) => {
      let call: InFlight | undefined
      let abort: (() => void) | undefined
      let ended = false
      const onExit = (exit: Exit.Exit<MuxResponse, unknown>) => {
        ended = true
        if (call !== undefined) this.#inFlight.delete(call)
        if (abort !== undefined) signal!.removeEventListener("abort", abort)
        try {
          if (Exit.isSuccess(exit)) resolve(this.#succeeded(exit.value))
          else reject(this.#failed(exit.cause, signal, rest?.label))
        } catch (e) {
          // a listener of success/error threw: the request rejects with it, as in the original
          reject(e)
        }
      }
      // the first attempt from plain code where the engine's fast path applies (measured: the facade's added
      // latency, bench/results/README.md), else the call's own fiber
      let started: ReturnType<Facade["start"]>
      try {
        started = converse.start(this.#callContext!, input, rest, onExit)
      } catch (e) {
        // a defect of the call's own code, reported as a fiber's would be (once: it may have ended before the throw)
        if (!ended) onExit(Exit.die(e))
        return
      }
      if (started === undefined) {
        const fiber = Effect.runForkWith(this.#callContext!)(converse.converse(input, rest), signal !== undefined ? { signal } : undefined)
        call = fiber
        this.#inFlight.add(fiber)
        fiber.addObserver(onExit)
        // a destroy from the call's own code during its first steps (an abort there, runForkWith hears itself)
        if (this.#destroyed !== undefined) fiber.interruptUnsafe()
        return
      }
      // it may have ended already (a request refused before any attempt)
      if (ended) return
      call = started
      this.#inFlight.add(started)
      // an abort or a destroy while the call started (from the call's own code) is heard now
      if (signal?.aborted === true || this.#destroyed !== undefined) return started.interruptUnsafe()
      if (signal !== undefined) {
        abort = () => started.interruptUnsafe()
        signal.addEventListener("abort", abort, { once: true })
      }
    })
  }

  #now(): number {
    return Effect.runSyncWith(this.#context!)(Clock.currentTimeMillis)
  }

  /** `res`'s routing is already hidden: the mux's facade Converse builds the answer that way. */
  #succeeded(res: MuxResponse): MuxResponse {
    if (this.listenerCount("success") > 0) {
      const attempts = res.routing.attempts
      this.emit("success", res, outcomeOf(attempts[attempts.length - 1]!, this.#now()))
    }
    // then the stats, the success counted, as the original: `success`, then `stats`
    if (this.listenerCount("stats") > 0) this.emit("stats", this.getStats())
    return res
  }

  #failed(cause: Cause.Cause<unknown>, signal: AbortSignal | undefined, label: string | undefined): unknown {
    let error: unknown
    if (Cause.hasInterruptsOnly(cause)) {
      error = signal?.aborted === true
        ? this.#cancelled(signal)
        : this.#destroyed !== undefined
        ? new MultiplexerError("the multiplexer was destroyed while the request was in flight; the request was aborted", "DESTROYED")
        : new MultiplexerError("the request was interrupted", "INTERRUPTED")
    } else {
      const squashed = Cause.squash(cause)
      error = isMuxError(squashed)
        ? fromMuxError(squashed, { now: this.#now(), attempts: this.#policy.attempts, unavailable: squashed.reason._tag === "AttemptsExhausted" ? this.#unavailable(label) : undefined })
        : squashed
    }
    this.emit("error", error as never, null as never)
    return error
  }

  /**
   * The models of the request's route (its label's, or the pool's) when none of them can take traffic now: each
   * one's health; undefined while one can, or where health cannot be read synchronously (a shared store's round
   * trip: `processRequest` then reports RETRIES_EXHAUSTED).
   */
  #unavailable(label: string | undefined): ReadonlyArray<ModelHealth> | undefined {
    if (this.#context === undefined || this.#destroyed !== undefined) return undefined
    const exit = Effect.runSyncExitWith(this.#context)(this.#mux!.health)
    if (Exit.isFailure(exit)) return undefined
    const health = exit.value
    // the pool as it is now, a label's route as the engine routes it now (models added or removed since the start
    // included)
    const targets = label === undefined ? undefined : new Set(this.#converse!.labelTargets(label))
    const models = targets === undefined ? health.models : health.models.filter((m) => targets.has(m.target))
    return models.length > 0 && models.every((m) => !m.available) ? models : undefined
  }

  #cancelled(signal: AbortSignal): CancelledError {
    const errorResponse = {
      code: 500,
      message: "Request cancelled",
      details: { name: "AbortError" },
      errorType: ErrorType.CANCELLED,
      retryable: false
    }
    const now = this.#context === undefined ? 0 : this.#now()
    return new CancelledError(
      "Request cancelled",
      { outcome: { modelId: "", type: OutcomeType.FAIL_FAST, latency: 0, timestamp: new Date(now), error: errorResponse }, errorResponse },
      { cause: signal.reason }
    )
  }

  #sync<A>(f: (mux: BedrockMux["Service"]) => Effect.Effect<A>): A {
    if (this.#destroyed !== undefined) throw destroyedError()
    if (this.#context === undefined) throw new MultiplexerError("the multiplexer is still starting (its Bedrock layer is asynchronous)", "NOT_READY")
    return Effect.runSyncWith(this.#context)(f(this.#mux!))
  }

  /** Counters since start (or the last `resetStats`), per model and in total. */
  getStats(): MultiplexerStats {
    return Shapes.multiplexerStats(this.#sync((m) => m.stats), this.#baseline)
  }

  /** Starts the counters of `getStats` from zero and emits `stats-reset`. Health is not reset. */
  resetStats(): void {
    this.#baseline = Shapes.baselineOf(this.#sync((m) => m.stats))
    this.emit("stats-reset")
  }

  /** The pool's health: per model, and whether any model can take traffic. */
  getHealthStatus(): SystemHealthStatus {
    const [h, s, now] = this.#sync((m) => Effect.all([m.health, m.stats, Clock.currentTimeMillis]))
    return Shapes.systemHealth(h, s, now)
  }

  /** One model's health by `modelId` (or target), or `null` for a model not in the pool. */
  getModelHealthStatus(modelId: string): ModelHealthStatus | null {
    const h = this.#sync((m) => m.health)
    const model = h.models.find((x) => x.target === modelId) ?? h.models.find((x) => x.modelId === modelId)
    return model === undefined ? null : Shapes.modelHealth(model)
  }

  /** `{ status: "healthy", code: 200 }`, or 503 when no model can take traffic. */
  getSimpleHealthCheck(): { status: "healthy" | "unhealthy"; code: 200 | 503 } {
    return this.#sync((m) => Effect.map(m.simpleHealth, (h) => ({ ...h })))
  }

  /** `getSimpleHealthCheck().status === "healthy"`. */
  isHealthy(): boolean {
    return this.getSimpleHealthCheck().status === "healthy"
  }

  /** Each model's breaker state and the failures it counted within its window. */
  getCircuitBreakerStatus(): Record<string, CircuitBreakerStatus> {
    const h = this.#sync((m) => m.health)
    return Shapes.breakerStatus(h)
  }

  /**
   * Adds a model to the pool at run time and emits `model-added`. The entry
   * is checked like a config entry: a bad one, or one already in the pool,
   * throws `MuxConfigError`. Requests already in flight keep the pool they
   * started with.
   */
  addModel(model: ModelConfiguration): void {
    // checked by the core as a config entry (durations as the config writes them)
    const input = modelInput(model, this.#escalate) as unknown as Model.Input
    const exit = this.#sync((m) => Effect.exit(m.addModel(input)))
    if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
    // a model that was in the pool before starts its counters afresh
    this.#baseline = Shapes.withoutModel(this.#baseline, typeof model.client === "string" ? `${model.client}:${model.modelId}` : model.modelId)
  }

  /**
   * Removes a model (by `modelId` or target) from the pool at run time and
   * emits `model-removed`; requests in flight on it finish. An id not in the
   * pool is ignored.
   */
  removeModel(modelId: string): void {
    this.#sync((m) => m.removeModel(modelId))
  }

  /**
   * Aborts the requests in flight (they reject with `MultiplexerError` code
   * `DESTROYED`), removes every listener and closes the SDK client. Calls
   * after it throw `MultiplexerError` code `DESTROYED`.
   */
  destroy(): Promise<void> {
    if (this.#destroyed !== undefined) return this.#destroyed
    const fibers = [...this.#inFlight]
    const settled = fibers.map((f) => new Promise<void>((resolve) => f.addObserver(() => resolve())))
    const onnx = this.#onnx
    this.#destroyed = Promise.resolve().then(async () => {
      await Promise.all(settled)
      await this.#runtime.dispose()
      if (onnx !== undefined) await onnx.then((loaded) => loaded.release(), noop)
    })
    for (const f of fibers) f.interruptUnsafe()
    this.#bridge?.interruptUnsafe()
    this.#bridge = undefined
    this.#translator = undefined
    this.removeAllListeners()
    return this.#destroyed
  }

  /** Removes listeners; the built-in no-op `error` listener (which keeps a failed attempt from throwing) stays. */
  override removeAllListeners(event?: string | symbol): this {
    super.removeAllListeners(event)
    if (this.listenerCount("error") === 0) super.on("error", noop)
    if (event === undefined) {
      super.on("newListener", (e: string | symbol) => {
        if (BRIDGED.includes(e as keyof MultiplexerEvents)) this.#startBridge()
      })
      super.on("removeListener", () => this.#stopBridgeIfUnused())
    }
    this.#stopBridgeIfUnused()
    return this
  }
}

/** Typed events, as the original declares them (declaration merging). */
export interface BedrockMultiplexer {
  on<K extends keyof MultiplexerEvents>(event: K, listener: MultiplexerEvents[K]): this
  once<K extends keyof MultiplexerEvents>(event: K, listener: MultiplexerEvents[K]): this
  off<K extends keyof MultiplexerEvents>(event: K, listener: MultiplexerEvents[K]): this
  addListener<K extends keyof MultiplexerEvents>(event: K, listener: MultiplexerEvents[K]): this
  removeListener<K extends keyof MultiplexerEvents>(event: K, listener: MultiplexerEvents[K]): this
  emit<K extends keyof MultiplexerEvents>(event: K, ...args: Parameters<MultiplexerEvents[K]>): boolean
}

/**
 * The multiplexer's type under the name this library used before.
 * @since 0.1.0
 */
export type Multiplexer = BedrockMultiplexer

/**
 * Creates a multiplexer over `models`: the original's factory.
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
): BedrockMultiplexer => new BedrockMultiplexer({ models, ...options } as MultiplexerConfig)
