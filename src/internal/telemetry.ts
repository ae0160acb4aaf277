/**
 * Metrics and the event bus. Every metric is derived from a `MuxEvent`, so
 * `mux.events` and the metrics never disagree. Names and attributes follow
 * the OpenTelemetry GenAI semantic conventions where one exists
 * (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
 * `gen_ai.client.operation.time_to_first_chunk`); the mux's own counters
 * are `bedrock_mux.*`. Attributes are low-cardinality: model, reason tag,
 * outcome; never a tenant or a prompt.
 */
import { type Context, Effect, type Fiber, Metric, PubSub, References, Tracer } from "effect"
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

const attemptSeries = new Map<string, { readonly duration: Metric.Metric<number, any>; readonly count: Metric.Metric<number, any> }>()
const requestSeries = new Map<string, {
  readonly count: Metric.Metric<number, any>
  readonly input: Metric.Metric<number, any>
  readonly output: Metric.Metric<number, any>
  readonly ttft: Metric.Metric<number, any>
}>()

/** The metric updates one event implies, done at once (one Effect step per event, not one per metric). */
export const record = (mux: string, e: MuxEvent, context: Context.Context<never>): void => {
  switch (e._tag) {
    case "AttemptEnded": {
      // the hot path: one lookup by the fields that vary, no attribute objects built after the first time
      const r = e.record
      const reason = r.outcome === "failure" ? r.reason ?? "Unknown" : ""
      const key = `${mux}\u0000${r.modelId}\u0000${r.outcome}\u0000${reason}`
      let m = attemptSeries.get(key)
      if (m === undefined) {
        const error = reason === "" ? {} : { "error.type": reason }
        m = {
          duration: attributed(metrics.operationDuration, {
            ...base,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": r.modelId,
            ...(r.outcome === "success" ? { "gen_ai.response.model": r.modelId } : {}),
            ...error
          }),
          count: attributed(metrics.attempts, { "bedrock_mux.name": mux, "gen_ai.request.model": r.modelId, outcome: r.outcome, ...error })
        }
        attemptSeries.set(key, m)
      }
      m.duration.updateUnsafe(r.durationMs / 1000, context)
      m.count.updateUnsafe(1, context)
      return
    }
    case "RequestEnded": {
      const key = `${mux}\u0000${e.operation}\u0000${e.outcome}\u0000${e.error ?? ""}\u0000${e.modelId ?? ""}`
      let m = requestSeries.get(key)
      if (m === undefined) {
        const model = e.modelId !== undefined ? { "gen_ai.response.model": e.modelId, "gen_ai.request.model": e.modelId } : {}
        const chat = { ...base, "gen_ai.operation.name": "chat", ...model }
        m = {
          count: attributed(metrics.requests, {
            "bedrock_mux.name": mux,
            operation: e.operation,
            outcome: e.outcome,
            ...(e.error !== undefined ? { "error.type": e.error } : {})
          }),
          input: attributed(metrics.tokenUsage, { ...chat, "gen_ai.token.type": "input" }),
          output: attributed(metrics.tokenUsage, { ...chat, "gen_ai.token.type": "output" }),
          ttft: attributed(metrics.timeToFirstChunk, chat)
        }
        requestSeries.set(key, m)
      }
      m.count.updateUnsafe(1, context)
      if (e.usage !== undefined) {
        m.input.updateUnsafe(e.usage.inputTokens, context)
        m.output.updateUnsafe(e.usage.outputTokens, context)
      }
      if (e.timeToFirstTokenMs !== undefined) m.ttft.updateUnsafe(e.timeToFirstTokenMs / 1000, context)
      return
    }
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

/** Publishes events and keeps the metrics. */
export interface Observer {
  readonly emit: (e: MuxEvent) => Effect.Effect<void>
  readonly pubsub: PubSub.PubSub<MuxEvent>
}

/** Each subscriber's buffer: a reader that falls further behind loses the oldest events. */
export const EVENT_BUFFER = 4096

export const makeObserver = (mux: string): Effect.Effect<Observer> =>
  Effect.map(PubSub.sliding<MuxEvent>(EVENT_BUFFER), (pubsub) => ({
    pubsub,
    // one synchronous step: the publish (a sliding PubSub never waits) and the metrics
    emit: (e) =>
      Effect.withFiber((fiber) => {
        PubSub.publishUnsafe(pubsub, e)
        record(mux, e, fiber.context)
        return Effect.void
      })
  }))

/**
 * Should this fiber create spans? Only when tracing is on and a tracer other
 * than effect's native one is installed: the native tracer exports nothing,
 * and two spans per request cost ~60 µs on the real SDK path
 * (bench/results/README.md).
 */
export const tracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.getRef(References.TracerEnabled) && fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer
