/**
 * `converseStream` end to end on the simulator and under TestClock: failover
 * before the commit point (the first content event), StreamInterrupted or a
 * restart after it, completion at messageStop, the first-token, stall,
 * metadata and request deadlines, the consumer stopping, hedging, breakers,
 * quotas, options and config, and properties over random pools and faults.
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Layer, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux, type MuxStreamRequest, type StreamOptions } from "../src/BedrockMux.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import * as MuxConfig from "../src/MuxConfig.ts"
import type { AttemptRecord } from "../src/MuxError.ts"
import * as MuxStore from "../src/MuxStore.ts"
import * as MuxStream from "../src/MuxStream.ts"
import * as Policy from "../src/Policy.ts"
import * as SimulatorScript from "../src/SimulatorScript.ts"
import { muxError, runFor, success } from "./support/mux.ts"

// --- helpers ------------------------------------------------------------------------------------

/** "hello": the default estimator says ceil(5 / 4) + 3 = 5 input tokens. */
const hello: MuxStreamRequest = { messages: [{ role: "user", content: [{ text: "hello" }] }] }
const HELLO_TOKENS = 5

type PolicyOption = (p: Policy.Policy) => Policy.Policy

/** The mux on the simulator (both services exposed); optionally a store of the test's own and a policy. */
const muxOn = (
  config: MuxConfig.Input,
  script: SimulatorScript.ScriptInput,
  options: { readonly store?: MuxStore.Service; readonly policy?: PolicyOption } = {}
) => {
  let mux = BedrockMux.layer(config, options.policy === undefined ? {} : { policy: options.policy })
  if (options.store !== undefined) mux = mux.pipe(Layer.provide(Layer.succeed(MuxStore.MuxStore, options.store)))
  return mux.pipe(Layer.provideMerge(BedrockSimulator.layer(script)))
}

/** The mux on a hand-written ConverseStream. */
const muxOnStream = (
  config: MuxConfig.Input,
  converseStream: BedrockRuntime["Service"]["converseStream"]
) =>
  BedrockMux.layer(config).pipe(
    Layer.provide(Layer.succeed(BedrockRuntime, BedrockRuntime.of({ converse: () => Effect.die("not used"), converseStream })))
  )

/** primary (tier 0) and fallback (tier 1), tried in that order */
const primaryFallback = (extra: Record<string, unknown> = {}) =>
  ({ models: [{ modelId: "primary" }, { modelId: "fallback", isFallback: true }], selection: "ordered", ...extra }) as MuxConfig.Input

interface Seen {
  readonly event: MuxStream.Event
  readonly at: number
}

/**
 * Runs one stream to its end, keeping every event with its virtual arrival
 * time, and how (and when) it ended.
 */
const record = (options?: StreamOptions, request: MuxStreamRequest = hello) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const seen: Array<Seen> = []
    const exit = yield* mux.converseStream(request, options).pipe(
      Stream.runForEach((event) => Effect.map(Clock.currentTimeMillis, (at) => void seen.push({ event, at }))),
      Effect.exit
    )
    const at = yield* Clock.currentTimeMillis
    return { seen, events: seen.map((s) => s.event), exit, at }
  })

type Recorded = Effect.Success<ReturnType<typeof record>>

/** The mux's stream as a value. */
const muxStream = (options?: StreamOptions, request: MuxStreamRequest = hello) =>
  Stream.unwrap(Effect.gen(function*() {
    return (yield* BedrockMux).converseStream(request, options)
  }))

/** The text of every delta, in order (resets not applied). */
const textOf = (events: ReadonlyArray<MuxStream.Event>) => events.map((e) => e.contentBlockDelta?.delta?.text ?? "").join("")

/** The name of each event: its one key. */
const kinds = (events: ReadonlyArray<MuxStream.Event>) => events.map((e) => Object.keys(e).filter((k) => (e as unknown as Record<string, unknown>)[k] !== undefined)[0])

/** The routing record of a successful stream: its last event, and the only one. */
const routingOf = (r: Recorded) => {
  success(r.exit)
  const last = r.events[r.events.length - 1]!
  assert.isTrue(MuxStream.isRouting(last), `last event: ${JSON.stringify(last)}`)
  assert.strictEqual(r.events.filter(MuxStream.isRouting).length, 1)
  return (last as MuxStream.RoutingEvent).routing
}

/** The StreamInterrupted reason of a failed stream (fails the test on any other outcome). */
const interruptedOf = (r: Recorded) => {
  const error = muxError(r.exit)
  if (error.reason._tag !== "StreamInterrupted") assert.fail(`expected StreamInterrupted, got ${error.reason._tag}: ${error.message}`)
  return { error, reason: error.reason }
}

const brief = (a: AttemptRecord) => [a.modelId, a.outcome, a.reason, a.decision].filter((x) => x !== undefined).join(" ")

const healthOf = (modelId: string) =>
  Effect.gen(function*() {
    const health = yield* (yield* BedrockMux).health
    return health.models.find((x) => x.modelId === modelId)!
  })

const simAttempts = BedrockSimulator.attempts

/** What the store holds in a quota's sliding minute now. */
const usage = (store: MuxStore.Service, key: string) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.orDie(store.usage(key, now)))

const PRIMARY = "p1 p2 p3 p4"
const FALLBACK = "f1 f2 f3"

// --- 1. before the first content event: transparent failover -----------------------------------

describe("before the first content event: failover out of sight", () => {
  // each fault of the primary, before any content; the fallback answers at 200 ms of its own
  const cases: ReadonlyArray<{
    readonly name: string
    readonly fault: Record<string, unknown>
    readonly reason: BedrockError.ReasonTag
    /** when the primary's attempt fails */
    readonly failsAt: number
  }> = [
    { name: "HTTP 503", fault: { kind: "error", error: "ServiceUnavailableException", after: 50 }, reason: "ServiceUnavailable", failsAt: 50 },
    { name: "a cut before the first frame", fault: { kind: "cut", afterTokens: 0 }, reason: "Network", failsAt: 100 },
    { name: "an in-stream modelStreamErrorException", fault: { kind: "streamError", afterTokens: 0, error: "modelStreamErrorException" }, reason: "ModelStreamError", failsAt: 100 },
    { name: "an in-stream serviceUnavailableException", fault: { kind: "streamError", afterTokens: 0, error: "serviceUnavailableException" }, reason: "ServiceUnavailable", failsAt: 100 },
    { name: "a malformed frame", fault: { kind: "malformed", afterTokens: 0 }, reason: "Incomplete", failsAt: 100 },
    { name: "messageStart, then the end (empty output)", fault: { kind: "emptyOutput" }, reason: "Incomplete", failsAt: 100 },
    { name: "a hang (first-token limit)", fault: { kind: "hang" }, reason: "DeadlineExceeded", failsAt: 2_000 },
    { name: "a stall before the first token (first-token limit)", fault: { kind: "stall", afterTokens: 0 }, reason: "DeadlineExceeded", failsAt: 2_000 },
    { name: "a first token slower than the limit", fault: { kind: "slow", firstToken: "30 seconds" }, reason: "DeadlineExceeded", failsAt: 2_000 }
  ]
  for (const c of cases) {
    it.effect(`${c.name}: the caller gets exactly the fallback's whole answer at ${c.failsAt} + 200 ms`, () =>
      Effect.gen(function*() {
        const r = yield* runFor(record({ firstTokenTimeout: "2 seconds" }))
        const routing = routingOf(r)
        // one clean stream: the fallback's events, untouched, then the routing record
        assert.deepStrictEqual(kinds(r.events), [
          "messageStart",
          "contentBlockDelta",
          "contentBlockDelta",
          "contentBlockDelta",
          "contentBlockStop",
          "messageStop",
          "metadata",
          "routing"
        ])
        assert.strictEqual(textOf(r.events), FALLBACK)
        assert.isFalse(r.events.some(MuxStream.isReset))
        assert.strictEqual(routing.modelId, "fallback")
        assert.isTrue(routing.fallbackUsed)
        assert.strictEqual(routing.restarts, 0)
        assert.deepStrictEqual(routing.attempts.map(brief), [`primary ${c.reason === "DeadlineExceeded" ? "interrupted" : "failure"} ${c.reason} failover`, "fallback success"])
        assert.strictEqual(routing.timeToFirstTokenMs, 200)
        // a first-token limit that expired says so on its record
        assert.deepStrictEqual(routing.attempts.map((a) => a.limitMs), [c.reason === "DeadlineExceeded" ? 2_000 : undefined, undefined])
        assert.strictEqual(r.at, c.failsAt + 200)
        assert.isTrue(r.seen.every((s) => s.at === c.failsAt + 200))
        assert.strictEqual(routing.durationMs, c.failsAt + 200)
        // the fallback's own usage, as it reported it
        assert.deepStrictEqual(routing.usage, { inputTokens: HELLO_TOKENS, outputTokens: 3, totalTokens: HELLO_TOKENS + 3, estimated: false })
        // the primary's call ended (failed or aborted) when its attempt did
        const primary = (yield* simAttempts).filter((a) => a.modelId === "primary")
        assert.strictEqual(primary.length, 1)
        assert.strictEqual(primary[0]!.end, c.failsAt)
        assert.strictEqual(primary[0]!.outputTokens, 0)
      }).pipe(Effect.provide(muxOn(primaryFallback(), {
        models: {
          primary: { firstToken: 100, answer: PRIMARY, faults: [{ do: c.fault }] },
          fallback: { firstToken: 200, answer: FALLBACK }
        }
      } as unknown as SimulatorScript.ScriptInput))))
  }

  it.effect("an in-stream throttlingException before content: the fallback's whole answer; the throttled model cools down", () =>
    Effect.gen(function*() {
      const { r, primary, next } = yield* runFor(Effect.gen(function*() {
        const r = yield* record()
        const primary = yield* healthOf("primary")
        // while it cools down, the next stream goes straight to the fallback
        const next = yield* record()
        return { r, primary, next }
      }))
      const routing = routingOf(r)
      assert.strictEqual(textOf(r.events), FALLBACK)
      assert.deepStrictEqual(routing.attempts.map(brief), ["primary failure Throttled failover", "fallback success"])
      // out of rotation for the first cooldown of a throttle (500 ms) from the throttle at 100 ms; a throttle is not health
      assert.deepStrictEqual(primary.cooldown, { until: 100 + 500, kind: "requests" })
      assert.isFalse(primary.available)
      assert.strictEqual(primary.breaker, "closed")
      assert.strictEqual(primary.throttles, 1)
      assert.strictEqual(primary.failures, 0)
      assert.deepStrictEqual(routingOf(next).attempts.map(brief), ["fallback success"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: {
        primary: { firstToken: 100, answer: PRIMARY, faults: [{ do: { kind: "streamError", afterTokens: 0, error: "throttlingException" } }] },
        fallback: { firstToken: 200, answer: FALLBACK }
      }
    }))))

  it.effect("a validationException before content fails fast (the request is at fault): no fallback call", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const error = muxError(r.exit)
      assert.strictEqual(error.reason._tag, "Failed")
      assert.deepStrictEqual(error.attempts.map(brief), ["primary failure Validation fail-fast"])
      assert.deepStrictEqual(r.events, [])
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["primary"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: {
        primary: { firstToken: 100, faults: [{ do: { kind: "streamError", afterTokens: 0, error: "validationException" } }] },
        fallback: { firstToken: 200 }
      }
    }))))

  it.effect("time to rescue a stalled first token is the first-token limit plus the fallback's time", () =>
    Effect.gen(function*() {
      // the policy says 3 s; the primary would start after 60 s
      const r = yield* runFor(record())
      const routing = routingOf(r)
      assert.strictEqual(routing.modelId, "fallback")
      assert.strictEqual(r.seen.find((s) => s.event.contentBlockDelta !== undefined)!.at, 3_000 + 400)
      // 3 tokens at 10 per second after the first
      assert.strictEqual(r.at, 3_000 + 400 + 200)
      assert.strictEqual(routing.timeToFirstTokenMs, 400)
      assert.strictEqual(routing.durationMs, 3_600)
      const [primary] = (yield* simAttempts).filter((a) => a.modelId === "primary")
      assert.deepStrictEqual([primary!.end, primary!.outcome], [3_000, "interrupted"])
    }).pipe(Effect.provide(muxOn(
      primaryFallback({ stream: { firstTokenTimeout: "3 seconds" } }),
      { models: { primary: { firstToken: "60 seconds", answer: PRIMARY }, fallback: { firstToken: 400, tokensPerSecond: 10, answer: FALLBACK } } }
    ))))

  it.effect("a per-request firstTokenTimeout overrides the policy's", () =>
    Effect.gen(function*() {
      // the policy's 1 s would fail the primary over; the request allows 5 s
      const r = yield* runFor(record({ firstTokenTimeout: "5 seconds" }))
      assert.strictEqual(routingOf(r).modelId, "primary")
      assert.strictEqual(r.at, 3_000)
      const strict = yield* runFor(record())
      assert.strictEqual(routingOf(strict).modelId, "fallback")
    }).pipe(Effect.provide(muxOn(
      primaryFallback({ stream: { firstTokenTimeout: "1 second" } }),
      { models: { primary: { firstToken: "3 seconds", answer: PRIMARY }, fallback: { firstToken: 100, answer: FALLBACK } } }
    ))))

  it.effect("a model timeout shorter than the first-token limit bounds the first token as an attempt timeout", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      assert.deepStrictEqual(routingOf(r).attempts.map(brief), ["primary interrupted DeadlineExceeded failover", "fallback success"])
      assert.strictEqual(r.at, 500 + 100)
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "primary", timeout: 500 }, { modelId: "fallback", isFallback: true }] },
      { models: { primary: { firstToken: "3 seconds", answer: PRIMARY }, fallback: { firstToken: 100, answer: FALLBACK } } }
    ))))

  it.effect("the request deadline before any content: DeadlineExceeded at the deadline, nothing delivered", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ deadline: "1 second" }))
      const error = muxError(r.exit)
      assert.strictEqual(error.reason._tag, "DeadlineExceeded")
      assert.strictEqual(r.at, 1_000)
      assert.deepStrictEqual(r.events, [])
      assert.deepStrictEqual(error.attempts.map(brief), ["primary interrupted DeadlineExceeded stop"])
    }).pipe(Effect.provide(muxOn(
      primaryFallback(),
      { models: { primary: { firstToken: "3 seconds" }, fallback: { firstToken: 100 } } }
    ))))
})

// --- 2. after content: never a splice -----------------------------------------------------------

/** primary: first token at 100 ms, then 10 tokens per second; fallback: first token at 200 ms, all at once */
const afterContent = (fault: Record<string, unknown>, extra: Record<string, unknown> = {}, when: Record<string, unknown> | "always" = { calls: 1 }) =>
  muxOn(primaryFallback(extra), {
    models: {
      primary: { firstToken: 100, tokensPerSecond: 10, answer: PRIMARY, faults: [{ ...(when !== "always" ? { when } : {}), do: fault }] },
      fallback: { firstToken: 200, answer: FALLBACK }
    }
  } as unknown as SimulatorScript.ScriptInput)

describe("after content: StreamInterrupted, or a reset and the whole answer of another model", () => {
  it.effect("a cut after 2 tokens: StreamInterrupted with the delivered count and the partial usage; nothing of another model", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const { error, reason } = interruptedOf(r)
      // the primary's messageStart and 2 deltas reached the caller, then the failure (at the cut: 100 + 100 ms)
      assert.deepStrictEqual(kinds(r.events), ["messageStart", "contentBlockDelta", "contentBlockDelta"])
      assert.strictEqual(textOf(r.events), "p1 p2")
      assert.strictEqual(r.at, 200)
      assert.strictEqual(reason.modelId, "primary")
      assert.strictEqual(reason.target, "primary")
      assert.strictEqual(reason.delivered, 2)
      assert.strictEqual(reason.error.reason._tag, "Network")
      // no metadata came: estimated, input by the policy's estimator and output from the 5 characters delivered
      assert.deepStrictEqual(reason.partial, { inputTokens: HELLO_TOKENS, outputTokens: 2, totalTokens: HELLO_TOKENS + 2, estimated: true })
      assert.deepStrictEqual(error.attempts.map(brief), ["primary failure Network stop"])
      assert.strictEqual(error.last, reason.error)
      // the fallback was never called
      assert.deepStrictEqual((yield* simAttempts).map((a) => [a.modelId, a.outcome]), [["primary", "cut"]])
      // a failure of the model: counted as such
      const primary = yield* healthOf("primary")
      assert.strictEqual(primary.failures, 1)
      assert.strictEqual(primary.successes, 0)
    }).pipe(Effect.provide(afterContent({ kind: "cut", afterTokens: 2 }))))

  it.effect("the same with onInterrupt restart: the partial answer, one reset, then the fallback's whole answer", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ onInterrupt: "restart" }))
      const routing = routingOf(r)
      assert.deepStrictEqual(kinds(r.events), [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "reset",
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
        "routing"
      ])
      const resetAt = r.events.findIndex(MuxStream.isReset)
      assert.strictEqual(textOf(r.events.slice(0, resetAt)), "p1 p2")
      assert.strictEqual(textOf(r.events.slice(resetAt)), FALLBACK)
      const { reset } = r.events[resetAt] as MuxStream.ResetEvent
      assert.strictEqual(reset.modelId, "primary")
      assert.strictEqual(reset.target, "primary")
      assert.strictEqual(reset.reason, "Network")
      assert.strictEqual(reset.error.reason._tag, "Network")
      assert.strictEqual(reset.discarded, 2)
      // the reset goes out with the new answer's first events, once the fallback (started at the cut, 200 ms) delivers
      assert.strictEqual(r.seen[resetAt]!.at, 400)
      // and the fallback's answer is complete at 200 + 200 ms
      assert.strictEqual(r.at, 400)
      assert.strictEqual(routing.modelId, "fallback")
      assert.strictEqual(routing.restarts, 1)
      assert.deepStrictEqual(routing.attempts.map(brief), ["primary failure Network failover", "fallback success"])
      // the answering attempt's own time to first token and the fallback's usage only
      assert.strictEqual(routing.timeToFirstTokenMs, 200)
      assert.strictEqual(routing.durationMs, 400)
      assert.deepStrictEqual(routing.usage, { inputTokens: HELLO_TOKENS, outputTokens: 3, totalTokens: HELLO_TOKENS + 3, estimated: false })
    }).pipe(Effect.provide(afterContent({ kind: "cut", afterTokens: 2 }))))


  it.effect("MuxStream.collect applies the reset: the fallback's text, one reset; restart set in the config", () =>
    Effect.gen(function*() {
      const answer = yield* runFor(MuxStream.collect(muxStream()))
      assert.strictEqual(answer.text, FALLBACK)
      assert.strictEqual(answer.resets, 1)
      assert.strictEqual(answer.routing?.modelId, "fallback")
      assert.strictEqual(answer.routing?.restarts, 1)
      // a per-request "fail" overrides the config's restart
      const r = yield* runFor(record({ onInterrupt: "fail" }))
      assert.strictEqual(interruptedOf(r).reason.delivered, 3)
      // the primary cuts on every call here
    }).pipe(Effect.provide(afterContent({ kind: "cut", afterTokens: 3 }, { stream: { onInterrupt: "restart" } }, "always"))))

  it.effect("restart with no model left: no reset (none could follow); StreamInterrupted with the partial usage", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ onInterrupt: "restart" }))
      const error = muxError(r.exit)
      assert.strictEqual(error.reason._tag, "StreamInterrupted")
      if (error.reason._tag === "StreamInterrupted") {
        assert.strictEqual(error.reason.delivered, 1)
        assert.isTrue(error.reason.partial.estimated)
        assert.include(error.message, "no restart possible")
      }
      assert.deepStrictEqual(kinds(r.events), ["messageStart", "contentBlockDelta"])
      assert.deepStrictEqual(error.attempts.map(brief), ["only failure Network failover"])
      assert.strictEqual((yield* simAttempts).length, 1)
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "only" }] }, {
      models: { only: { firstToken: 100, answer: PRIMARY, faults: [{ do: { kind: "cut", afterTokens: 1 } }] } }
    }))))

  it.effect("restart: a second failure after content restarts again; each abandoned answer ends with its own reset", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ onInterrupt: "restart" }))
      const routing = routingOf(r)
      assert.deepStrictEqual(kinds(r.events).filter((k) => k === "reset" || k === "messageStart"), ["messageStart", "reset", "messageStart", "reset", "messageStart"])
      assert.strictEqual(routing.modelId, "c")
      assert.strictEqual(routing.restarts, 2)
      assert.deepStrictEqual(routing.attempts.map(brief), ["a failure Network failover", "b failure ModelStreamError failover", "c success"])
      const resets = r.events.filter(MuxStream.isReset).map((e) => [e.reset.modelId, e.reset.reason, e.reset.discarded])
      assert.deepStrictEqual(resets, [["a", "Network", 1], ["b", "ModelStreamError", 2]])
      const lastReset = r.events.findLastIndex(MuxStream.isReset)
      assert.strictEqual(textOf(r.events.slice(lastReset)), "c1 c2")
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }, { modelId: "b", tier: 1 }, { modelId: "c", tier: 2 }] }, {
      models: {
        a: { firstToken: 100, answer: "a1 a2 a3", faults: [{ do: { kind: "cut", afterTokens: 1 } }] },
        b: { firstToken: 100, answer: "b1 b2 b3", faults: [{ do: { kind: "streamError", afterTokens: 2, error: "modelStreamErrorException" } }] },
        c: { firstToken: 100, answer: "c1 c2" }
      }
    }))))

  it.effect("restart: a model that failed before the commit point is out of the new route too", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ onInterrupt: "restart" }))
      const routing = routingOf(r)
      assert.strictEqual(routing.modelId, "c")
      // a was tried (and failed over) already: the restart goes to c, not back to a
      assert.deepStrictEqual(routing.attempts.map(brief), [
        "a failure ServiceUnavailable failover",
        "b failure Network failover",
        "c success"
      ])
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["a", "b", "c"])
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }, { modelId: "b" }, { modelId: "c" }], selection: "ordered", attempts: 3 }, {
      models: {
        a: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
        b: { firstToken: 100, answer: "b1 b2 b3", faults: [{ do: { kind: "cut", afterTokens: 1 } }] },
        c: { firstToken: 100, answer: "c1 c2" }
      }
    }))))

  it.effect("restart counts against the attempts budget: attempts 1 leaves no restart", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ onInterrupt: "restart" }))
      const error = muxError(r.exit)
      assert.strictEqual(error.reason._tag, "StreamInterrupted")
      assert.include(error.message, "all 1 attempts failed")
      assert.deepStrictEqual(kinds(r.events), ["messageStart", "contentBlockDelta"])
    }).pipe(Effect.provide(afterContent({ kind: "cut", afterTokens: 1 }, { attempts: 1 }))))

  it.effect("a stall after content: StreamInterrupted(DeadlineExceeded stall) at the stall limit; the upstream is aborted", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ stallTimeout: "3 seconds" }))
      const { reason } = interruptedOf(r)
      // tokens at 100 and 200 ms, then nothing: the limit runs from the last event
      assert.strictEqual(r.at, 200 + 3_000)
      assert.strictEqual(reason.delivered, 2)
      assert.deepStrictEqual(reason.error.reason, new BedrockError.DeadlineExceeded({ scope: "stall", after: Duration.millis(3_000) }))
      // the stall limit, on the answer's record
      const e = interruptedOf(r).error
      assert.deepStrictEqual(e.attempts.map((a) => [a.outcome, a.reason, a.limitMs]), [["interrupted", "DeadlineExceeded", 3_000]])
      const [call] = yield* simAttempts
      assert.deepStrictEqual([call!.outcome, call!.end], ["interrupted", 3_200])
    }).pipe(Effect.provide(afterContent({ kind: "stall", afterTokens: 2 }))))

  it.effect("the stall limit counts from the last event: slow but steady tokens are not a stall", () =>
    Effect.gen(function*() {
      // a token every 900 ms under a 1 s stall limit: 3.6 s in all
      const r = yield* runFor(record({ stallTimeout: "1 second" }))
      assert.strictEqual(routingOf(r).modelId, "primary")
      assert.strictEqual(r.at, 100 + 3 * 900)
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: { primary: { firstToken: 100, tokensPerSecond: 1000 / 900, answer: PRIMARY }, fallback: {} }
    }))))

  it.effect("a malformed frame after content: StreamInterrupted(Incomplete malformed-frame)", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const { reason } = interruptedOf(r)
      assert.deepStrictEqual(reason.error.reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
      assert.strictEqual(reason.delivered, 1)
      assert.strictEqual(textOf(r.events), "p1")
    }).pipe(Effect.provide(afterContent({ kind: "malformed", afterTokens: 1 }))))

  it.effect("a throttlingException after content: StreamInterrupted(Throttled), and the model cools down", () =>
    Effect.gen(function*() {
      const { r, primary } = yield* runFor(Effect.gen(function*() {
        const r = yield* record()
        return { r, primary: yield* healthOf("primary") }
      }))
      const { reason } = interruptedOf(r)
      assert.strictEqual(reason.error.reason._tag, "Throttled")
      assert.deepStrictEqual(primary.cooldown, { until: 300 + 500, kind: "requests" })
      assert.strictEqual(primary.breaker, "closed")
    }).pipe(Effect.provide(afterContent({ kind: "streamError", afterTokens: 3, error: "throttlingException" }))))

  it.effect("an upstream that ends cleanly after content but before messageStop: StreamInterrupted(Incomplete no-message-stop)", () =>
    Effect.gen(function*() {
      const r = yield* record()
      const { reason, error } = interruptedOf(r)
      assert.deepStrictEqual(reason.error.reason, new BedrockError.Incomplete({ detail: "no-message-stop" }))
      assert.strictEqual(reason.delivered, 2)
      assert.deepStrictEqual(reason.partial, { inputTokens: HELLO_TOKENS, outputTokens: 2, totalTokens: HELLO_TOKENS + 2, estimated: true })
      assert.deepStrictEqual(error.attempts.map(brief), ["m failure Incomplete stop"])
      assert.deepStrictEqual(kinds(r.events), ["messageStart", "contentBlockDelta", "contentBlockDelta"])
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () =>
      Stream.fromIterable<ConverseStreamOutput>([
        { messageStart: { role: "assistant" } },
        { contentBlockDelta: { contentBlockIndex: 0, delta: { text: "one" } } },
        { contentBlockDelta: { contentBlockIndex: 0, delta: { text: " two" } } }
      ])))))

  it.effect("a tool-use block start is content too: a failure right after it is StreamInterrupted, not a failover", () =>
    Effect.gen(function*() {
      const r = yield* record()
      const { reason, error } = interruptedOf(r)
      assert.strictEqual(reason.delivered, 2)
      // the 12 characters of tool input: 3 tokens
      assert.strictEqual(reason.partial.outputTokens, 3)
      assert.deepStrictEqual(kinds(r.events), ["messageStart", "contentBlockStart", "contentBlockDelta"])
      assert.deepStrictEqual(error.attempts.map(brief), ["m failure Network stop"])
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }, { modelId: "n", isFallback: true }], selection: "ordered" }, () =>
      Stream.fromIterable<ConverseStreamOutput>([
        { messageStart: { role: "assistant" } },
        { contentBlockStart: { contentBlockIndex: 0, start: { toolUse: { toolUseId: "t1", name: "lookup" } } } },
        { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: "{\"q\": \"fox\"}" } } } }
      ]).pipe(Stream.concat(Stream.fail(BedrockError.make(new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }), "reset", "m"))))))))

  it.effect("the request deadline mid-stream: StreamInterrupted(DeadlineExceeded request) at the deadline", () =>
    Effect.gen(function*() {
      // a token a second from 100 ms; the deadline at 2 s falls between the second and the third
      const r = yield* runFor(record({ deadline: "2 seconds" }))
      const { reason } = interruptedOf(r)
      assert.strictEqual(r.at, 2_000)
      assert.strictEqual(reason.delivered, 2)
      assert.strictEqual(reason.error.reason._tag, "DeadlineExceeded")
      assert.strictEqual((reason.error.reason as BedrockError.DeadlineExceeded).scope, "request")
      const [call] = yield* simAttempts
      assert.deepStrictEqual([call!.outcome, call!.end], ["interrupted", 2_000])
      // a restart is no way around the deadline either: no reset that no answer can follow, the same StreamInterrupted
      const restarted = interruptedOf(yield* runFor(record({ deadline: "2 seconds", onInterrupt: "restart" })))
      assert.strictEqual(restarted.reason.delivered, 2)
      assert.deepStrictEqual(restarted.error.attempts.map(brief), ["primary interrupted DeadlineExceeded stop"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: { primary: { firstToken: 100, tokensPerSecond: 1, answer: PRIMARY }, fallback: { firstToken: 100, answer: FALLBACK } }
    }))))
})

// --- 3. completion: messageStop, then metadata within the grace ---------------------------------

/** A hand-written answer: messageStart, "one two", messageStop. */
const answered: ReadonlyArray<ConverseStreamOutput> = [
  { messageStart: { role: "assistant" } },
  { contentBlockDelta: { contentBlockIndex: 0, delta: { text: "one" } } },
  { contentBlockDelta: { contentBlockIndex: 0, delta: { text: " two" } } },
  { contentBlockStop: { contentBlockIndex: 0 } },
  { messageStop: { stopReason: "end_turn" } }
]
const metadata: ConverseStreamOutput = { metadata: { usage: { inputTokens: 11, outputTokens: 2, totalTokens: 13 }, metrics: { latencyMs: 5 } } }

describe("completion", () => {
  it.effect("a normal answer: the simulator's events untouched, usage as reported (not estimated), routing last", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const routing = routingOf(r)
      assert.deepStrictEqual(kinds(r.events), [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
        "routing"
      ])
      assert.deepStrictEqual(r.seen.map((s) => s.at), [300, 300, 400, 500, 600, 600, 600, 600, 600])
      assert.strictEqual(textOf(r.events), PRIMARY)
      const reported = r.events.find((e) => e.metadata !== undefined)!.metadata!.usage!
      assert.deepStrictEqual(routing.usage, { inputTokens: 9, outputTokens: 4, totalTokens: 13, estimated: false })
      assert.deepStrictEqual(reported, { inputTokens: 9, outputTokens: 4, totalTokens: 13 })
      assert.deepStrictEqual(routing.attempts.map(brief), ["primary success"])
      assert.strictEqual(routing.timeToFirstTokenMs, 300)
      assert.strictEqual(routing.durationMs, 600)
      assert.isFalse(routing.fallbackUsed)
      const primary = yield* healthOf("primary")
      assert.deepStrictEqual([primary.successes, primary.failures], [1, 0])
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: { primary: { firstToken: 300, tokensPerSecond: 10, answer: PRIMARY, inputTokens: 9 }, fallback: {} }
    }))))

  it.effect("a complete answer is read to the upstream's end, not aborted: the provider sees a success and settles its quota", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const out: Array<Recorded> = []
        // 6 streams in one minute: each reserves 5 + 100 of the model's 500 TPM and uses 5 + 4
        for (let i = 0; i < 6; i++) out.push(yield* record(undefined, { ...hello, inferenceConfig: { maxTokens: 100 } }))
        return out
      })
      const out = yield* runFor(program)
      for (const r of out) assert.strictEqual(routingOf(r).modelId, "m")
      const log = yield* simAttempts
      assert.deepStrictEqual(log.map((a): ReadonlyArray<unknown> => [a.outcome, a.end]), Array.from({ length: 6 }, (_, i) => ["success", 100 * (i + 1)]))
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "m" }] }, { models: { m: { firstToken: 100, answer: PRIMARY, tpm: 500 } } }))))

  it.effect("noMetadata: complete at messageStop, at once; usage estimated from the text", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const routing = routingOf(r)
      assert.isFalse(r.events.some((e) => e.metadata !== undefined))
      assert.strictEqual(textOf(r.events), PRIMARY)
      // the simulator's stream ends right after messageStop: no wait for the grace
      assert.strictEqual(r.at, 400)
      // 11 characters: 3 tokens
      assert.deepStrictEqual(routing.usage, { inputTokens: HELLO_TOKENS, outputTokens: 3, totalTokens: HELLO_TOKENS + 3, estimated: true })
      assert.strictEqual(routing.modelId, "primary")
    }).pipe(Effect.provide(afterContent({ kind: "noMetadata" }))))

  it.effect("an empty answer (messageStart, messageStop) is an answer: success with no text", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const routing = routingOf(r)
      assert.strictEqual(textOf(r.events), "")
      assert.strictEqual(routing.modelId, "primary")
      assert.strictEqual(routing.timeToFirstTokenMs, 100)
      assert.deepStrictEqual(routing.usage, { inputTokens: HELLO_TOKENS, outputTokens: 0, totalTokens: HELLO_TOKENS, estimated: false })
    }).pipe(Effect.provide(muxOn(primaryFallback(), { models: { primary: { firstToken: 100, answer: "" }, fallback: {} } }))))

  let aborted = 0
  it.effect("metadata that never comes after messageStop: complete at metadataGrace (250 ms), not at the stall limit", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const routing = routingOf(r)
      assert.strictEqual(r.at, 250)
      assert.strictEqual(r.seen[r.seen.length - 1]!.at, 250)
      assert.strictEqual(textOf(r.events), "one two")
      assert.deepStrictEqual(routing.usage, { inputTokens: HELLO_TOKENS, outputTokens: 2, totalTokens: HELLO_TOKENS + 2, estimated: true })
      assert.strictEqual(aborted, 1)
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () =>
      Stream.fromIterable(answered).pipe(Stream.concat(Stream.never), Stream.ensuring(Effect.sync(() => void aborted++)))))))

  it.effect("the grace is the config's metadataGrace", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      routingOf(r)
      assert.strictEqual(r.at, 1_000)
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }], stream: { metadataGrace: "1 second" } }, () =>
      Stream.fromIterable(answered).pipe(Stream.concat(Stream.never))))))

  it.effect("metadata within the grace: the reported usage, complete when the upstream ends after it", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const routing = routingOf(r)
      assert.strictEqual(r.at, 100)
      assert.deepStrictEqual(routing.usage, { inputTokens: 11, outputTokens: 2, totalTokens: 13, estimated: false })
      assert.deepStrictEqual(kinds(r.events).slice(-2), ["metadata", "routing"])
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () =>
      Stream.fromIterable(answered).pipe(Stream.concat(Stream.fromEffect(Effect.as(Effect.sleep(100), metadata))))))))

  it.effect("an upstream that dies after messageStop (a runtime's defect) does not undo a complete answer", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      assert.isTrue(Exit.isSuccess(r.exit), String(r.exit))
      assert.strictEqual(textOf(r.events), "one two")
      assert.isTrue(routingOf(r).usage.estimated)
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () => Stream.fromIterable(answered).pipe(Stream.concat(Stream.die("boom")))))))

  it.effect("nor one that dies after its metadata (while it is drained)", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      assert.isTrue(Exit.isSuccess(r.exit), String(r.exit))
      assert.deepStrictEqual(routingOf(r).usage, { inputTokens: 11, outputTokens: 2, totalTokens: 13, estimated: false })
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () => Stream.fromIterable([...answered, metadata]).pipe(Stream.concat(Stream.die("boom")))))))

  // the same over the SDK's own event iterator (`sendConverseStream`): the grace and the drain wait in the
  // mux's deadline heap there, on the Clock
  const overIterator = (events: ReadonlyArray<ConverseStreamOutput>, then: "end" | "hang") => {
    const log = { aborted: 0, signalAborted: 0 }
    const sendConverseStream = (_input: unknown, signal: AbortSignal) => {
      signal.addEventListener("abort", () => void log.signalAborted++)
      return Promise.resolve({
        [Symbol.asyncIterator]: () => {
          let i = 0
          return {
            next: (): Promise<IteratorResult<ConverseStreamOutput>> =>
              i < events.length
                ? Promise.resolve({ value: events[i++]!, done: false })
                : then === "end"
                ? Promise.resolve({ value: undefined, done: true })
                : new Promise((_, reject) =>
                  signal.addEventListener("abort", () => {
                    log.aborted += 1
                    reject(Object.assign(new Error("aborted"), { name: "AbortError" }))
                  })
                )
          }
        }
      })
    }
    const layer = BedrockMux.layer({ models: [{ modelId: "m" }] }).pipe(
      Layer.provide(Layer.succeed(BedrockRuntime, BedrockRuntime.of({ converse: () => Effect.die("not used"), converseStream: () => Stream.die("not used"), sendConverseStream })))
    )
    return { log, layer }
  }
  /** Lets the iterator's promises settle (they are not on the Clock). */
  const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
  const atGrace = (events: ReadonlyArray<ConverseStreamOutput>, then: "end" | "hang", check: (r: Recorded, aborted: number) => void) => {
    const { layer, log } = overIterator(events, then)
    return Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(record())
      for (let i = 0; i < 5; i++) yield* settle
      if (then === "hang") {
        // nothing ends before the grace
        yield* TestClock.adjust(249)
        for (let i = 0; i < 5; i++) yield* settle
        assert.isUndefined(fiber.pollUnsafe(), "the stream ended before the grace")
        yield* TestClock.adjust(1)
      }
      check(yield* Fiber.join(fiber), log.signalAborted)
    }).pipe(Effect.provide(layer))
  }
  it.effect("over the SDK's iterator: metadata that never comes: complete at the grace, the upstream aborted", () =>
    atGrace(answered, "hang", (r, aborted) => {
      assert.strictEqual(r.at, 250)
      assert.strictEqual(textOf(r.events), "one two")
      assert.isTrue(routingOf(r).usage.estimated)
      assert.strictEqual(aborted, 1)
    }))
  it.effect("over the SDK's iterator: an upstream that does not end after its metadata: complete at the grace, the reported usage", () =>
    atGrace([...answered, metadata], "hang", (r, aborted) => {
      assert.strictEqual(r.at, 250)
      assert.deepStrictEqual(routingOf(r).usage, { inputTokens: 11, outputTokens: 2, totalTokens: 13, estimated: false })
      assert.strictEqual(aborted, 1)
    }))
  it.effect("over the SDK's iterator: metadata, then the end: complete at once, nothing aborted", () =>
    atGrace([...answered, metadata], "end", (r, aborted) => {
      assert.strictEqual(r.at, 0)
      assert.deepStrictEqual(kinds(r.events).slice(-2), ["metadata", "routing"])
      assert.strictEqual(routingOf(r).usage.estimated, false)
      assert.strictEqual(aborted, 0)
    }))

  let closedAfterMetadata = 0
  it.effect("an upstream that does not end after its metadata: complete a grace after messageStop, with the reported usage", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      const routing = routingOf(r)
      assert.strictEqual(r.seen.find((s) => s.event.metadata !== undefined)!.at, 100)
      // the grace runs from messageStop (t = 0), whatever the upstream sends after it
      assert.strictEqual(r.at, 250)
      assert.deepStrictEqual(routing.usage, { inputTokens: 11, outputTokens: 2, totalTokens: 13, estimated: false })
      assert.strictEqual(closedAfterMetadata, 1)
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () =>
      Stream.fromIterable(answered).pipe(
        Stream.concat(Stream.fromEffect(Effect.as(Effect.sleep(100), metadata))),
        Stream.concat(Stream.never),
        Stream.ensuring(Effect.sync(() => void closedAfterMetadata++))
      )))))

  it.effect("a stream that ends after messageStop, without metadata, completes at once", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      assert.strictEqual(routingOf(r).usage.estimated, true)
      assert.strictEqual(r.at, 0)
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () => Stream.fromIterable(answered)))))
})

// --- 4. the consumer stops reading --------------------------------------------------------------

describe("the consumer stops reading", () => {
  it.effect("Stream.take(2): the upstream is aborted at once; the attempt is interrupted, not a failure; the breaker does not count it", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const taken: Array<ReadonlyArray<MuxStream.Event>> = []
        // breaker failures: 1, so a single counted failure would open it
        for (let i = 0; i < 3; i++) taken.push(yield* Stream.runCollect(muxStream().pipe(Stream.take(2))))
        return { taken, at: yield* Clock.currentTimeMillis, health: yield* healthOf("primary") }
      })
      const { taken, at, health } = yield* runFor(program)
      for (const events of taken) assert.deepStrictEqual(kinds(events), ["messageStart", "contentBlockDelta"])
      // the answer would take 100 + 300 ms; each stream ended at its first token
      assert.strictEqual(at, 300)
      const log = yield* simAttempts
      assert.deepStrictEqual(log.map((a) => [a.modelId, a.outcome, a.start, a.end, a.outputTokens]), [
        ["primary", "interrupted", 0, 100, 1],
        ["primary", "interrupted", 100, 200, 1],
        ["primary", "interrupted", 200, 300, 1]
      ])
      assert.strictEqual(health.breaker, "closed")
      assert.isTrue(health.available)
      assert.deepStrictEqual([health.successes, health.failures, health.failFast, health.errorRate], [0, 0, 0, 0])
    }).pipe(Effect.provide(muxOn(primaryFallback({ breaker: { failures: 1 } }), {
      models: { primary: { firstToken: 100, tokensPerSecond: 10, answer: PRIMARY }, fallback: {} }
    }))))

  let released = 0
  it.effect("a custom upstream sees its finalizer run when the consumer stops", () =>
    Effect.gen(function*() {
      const events = yield* Stream.runCollect(muxStream().pipe(Stream.take(2)))
      assert.deepStrictEqual(kinds(events), ["messageStart", "contentBlockDelta"])
      // the upstream's finalizer (where the live runtime aborts its HTTP request) ran as the consumer stopped
      assert.strictEqual(released, 1)
    }).pipe(Effect.provide(muxOnStream({ models: [{ modelId: "m" }] }, () =>
      Stream.fromIterable(answered.slice(0, 2)).pipe(
        Stream.concat(Stream.never),
        Stream.ensuring(Effect.sync(() => void released++))
      )))))

  it.effect("interrupting the consumer's fiber mid-stream aborts the upstream", () =>
    Effect.gen(function*() {
      const seen: Array<MuxStream.Event> = []
      const fiber = yield* muxStream().pipe(Stream.runForEach((e) => Effect.sync(() => void seen.push(e))), Effect.forkChild)
      yield* TestClock.adjust(250)
      assert.strictEqual(textOf(seen), "p1 p2")
      yield* Fiber.interrupt(fiber)
      const [call] = yield* simAttempts
      assert.deepStrictEqual([call!.outcome, call!.end], ["interrupted", 250])
      const health = yield* healthOf("primary")
      assert.deepStrictEqual([health.successes, health.failures], [0, 0])
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: { primary: { firstToken: 100, tokensPerSecond: 10, answer: PRIMARY }, fallback: {} }
    }))))

  it.effect("stopping before the first content event aborts the attempt in flight", () =>
    Effect.gen(function*() {
      const fiber = yield* muxStream().pipe(Stream.runDrain, Effect.forkChild)
      yield* TestClock.adjust(50)
      yield* Fiber.interrupt(fiber)
      const [call] = yield* simAttempts
      assert.deepStrictEqual([call!.outcome, call!.end], ["interrupted", 50])
      assert.strictEqual((yield* healthOf("primary")).breaker, "closed")
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: { primary: { firstToken: 100, answer: PRIMARY }, fallback: {} }
    }))))
})

// --- 5. hedging ---------------------------------------------------------------------------------

/** primary: first token at `primary` ms; fallback: at `fallback` ms */
const hedgeScript = (primary: Record<string, unknown>, fallback: Record<string, unknown>) =>
  ({ models: { primary: { firstToken: 3_000, answer: PRIMARY, ...primary }, fallback: { firstToken: 200, answer: FALLBACK, ...fallback } } }) as unknown as SimulatorScript.ScriptInput

describe("hedging", () => {
  const hedgeStore = MuxStore.makeMemory()

  it.effect("no first token after 1 s: the same request starts on the fallback, which wins at 1 s + its time; the primary is aborted", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ hedge: { after: "1 second", budget: 1 } }))
      const routing = routingOf(r)
      assert.strictEqual(routing.modelId, "fallback")
      // one clean stream: the winner's
      assert.strictEqual(textOf(r.events), FALLBACK)
      assert.strictEqual(kinds(r.events).filter((k) => k === "messageStart").length, 1)
      assert.strictEqual(r.at, 1_000 + 200)
      assert.strictEqual(routing.timeToFirstTokenMs, 200)
      assert.deepStrictEqual(routing.attempts.map(brief), ["primary interrupted hedge-lost", "fallback success"])
      assert.strictEqual(routing.attempts[0]!.durationMs, 1_200)
      const log = yield* simAttempts
      assert.deepStrictEqual(log.map((a) => [a.modelId, a.outcome, a.start, a.end]), [
        ["primary", "interrupted", 0, 1_200],
        ["fallback", log[1]!.outcome, 1_000, 1_200]
      ])
      // a lost hedge is no failure of the primary
      const primary = yield* healthOf("primary")
      assert.deepStrictEqual([primary.breaker, primary.failures, primary.successes], ["closed", 0, 0])
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript({}, {})))))

  it.effect("the primary still wins when it delivers first", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ hedge: { after: "1 second", budget: 1 } }))
      const routing = routingOf(r)
      assert.strictEqual(routing.modelId, "primary")
      assert.strictEqual(textOf(r.events), PRIMARY)
      assert.strictEqual(r.at, 1_500)
      assert.deepStrictEqual(routing.attempts.map(brief), ["fallback interrupted hedge-lost", "primary success"])
      const log = yield* simAttempts
      assert.deepStrictEqual(log.filter((a) => a.modelId === "fallback").map((a) => [a.outcome, a.start, a.end]), [["interrupted", 1_000, 1_500]])
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript({ firstToken: 1_500 }, { firstToken: 2_000 })))))

  it.effect("budget 0: no hedge; the primary answers at its own pace", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ hedge: { after: "1 second", budget: 0 } }))
      assert.strictEqual(routingOf(r).modelId, "primary")
      assert.strictEqual(r.at, 3_000)
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["primary"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript({}, {})))))

  it.effect("no hedge unless asked: neither the request nor the policy hedges", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      assert.strictEqual(routingOf(r).modelId, "primary")
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["primary"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript({}, {})))))

  it.effect("the policy's hedge (config) applies to every stream; hedge: false turns it off for one", () =>
    Effect.gen(function*() {
      const hedged = yield* runFor(record())
      assert.strictEqual(routingOf(hedged).modelId, "fallback")
      assert.strictEqual(hedged.at, 500 + 200)
      const plain = yield* runFor(record({ hedge: false }))
      assert.strictEqual(routingOf(plain).modelId, "primary")
      // hedge: true is the policy's hedge
      const again = yield* runFor(record({ hedge: true }))
      assert.deepStrictEqual(routingOf(again).attempts.map(brief), ["primary interrupted hedge-lost", "fallback success"])
    }).pipe(Effect.provide(muxOn(primaryFallback({ stream: { hedge: { after: 500, budget: 1 } } }), hedgeScript({}, {})))))

  it.effect("the budget caps the share of hedged requests over a sliding minute", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const models: Array<string> = []
        for (let i = 0; i < 6; i++) models.push(routingOf(yield* record({ hedge: { after: "1 second", budget: 0.5 } })).modelId)
        // a minute later the window holds none of these
        yield* Effect.sleep("61 seconds")
        for (let i = 0; i < 2; i++) models.push(routingOf(yield* record({ hedge: { after: "1 second", budget: 0.5 } })).modelId)
        return models
      })
      // at most half of the hedgeable requests in the window are hedged
      assert.deepStrictEqual(yield* runFor(program), [
        "fallback",
        "primary",
        "fallback",
        "primary",
        "fallback",
        "primary",
        "fallback",
        "primary"
      ])
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript({}, {})))))

  it.effect("p95: no hedge before 20 first-token samples; then after the model's p95", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const out: Array<{ readonly modelId: string; readonly took: number }> = []
        for (let i = 1; i <= 21; i++) {
          const start = yield* Clock.currentTimeMillis
          const r = yield* record({ hedge: { after: "p95", budget: 1 } })
          out.push({ modelId: routingOf(r).modelId, took: r.at - start })
        }
        return out
      })
      const out = yield* runFor(program, "1 hour")
      // calls 1-19 at 100 ms; call 20 is slow and, with 19 samples, not hedged
      for (const o of out.slice(0, 19)) assert.deepStrictEqual(o, { modelId: "primary", took: 100 })
      assert.deepStrictEqual(out[19], { modelId: "primary", took: 5_000 })
      // call 21 is slow too: hedged after the p95 (100 ms, within the histogram's 2.5 %), the fallback answers 50 ms later
      assert.strictEqual(out[20]!.modelId, "fallback")
      assert.closeTo(out[20]!.took, 150, 3)
      const fallbackCalls = (yield* simAttempts).filter((a) => a.modelId === "fallback")
      assert.strictEqual(fallbackCalls.length, 1)
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript(
      { firstToken: 100, faults: [{ when: { calls: [20, 21] }, do: { kind: "slow", firstToken: 5_000 } }] },
      { firstToken: 50 }
    )))))

  it.effect("the hedge fails first: the primary still answers", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ hedge: { after: "1 second", budget: 1 } }))
      const routing = routingOf(r)
      assert.strictEqual(routing.modelId, "primary")
      assert.strictEqual(textOf(r.events), PRIMARY)
      assert.strictEqual(r.at, 2_000)
      assert.deepStrictEqual(routing.attempts.map(brief), ["fallback failure Network failover", "primary success"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript(
      { firstToken: 2_000 },
      { faults: [{ do: { kind: "cut", afterTokens: 0 } }] }
    )))))

  it.effect("the primary fails while hedged: the hedge answers", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record({ hedge: { after: "1 second", budget: 1 } }))
      const routing = routingOf(r)
      assert.strictEqual(routing.modelId, "fallback")
      assert.strictEqual(textOf(r.events), FALLBACK)
      assert.strictEqual(r.at, 1_000 + 2_500)
      assert.deepStrictEqual(routing.attempts.map(brief), ["primary failure Network failover", "fallback success"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), hedgeScript(
      { firstToken: 1_500, faults: [{ do: { kind: "cut", afterTokens: 0 } }] },
      { firstToken: 2_500 }
    )))))

  it.effect("both attempts' usage is recorded: the loser's reservation is kept, the winner's settled", () =>
    Effect.gen(function*() {
      const request: MuxStreamRequest = { ...hello, inferenceConfig: { maxTokens: 100 } }
      const { r, primary, fallback } = yield* runFor(Effect.gen(function*() {
        const r = yield* record({ hedge: { after: "1 second", budget: 1 } }, request)
        // within the quotas' minute
        return { r, primary: yield* usage(hedgeStore, "default/quota/primary"), fallback: yield* usage(hedgeStore, "default/quota/fallback") }
      }))
      assert.strictEqual(routingOf(r).modelId, "fallback")
      assert.deepStrictEqual(primary, { requests: 1, tokens: HELLO_TOKENS + 100 })
      assert.deepStrictEqual(fallback, { requests: 1, tokens: HELLO_TOKENS + 3 })
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "primary", tpm: 100_000 }, { modelId: "fallback", isFallback: true, tpm: 100_000 }], selection: "ordered" },
      hedgeScript({}, {}),
      { store: hedgeStore }
    ))))
})

// --- 6. breakers --------------------------------------------------------------------------------

describe("breakers", () => {
  it.effect("failures past the commit point count: 5 cut streams open the breaker; the next stream goes to the fallback", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const cut: Array<Recorded> = []
        for (let i = 0; i < 5; i++) cut.push(yield* record())
        const health = yield* healthOf("primary")
        const next = yield* record()
        return { cut, health, next }
      })
      const { cut, health, next } = yield* runFor(program)
      for (const r of cut) assert.strictEqual(interruptedOf(r).reason.delivered, 2)
      assert.strictEqual(health.breaker, "open")
      assert.strictEqual(health.failures, 5)
      assert.deepStrictEqual(routingOf(next).attempts.map(brief), ["fallback success"])
    }).pipe(Effect.provide(afterContent({ kind: "cut", afterTokens: 2 }, {}, "always"))))

  it.effect("a validation error does not count, past the commit point or before it", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const out: Array<Recorded> = []
        for (let i = 0; i < 6; i++) out.push(yield* record())
        return { out, health: yield* healthOf("primary") }
      })
      const { out, health } = yield* runFor(program)
      // odd calls fail after 2 tokens, even calls before any content (fail fast)
      out.forEach((r, i) => {
        if (i % 2 === 0) {
          const { reason } = interruptedOf(r)
          assert.deepStrictEqual(reason.error.reason, new BedrockError.Validation({ kind: "other" }))
        } else {
          assert.strictEqual(muxError(r.exit).reason._tag, "Failed")
        }
        assert.deepStrictEqual(muxError(r.exit).attempts.map((a) => a.modelId), ["primary"])
      })
      assert.strictEqual(health.breaker, "closed")
      assert.isTrue(health.available)
      assert.strictEqual(health.errorRate, 0)
    }).pipe(Effect.provide(muxOn(primaryFallback({ breaker: { failures: 2 } }), {
      models: {
        primary: {
          firstToken: 100,
          answer: PRIMARY,
          faults: [
            { when: { calls: [1, 3, 5] }, do: { kind: "streamError", afterTokens: 2, error: "validationException" } },
            { do: { kind: "streamError", afterTokens: 0, error: "validationException" } }
          ]
        },
        fallback: {}
      }
    }))))

  it.effect("a half-open probe slot is given back when the consumer stops reading: the next stream can probe", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const first = yield* record()
        const opened = yield* healthOf("only")
        yield* Effect.sleep("10 seconds")
        // the probe: the consumer reads two events and stops
        const taken = yield* Stream.runCollect(muxStream().pipe(Stream.take(2)))
        const afterProbe = yield* healthOf("only")
        const next = yield* record()
        return { first, opened, taken, afterProbe, next, closed: yield* healthOf("only") }
      })
      const { first, opened, taken, afterProbe, next, closed } = yield* runFor(program)
      interruptedOf(first)
      assert.strictEqual(opened.breaker, "open")
      assert.strictEqual(taken.length, 2)
      // still half-open (an abandoned probe proves nothing) and available: its slot is free again
      assert.strictEqual(afterProbe.breaker, "half-open")
      assert.isTrue(afterProbe.available)
      assert.strictEqual(routingOf(next).modelId, "only")
      assert.strictEqual(closed.breaker, "closed")
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "only" }], breaker: { failures: 1, cooldown: "10 seconds" } }, {
      models: { only: { firstToken: 100, tokensPerSecond: 10, answer: PRIMARY, faults: [{ when: { calls: 1 }, do: { kind: "cut", afterTokens: 2 } }] } }
    }))))

  it.effect("a probe that fails past the commit point reopens the breaker; a cut is a fast failure, so the probe interval stays", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        yield* record() // call 1: cut → open
        yield* Effect.sleep("10 seconds")
        const probe = yield* record() // call 2: cut again → reopened, same probe interval
        const reopened = yield* healthOf("only")
        return { probe, reopened }
      })
      const { probe, reopened } = yield* runFor(program)
      interruptedOf(probe)
      assert.strictEqual(reopened.breaker, "open")
      // the probe started at 10.2 s and was cut at 10.4 s: the model answered (fast), so the next probe comes one
      // interval later, not two
      assert.strictEqual(reopened.recoversAt, 10_400 + 10_000)
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "only" }], breaker: { failures: 1, cooldown: "10 seconds" } }, {
      models: { only: { firstToken: 100, tokensPerSecond: 10, answer: PRIMARY, faults: [{ do: { kind: "cut", afterTokens: 2 } }] } }
    }))))
})

// --- 7. quotas ----------------------------------------------------------------------------------

describe("quotas", () => {
  const request: MuxStreamRequest = { ...hello, inferenceConfig: { maxTokens: 100 } }
  const key = "default/quota/m"

  it.effect("a model with tpm: reserved at the estimate while streaming, settled to the metadata's usage at the end", () =>
    Effect.gen(function*() {
      const store = MuxStore.makeMemory()
      const program = Effect.gen(function*() {
        const mux = yield* BedrockMux
        let during: { readonly requests: number; readonly tokens: number } | undefined
        const events = yield* mux.converseStream(request).pipe(
          Stream.tap((e) => e.contentBlockDelta !== undefined && during === undefined ? Effect.map(usage(store, key), (u) => void (during = u)) : Effect.void),
          Stream.runCollect
        )
        return { events, during, after: yield* usage(store, key) }
      })
      const { events, during, after } = yield* runFor(program).pipe(Effect.provide(muxOn(
        { models: [{ modelId: "m", tpm: 10_000 }] },
        { models: { m: { firstToken: 100, tokensPerSecond: 10, answer: PRIMARY, inputTokens: 7 } } },
        { store }
      )))
      assert.deepStrictEqual(during, { requests: 1, tokens: HELLO_TOKENS + 100 })
      // what the model reported: 7 in, 4 out
      assert.deepStrictEqual(after, { requests: 1, tokens: 7 + 4 })
      assert.deepStrictEqual((events[events.length - 1] as MuxStream.RoutingEvent).routing.usage, { inputTokens: 7, outputTokens: 4, totalTokens: 11, estimated: false })
    }))

  it.effect("without metadata: settled to the estimate of what was delivered", () =>
    Effect.gen(function*() {
      const store = MuxStore.makeMemory()
      const after = yield* runFor(Effect.andThen(record(undefined, request), usage(store, key))).pipe(Effect.provide(muxOn(
        { models: [{ modelId: "m", tpm: 10_000 }] },
        { models: { m: { firstToken: 100, answer: PRIMARY, faults: [{ do: { kind: "noMetadata" } }] } } },
        { store }
      )))
      // 11 characters delivered: 3 tokens
      assert.deepStrictEqual(after, { requests: 1, tokens: HELLO_TOKENS + 3 })
    }))

  it.effect("interrupted after content, or abandoned by the consumer: the reservation stays at the estimate (Bedrock counted the work)", () =>
    Effect.gen(function*() {
      const store = MuxStore.makeMemory()
      const program = Effect.gen(function*() {
        const cut = yield* record(undefined, request)
        const mux = yield* BedrockMux
        yield* Stream.runDrain(mux.converseStream(request).pipe(Stream.take(2)))
        return { cut, after: yield* usage(store, key) }
      })
      const { cut, after } = yield* runFor(program).pipe(Effect.provide(muxOn(
        { models: [{ modelId: "m", tpm: 10_000 }] },
        { models: { m: { firstToken: 100, answer: PRIMARY, faults: [{ when: { calls: 1 }, do: { kind: "cut", afterTokens: 2 } }] } } },
        { store }
      )))
      interruptedOf(cut)
      assert.deepStrictEqual(after, { requests: 2, tokens: 2 * (HELLO_TOKENS + 100) })
    }))

  it.effect("a failure before content that Bedrock did not count (an HTTP error) gives the reservation back", () =>
    Effect.gen(function*() {
      const store = MuxStore.makeMemory()
      const program = Effect.gen(function*() {
        const r = yield* record(undefined, request)
        return { r, primary: yield* usage(store, "default/quota/primary"), fallback: yield* usage(store, "default/quota/fallback") }
      })
      const { r, primary, fallback } = yield* runFor(program).pipe(Effect.provide(muxOn(
        { models: [{ modelId: "primary", tpm: 10_000 }, { modelId: "fallback", isFallback: true, tpm: 10_000 }] },
        {
          models: {
            primary: { firstToken: 100, faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
            fallback: { firstToken: 100, answer: FALLBACK }
          }
        },
        { store }
      )))
      assert.strictEqual(routingOf(r).modelId, "fallback")
      assert.deepStrictEqual(primary, { requests: 0, tokens: 0 })
      assert.deepStrictEqual(fallback, { requests: 1, tokens: HELLO_TOKENS + 3 })
    }))
})

// --- 8. options and config ----------------------------------------------------------------------

describe("options and config", () => {
  it.effect("invalid stream options: InvalidRequest listing every problem, before any call", () =>
    Effect.gen(function*() {
      const r = yield* record({
        firstTokenTimeout: 0,
        stallTimeout: "-1 seconds" as Duration.Input,
        onInterrupt: "retry" as "fail",
        hedge: { after: 0, budget: 2 }
      })
      const error = muxError(r.exit)
      if (error.reason._tag !== "InvalidRequest") assert.fail(error.reason._tag)
      assert.deepStrictEqual(error.reason.problems, [
        "firstTokenTimeout: expected a positive duration, got 0",
        "stallTimeout: expected a positive duration, got \"-1 seconds\"",
        "onInterrupt: expected \"fail\" or \"restart\", got \"retry\"",
        "hedge.after: expected a positive duration or \"p95\", got 0",
        "hedge.budget: expected a share in [0, 1], got 2"
      ])
      assert.deepStrictEqual(r.events, [])
      assert.deepStrictEqual(error.attempts, [])
      assert.deepStrictEqual(yield* simAttempts, [])
      // one at a time, too
      const one = muxError((yield* record({ hedge: { budget: 2 } })).exit)
      assert.deepStrictEqual(one.reason._tag === "InvalidRequest" && one.reason.problems, ["hedge.budget: expected a share in [0, 1], got 2"])
      const zero = muxError((yield* record({ firstTokenTimeout: 0 })).exit)
      assert.strictEqual(zero.reason._tag, "InvalidRequest")
      // and the request's own problems with them
      const both = muxError((yield* record({ deadline: 0, stallTimeout: 0 }, { messages: [] })).exit)
      assert.deepStrictEqual(both.reason._tag === "InvalidRequest" && both.reason.problems.length, 3)
    }).pipe(Effect.provide(muxOn(primaryFallback(), { models: { primary: {}, fallback: {} } }))))

  it.effect("config: stream { firstTokenTimeout, stallTimeout, metadataGrace, onInterrupt, hedge } decodes into the policy", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({
        models: [{ modelId: "a" }],
        stream: {
          firstTokenTimeout: "3 seconds",
          stallTimeout: 4_000,
          metadataGrace: "500 millis",
          onInterrupt: "restart",
          hedge: { after: "1500 millis", budget: 0.2 }
        }
      })
      const s = config.stream
      assert.deepStrictEqual(
        [Duration.toMillis(s.firstToken), Duration.toMillis(s.stall), Duration.toMillis(s.metadataGrace), s.onInterrupt],
        [3_000, 4_000, 500, "restart"]
      )
      assert.strictEqual(s.hedge!.budget, 0.2)
      assert.strictEqual(Duration.toMillis(s.hedge!.after as Duration.Duration), 1_500)
      // p95 and the default budget
      const p95 = yield* MuxConfig.decode({ models: [{ modelId: "a" }], stream: { hedge: { after: "p95" } } })
      assert.deepStrictEqual(p95.stream.hedge, { after: "p95", budget: 0.1 })
      // nothing said: the defaults, no hedge
      const plain = yield* MuxConfig.decode({ models: [{ modelId: "a" }] })
      assert.deepStrictEqual(plain.stream, Policy.defaultStreaming)
      assert.strictEqual(Duration.toMillis(plain.stream.firstToken), 10_000)
      assert.strictEqual(Duration.toMillis(plain.stream.stall), 10_000)
      assert.strictEqual(Duration.toMillis(plain.stream.metadataGrace), 250)
      assert.isUndefined(plain.stream.hedge)
    }))

  it.effect("config: bad stream values list their problems with their paths", () =>
    Effect.gen(function*() {
      const shape = yield* Effect.flip(MuxConfig.decode({
        models: [{ modelId: "a" }],
        stream: { stallTimeout: "-1 seconds", metadataGrace: "soon", onInterrupt: "retry", hedge: { budget: 2 } }
      }))
      assert.deepStrictEqual(shape.problems.map((p) => p.path), ["stream.stallTimeout", "stream.metadataGrace", "stream.onInterrupt", "stream.hedge.budget"])
      const zero = yield* Effect.flip(MuxConfig.decode({
        models: [{ modelId: "a" }],
        stream: { firstTokenTimeout: 0, stallTimeout: 0, hedge: { after: 0 } }
      }))
      assert.deepStrictEqual(zero.problems, [
        { path: "stream.firstTokenTimeout", message: "firstTokenTimeout must be positive; allowed: 0 < firstTokenTimeout" },
        { path: "stream.stallTimeout", message: "stallTimeout must be positive; allowed: 0 < stallTimeout" },
        { path: "stream.hedge.after", message: "hedge.after must be positive or \"p95\"; allowed: 0 < after" }
      ])
    }))

  it.effect("Policy.withStreaming in code: the limits apply to every stream", () =>
    Effect.gen(function*() {
      const r = yield* runFor(record())
      assert.strictEqual(routingOf(r).modelId, "fallback")
      assert.strictEqual(r.at, 700 + 100)
    }).pipe(Effect.provide(muxOn(
      primaryFallback(),
      { models: { primary: { firstToken: 5_000 }, fallback: { firstToken: 100 } } },
      { policy: Policy.withStreaming({ firstToken: "700 millis" }) }
    ))))
})

describe("a stream value runs many times", () => {
  it.effect("each run is its own request: its own attempts, its own answer", () =>
    Effect.gen(function*() {
      const stream = muxStream()
      const first = yield* runFor(MuxStream.collect(stream))
      const second = yield* runFor(MuxStream.collect(stream))
      assert.strictEqual(first.text, FALLBACK)
      assert.deepStrictEqual(first.routing!.attempts.map(brief), ["primary failure Network failover", "fallback success"])
      assert.strictEqual(second.text, PRIMARY)
      assert.deepStrictEqual(second.routing!.attempts.map(brief), ["primary success"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: {
        primary: { firstToken: 100, answer: PRIMARY, faults: [{ when: { calls: 1 }, do: { kind: "cut", afterTokens: 0 } }] },
        fallback: { firstToken: 100, answer: FALLBACK }
      }
    }))))
})

// --- 9. metrics -------------------------------------------------------------------------------

describe("metrics", () => {
  it.effect("per model: time to first token, to last token, tokens per second, interruptions; per mux: hedges and interrupted streams", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const mux = yield* BedrockMux
        const out: Array<Recorded> = []
        out.push(yield* record()) // 1: the primary answers
        out.push(yield* record()) // 2: cut after 2 tokens: StreamInterrupted
        out.push(yield* record({ onInterrupt: "restart" })) // 3: cut after 2 tokens, the fallback answers
        out.push(yield* record({ hedge: { after: "1 second", budget: 1 } })) // 4: the primary is slow: the hedge wins
        return { out, health: yield* mux.health, stats: yield* mux.stats }
      })
      const { out, health, stats } = yield* runFor(program)
      assert.deepStrictEqual(out.map((r) => Exit.isSuccess(r.exit) ? routingOf(r).modelId : muxError(r.exit).reason._tag), [
        "primary",
        "StreamInterrupted",
        "fallback",
        "fallback"
      ])
      const [primary, fallback] = health.models
      // the primary's one completed stream: first token at 200 ms, then 4 more tokens 100 ms apart
      assert.strictEqual(primary!.stream.completed, 1)
      assert.strictEqual(primary!.stream.interrupted, 2)
      assert.closeTo(primary!.stream.timeToFirstTokenMs.p50, 200, 5)
      assert.closeTo(primary!.stream.timeToLastTokenMs.p50, 600, 15)
      assert.closeTo(primary!.stream.outputTokensPerSecond.p50, 10, 0.25)
      // the fallback answered twice, all at once (no generation time: no rate)
      assert.strictEqual(fallback!.stream.completed, 2)
      assert.strictEqual(fallback!.stream.interrupted, 0)
      assert.closeTo(fallback!.stream.timeToFirstTokenMs.p50, 100, 3)
      assert.closeTo(fallback!.stream.timeToLastTokenMs.p50, 100, 3)
      assert.strictEqual(fallback!.stream.outputTokensPerSecond.p50, 0)
      assert.deepStrictEqual([stats.hedges, stats.hedgesWon, stats.streamsInterrupted, stats.streamsRestarted], [1, 1, 2, 1])
      assert.deepStrictEqual([stats.requests, stats.successes, stats.failures], [4, 3, 1])
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      models: {
        primary: {
          firstToken: 200,
          tokensPerSecond: 10,
          answer: "p1 p2 p3 p4 p5",
          faults: [
            { when: { calls: [2, 3] }, do: { kind: "cut", afterTokens: 2 } },
            { when: { calls: 4 }, do: { kind: "slow", firstToken: "5 seconds" } }
          ]
        },
        fallback: { firstToken: 100, answer: FALLBACK }
      }
    }))))
})

// --- 10. properties over random pools and fault scripts ------------------------------------------

/** Model i's answer: `words` tokens, each naming its model ("m2t0 m2t1 ..."). */
const answerOf = (i: number, words: number) => Array.from({ length: words }, (_, k) => `m${i}t${k}`).join(" ")
/** The model a delta's text came from. */
const modelOfText = (text: string) => Number(/m(\d+)t/.exec(text)![1])

const whenArb = fc.oneof(
  { weight: 2, arbitrary: fc.record({ probability: fc.double({ min: 0.1, max: 0.9, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ calls: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.constant(undefined) }
)

const faultArb = (words: number): fc.Arbitrary<Record<string, unknown>> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("error"), error: fc.constantFrom(...SimulatorScript.ErrorNames), after: fc.integer({ min: 0, max: 500 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("hang") }) },
    // afterTokens up to words + 1: a fault after every token, before messageStop, is a failure after content too
    { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom("cut", "stall", "malformed"), afterTokens: fc.nat({ max: words + 1 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant("streamError"), afterTokens: fc.nat({ max: words + 1 }), error: fc.constantFrom(...SimulatorScript.StreamErrorNames) })
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("noMetadata", "emptyOutput") }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("slow"), firstToken: fc.integer({ min: 0, max: 8_000 }) }) }
  )

const poolModelArb = fc.record({
  tier: fc.integer({ min: 0, max: 2 }),
  weight: fc.integer({ min: 1, max: 100 }),
  firstToken: fc.integer({ min: 0, max: 3_000 }),
  tokensPerSecond: fc.option(fc.integer({ min: 2, max: 50 }), { nil: undefined }),
  words: fc.integer({ min: 1, max: 6 })
}).chain((m) =>
  fc.record({
    model: fc.constant(m),
    faults: fc.array(
      fc.tuple(whenArb, faultArb(m.words)).map(([when, action]) => (when === undefined ? { do: action } : { when, do: action })),
      { maxLength: 3 }
    )
  })
)

const poolArb = fc.record({
  models: fc.array(poolModelArb, { minLength: 1, maxLength: 4 }),
  attempts: fc.integer({ min: 1, max: 6 }),
  deadline: fc.integer({ min: 2_000, max: 30_000 }),
  firstToken: fc.integer({ min: 300, max: 5_000 }),
  stall: fc.integer({ min: 300, max: 5_000 }),
  onInterrupt: fc.constantFrom("fail" as const, "restart" as const),
  hedge: fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.record({ after: fc.integer({ min: 100, max: 2_000 }), budget: fc.constantFrom(0, 0.5, 1) }) }
  ),
  failures: fc.integer({ min: 1, max: 5 }),
  requests: fc.array(
    fc.record({
      gap: fc.integer({ min: 0, max: 5_000 }),
      // now and then the consumer stops early
      take: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }) })
    }),
    { minLength: 3, maxLength: 8 }
  ),
  seed: fc.integer()
})

describe("properties over random pools and fault scripts", () => {
  it("one outcome per stream; the answer after the last reset is exactly one model's whole answer; no splice; no upstream left open", async () => {
    const seen = { success: 0, interrupted: 0, otherError: 0, resets: 0, restartedSuccess: 0, hedgeLost: 0, estimated: 0, taken: 0, partialThenFail: 0 }
    await fc.assert(
      fc.asyncProperty(poolArb, async (sc) => {
        const answers = sc.models.map(({ model }, i) => answerOf(i, model.words))
        const config = {
          models: sc.models.map(({ model }, i) => ({ modelId: `m${i}`, tier: i === 0 ? 0 : model.tier, weight: model.weight })),
          attempts: sc.attempts,
          timeout: sc.deadline,
          deadline: sc.deadline,
          breaker: { failures: sc.failures, cooldown: 2_000 },
          stream: {
            firstTokenTimeout: sc.firstToken,
            stallTimeout: sc.stall,
            onInterrupt: sc.onInterrupt,
            ...(sc.hedge !== undefined ? { hedge: sc.hedge } : {})
          }
        } as MuxConfig.Input
        const script = {
          seed: sc.seed,
          models: Object.fromEntries(sc.models.map(({ model, faults }, i) => [
            `m${i}`,
            {
              firstToken: model.firstToken,
              ...(model.tokensPerSecond !== undefined ? { tokensPerSecond: model.tokensPerSecond } : {}),
              answer: answers[i],
              faults
            }
          ]))
        } as unknown as SimulatorScript.ScriptInput

        const program = Effect.gen(function*() {
          const mux = yield* BedrockMux
          for (const req of sc.requests) {
            yield* Effect.sleep(req.gap)
            const start = yield* Clock.currentTimeMillis
            const events: Array<MuxStream.Event> = []
            let stream = mux.converseStream(hello)
            if (req.take !== undefined) stream = stream.pipe(Stream.take(req.take))
            const exit = yield* stream.pipe(Stream.runForEach((e) => Effect.sync(() => void events.push(e))), Effect.exit)
            const took = (yield* Clock.currentTimeMillis) - start
            const log = yield* simAttempts

            // no upstream is left running once the stream has ended, whatever ended it
            for (const a of log) assert.isDefined(a.end, `call ${a.id} to ${a.modelId} still open`)
            // the request deadline bounds everything but the metadata grace after messageStop
            assert.isAtMost(took, sc.deadline + 250)

            // split at the resets: one answer per segment
            const segments: Array<Array<MuxStream.Event>> = [[]]
            for (const e of events) {
              if (MuxStream.isReset(e)) segments.push([])
              else segments[segments.length - 1]!.push(e)
            }
            const resets = events.filter(MuxStream.isReset)
            seen.resets += resets.length
            if (sc.onInterrupt === "fail") assert.strictEqual(resets.length, 0)
            const modelsOf = (segment: ReadonlyArray<MuxStream.Event>) => [
              ...new Set(segment.flatMap((e) => e.contentBlockDelta?.delta?.text !== undefined ? [modelOfText(e.contentBlockDelta.delta.text)] : []))
            ]
            const deltas = (segment: ReadonlyArray<MuxStream.Event>) => segment.filter((e) => e.contentBlockDelta !== undefined).length
            segments.forEach((segment, k) => {
              const ms = modelsOf(segment)
              // never two models' output in one answer
              assert.isAtMost(ms.length, 1, `segment ${k}: ${textOf(segment)}`)
              assert.isAtMost(segment.filter((e) => e.messageStart !== undefined).length, 1)
              if (ms.length === 1) assert.isTrue(answers[ms[0]!]!.startsWith(textOf(segment)), `segment ${k} is not a prefix: ${textOf(segment)}`)
              if (k < segments.length - 1) {
                // a reset comes only after content, and names the model whose answer it discards
                const reset = resets[k]!.reset
                assert.strictEqual(ms.length, 1)
                assert.strictEqual(reset.modelId, `m${ms[0]}`)
                assert.strictEqual(reset.discarded, deltas(segment))
              }
            })
            const last = segments[segments.length - 1]!
            // a model is tried again only right after a retry-same decision on it, after it lost a hedge, or after
            // a throttle (its bucket refills: the cooldown keeps it out until then): restarts included, a model
            // failed over from for any other reason is out for the rest of the request
            const attemptsOf = Exit.isSuccess(exit)
              ? (events.find(MuxStream.isRouting) as MuxStream.RoutingEvent | undefined)?.routing.attempts ?? []
              : muxError(exit).attempts
            attemptsOf.forEach((a, k) => {
              const before = attemptsOf.slice(0, k).filter((b) => b.target === a.target && b.decision !== "hedge-lost")
              const last = before[before.length - 1]
              if (last !== undefined && last.reason !== "Throttled") {
                assert.strictEqual(attemptsOf[k - 1]?.decision, "retry-same", attemptsOf.map(brief).join(", "))
              }
            })
            if (req.take !== undefined) {
              seen.taken++
              if (Exit.isFailure(exit)) muxError(exit)
              assert.isAtMost(events.length, req.take)
              continue
            }
            if (Exit.isSuccess(exit)) {
              seen.success++
              const routingEvent = last[last.length - 1]!
              assert.isTrue(MuxStream.isRouting(routingEvent))
              assert.strictEqual(events.filter(MuxStream.isRouting).length, 1)
              const routing = (routingEvent as MuxStream.RoutingEvent).routing
              const i = Number(routing.modelId.slice(1))
              // exactly the answering model's whole answer: not a token fewer, nothing of another model
              assert.strictEqual(textOf(last), answers[i])
              assert.strictEqual(last.filter((e) => e.messageStop !== undefined).length, 1)
              assert.strictEqual(routing.restarts, resets.length)
              if (resets.length > 0) seen.restartedSuccess++
              const attempts = routing.attempts
              assert.deepStrictEqual([attempts[attempts.length - 1]!.modelId, attempts[attempts.length - 1]!.outcome], [routing.modelId, "success"])
              // the attempts budget, plus the one hedge a request may start
              assert.isAtMost(attempts.length, sc.attempts + (sc.hedge !== undefined ? 1 : 0))
              if (attempts.some((a) => a.decision === "hedge-lost")) seen.hedgeLost++
              const metadata = last.find((e) => e.metadata !== undefined)
              assert.strictEqual(routing.usage.estimated, metadata === undefined)
              if (metadata === undefined) seen.estimated++
              else assert.strictEqual(routing.usage.outputTokens, answers[i]!.split(" ").length)
            } else {
              const error = muxError(exit)
              assert.isFalse(events.some(MuxStream.isRouting))
              if (error.reason._tag === "StreamInterrupted") {
                seen.interrupted++
                // with restart, only when no restart could follow: at the request deadline, for an error that fails
                // fast, or when the new route found no answer; and only with content of that one model delivered
                const e = error.reason.error.reason
                if (sc.onInterrupt === "restart") {
                  assert.isTrue(
                    (e._tag === "DeadlineExceeded" && e.scope === "request") || !BedrockError.decisionOf(e).failover ||
                      error.message.includes("no restart possible"),
                    `${e._tag}: ${error.message}`
                  )
                }
                assert.deepStrictEqual(modelsOf(last).map((m) => `m${m}`), [error.reason.modelId])
                assert.strictEqual(error.reason.delivered, deltas(last))
                assert.isTrue(error.reason.partial.estimated)
              } else {
                seen.otherError++
                // any other failure: nothing delivered since the last reset
                assert.strictEqual(deltas(last), 0, `${error.reason._tag} after content: ${textOf(last)}`)
                if (resets.length > 0) seen.partialThenFail++
              }
            }
          }
        })
        await Effect.runPromise(
          Effect.scoped(runFor(program, "3 hours")).pipe(
            Effect.provide(muxOn(config, script)),
            Random.withSeed(sc.seed),
            Effect.provide(TestClock.layer())
          )
        )
      }),
      { seed: 20261122, numRuns: 150 }
    )
    // the random scenarios reach every path the properties are about
    const { partialThenFail, ...paths } = seen
    for (const [k, v] of Object.entries(paths)) assert.isAbove(v, 5, k)
    // a reset only ever goes out with a new answer behind it: never a reset followed by a failure
    assert.strictEqual(partialThenFail, 0)
  }, 60_000)
})
