/**
 * Telemetry: `mux.events` (the sequence of events for failover, breaker,
 * throttle cooldown, quota refusal, hedge and a stream the caller stops
 * reading, all on the simulator under TestClock), the metrics derived from
 * them (read from an isolated `Metric.MetricRegistry`), what
 * @effect/opentelemetry exports (span tree, attributes, status, metric data
 * points, with in-memory exporters on the real clock and a zero-latency
 * simulator), and privacy (no prompt or answer text unless `captureBodies`).
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { SpanStatusCode } from "@opentelemetry/api"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  type MetricData,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Metric, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, type MuxRequest } from "../src/BedrockMux.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import type * as MuxConfig from "../src/MuxConfig.ts"
import type { MuxEvent, RequestEnded } from "../src/MuxEvent.ts"
import * as MuxStream from "../src/MuxStream.ts"
import type * as SimulatorScript from "../src/SimulatorScript.ts"
import * as fc from "fast-check"
import { OwnedCounter, OwnedHistogram } from "../src/internal/telemetry.ts"
import { muxError, runFor } from "./support/mux.ts"

// --- helpers ------------------------------------------------------------------------------------

/** "hello": 5 input tokens by the default estimator; the simulator's default answer is 14 tokens. */
const hello: MuxRequest = { messages: [{ role: "user", content: [{ text: "hello" }] }] }

/** The mux on the simulator; both services exposed. */
const muxOn = (config: MuxConfig.Input, script: SimulatorScript.ScriptInput) =>
  BedrockMux.layer(config).pipe(Layer.provideMerge(BedrockSimulator.layer(script)))

/** a (tier 0) then b (tier 1), tried in that order */
const ab = (extra: Record<string, unknown> = {}) =>
  ({ models: [{ modelId: "a" }, { modelId: "b", isFallback: true }], selection: "ordered", ...extra }) as MuxConfig.Input

const fault = (error: SimulatorScript.ErrorName, calls: ReadonlyArray<number>, message?: string) => ({
  when: { calls: [...calls] },
  do: { kind: "error" as const, error, ...(message !== undefined ? { message } : {}) }
})

/**
 * Subscribes to `mux.events` and collects every event in the background, for
 * the rest of the test's scope. A subscriber sees only what is published after
 * it subscribed, and `Stream.fromPubSub` subscribes when the stream starts to
 * run: `startImmediately` runs the fiber up to its first wait, so the
 * subscription exists when this returns.
 */
const recordEvents = Effect.gen(function*() {
  const mux = yield* BedrockMux
  const seen: Array<MuxEvent> = []
  yield* Stream.runForEach(mux.events, (e) => Effect.sync(() => void seen.push(e))).pipe(
    Effect.forkScoped({ startImmediately: true })
  )
  return seen
})

/** Lets the collecting fiber catch up with what was published. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

/** One line per event: time, tag and what matters. */
const brief = (e: MuxEvent): string => {
  switch (e._tag) {
    case "AttemptStarted":
      return `${e.at} AttemptStarted ${e.modelId} #${e.attempt}${e.hedge ? " hedge" : ""}`
    case "AttemptEnded": {
      const r = e.record
      return [`${e.at} AttemptEnded ${r.modelId} ${r.outcome}`, r.reason, r.decision].filter((x) => x !== undefined).join(" ")
    }
    case "Failover":
      return `${e.at} Failover ${e.modelId} ${e.reason}`
    case "BreakerChanged":
      return `${e.at} BreakerChanged ${e.modelId} ${e.from}->${e.to}`
    case "CooldownStarted":
      return `${e.at} CooldownStarted ${e.modelId} ${e.kind} until ${e.until}`
    case "CooldownEnded":
      return `${e.at} CooldownEnded ${e.modelId}`
    case "QuotaRejected":
      return `${e.at} QuotaRejected ${e.scope} ${e.key} ${e.kind} ${e.retryAfterMs}`
    case "Hedged":
      return `${e.at} Hedged ${e.primary}->${e.target} after ${e.afterMs}`
    case "RequestEnded":
      return [`${e.at} RequestEnded ${e.operation} ${e.outcome}`, e.modelId, e.error].filter((x) => x !== undefined).join(" ")
    case "ModelSkipped":
      return `${e.at} ModelSkipped ${e.modelId} ${e.why}`
    case "Escalated":
      return `${e.at} Escalated ${e.modelId} ${e.serviceTier}`
    case "Refused":
      return `${e.at} Refused ${e.modelId} ${e.score}`
    case "ModelAdded":
      return `${e.at} ModelAdded ${e.modelId}`
    case "ModelRemoved":
      return `${e.at} ModelRemoved ${e.modelId}`
  }
}

const requestEnded = (seen: ReadonlyArray<MuxEvent>): Array<RequestEnded> =>
  seen.filter((e): e is RequestEnded => e._tag === "RequestEnded")

// --- 1. mux.events --------------------------------------------------------------------------------

describe("mux.events", () => {
  it.effect("a failover: attempt on a fails, Failover, attempt on b succeeds, RequestEnded with b and the usage", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      const res = yield* runFor(mux.converse(hello), "1 second")
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        "0 AttemptStarted a #1",
        "0 AttemptEnded a failure ServiceUnavailable failover",
        "0 Failover a ServiceUnavailable",
        "0 AttemptStarted b #2",
        "200 AttemptEnded b success",
        "200 RequestEnded converse success b"
      ])
      // one request id for all of them
      assert.strictEqual(new Set(seen.map((e) => "requestId" in e ? e.requestId : undefined)).size, 1)
      const [end] = requestEnded(seen)
      assert.deepStrictEqual(
        { ...end!, requestId: "" },
        {
          _tag: "RequestEnded",
          at: 200,
          requestId: "",
          operation: "converse",
          outcome: "success",
          modelId: "b",
          error: undefined,
          durationMs: 200,
          attempts: 2,
          usage: { inputTokens: res.usage!.inputTokens!, outputTokens: res.usage!.outputTokens! },
          timeToFirstTokenMs: undefined
        }
      )
      // the AttemptEnded records are the response's routing.attempts
      assert.deepStrictEqual(
        seen.flatMap((e) => e._tag === "AttemptEnded" ? [e.record] : []),
        [...res.routing.attempts]
      )
    }).pipe(Effect.provide(muxOn(ab(), {
      models: { a: { latency: 100, faults: [fault("ServiceUnavailableException", [1])] }, b: { latency: 200 } }
    }))))

  const breakerScenario = Effect.gen(function*() {
    const seen = yield* recordEvents
    const mux = yield* BedrockMux
    yield* runFor(mux.converse(hello), "1 second") // a fails (1), b answers
    yield* runFor(mux.converse(hello), "1 second") // a fails (2): the breaker opens until 31 s
    yield* TestClock.adjust("30 seconds") // t = 32 s
    yield* runFor(mux.converse(hello), "1 second") // the probe on a succeeds
    yield* settle
    return seen
  }).pipe(Effect.provide(muxOn(ab({ breaker: { failures: 2, cooldown: "30 seconds" } }), {
    models: { a: { latency: 100, faults: [fault("ServiceUnavailableException", [1, 2])] }, b: { latency: 200 } }
  })))

  it.effect("a breaker: closed -> open at the `failures`-th failure, half-open -> closed after the probe succeeds", () =>
    Effect.gen(function*() {
      const seen = yield* breakerScenario
      const changes = seen.filter((e) => e._tag === "BreakerChanged")
      assert.deepStrictEqual(
        changes.filter((e) => e.to !== "half-open").map(brief),
        ["1000 BreakerChanged a closed->open", "32100 BreakerChanged a half-open->closed"]
      )
      // it opened at the second failure of a, not before
      const opened = seen.findIndex((e) => e._tag === "BreakerChanged" && e.to === "open")
      const attemptsOnA = seen.filter((e) => e._tag === "AttemptStarted" && e.modelId === "a")
      assert.strictEqual(seen.slice(0, opened).filter((e) => attemptsOnA.includes(e)).length, 2)
      // the probe: one attempt, on a, at 32 s
      assert.deepStrictEqual(seen.filter((e) => e.at >= 32_000).map(brief).filter((s) => !s.includes("Breaker")), [
        "32000 AttemptStarted a #1",
        "32100 AttemptEnded a success",
        "32100 RequestEnded converse success a"
      ])
    }))

  // MuxEvent.ts: "`open → half-open` is reported when the first probe is admitted"
  it.effect("a breaker: open -> half-open is reported when the probe is admitted", () =>
    Effect.gen(function*() {
      const seen = yield* breakerScenario
      assert.deepStrictEqual(seen.filter((e) => e._tag === "BreakerChanged").map(brief), [
        "1000 BreakerChanged a closed->open",
        "32000 BreakerChanged a open->half-open",
        "32100 BreakerChanged a half-open->closed"
      ])
    }))

  it.effect("a throttle: CooldownStarted with its kind and `until`, ModelSkipped while it cools, CooldownEnded exactly at `until`", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      yield* runFor(mux.converse(hello), "400 millis")
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        "0 AttemptStarted a #1",
        "0 CooldownStarted a requests until 500",
        "0 AttemptEnded a failure Throttled failover",
        "0 Failover a Throttled",
        "0 ModelSkipped a cooldown",
        "0 AttemptStarted b #2",
        "200 AttemptEnded b success",
        "200 RequestEnded converse success b"
      ])
      yield* TestClock.adjust(99) // t = 499
      yield* settle
      assert.isFalse(seen.some((e) => e._tag === "CooldownEnded"))
      yield* TestClock.adjust(1) // t = 500
      yield* settle
      assert.deepStrictEqual(seen.slice(8).map(brief), ["500 CooldownEnded a"])
    }).pipe(Effect.provide(muxOn(ab(), {
      models: {
        a: { latency: 100, faults: [fault("ThrottlingException", [1], "Too many requests, please wait before trying again.")] },
        b: { latency: 200 }
      }
    }))))

  it.effect("a daily-quota throttle: CooldownStarted kind daily, for the `daily` cooldown (1 h)", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      yield* runFor(mux.converse(hello), "1 second")
      yield* settle
      assert.deepStrictEqual(seen.filter((e) => e._tag === "CooldownStarted").map(brief), [
        "0 CooldownStarted a daily until 3600000"
      ])
    }).pipe(Effect.provide(muxOn(ab(), {
      models: { a: { faults: [fault("ThrottlingException", [1], "Too many tokens per day, please wait before trying again.")] }, b: {} }
    }))))

  it.effect("a model quota: QuotaRejected (scope model), and the request goes to b without calling a", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      yield* runFor(mux.converse(hello), "1 second")
      const res = yield* runFor(mux.converse(hello), "1 second") // t = 1 s: a's 1 RPM is used
      yield* settle
      assert.strictEqual(res.routing.modelId, "b")
      assert.deepStrictEqual(seen.filter((e) => e.at >= 1000).map(brief), [
        "1000 QuotaRejected model a requests 59000",
        "1000 AttemptStarted b #1",
        "1200 AttemptEnded b success",
        "1200 RequestEnded converse success b"
      ])
    }).pipe(Effect.provide(muxOn(ab({ models: [{ modelId: "a", rpm: 1 }, { modelId: "b", isFallback: true }] }), {
      models: { a: { latency: 100 }, b: { latency: 200 } }
    }))))

  it.effect("a tenant quota: QuotaRejected (scope tenant), then RequestEnded failure QuotaExceeded, no attempt", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      yield* runFor(mux.converse(hello, { tenant: "T" }), "1 second")
      const exit = yield* runFor(Effect.exit(mux.converse(hello, { tenant: "T" })), "1 second")
      yield* settle
      assert.strictEqual(muxError(exit).reason._tag, "QuotaExceeded")
      assert.deepStrictEqual(seen.filter((e) => e.at >= 1000).map(brief), [
        "1000 QuotaRejected tenant T requests 59000",
        "1000 RequestEnded converse failure QuotaExceeded"
      ])
      assert.strictEqual(requestEnded(seen)[1]!.attempts, 0)
    }).pipe(Effect.provide(muxOn(ab({ tenants: { T: { rpm: 1 } } }), { models: { a: { latency: 100 }, b: {} } }))))

  it.effect("a hedge (converseStream): Hedged, the hedge wins, the loser ends interrupted / hedge-lost", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      const answer = yield* runFor(MuxStream.collect(mux.converseStream(hello, { hedge: { after: "1 second" } })), "1 minute")
      yield* settle
      assert.strictEqual(answer.routing?.modelId, "b")
      assert.deepStrictEqual(seen.map(brief), [
        "0 AttemptStarted a #1",
        "1000 Hedged a->b after 1000",
        "1000 AttemptStarted b #2 hedge",
        "1200 AttemptEnded a interrupted hedge-lost",
        "1200 AttemptEnded b success",
        "1200 RequestEnded converse_stream success b"
      ])
      const [end] = requestEnded(seen)
      assert.strictEqual(end!.timeToFirstTokenMs, 200)
      assert.strictEqual(end!.attempts, 2)
      assert.deepStrictEqual(end!.usage, { inputTokens: answer.routing!.usage.inputTokens, outputTokens: answer.routing!.usage.outputTokens })
    }).pipe(Effect.provide(muxOn(ab(), { models: { a: { latency: 5000 }, b: { latency: 200 } } }))))

  it.effect("a stream whose consumer stops reading: the attempt and the request end interrupted", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      const events = yield* runFor(Stream.runCollect(mux.converseStream(hello).pipe(Stream.take(2))), "1 minute")
      yield* settle
      assert.strictEqual(events.length, 2)
      assert.deepStrictEqual(seen.map(brief), [
        "0 AttemptStarted a #1",
        "100 AttemptEnded a interrupted",
        "100 RequestEnded converse_stream interrupted a"
      ])
      assert.strictEqual(requestEnded(seen)[0]!.usage, undefined)
    }).pipe(Effect.provide(muxOn(ab(), { models: { a: { latency: 100, tokensPerSecond: 10 }, b: {} } }))))

  // every AttemptStarted has its AttemptEnded, as for a stream the caller stops reading and a lost hedge
  it.effect("a converse the caller interrupts mid-attempt: the attempt and the request end interrupted", () =>
    Effect.gen(function*() {
      const seen = yield* recordEvents
      const mux = yield* BedrockMux
      const fiber = yield* Effect.forkChild(mux.converse(hello))
      yield* TestClock.adjust(50)
      yield* Fiber.interrupt(fiber)
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        "0 AttemptStarted a #1",
        "50 AttemptEnded a interrupted",
        "50 RequestEnded converse interrupted a"
      ])
      assert.strictEqual(requestEnded(seen)[0]!.attempts, 1)
    }).pipe(Effect.provide(muxOn(ab(), { models: { a: { latency: 100 }, b: {} } }))))
})

// --- 2. metrics -----------------------------------------------------------------------------------

/** The series of metric `id` whose attributes include `attrs`. */
const seriesOf = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, attrs: Record<string, string> = {}) =>
  snapshots.filter((s) => s.id === id && Object.entries(attrs).every(([k, v]) => s.attributes?.[k] === v))

const counter = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, attrs?: Record<string, string>) =>
  seriesOf(snapshots, id, attrs).reduce((n, s) => n + Number((s.state as Metric.CounterState<number>).count), 0)

const histogram = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, attrs?: Record<string, string>) =>
  seriesOf(snapshots, id, attrs).reduce(
    (acc, s) => {
      const h = s.state as Metric.HistogramState
      return { count: acc.count + h.count, sum: acc.sum + h.sum }
    },
    { count: 0, sum: 0 }
  )

/** The mux's attempt-duration series of model "a"'s successes: name, description and attributes make its identity. */
const durationOfA = Metric.histogram("gen_ai.client.operation.duration", {
  description: "Duration of one Bedrock call (one attempt), in seconds",
  boundaries: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84],
  attributes: {
    "gen_ai.system": "aws.bedrock",
    "gen_ai.provider.name": "aws.bedrock",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "a",
    "gen_ai.response.model": "a"
  }
})

describe("metrics", () => {
  it.effect("attempts by outcome, failovers by error.type, operation duration, token usage, time to first chunk", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const failedOver = yield* runFor(mux.converse(hello), "1 second") // a fails, b answers in 200 ms
      const direct = yield* runFor(mux.converse(hello), "1 second") // a answers in 100 ms
      const streamed = yield* runFor(MuxStream.collect(mux.converseStream(hello)), "1 second") // a, first chunk at 100 ms
      const m = yield* Metric.snapshot

      assert.strictEqual(counter(m, "bedrock_mux.attempts"), 4)
      assert.strictEqual(counter(m, "bedrock_mux.attempts", { outcome: "success" }), 3)
      assert.strictEqual(counter(m, "bedrock_mux.attempts", { outcome: "success", "gen_ai.request.model": "a" }), 2)
      assert.strictEqual(
        counter(m, "bedrock_mux.attempts", { outcome: "failure", "gen_ai.request.model": "a", "error.type": "ServiceUnavailable" }),
        1
      )
      assert.strictEqual(counter(m, "bedrock_mux.failovers"), 1)
      assert.strictEqual(counter(m, "bedrock_mux.failovers", { "error.type": "ServiceUnavailable", "gen_ai.request.model": "a" }), 1)
      assert.strictEqual(counter(m, "bedrock_mux.requests", { operation: "converse", outcome: "success" }), 2)
      assert.strictEqual(counter(m, "bedrock_mux.requests", { operation: "converse_stream", outcome: "success" }), 1)

      // one duration per attempt, in seconds
      assert.strictEqual(histogram(m, "gen_ai.client.operation.duration").count, 4)
      assert.deepStrictEqual(
        histogram(m, "gen_ai.client.operation.duration", { "gen_ai.request.model": "b", "gen_ai.response.model": "b" }),
        { count: 1, sum: 0.2 }
      )
      assert.strictEqual(histogram(m, "gen_ai.client.operation.duration", { "error.type": "ServiceUnavailable" }).count, 1)
      for (const s of seriesOf(m, "gen_ai.client.operation.duration")) {
        assert.strictEqual(s.attributes?.["gen_ai.system"], "aws.bedrock")
        assert.strictEqual(s.attributes?.["gen_ai.operation.name"], "chat")
      }

      // one input and one output observation per successful request, summing to the responses' usage
      const usage = [failedOver.usage!, direct.usage!, streamed.routing!.usage]
      const input = histogram(m, "gen_ai.client.token.usage", { "gen_ai.token.type": "input" })
      const output = histogram(m, "gen_ai.client.token.usage", { "gen_ai.token.type": "output" })
      assert.deepStrictEqual(input, { count: 3, sum: usage.reduce((n, u) => n + u.inputTokens!, 0) })
      assert.deepStrictEqual(output, { count: 3, sum: usage.reduce((n, u) => n + u.outputTokens!, 0) })
      assert.strictEqual(histogram(m, "gen_ai.client.token.usage", { "gen_ai.response.model": "b" }).count, 2)

      // time to first chunk: streams only
      assert.deepStrictEqual(histogram(m, "gen_ai.client.operation.time_to_first_chunk"), { count: 1, sum: 0.1 })
      assert.strictEqual(
        histogram(m, "gen_ai.client.operation.time_to_first_chunk", { "gen_ai.response.model": "a" }).count,
        1
      )
    }).pipe(
      Effect.provide(muxOn(ab(), {
        models: { a: { latency: 100, faults: [fault("ServiceUnavailableException", [1])] }, b: { latency: 200 } }
      })),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("breaker transitions, cooldowns by kind, quota rejections by scope; never a tenant in an attribute", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      yield* runFor(mux.converse(hello), "1 second") // a throttled (cooldown, requests) -> b
      yield* runFor(mux.converse(hello, { tenant: "T" }), "1 second") // a still cooling -> b
      yield* runFor(Effect.exit(mux.converse(hello, { tenant: "T" })), "1 second") // tenant T over its RPM
      yield* TestClock.adjust("1 minute")
      yield* runFor(mux.converse(hello), "1 second") // a fails: breaker (failures: 1) opens -> b
      const m = yield* Metric.snapshot
      assert.strictEqual(counter(m, "bedrock_mux.cooldowns", { "gen_ai.request.model": "a", kind: "requests" }), 1)
      assert.strictEqual(counter(m, "bedrock_mux.quota.rejections", { scope: "tenant", kind: "requests" }), 1)
      assert.strictEqual(counter(m, "bedrock_mux.breaker.transitions", { "gen_ai.request.model": "a", from: "closed", to: "open" }), 1)
      assert.strictEqual(counter(m, "bedrock_mux.requests", { outcome: "failure", "error.type": "QuotaExceeded" }), 1)
      // no attribute carries the tenant
      for (const s of m) assert.isFalse(Object.values(s.attributes ?? {}).includes("T"), s.id)
    }).pipe(
      Effect.provide(muxOn(ab({ breaker: { failures: 1, cooldown: "30 seconds" }, tenants: { T: { rpm: 1 } } }), {
        models: {
          a: {
            latency: 100,
            faults: [
              fault("ThrottlingException", [1], "Too many requests, please wait before trying again."),
              fault("ServiceUnavailableException", [2])
            ]
          },
          b: { latency: 200 }
        }
      })),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("a registry emptied between calls counts again from the next call (the cached series notice)", () => {
    const registry = new Map()
    return Effect.gen(function*() {
      const mux = yield* BedrockMux
      yield* runFor(mux.converse(hello), "1 second")
      yield* runFor(mux.converse(hello), "1 second")
      assert.strictEqual(counter(yield* Metric.snapshot, "bedrock_mux.requests", { outcome: "success" }), 2)
      registry.clear()
      yield* runFor(mux.converse(hello), "1 second")
      const m = yield* Metric.snapshot
      assert.strictEqual(counter(m, "bedrock_mux.requests", { outcome: "success" }), 1)
      assert.strictEqual(counter(m, "bedrock_mux.attempts", { outcome: "success", "gen_ai.request.model": "a" }), 1)
    }).pipe(
      Effect.provide(muxOn(ab(), { models: { a: { latency: 100 }, b: { latency: 200 } } })),
      Effect.provideService(Metric.MetricRegistry, registry)
    )
  })

  it.effect("the metrics are the same whether or not anyone subscribes to mux.events", () => {
    // unsubscribed, a one-attempt success counts by the model's cached series, without building its events
    const run = (listen: boolean) =>
      Effect.gen(function*() {
        const mux = yield* BedrockMux
        if (listen) yield* recordEvents
        for (let i = 0; i < 6; i++) {
          yield* runFor(Effect.exit(mux.converse(hello)), "1 second")
          // a call of the user's own through the same router, in turns with converse on the same models
          if (i % 2 === 0) {
            yield* runFor(Effect.exit(mux.route((target) => target.runtime.converse({ ...hello, modelId: target.model.modelId }), { operation: "embed" })), "1 second")
          }
        }
        yield* runFor(Effect.exit(mux.converse(hello, { label: "b-only" })), "1 second")
        yield* runFor(MuxStream.collect(mux.converseStream(hello)), "1 second")
        const m = yield* Metric.snapshot
        return m.map((s) => JSON.stringify([s.id, s.attributes, s.state])).sort()
      }).pipe(
        Effect.scoped,
        Effect.provide(muxOn(
          { ...ab(), routes: { "b-only": ["b"] } } as MuxConfig.Input,
          {
            models: {
              // call 2 fails over to b, call 4 is a bad request (fails fast), the rest answer
              a: { latency: 100, faults: [fault("ServiceUnavailableException", [2]), fault("ValidationException", [4])] },
              b: { latency: 200 }
            }
          }
        )),
        Effect.provideService(Metric.MetricRegistry, new Map())
      )
    return Effect.gen(function*() {
      const quiet = yield* run(false)
      const listened = yield* run(true)
      assert.deepStrictEqual(quiet, listened)
      // the series the unsubscribed success path fills are there, with its counts
      assert.isTrue(quiet.some((s) => s.includes("bedrock_mux.requests") && s.includes("\"outcome\":\"success\"")))
      assert.strictEqual(quiet.filter((s) => s.includes("gen_ai.client.token.usage")).length, 4)
    })
  })

  it("the mux's own series state counts exactly as effect's counter and histogram, taken over at any point", () => {
    const value = fc.oneof(
      fc.double({ noNaN: false }),
      fc.constantFrom(0, 0.01, 0.02, 0.16, 163.84, 1, 4, 16, 1024, 67108864, -1, Infinity, -Infinity),
      fc.integer({ min: -10, max: 100_000_000 })
    )
    const boundaries = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84]
    fc.assert(
      fc.property(fc.array(value, { maxLength: 60 }), fc.nat(60), (values, split) => {
        const context = Context.make(Metric.MetricRegistry, new Map())
        const h = Metric.histogram("h", { boundaries })
        const c = Metric.counter("c", { incremental: true })
        const before = values.slice(0, split)
        const after = values.slice(split)
        for (const v of before) {
          h.updateUnsafe(v, context)
          c.updateUnsafe(v, context)
        }
        // the takeover: what effect's hooks counted so far, then the rest on ours
        const ownH = OwnedHistogram.from(h.valueUnsafe(context) as never)
        const ownC = OwnedCounter.from(c.valueUnsafe(context) as never)
        for (const v of after) {
          h.updateUnsafe(v, context)
          c.updateUnsafe(v, context)
          ownH.update(v)
          ownC.update(v)
        }
        assert.deepStrictEqual(ownH.get(), h.valueUnsafe(context) as never)
        assert.deepStrictEqual(ownC.get(), c.valueUnsafe(context) as never)
      }),
      { numRuns: 500 }
    )
  })

  it.effect("two muxes on one registry add up in the series they share; effect's own Metric.update adds to it too", () => {
    const registry = new Map()
    const duration = durationOfA
    const muxNamed = (name: string) =>
      Effect.map(
        Layer.build(muxOn({ name, models: [{ modelId: "a" }] } as MuxConfig.Input, { models: { a: { latency: 100 } } })),
        (context) => Context.get(context, BedrockMux)
      )
    return Effect.gen(function*() {
      const first = yield* muxNamed("first")
      const second = yield* muxNamed("second")
      // in turns: each mux's next update lands in the state the other one's took over
      for (const mux of [first, second, first, second]) {
        yield* runFor(mux.converse(hello), "1 second")
      }
      yield* Metric.update(duration, 0.5)
      const m = yield* Metric.snapshot
      // four attempts of 100 ms from the two muxes, and effect's own 0.5 s
      assert.deepStrictEqual(histogram(m, "gen_ai.client.operation.duration", { "gen_ai.request.model": "a" }), { count: 5, sum: 0.9 })
      assert.strictEqual(counter(m, "bedrock_mux.requests", { "bedrock_mux.name": "first", outcome: "success" }), 2)
      assert.strictEqual(counter(m, "bedrock_mux.requests", { "bedrock_mux.name": "second", outcome: "success" }), 2)
      // one series each: nothing was registered twice
      assert.strictEqual(seriesOf(m, "gen_ai.client.operation.duration").length, 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, registry))
  })

  it.effect("a series effect already counted is carried on; one registered with Metric.registerUnsafe is left to its own get", () => {
    const registry = new Map()
    const attributes = { "bedrock_mux.name": "bedrock-mux", operation: "converse", outcome: "success" }
    const requests = Metric.counter("bedrock_mux.requests", { description: "Requests by operation and outcome", incremental: true, attributes })
    const duration = durationOfA
    return Effect.gen(function*() {
      // counted by effect before the mux's first request
      yield* Metric.update(requests, 3)
      // a gauge-like series of the user's own under the mux's name for the attempt duration
      const registration = Metric.registerUnsafe(duration, yield* Effect.context<never>(), {
        get: () => ({ buckets: [], count: 42, min: 0, max: 0, sum: 0 }),
        update: () => {},
        modify: () => {}
      })
      const mux = yield* BedrockMux
      yield* runFor(mux.converse(hello), "1 second")
      yield* runFor(mux.converse(hello), "1 second")
      const m = yield* Metric.snapshot
      assert.strictEqual(counter(m, "bedrock_mux.requests", { outcome: "success" }), 5)
      assert.deepStrictEqual(histogram(m, "gen_ai.client.operation.duration", { "gen_ai.request.model": "a" }), { count: 42, sum: 0 })
      registration.remove()
      // removed, the series starts again from the next update
      yield* runFor(mux.converse(hello), "1 second")
      assert.deepStrictEqual(histogram(yield* Metric.snapshot, "gen_ai.client.operation.duration", { "gen_ai.request.model": "a" }), { count: 1, sum: 0.1 })
    }).pipe(
      Effect.provide(muxOn({ models: [{ modelId: "a" }] } as MuxConfig.Input, { models: { a: { latency: 100 } } })),
      Effect.provideService(Metric.MetricRegistry, registry)
    )
  })

  it.effect("a hedge is counted on the hedge's model", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      yield* runFor(MuxStream.collect(mux.converseStream(hello, { hedge: { after: "1 second" } })), "1 minute")
      const m = yield* Metric.snapshot
      assert.strictEqual(counter(m, "bedrock_mux.hedges", { "bedrock_mux.target": "b" }), 1)
      assert.strictEqual(counter(m, "bedrock_mux.attempts", { outcome: "interrupted", "gen_ai.request.model": "a" }), 1)
    }).pipe(
      Effect.provide(muxOn(ab(), { models: { a: { latency: 5000 }, b: { latency: 200 } } })),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))
})

// --- 3. exported through @effect/opentelemetry ----------------------------------------------------

const PROMPT = "prompt-marker-4f1c9e"
const ANSWER = "answer-marker-b7d203"
const marked: MuxRequest = { messages: [{ role: "user", content: [{ text: `Tell me about ${PROMPT}` }] }] }

/** NodeSdk.layer with in-memory exporters; read spans before the layer closes (shutdown clears them). */
const otel = () => {
  const spans = new InMemorySpanExporter()
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 })
  const layer = NodeSdk.layer(() => ({
    resource: { serviceName: "telemetry-test" },
    spanProcessor: new SimpleSpanProcessor(spans),
    metricReader: reader
  }))
  const exportedMetrics = Effect.promise(() => reader.forceFlush()).pipe(
    Effect.map(() => metrics.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics)))
  )
  return { layer, spans: () => spans.getFinishedSpans(), exportedMetrics }
}

/** Runs `body` with a mux on a zero-latency simulator and OpenTelemetry installed, on an isolated metric registry. */
const withOtel = <A, E>(
  config: MuxConfig.Input,
  script: SimulatorScript.ScriptInput,
  body: (o: ReturnType<typeof otel>) => Effect.Effect<A, E, BedrockMux | Scope.Scope>
) => {
  const o = otel()
  return body(o).pipe(
    Effect.provide(BedrockMux.layer(config).pipe(Layer.provide(BedrockSimulator.layer(script)))),
    Effect.provide(o.layer),
    Effect.provideService(Metric.MetricRegistry, new Map())
  )
}

const spanId = (s: ReadableSpan) => s.spanContext().spanId
const parentId = (s: ReadableSpan) => s.parentSpanContext?.spanId
const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((s) => s.name === name)

/** Every string an exported span carries: name, attribute values, event names and attribute values, status message. */
const spanText = (s: ReadableSpan): Array<string> => [
  s.name,
  s.status.message ?? "",
  ...Object.entries(s.attributes).map(([k, v]) => `${k}=${String(v)}`),
  ...s.events.flatMap((e) => [e.name, ...Object.entries(e.attributes ?? {}).map(([k, v]) => `${k}=${String(v)}`)])
]

const dataPoints = (metrics: ReadonlyArray<MetricData>, name: string) =>
  metrics.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as ReadonlyArray<{ attributes: Record<string, unknown>; value: unknown }>)

describe("OpenTelemetry export", () => {
  it.live("the request span is the parent of its attempt spans; gen_ai attributes; error.type on the failed attempt", () =>
    withOtel(ab(), { models: { a: { faults: [fault("ServiceUnavailableException", [1])] }, b: {} } }, (o) =>
      Effect.gen(function*() {
        const res = yield* (yield* BedrockMux).converse(hello)
        const spans = o.spans()
        const [request] = named(spans, "chat bedrock-mux")
        const [onA] = named(spans, "chat a")
        const [onB] = named(spans, "chat b")
        assert.isDefined(request)
        assert.isDefined(onA)
        assert.isDefined(onB)
        assert.strictEqual(spans.length, 3)
        assert.isUndefined(parentId(request!))
        assert.strictEqual(parentId(onA!), spanId(request!))
        assert.strictEqual(parentId(onB!), spanId(request!))
        assert.strictEqual(onA!.spanContext().traceId, request!.spanContext().traceId)

        assert.deepInclude(request!.attributes, {
          "gen_ai.operation.name": "chat",
          "gen_ai.system": "aws.bedrock",
          "gen_ai.provider.name": "aws.bedrock",
          "bedrock_mux.operation": "converse",
          "gen_ai.response.model": "b",
          "gen_ai.usage.input_tokens": res.usage!.inputTokens!,
          "gen_ai.usage.output_tokens": res.usage!.outputTokens!,
          "bedrock_mux.attempts": 2,
          "bedrock_mux.fallback_used": true
        })
        assert.strictEqual(request!.status.code, SpanStatusCode.OK)
        assert.deepInclude(onA!.attributes, {
          "gen_ai.system": "aws.bedrock",
          "gen_ai.request.model": "a",
          "error.type": "ServiceUnavailable"
        })
        assert.strictEqual(onA!.status.code, SpanStatusCode.ERROR)
        assert.deepInclude(onB!.attributes, { "gen_ai.system": "aws.bedrock", "gen_ai.request.model": "b" })
        assert.notProperty(onB!.attributes, "error.type")
        assert.strictEqual(onB!.status.code, SpanStatusCode.OK)
      })))

  it.live("a failed request: ERROR status and error.type (the MuxError reason) on the request span", () =>
    withOtel({ models: [{ modelId: "a" }] }, { models: { a: { faults: [fault("AccessDeniedException", [1])] } } }, (o) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit((yield* BedrockMux).converse(hello))
        assert.isTrue(Exit.isFailure(exit))
        const [request] = named(o.spans(), "chat bedrock-mux")
        const [onA] = named(o.spans(), "chat a")
        assert.strictEqual(request!.status.code, SpanStatusCode.ERROR)
        assert.deepInclude(request!.attributes, { "error.type": "Failed", "bedrock_mux.attempts": 1 })
        assert.notProperty(request!.attributes, "gen_ai.response.model")
        assert.strictEqual(onA!.status.code, SpanStatusCode.ERROR)
        assert.strictEqual(onA!.attributes["error.type"], "AccessDenied")
        assert.strictEqual(parentId(onA!), spanId(request!))
      })))

  it.live("the exported metrics: operation duration and token usage with their gen_ai attributes", () =>
    withOtel(ab(), { models: { a: { faults: [fault("ServiceUnavailableException", [1])] }, b: {} } }, (o) =>
      Effect.gen(function*() {
        const res = yield* (yield* BedrockMux).converse(hello)
        const metrics = yield* o.exportedMetrics
        const names = new Set(metrics.map((m) => m.descriptor.name))
        for (const name of ["gen_ai.client.operation.duration", "gen_ai.client.token.usage", "bedrock_mux.attempts", "bedrock_mux.failovers", "bedrock_mux.requests"]) {
          assert.isTrue(names.has(name), name)
        }
        const durations = dataPoints(metrics, "gen_ai.client.operation.duration")
        assert.deepStrictEqual(
          durations.map((d) => d.attributes).sort((x, y) => String(x["gen_ai.request.model"]).localeCompare(String(y["gen_ai.request.model"]))),
          [
            {
              "gen_ai.system": "aws.bedrock",
              "gen_ai.provider.name": "aws.bedrock",
              "gen_ai.operation.name": "chat",
              "gen_ai.request.model": "a",
              "error.type": "ServiceUnavailable"
            },
            {
              "gen_ai.system": "aws.bedrock",
              "gen_ai.provider.name": "aws.bedrock",
              "gen_ai.operation.name": "chat",
              "gen_ai.request.model": "b",
              "gen_ai.response.model": "b"
            }
          ]
        )
        const tokens = dataPoints(metrics, "gen_ai.client.token.usage")
        const byType = (type: string) => tokens.find((d) => d.attributes["gen_ai.token.type"] === type)
        assert.deepInclude(byType("input")!.attributes, { "gen_ai.system": "aws.bedrock", "gen_ai.response.model": "b", "gen_ai.operation.name": "chat" })
        assert.strictEqual((byType("input")!.value as { sum: number }).sum, res.usage!.inputTokens)
        assert.strictEqual((byType("output")!.value as { sum: number }).sum, res.usage!.outputTokens)
        assert.deepStrictEqual(
          dataPoints(metrics, "bedrock_mux.failovers").map((d) => [d.attributes["error.type"], d.value]),
          [["ServiceUnavailable", 1]]
        )
      })))

  // the request span of a stream: as for converse, one span for the request with the attempts under it
  it.live("converseStream: a request span 'chat bedrock-mux' is the parent of the stream's attempt spans", () =>
    withOtel(ab(), { models: { a: { faults: [fault("ServiceUnavailableException", [1])] }, b: {} } }, (o) =>
      Effect.gen(function*() {
        const answer = yield* MuxStream.collect((yield* BedrockMux).converseStream(hello))
        assert.strictEqual(answer.routing?.modelId, "b")
        const spans = o.spans()
        const [request] = named(spans, "chat bedrock-mux")
        assert.isDefined(request, `spans: ${spans.map((s) => s.name).join(", ")}`)
        assert.deepInclude(request!.attributes, { "bedrock_mux.operation": "converse_stream", "gen_ai.response.model": "b" })
        for (const name of ["chat a", "chat b"]) assert.strictEqual(parentId(named(spans, name)[0]!), spanId(request!), name)
      })))
})

// --- 4. privacy -----------------------------------------------------------------------------------

describe("privacy", () => {
  const script: SimulatorScript.ScriptInput = {
    models: { a: { faults: [fault("ServiceUnavailableException", [1])], answer: `The answer is ${ANSWER}.` }, b: { answer: `The answer is ${ANSWER}.` } }
  }

  it.live("by default no span, span event, metric or mux event carries the prompt or the answer", () =>
    withOtel(ab(), script, (o) =>
      Effect.gen(function*() {
        const mux = yield* BedrockMux
        const seen = yield* recordEvents
        const res = yield* mux.converse(marked) // a fails, b answers
        const streamed = yield* MuxStream.collect(mux.converseStream(marked)) // a answers
        assert.include(res.output?.message?.content?.[0]?.text, ANSWER) // the markers are really there
        assert.include(streamed.text, ANSWER)
        yield* settle
        const spans = o.spans()
        assert.isAbove(spans.length, 3)
        const text = [
          ...spans.flatMap(spanText),
          ...(yield* o.exportedMetrics).flatMap((m) => [m.descriptor.name, ...m.dataPoints.flatMap((d) => Object.values(d.attributes).map(String))]),
          JSON.stringify(seen)
        ]
        assert.isAbove(seen.length, 0)
        for (const t of text) {
          assert.notInclude(t, PROMPT)
          assert.notInclude(t, ANSWER)
        }
        for (const s of spans) {
          assert.notProperty(s.attributes, "gen_ai.input.messages")
          assert.notProperty(s.attributes, "gen_ai.output.messages")
        }
      })))

  it.live("with captureBodies: true the request span has gen_ai.input.messages (the prompt) and gen_ai.output.messages (the answer)", () =>
    withOtel(ab({ captureBodies: true }), script, (o) =>
      Effect.gen(function*() {
        yield* (yield* BedrockMux).converse(marked)
        const [request] = named(o.spans(), "chat bedrock-mux")
        const input = request!.attributes["gen_ai.input.messages"]
        const output = request!.attributes["gen_ai.output.messages"]
        assert.isString(input)
        assert.isString(output)
        assert.include(input as string, PROMPT)
        assert.notInclude(input as string, ANSWER)
        assert.include(output as string, ANSWER)
        assert.deepStrictEqual(JSON.parse(input as string), marked.messages)
        // the attempt spans stay without bodies
        for (const s of o.spans().filter((s) => s !== request)) {
          for (const t of spanText(s)) {
            assert.notInclude(t, PROMPT)
            assert.notInclude(t, ANSWER)
          }
        }
      })))

  // a answers run 1 and fails on call 2 (run 2 fails over to b): the two runs answer different texts
  const twoAnswers: SimulatorScript.ScriptInput = {
    models: { a: { faults: [fault("ServiceUnavailableException", [2])], answer: `A says ${ANSWER}.` }, b: { answer: `B replies ${ANSWER} too.` } }
  }
  /** The text of the request span's `gen_ai.output.messages` (one assistant message, one text block). */
  const capturedText = (span: ReadableSpan): string => {
    const output = span.attributes["gen_ai.output.messages"]
    assert.isString(output)
    const messages = JSON.parse(output as string) as ReadonlyArray<{ role: string; content: ReadonlyArray<{ text: string }> }>
    assert.strictEqual(messages.length, 1)
    assert.strictEqual(messages[0]!.role, "assistant")
    return messages[0]!.content.map((c) => c.text).join("")
  }

  it.live("with captureBodies: true, two runs of one converseStream value each capture exactly their own answer", () =>
    withOtel(ab({ captureBodies: true }), twoAnswers, (o) =>
      Effect.gen(function*() {
        const stream = (yield* BedrockMux).converseStream(marked) // one Stream value, run twice
        const first = yield* MuxStream.collect(stream)
        const second = yield* MuxStream.collect(stream)
        assert.deepStrictEqual([first.routing?.modelId, second.routing?.modelId], ["a", "b"])
        assert.strictEqual(first.text, `A says ${ANSWER}.`)
        assert.strictEqual(second.text, `B replies ${ANSWER} too.`)
        const requests = named(o.spans(), "chat bedrock-mux")
        assert.strictEqual(requests.length, 2)
        // spans end in order: run 1's first; each holds its own run's text, not the two concatenated
        assert.deepStrictEqual(requests.map(capturedText), [first.text, second.text])
        assert.deepStrictEqual(requests.map((s) => s.attributes["gen_ai.response.model"]), ["a", "b"])
      })))

  it.live("with captureBodies: true, two concurrent runs of one converseStream value each capture exactly their own answer", () =>
    withOtel(ab({ captureBodies: true }), twoAnswers, (o) =>
      Effect.gen(function*() {
        const stream = (yield* BedrockMux).converseStream(marked)
        const answers = yield* Effect.all([MuxStream.collect(stream), MuxStream.collect(stream)], { concurrency: "unbounded" })
        // which run took a's first call is not fixed; one ran on a, the other on b
        assert.sameMembers(answers.map((a) => a.text), [`A says ${ANSWER}.`, `B replies ${ANSWER} too.`])
        const requests = named(o.spans(), "chat bedrock-mux")
        assert.strictEqual(requests.length, 2)
        const byModel = new Map(requests.map((s) => [s.attributes["gen_ai.response.model"], capturedText(s)]))
        assert.deepStrictEqual(Object.fromEntries(byModel), { a: `A says ${ANSWER}.`, b: `B replies ${ANSWER} too.` })
      })))

  it.live("without captureBodies a stream's request span records no body attribute", () =>
    withOtel(ab(), twoAnswers, (o) =>
      Effect.gen(function*() {
        const streamed = yield* MuxStream.collect((yield* BedrockMux).converseStream(marked))
        assert.strictEqual(streamed.text, `A says ${ANSWER}.`)
        const [request] = named(o.spans(), "chat bedrock-mux")
        assert.isDefined(request)
        assert.strictEqual(request!.attributes["bedrock_mux.operation"], "converse_stream")
        assert.strictEqual(request!.attributes["gen_ai.response.model"], "a") // annotated on success, without the body
        for (const s of o.spans()) {
          assert.notProperty(s.attributes, "gen_ai.input.messages")
          assert.notProperty(s.attributes, "gen_ai.output.messages")
          for (const t of spanText(s)) assert.notInclude(t, ANSWER)
        }
      })))
})
