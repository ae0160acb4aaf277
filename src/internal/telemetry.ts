/**
 * Metrics and the event bus. Every metric is derived from a `MuxEvent`, so
 * `mux.events` and the metrics never disagree. Names and attributes follow
 * the OpenTelemetry GenAI semantic conventions where one exists
 * (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
 * `gen_ai.client.operation.time_to_first_chunk`); the mux's own counters
 * are `bedrock_mux.*`. Attributes are low-cardinality: model, reason tag,
 * outcome; never a tenant or a prompt.
 */
import { Effect, Metric, PubSub } from "effect"
import type { MuxEvent } from "../MuxEvent.ts"

/** Seconds: 10 ms … ~160 s, the GenAI conventions' advice for operation durations. */
const secondsBoundaries = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84]
/** Tokens: 1 … 67M in powers of 4, as the conventions advise. */
const tokenBoundaries = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

export const SYSTEM = "aws.bedrock"

/** @internal */
export const metrics = {
  operationDuration: Metric.histogram("gen_ai.client.operation.duration", {
    description: "Duration of one Bedrock call (one attempt), in seconds",
    boundaries: secondsBoundaries
  }),
  tokenUsage: Metric.histogram("gen_ai.client.token.usage", {
    description: "Tokens used by a request, by gen_ai.token.type",
    boundaries: tokenBoundaries
  }),
  timeToFirstChunk: Metric.histogram("gen_ai.client.operation.time_to_first_chunk", {
    description: "Time from the answering attempt's start to its first content event, in seconds",
    boundaries: secondsBoundaries
  }),
  requests: Metric.counter("bedrock_mux.requests", { description: "Requests by operation and outcome", incremental: true }),
  attempts: Metric.counter("bedrock_mux.attempts", { description: "Attempts by model, outcome and error.type", incremental: true }),
  failovers: Metric.counter("bedrock_mux.failovers", { description: "Failovers away from a model, by error.type", incremental: true }),
  breakerTransitions: Metric.counter("bedrock_mux.breaker.transitions", { description: "Circuit breaker state changes", incremental: true }),
  quotaRejections: Metric.counter("bedrock_mux.quota.rejections", { description: "Client-side quota refusals by scope and kind", incremental: true }),
  cooldowns: Metric.counter("bedrock_mux.cooldowns", { description: "Throttle cooldowns started, by model and kind", incremental: true }),
  hedges: Metric.counter("bedrock_mux.hedges", { description: "Hedged attempts started", incremental: true })
} as const

const base = { "gen_ai.system": SYSTEM, "gen_ai.provider.name": SYSTEM }

/**
 * `Metric.withAttributes` makes a new metric whose series key is computed on
 * its first update; caching one per attribute set keeps that off the hot path.
 * The sets are low-cardinality (model × outcome × reason), so the cache stays small.
 */
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
    m = Metric.withAttributes(metric, attributes) as M
    byKey.set(key, m)
  }
  return m
}

/** The metric updates one event implies. */
export const record = (mux: string, e: MuxEvent): Effect.Effect<void> => {
  switch (e._tag) {
    case "AttemptEnded": {
      const r = e.record
      const error = r.outcome === "failure" ? { "error.type": r.reason ?? "Unknown" } : {}
      return Effect.andThen(
        Metric.update(
          attributed(metrics.operationDuration, {
            ...base,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": r.modelId,
            ...(r.outcome === "success" ? { "gen_ai.response.model": r.modelId } : {}),
            ...error
          }),
          r.durationMs / 1000
        ),
        Metric.update(
          attributed(metrics.attempts, { "bedrock_mux.name": mux, "gen_ai.request.model": r.modelId, outcome: r.outcome, ...error }),
          1
        )
      )
    }
    case "RequestEnded": {
      const updates: Array<Effect.Effect<void>> = [
        Metric.update(
          attributed(metrics.requests, {
            "bedrock_mux.name": mux,
            operation: e.operation,
            outcome: e.outcome,
            ...(e.error !== undefined ? { "error.type": e.error } : {})
          }),
          1
        )
      ]
      const model = e.modelId !== undefined ? { "gen_ai.response.model": e.modelId, "gen_ai.request.model": e.modelId } : {}
      const op = e.operation === "converse" ? "chat" : "chat"
      if (e.usage !== undefined) {
        for (const [type, n] of [["input", e.usage.inputTokens], ["output", e.usage.outputTokens]] as const) {
          updates.push(Metric.update(
            attributed(metrics.tokenUsage, { ...base, "gen_ai.operation.name": op, "gen_ai.token.type": type, ...model }),
            n
          ))
        }
      }
      if (e.timeToFirstTokenMs !== undefined) {
        updates.push(Metric.update(
          attributed(metrics.timeToFirstChunk, { ...base, "gen_ai.operation.name": op, ...model }),
          e.timeToFirstTokenMs / 1000
        ))
      }
      return Effect.all(updates, { discard: true })
    }
    case "Failover":
      return Metric.update(
        attributed(metrics.failovers, { "bedrock_mux.name": mux, "gen_ai.request.model": e.modelId, "error.type": e.reason }),
        1
      )
    case "BreakerChanged":
      return Metric.update(
        attributed(metrics.breakerTransitions, { "bedrock_mux.name": mux, "gen_ai.request.model": e.modelId, from: e.from, to: e.to }),
        1
      )
    case "QuotaRejected":
      return Metric.update(
        attributed(metrics.quotaRejections, {
          "bedrock_mux.name": mux,
          scope: e.scope,
          kind: e.kind,
          // the pool entry (client:modelId), not the model id: a model may sit in the pool once per client
          ...(e.scope === "model" ? { "bedrock_mux.target": e.key } : {})
        }),
        1
      )
    case "CooldownStarted":
      return Metric.update(
        attributed(metrics.cooldowns, { "bedrock_mux.name": mux, "gen_ai.request.model": e.modelId, kind: e.kind }),
        1
      )
    case "Hedged":
      return Metric.update(attributed(metrics.hedges, { "bedrock_mux.name": mux, "bedrock_mux.target": e.target }), 1)
    default:
      return Effect.void
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
    emit: (e) => Effect.andThen(PubSub.publish(pubsub, e), record(mux, e))
  }))

/** An observer that drops everything (engines built without a mux, e.g. in tests). */
export const silent: Effect.Effect<Observer> = makeObserver("silent")
