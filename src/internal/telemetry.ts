/**
 * Metrics and the event bus. Every metric is what a `MuxEvent` implies, so
 * `mux.events` and the metrics never disagree; with nobody subscribed, the
 * metrics are kept without building the events (test/telemetry.test.ts
 * holds the two ways equal). Names and attributes follow
 * the OpenTelemetry GenAI semantic conventions where one exists
 * (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
 * `gen_ai.client.operation.time_to_first_chunk`); the mux's own counters
 * are `bedrock_mux.*`. Attributes are low-cardinality: model, reason tag,
 * outcome; never a tenant or a prompt.
 */
import { Context, Effect, Metric, PubSub, References, Stream, Tracer } from "effect"
import { constVoid } from "effect/Function"
import type { MuxEvent } from "../MuxEvent.ts"

/** Seconds: 10 ms … ~160 s, the GenAI conventions' advice for operation durations. */
const secondsBoundaries = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84]
/** Tokens: 1 … 67M in powers of 4, as the conventions advise. */
const tokenBoundaries = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

export const SYSTEM = "aws.bedrock"

/**
 * Each attribute set gets a metric of its own, built with the attributes
 * (not `Metric.withAttributes`, which rebuilds the series key on every
 * update): its key is computed once. The sets are low-cardinality (model ×
 * outcome × reason), so the cache stays small.
 */
const makers = new WeakMap<object, (attributes: Record<string, string>) => Metric.Metric<any, any>>()
const histogram = (name: string, options: { readonly description: string; readonly boundaries: ReadonlyArray<number> }) => {
  const make = (attributes?: Record<string, string>) =>
    Metric.histogram(name, { ...options, ...(attributes !== undefined ? { attributes } : {}) })
  const metric = make()
  makers.set(metric, make)
  return metric
}
const counter = (name: string, description: string) => {
  const make = (attributes?: Record<string, string>) =>
    Metric.counter(name, { description, incremental: true, ...(attributes !== undefined ? { attributes } : {}) })
  const metric = make()
  makers.set(metric, make)
  return metric
}

/** @internal */
export const metrics = {
  operationDuration: histogram("gen_ai.client.operation.duration", {
    description: "Duration of one Bedrock call (one attempt), in seconds",
    boundaries: secondsBoundaries
  }),
  tokenUsage: histogram("gen_ai.client.token.usage", {
    description: "Tokens used by a request, by gen_ai.token.type",
    boundaries: tokenBoundaries
  }),
  timeToFirstChunk: histogram("gen_ai.client.operation.time_to_first_chunk", {
    description: "Time from the answering attempt's start to its first content event, in seconds",
    boundaries: secondsBoundaries
  }),
  requests: counter("bedrock_mux.requests", "Requests by operation and outcome"),
  attempts: counter("bedrock_mux.attempts", "Attempts by model, outcome and error.type"),
  failovers: counter("bedrock_mux.failovers", "Failovers away from a model, by error.type"),
  breakerTransitions: counter("bedrock_mux.breaker.transitions", "Circuit breaker state changes"),
  quotaRejections: counter("bedrock_mux.quota.rejections", "Client-side quota refusals by scope and kind"),
  cooldowns: counter("bedrock_mux.cooldowns", "Throttle cooldowns started, by model and kind"),
  hedges: counter("bedrock_mux.hedges", "Hedged attempts started")
} as const

const base = { "gen_ai.system": SYSTEM, "gen_ai.provider.name": SYSTEM }

const cache = new WeakMap<object, Map<string, unknown>>()
const attributed = <M extends Metric.Metric<any, any>>(metric: M, attributes: Record<string, string>): M => {
  let byKey = cache.get(metric) as Map<string, M> | undefined
  if (byKey === undefined) {
    byKey = new Map()
    cache.set(metric, byKey)
  }
  let key = ""
  for (const k in attributes) key += `${k}=${attributes[k]}\u0000`
  let m = byKey.get(key)
  if (m === undefined) {
    m = makers.get(metric)!(attributes) as M
    byKey.set(key, m)
  }
  return m
}

/**
 * One series, resolved once per context. Effect's `updateUnsafe` looks the context's metric attributes and
 * registry up on every update, five times a call here (measured with the full request check: together a
 * quarter of the mux's own CPU per call, scratch/mab.ts). Here the registry and the series key are kept per
 * context, and each update checks with one `Map` read that the registry still holds this series
 * (`Metric.remove`, a cleared registry: it is made again, as effect would). `hook` and `key` are the metric's
 * own (effect 4.1, pinned).
 *
 * The series' state is one of ours (`Owned`), put in the registry entry effect made in place of effect's
 * own hooks, with what they had counted: an update is a method call on one object, not effect's hook
 * closure and the context it keeps its state in (measured on the real SDK path, 2062319: -1.5 to -4 µs a
 * call, bench/results/README.md). Whoever else updates or reads the series (another mux, `Metric.update`,
 * `Metric.snapshot`, an exporter) goes through the entry's hooks, so it is the same state. A series someone
 * registered with `Metric.registerUnsafe` (its `update` does nothing) is left as it is: updates go to its
 * hooks, as effect's would.
 */
class Series {
  readonly metric: Metric.Metric<number, any>
  private context: Context.Context<never> | undefined = undefined
  private registry: ReadonlyMap<string, unknown> | undefined = undefined
  private key = ""
  private entry: { hooks: Metric.Metric.Hooks<number, unknown> } | undefined = undefined
  /** the entry's hooks when resolved (a second copy of this library may have put its own there since) */
  private hooks: unknown = undefined
  private state: Owned | undefined = undefined
  constructor(metric: Metric.Metric<number, any>) {
    this.metric = metric
  }
  update(n: number, context: Context.Context<never>): void {
    const entry = this.entry
    if (this.context !== context || this.registry!.get(this.key) !== entry || entry!.hooks !== this.hooks) this.resolve(context)
    this.state!.update(n)
  }
  private resolve(context: Context.Context<never>): void {
    const metric = this.metric as unknown as {
      readonly type: string
      hook: (c: Context.Context<never>) => unknown
      key: (c: Context.Context<never>) => string
    }
    metric.hook(context) // makes the series where the registry has none
    this.key = metric.key(context)
    this.registry = Context.get(context, Metric.MetricRegistry)
    const entry = this.registry.get(this.key) as { hooks: Metric.Metric.Hooks<number, unknown> }
    const hooks = entry.hooks
    if (isOwned(hooks)) this.state = hooks
    else if (hooks.update === constVoid) {
      // registered with Metric.registerUnsafe: read through the user's own `get`; its updates do nothing
      this.state = { update: (n) => hooks.update(n, context) }
    } else {
      const before = hooks.get(context)
      const owned = metric.type === "Histogram" ? OwnedHistogram.from(before as HistogramState) : OwnedCounter.from(before as CounterState)
      entry.hooks = owned as unknown as Metric.Metric.Hooks<number, unknown>
      this.state = owned
    }
    this.hooks = entry.hooks
    this.entry = entry
    this.context = context
  }
}

interface CounterState {
  readonly count: number
  readonly incremental: boolean
}
interface HistogramState {
  readonly buckets: ReadonlyArray<readonly [number, number]>
  readonly count: number
  readonly min: number
  readonly max: number
  readonly sum: number
}
interface Owned {
  update(n: number): void
}

/**
 * The mark of a series state of ours, by a registered symbol: a second copy of this library in the process
 * (sharing effect's registry) knows it as its own and shares it instead of taking it over again.
 */
const OWNED = Symbol.for("effect-bedrock-mux/OwnedSeries")
const isOwned = (hooks: unknown): hooks is Owned => typeof hooks === "object" && hooks !== null && OWNED in hooks

/**
 * An incremental counter's state, as effect's counter keeps it (a negative update is ignored).
 * Exported for the tests, which hold it equal to effect's counter.
 * @internal
 */
export class OwnedCounter implements Owned {
  readonly [OWNED] = true
  count: number
  constructor(count: number) {
    this.count = count
  }
  static from(state: CounterState): OwnedCounter {
    return new OwnedCounter(state.count)
  }
  update(n: number): void {
    if (n >= 0) this.count += n
  }
  modify(n: number): void {
    this.update(n)
  }
  get(): CounterState {
    return { count: this.count, incremental: true }
  }
}

/**
 * A histogram's state, as effect's histogram keeps it: a count per boundary (value <= boundary) and one past the
 * last. Exported for the tests, which hold it equal to effect's histogram.
 * @internal
 */
export class OwnedHistogram implements Owned {
  readonly [OWNED] = true
  readonly boundaries: Float64Array
  readonly values: Uint32Array
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  constructor(boundaries: Float64Array) {
    this.boundaries = boundaries
    this.values = new Uint32Array(boundaries.length + 1)
  }
  /** Takes over what effect's hooks had counted (their buckets are cumulative). */
  static from(state: HistogramState): OwnedHistogram {
    const h = new OwnedHistogram(Float64Array.from(state.buckets, (b) => b[0]))
    let below = 0
    state.buckets.forEach(([, cumulative], i) => {
      h.values[i] = cumulative - below
      below = cumulative
    })
    h.values[state.buckets.length] = state.count - below
    h.count = state.count
    h.sum = state.sum
    h.min = state.min
    h.max = state.max
    return h
  }
  update(value: number): void {
    const b = this.boundaries
    let i = 0
    while (i < b.length && !(value <= b[i]!)) i++
    this.values[i]! += 1
    this.count += 1
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
  modify(value: number): void {
    this.update(value)
  }
  get(): HistogramState {
    const buckets: Array<readonly [number, number]> = []
    let cumulative = 0
    for (let i = 0; i < this.boundaries.length; i++) {
      cumulative += this.values[i]!
      buckets.push([this.boundaries[i]!, cumulative])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
}

interface AttemptSeries {
  readonly duration: Series
  readonly count: Series
}
interface RequestSeries {
  readonly count: Series
  readonly input: Series
  readonly output: Series
  readonly ttft: Series
}
/** A model's series for a one-attempt success of `operation`. */
interface SuccessSeries {
  /** the series of the model's other operations (a model serves converse and route alike) */
  readonly next: SuccessSeries | undefined
  readonly operation: string
  readonly modelId: string
  readonly attempt: AttemptSeries
  readonly request: RequestSeries
}

/** A three-level cache: the hot path looks series up by strings it already holds (no key string built per event). */
const lookup3 = <A>(outer: Map<string, Map<string, Map<string, A>>>, a: string, b: string, c: string, make: () => A): A => {
  let middle = outer.get(a)
  if (middle === undefined) {
    middle = new Map()
    outer.set(a, middle)
  }
  let inner = middle.get(b)
  if (inner === undefined) {
    inner = new Map()
    middle.set(b, inner)
  }
  let m = inner.get(c)
  if (m === undefined) {
    m = make()
    inner.set(c, m)
  }
  return m
}

/** A request's metrics: its count, tokens and time to first token, by operation, outcome, error and model. */
type RequestMetrics = (
  operation: string,
  outcome: string,
  error: string | undefined,
  modelId: string | undefined,
  usage: { readonly inputTokens: number; readonly outputTokens: number } | undefined,
  timeToFirstTokenMs: number | undefined,
  context: Context.Context<never>
) => void

/**
 * The metric updates each event implies, done at once (one Effect step per
 * event, not one per metric). The series of one mux (its name in every
 * attribute set) are built once and cached here, by model and outcome.
 */
export const makeRecorder = (mux: string) => {
  const attempts = new Map<string, Map<string, Map<string, AttemptSeries>>>()
  const requests = new Map<string, Map<string, Map<string, Map<string, RequestSeries>>>>()
  const attemptSeries = (modelId: string, outcome: string, reason: string): AttemptSeries => {
    const error = reason === "" ? {} : { "error.type": reason }
    return {
      duration: new Series(attributed(metrics.operationDuration, {
        ...base,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": modelId,
        ...(outcome === "success" ? { "gen_ai.response.model": modelId } : {}),
        ...error
      })),
      count: new Series(attributed(metrics.attempts, { "bedrock_mux.name": mux, "gen_ai.request.model": modelId, outcome, ...error }))
    }
  }
  const requestsOf = (operation: string) => {
    let byOperation = requests.get(operation)
    if (byOperation === undefined) {
      byOperation = new Map()
      requests.set(operation, byOperation)
    }
    return byOperation
  }
  const requestSeries = (operation: string, outcome: string, error: string | undefined, modelId: string | undefined): RequestSeries => {
    const model = modelId !== undefined ? { "gen_ai.response.model": modelId, "gen_ai.request.model": modelId } : {}
    const chat = { ...base, "gen_ai.operation.name": "chat", ...model }
    return {
      count: new Series(attributed(metrics.requests, {
        "bedrock_mux.name": mux,
        operation,
        outcome,
        ...(error !== undefined ? { "error.type": error } : {})
      })),
      input: new Series(attributed(metrics.tokenUsage, { ...chat, "gen_ai.token.type": "input" })),
      output: new Series(attributed(metrics.tokenUsage, { ...chat, "gen_ai.token.type": "output" })),
      ttft: new Series(attributed(metrics.timeToFirstChunk, chat))
    }
  }
  /** What an attempt records: its duration and count. */
  const countAttempt = (m: AttemptSeries, durationMs: number, context: Context.Context<never>) => {
    m.duration.update(durationMs / 1000, context)
    m.count.update(1, context)
  }
  /** What a request records: its count, tokens and time to first token. */
  const countRequest = (
    m: RequestSeries,
    usage: { readonly inputTokens: number; readonly outputTokens: number } | undefined,
    timeToFirstTokenMs: number | undefined,
    context: Context.Context<never>
  ) => {
    m.count.update(1, context)
    if (usage !== undefined) {
      m.input.update(usage.inputTokens, context)
      m.output.update(usage.outputTokens, context)
    }
    if (timeToFirstTokenMs !== undefined) m.ttft.update(timeToFirstTokenMs / 1000, context)
  }
  /** An attempt's metrics, by model, outcome and reason. */
  const attempt = (modelId: string, outcome: string, reason: string, durationMs: number, context: Context.Context<never>) =>
    countAttempt(lookup3(attempts, modelId, outcome, reason, () => attemptSeries(modelId, outcome, reason)), durationMs, context)
  const request: RequestMetrics = (operation, outcome, error, modelId, usage, timeToFirstTokenMs, context) =>
    countRequest(
      lookup3(requestsOf(operation), modelId ?? "", outcome, error ?? "", () => requestSeries(operation, outcome, error, modelId)),
      usage,
      timeToFirstTokenMs,
      context
    )
  /**
   * A one-attempt success's metrics (its attempt's and its request's), by series cached on `holder` (the model's
   * stats, which the same success updates): two field reads, not seven `Map` reads (measured with the rest of the
   * success's bookkeeping: bench/results/README.md).
   */
  const succeeded = (
    holder: { seriesCache: unknown },
    operation: string,
    modelId: string,
    durationMs: number,
    usage: { readonly inputTokens: number; readonly outputTokens: number } | undefined,
    context: Context.Context<never>
  ) => {
    const cached = holder.seriesCache as SuccessSeries | undefined
    let c = cached
    while (c !== undefined && (c.operation !== operation || c.modelId !== modelId)) c = c.next
    if (c === undefined) {
      c = {
        next: cached,
        operation,
        modelId,
        attempt: lookup3(attempts, modelId, "success", "", () => attemptSeries(modelId, "success", "")),
        request: lookup3(requestsOf(operation), modelId, "success", "", () => requestSeries(operation, "success", undefined, modelId))
      }
      holder.seriesCache = c
    }
    countAttempt(c.attempt, durationMs, context)
    countRequest(c.request, usage, undefined, context)
  }
  const record = (e: MuxEvent, context: Context.Context<never>): void => {
    switch (e._tag) {
      case "AttemptEnded": {
        const r = e.record
        return attempt(r.modelId, r.outcome, r.outcome === "failure" ? r.reason ?? "Unknown" : "", r.durationMs, context)
      }
      case "RequestEnded":
        return request(e.operation, e.outcome, e.error, e.modelId, e.usage, e.timeToFirstTokenMs, context)
      case "Failover":
        return attributed(metrics.failovers, { "bedrock_mux.name": mux, "gen_ai.request.model": e.modelId, "error.type": e.reason }).updateUnsafe(1, context)
      case "BreakerChanged":
        return attributed(metrics.breakerTransitions, { "bedrock_mux.name": mux, "gen_ai.request.model": e.modelId, from: e.from, to: e.to }).updateUnsafe(1, context)
      case "QuotaRejected":
        return attributed(metrics.quotaRejections, {
          "bedrock_mux.name": mux,
          scope: e.scope,
          kind: e.kind,
          // the pool entry (client:modelId), not the model id: a model may sit in the pool once per client
          ...(e.scope === "model" ? { "bedrock_mux.target": e.key } : {})
        }).updateUnsafe(1, context)
      case "CooldownStarted":
        return attributed(metrics.cooldowns, { "bedrock_mux.name": mux, "gen_ai.request.model": e.modelId, kind: e.kind }).updateUnsafe(1, context)
      case "Hedged":
        return attributed(metrics.hedges, { "bedrock_mux.name": mux, "bedrock_mux.target": e.target }).updateUnsafe(1, context)
      default:
        return
    }
  }
  return { record, attempt, request, succeeded }
}

/** Publishes events and keeps the metrics. */
export interface Observer {
  readonly emit: (e: MuxEvent) => Effect.Effect<void>
  /** the same, synchronously, with the context whose metric registry counts */
  readonly emitUnsafe: (e: MuxEvent, context: Context.Context<never>) => void
  /** the events, from the moment of subscribing */
  readonly events: Stream.Stream<MuxEvent>
  /** is anyone subscribed? (without a subscriber an event need not be built, only its metrics kept) */
  readonly listening: () => boolean
  /** an AttemptEnded's metrics, without the event */
  readonly attemptMetrics: (modelId: string, outcome: string, reason: string, durationMs: number, context: Context.Context<never>) => void
  /** a RequestEnded's metrics, without the event */
  readonly requestMetrics: RequestMetrics
  /** a one-attempt success's AttemptEnded and RequestEnded metrics, without the events, by series cached on `holder` */
  readonly successMetrics: ReturnType<typeof makeRecorder>["succeeded"]
}

/** Each subscriber's buffer: a reader that falls further behind loses the oldest events. */
export const EVENT_BUFFER = 4096

export const makeObserver = (mux: string): Effect.Effect<Observer> =>
  Effect.map(PubSub.sliding<MuxEvent>(EVENT_BUFFER), (pubsub) => {
    const recorder = makeRecorder(mux)
    const record = recorder.record
    // nobody listening: nothing to publish (the metrics are kept all the same)
    let subscribers = 0
    // one synchronous step: the publish (a sliding PubSub never waits) and the metrics
    const emitUnsafe = (e: MuxEvent, context: Context.Context<never>) => {
      // a subscriber 4096 events behind: publish with the sliding strategy (its oldest events go), which only the
      // effectful publish applies (rare: no fiber on the common path)
      if (subscribers > 0 && !PubSub.publishUnsafe(pubsub, e)) Effect.runSync(PubSub.publish(pubsub, e))
      record(e, context)
    }
    return {
      emitUnsafe,
      listening: () => subscribers > 0,
      attemptMetrics: recorder.attempt,
      requestMetrics: recorder.request,
      successMetrics: recorder.succeeded,
      emit: (e) =>
        Effect.withFiber((fiber) => {
          emitUnsafe(e, fiber.context)
          return Effect.void
        }),
      // counted from before the subscription starts, so nothing published after it is skipped
      events: Stream.unwrap(
        Effect.as(Effect.acquireRelease(Effect.sync(() => subscribers++), () => Effect.sync(() => subscribers--)), Stream.fromPubSub(pubsub))
      )
    }
  })

/**
 * Should a fiber of this context create spans? Only when tracing is on and a tracer other
 * than effect's native one is installed: the native tracer exports nothing,
 * and two spans per request cost ~60 µs on the real SDK path
 * (bench/results/README.md).
 */
export const tracing = (context: Context.Context<never>): boolean =>
  Context.get(context, References.TracerEnabled) && Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer
