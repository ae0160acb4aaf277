import { AccessDeniedException, ValidationException } from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it } from "@effect/vitest"
import type { ConverseCommandOutput } from "@aws-sdk/client-bedrock-runtime"
import { Clock, Effect, Exit, Fiber, Layer, Random, Schedule, Stream } from "effect"
import * as fc from "fast-check"
import { TestClock } from "effect/testing"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux, type ConverseOptions, type MuxRequest, type MuxResponse } from "../src/BedrockMux.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import type * as MuxConfig from "../src/MuxConfig.ts"
import type { AttemptRecord } from "../src/MuxError.ts"
import * as MuxStore from "../src/MuxStore.ts"
import * as Policy from "../src/Policy.ts"
import * as SimulatorScript from "../src/SimulatorScript.ts"
import { muxError, runFor, success, timed } from "./support/mux.ts"

// --- helpers ------------------------------------------------------------------------------------

const hello: MuxRequest = { messages: [{ role: "user", content: [{ text: "hello" }] }] }

type PolicyOption = (p: Policy.Policy) => Policy.Policy

/** The mux on the simulator; both services exposed. */
const muxOn = (config: MuxConfig.Input, script: SimulatorScript.ScriptInput, policy?: PolicyOption) =>
  BedrockMux.layer(config, policy === undefined ? {} : { policy }).pipe(Layer.provideMerge(BedrockSimulator.layer(script)))

const converse = (options?: ConverseOptions, request: MuxRequest = hello) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    return yield* mux.converse(request, options)
  })




const simAttempts = BedrockSimulator.attempts
const healthOf = (modelId: string) =>
  Effect.gen(function*() {
    const health = yield* (yield* BedrockMux).health
    return health.models.find((x) => x.modelId === modelId)!
  })

/** An in-memory store that counts breaker reads (one per pass of the routing loop). */
const countingStore = (reads: { count: number }): MuxStore.Service => {
  const store = MuxStore.makeMemory()
  return {
    ...store,
    states: (kind, schema) => {
      const states = store.states(kind, schema)
      return kind !== "breaker" ? states : { ...states, getMany: (keys) => Effect.andThen(Effect.sync(() => reads.count++), states.getMany(keys)) }
    }
  }
}

const brief = (a: AttemptRecord) => [a.modelId, a.outcome, a.reason, a.decision].filter((x) => x !== undefined).join(" ")

const primaryFallback = (extra: Partial<MuxConfig.Input & object> = {}) => ({
  models: [{ modelId: "primary", weight: 100 }, { modelId: "fallback", weight: 30, isFallback: true }],
  ...extra
}) as MuxConfig.Input

// --- 1. the seed scenario -----------------------------------------------------------------------

describe("seed scenario: 10 concurrent requests, primary 3 RPM, fallback 25 RPM", () => {
  it.effect("all 10 succeed, exactly 3 answered by the primary, the rest failed over at once", () =>
    Effect.gen(function*() {
      const results = yield* runFor(
        Effect.all(Array.from({ length: 10 }, () => timed(converse())), { concurrency: "unbounded" }),
        "1 minute"
      )
      const responses = results.map((r) => ({ ...success(r.exit), at: r.at }))
      const byPrimary = responses.filter((r) => r.routing.modelId === "primary")
      assert.strictEqual(responses.length, 10)
      assert.strictEqual(byPrimary.length, 3)
      for (const r of byPrimary) {
        assert.isFalse(r.routing.fallbackUsed)
        assert.strictEqual(r.at, 200)
      }
      const byFallback = responses.filter((r) => r.routing.modelId === "fallback")
      assert.strictEqual(byFallback.length, 7)
      for (const r of byFallback) {
        assert.isTrue(r.routing.fallbackUsed)
        assert.strictEqual(r.at, 300) // no sleep between the throttle and the failover
      }
      // the mux does not know the primary's quota: the 4th request learns it from one throttle, and the
      // primary's cooldown (10 s) sends the 6 later requests straight to the fallback
      assert.deepStrictEqual(
        byFallback.map((r) => r.routing.attempts.map(brief).join(", ")).sort(),
        [
          "primary failure Throttled failover, fallback success",
          ...Array.from({ length: 6 }, () => "fallback success")
        ].sort()
      )
      const log = yield* simAttempts
      assert.deepStrictEqual(
        log.filter((a) => a.modelId === "primary").map((a) => [a.start, a.outcome]),
        [[0, "success"], [0, "success"], [0, "success"], [0, "ThrottlingException"]]
      )
      assert.strictEqual(log.filter((a) => a.modelId === "fallback" && a.outcome === "success").length, 7)
      // throttles are not health
      const primary = yield* healthOf("primary")
      assert.strictEqual(primary.breaker, "closed")
      assert.strictEqual(primary.throttles, 1)
      // the cooldown is over by now (1 minute later): the primary is available again
      assert.isTrue(primary.available)
      assert.isUndefined(primary.cooldown)
    }).pipe(Effect.provide(muxOn(primaryFallback(), { seed: 1, models: { primary: { rpm: 3, latency: 200 }, fallback: { rpm: 25, latency: 300 } } }))))

  it.effect("a throttle cools the primary for 500 ms; a later burst costs one throttled call, the rest go straight to the fallback; the refilled minute serves again", () =>
    Effect.gen(function*() {
      const burst = () => Effect.all(Array.from({ length: 10 }, () => converse()), { concurrency: "unbounded" })
      const program = Effect.gen(function*() {
        const first = yield* burst()
        const cooling = yield* healthOf("primary")
        yield* Effect.sleep("9 seconds")
        const during = yield* burst() // t = 9.3 s (the first burst ended at 0.3 s): the primary's minute is still full
        yield* Effect.sleep(60_000 - (yield* Clock.currentTimeMillis)) // the primary's minute is over
        const after = yield* burst()
        return { first, cooling, during, after }
      })
      const { first, cooling, during, after } = yield* runFor(program, "2 minutes")
      const onPrimary = (rs: ReadonlyArray<MuxResponse>) => rs.filter((r) => r.routing.modelId === "primary").length
      assert.strictEqual(onPrimary(first), 3)
      // a throttle is an empty bucket, not a dead model: out for the first cooldown only (500 ms)
      assert.deepStrictEqual(cooling.cooldown, { until: 500, kind: "requests" })
      assert.isFalse(cooling.available)
      // at 9.3 s the first request of the burst learns the bucket is still empty; its throttle cools the primary
      // again, and the other nine go straight to the fallback
      assert.strictEqual(onPrimary(during), 0)
      assert.deepStrictEqual(
        during.map((r) => r.routing.attempts.map(brief).join(", ")).sort(),
        ["primary failure Throttled failover, fallback success", ...Array.from({ length: 9 }, () => "fallback success")].sort()
      )
      assert.strictEqual(onPrimary(after), 3)
      const primary = (yield* simAttempts).filter((a) => a.modelId === "primary")
      // one throttled call per burst that reached it
      assert.deepStrictEqual(primary.filter((a) => a.outcome === "ThrottlingException").map((a) => a.start), [0, 9_300, 60_000])
      assert.isFalse(primary.some((a) => a.start > 0 && a.start < 9_300))
    }).pipe(Effect.provide(muxOn(primaryFallback(), { seed: 1, models: { primary: { rpm: 3, latency: 200 }, fallback: { rpm: 100, latency: 300 } } }))))
})

// --- 2. the error policy ------------------------------------------------------------------------

const failing = (error: SimulatorScript.ErrorName, extra: Record<string, unknown> = {}, when?: Record<string, unknown>) => ({
  seed: 2,
  models: {
    primary: { latency: 100, faults: [{ ...(when !== undefined ? { when } : {}), do: { kind: "error", error, ...extra } }] },
    fallback: { latency: 250 }
  }
}) as SimulatorScript.ScriptInput

describe("error policy", () => {
  const immediate: ReadonlyArray<readonly [SimulatorScript.ErrorName, BedrockError.ReasonTag, Record<string, unknown>]> = [
    ["ThrottlingException", "Throttled", {}],
    ["ServiceUnavailableException", "ServiceUnavailable", {}],
    ["ModelTimeoutException", "ModelTimeout", {}],
    ["ModelErrorException", "ModelError", { originalStatusCode: 500 }]
  ]
  for (const [error, reason, extra] of immediate) {
    it.effect(`${error} on the primary fails over at once to the fallback`, () =>
      Effect.gen(function*() {
        const { exit, at } = yield* runFor(timed(converse()))
        const res = success(exit)
        assert.strictEqual(res.routing.modelId, "fallback")
        assert.isTrue(res.routing.fallbackUsed)
        assert.deepStrictEqual(res.routing.attempts.map(brief), [`primary failure ${reason} failover`, "fallback success"])
        // the answer arrives at exactly the fallback's latency: no wait before failing over
        assert.strictEqual(at, 250)
        assert.strictEqual((yield* simAttempts).length, 2)
      }).pipe(Effect.provide(muxOn(primaryFallback(), failing(error, extra)))))
  }

  it.effect("InternalServerException retries the same model once, then fails over", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      const res = success(exit)
      assert.deepStrictEqual(res.routing.attempts.map(brief), [
        "primary failure InternalServer retry-same",
        "primary failure InternalServer failover",
        "fallback success"
      ])
      // the retry waits the default same-model delay, 100 ms ± 20 % (Policy.defaultRetry); then the fallback's 250 ms
      assert.isAtLeast(at, 80 + 250)
      assert.isAtMost(at, 120 + 250)
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["primary", "primary", "fallback"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), failing("InternalServerException")))))

  it.effect("ModelNotReadyException retries the same model (and succeeds when it warmed up)", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      const res = success(exit)
      assert.strictEqual(res.routing.modelId, "primary")
      assert.deepStrictEqual(res.routing.attempts.map(brief), [
        "primary failure ModelNotReady retry-same",
        "primary failure ModelNotReady retry-same",
        "primary success"
      ])
      // two retries: after 100 ms and 200 ms, each ± 20 % (Policy.defaultRetry), then the 100 ms answer
      assert.isAtLeast(at, 80 + 160 + 100)
      assert.isAtMost(at, 120 + 240 + 100)
    }).pipe(Effect.provide(muxOn(primaryFallback(), failing("ModelNotReadyException", {}, { calls: [1, 2] })))))

  it.effect("ValidationException fails fast: Failed, one attempt, the SDK error as cause", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      const error = muxError(exit)
      assert.strictEqual(error.reason._tag, "Failed")
      assert.strictEqual(at, 0)
      assert.deepStrictEqual(error.attempts.map(brief), ["primary failure Validation fail-fast"])
      assert.isDefined(error.last)
      assert.instanceOf(error.last!.cause, ValidationException)
      if (error.reason._tag === "Failed") assert.instanceOf(error.reason.error.cause, ValidationException)
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["primary"])
    }).pipe(Effect.provide(muxOn(primaryFallback(), failing("ValidationException")))))

  it.effect("a storm of 50 ValidationExceptions never opens the breaker", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 50; i++) {
        const { exit } = yield* runFor(timed(converse()), "1 second")
        assert.strictEqual(muxError(exit).reason._tag, "Failed")
      }
      const primary = yield* healthOf("primary")
      assert.strictEqual(primary.breaker, "closed")
      assert.isTrue(primary.available)
      assert.strictEqual(primary.failFast, 50)
      assert.strictEqual(primary.failures, 0)
      assert.strictEqual(primary.errorRate, 0)
      assert.strictEqual((yield* simAttempts).filter((a) => a.modelId === "fallback").length, 0)
    }).pipe(Effect.provide(muxOn(primaryFallback({ breaker: { failures: 3 } }), failing("ValidationException")))))

  it.effect("AccessDeniedException fails fast", () =>
    Effect.gen(function*() {
      const error = muxError((yield* runFor(timed(converse()))).exit)
      assert.strictEqual(error.reason._tag, "Failed")
      assert.deepStrictEqual(error.attempts.map(brief), ["primary failure AccessDenied fail-fast"])
      assert.instanceOf(error.last!.cause, AccessDeniedException)
    }).pipe(Effect.provide(muxOn(primaryFallback(), failing("AccessDeniedException")))))

  it.effect("Policy.override(AccessDenied, { failover: true }) through the layer's policy option changes it", () =>
    Effect.gen(function*() {
      const res = success((yield* runFor(timed(converse()))).exit)
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["primary failure AccessDenied failover", "fallback success"])
    }).pipe(
      Effect.provide(
        muxOn(primaryFallback(), failing("AccessDeniedException"), Policy.mapClassification(Policy.override("AccessDenied", { failover: true })))
      )
    ))

  describe("context-window validation", () => {
    // the simulator rejects input longer than its contextWindow with "Input is too long for requested model."
    const long: MuxRequest = { messages: [{ role: "user", content: [{ text: "word ".repeat(400) }] }] }
    const script = {
      seed: 3,
      models: { small: { contextWindow: 10, latency: 10 }, smaller: { contextWindow: 5, latency: 10 }, large: { latency: 10 } }
    } as const

    it.effect("fails over only to a model with a larger configured contextWindow, skipping lower tiers", () =>
      Effect.gen(function*() {
        const res = success((yield* runFor(timed(converse({}, long)))).exit)
        assert.strictEqual(res.routing.modelId, "large")
        assert.deepStrictEqual(res.routing.attempts.map(brief), ["small failure Validation failover", "large success"])
        assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["small", "large"])
      }).pipe(Effect.provide(muxOn({
        models: [
          { modelId: "small", contextWindow: 8_000 },
          { modelId: "smaller", contextWindow: 4_000, tier: 1 },
          { modelId: "large", contextWindow: 200_000, tier: 2 }
        ]
      }, script))))

    it.effect("fails fast when no model of the pool has a larger window", () =>
      Effect.gen(function*() {
        const error = muxError((yield* runFor(timed(converse({}, long)))).exit)
        assert.strictEqual(error.reason._tag, "Failed")
        assert.deepStrictEqual(error.attempts.map(brief), ["small failure Validation fail-fast"])
        assert.instanceOf(error.last!.cause, ValidationException)
        assert.deepStrictEqual((yield* simAttempts).map((a) => a.modelId), ["small"])
      }).pipe(Effect.provide(muxOn({
        models: [{ modelId: "small", contextWindow: 8_000 }, { modelId: "smaller", contextWindow: 4_000, tier: 1 }]
      }, script))))
  })

  it.effect("a backoff Schedule retries the last remaining model after 1 s and succeeds when the fault was only on call 1", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      const res = success(exit)
      assert.strictEqual(res.routing.modelId, "only")
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["only failure ServiceUnavailable failover", "only success"])
      assert.strictEqual(at, 1_000 + 100)
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.start), [0, 1_000])
    }).pipe(
      Effect.provide(muxOn(
        { models: [{ modelId: "only" }] },
        { models: { only: { latency: 100, faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ServiceUnavailableException" } }] } } },
        Policy.withBackoff(Schedule.spaced("1 second"))
      ))
    ))

  it.effect("without a backoff the last model's failure ends the request at once", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      const error = muxError(exit)
      assert.strictEqual(error.reason._tag, "NoModelsAvailable")
      assert.strictEqual(at, 0)
      assert.deepStrictEqual(error.attempts.map(brief), ["only failure ServiceUnavailable failover"])
    }).pipe(
      Effect.provide(muxOn(
        { models: [{ modelId: "only" }] },
        { models: { only: { latency: 100, faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ServiceUnavailableException" } }] } } }
      ))
    ))

  it.effect("the backoff is not consulted while another model can take the request", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      assert.strictEqual(success(exit).routing.modelId, "fallback")
      assert.strictEqual(at, 250)
    }).pipe(Effect.provide(muxOn(primaryFallback(), failing("ServiceUnavailableException"), Policy.withBackoff(Schedule.spaced("1 second"))))))

  it.effect("a backoff whose delay would pass the request deadline ends at once as DeadlineExceeded (request), not NoModelsAvailable", () =>
    Effect.gen(function*() {
      // the only model fails at 100 ms; the backoff's 1 s would end at 1100 ms, past the 1 s deadline
      const { exit, at } = yield* runFor(timed(converse({ deadline: "1 second" })))
      const error = muxError(exit)
      assert.strictEqual(error.reason._tag, "DeadlineExceeded")
      if (error.reason._tag !== "DeadlineExceeded") return
      assert.strictEqual(error.reason.scope, "request")
      assert.strictEqual(error.reason.deadlineMs, 1_000)
      assert.strictEqual(error.last?.reason._tag, "ServiceUnavailable")
      // it ends when the failure is known, without sleeping towards the deadline, and makes no further call
      assert.strictEqual(at, 100)
      assert.deepStrictEqual(error.attempts.map(brief), ["only failure ServiceUnavailable failover"])
      assert.deepStrictEqual((yield* simAttempts).map((a) => a.start), [0])
    }).pipe(
      Effect.provide(muxOn(
        { models: [{ modelId: "only" }] },
        { models: { only: { faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ServiceUnavailableException", after: 100 } }] } } },
        Policy.withBackoff(Schedule.spaced("1 second"))
      ))
    ))
})

// --- 3. deadlines -------------------------------------------------------------------------------

const hanging = (models: ReadonlyArray<string>, others: Record<string, unknown> = {}) => ({
  seed: 4,
  models: { ...Object.fromEntries(models.map((m) => [m, { faults: [{ do: { kind: "hang" } }] }])), ...others }
}) as SimulatorScript.ScriptInput

describe("deadlines", () => {
  it.effect("a hanging primary is aborted at its 2 s timeout and the fallback answers at 2 s + its latency", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      const res = success(exit)
      assert.strictEqual(at, 2_000 + 300)
      assert.strictEqual(res.routing.modelId, "fallback")
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["primary interrupted DeadlineExceeded failover", "fallback success"])
      assert.strictEqual(res.routing.attempts[0]!.durationMs, 2_000)
      // the limit that expired: the model's own timeout
      assert.strictEqual(res.routing.attempts[0]!.limitMs, 2_000)
      assert.isUndefined(res.routing.attempts[1]!.limitMs)
      const log = yield* simAttempts
      const primary = log.find((a) => a.modelId === "primary")!
      assert.strictEqual(primary.outcome, "interrupted")
      assert.strictEqual(primary.end, 2_000)
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "primary", timeout: "2 seconds" }, { modelId: "fallback", isFallback: true }] },
      hanging(["primary"], { fallback: { latency: 300 } })
    ))))

  const everyModelHangs = muxOn(
    { models: [{ modelId: "a" }, { modelId: "b", tier: 1 }, { modelId: "c", tier: 2 }, { modelId: "d", tier: 3 }], timeout: 1_200, deadline: "3 seconds" },
    hanging(["a", "b", "c", "d"])
  )

  it.effect("request deadline 3 s with every model hanging: DeadlineExceeded at exactly 3 s, carrying every attempt", () =>
    Effect.gen(function*() {
      const { exit, at } = yield* runFor(timed(converse()))
      const error = muxError(exit)
      assert.strictEqual(at, 3_000)
      assert.strictEqual(error.reason._tag, "DeadlineExceeded")
      if (error.reason._tag === "DeadlineExceeded") assert.strictEqual(error.reason.deadlineMs, 3_000)
      assert.deepStrictEqual(error.attempts.map(brief), [
        "a interrupted DeadlineExceeded failover",
        "b interrupted DeadlineExceeded failover",
        "c interrupted DeadlineExceeded stop"
      ])
      assert.deepStrictEqual(error.attempts.map((a) => a.durationMs), [1_200, 1_200, 600])
      // the last attempt's limit is what was left of the deadline
      assert.deepStrictEqual(error.attempts.map((a) => a.limitMs), [1_200, 1_200, 600])
      const log = yield* simAttempts
      assert.deepStrictEqual(log.map((a) => [a.modelId, a.outcome, a.start, a.end]), [
        ["a", "interrupted", 0, 1_200],
        ["b", "interrupted", 1_200, 2_400],
        ["c", "interrupted", 2_400, 3_000]
      ])
    }).pipe(Effect.provide(everyModelHangs)))

  it.effect("a per-call deadline overrides the policy's, shorter or longer", () =>
    Effect.gen(function*() {
      const short = yield* runFor(timed(converse({ deadline: "1500 millis" })))
      assert.strictEqual(short.at, 1_500)
      const e1 = muxError(short.exit)
      assert.strictEqual(e1.reason._tag, "DeadlineExceeded")
      assert.deepStrictEqual(e1.attempts.map((a) => a.durationMs), [1_200, 300])

      const t0 = yield* Clock.currentTimeMillis
      const long = yield* runFor(timed(converse({ deadline: "10 seconds" })))
      const e2 = muxError(long.exit)
      // four attempts of 1.2 s: the budget runs out before the (longer) deadline
      assert.strictEqual(e2.reason._tag, "AttemptsExhausted")
      assert.strictEqual(long.at - t0, 4 * 1_200)
      assert.strictEqual(e2.attempts.length, 4)
    }).pipe(Effect.provide(everyModelHangs)))
})

// --- 8. invalid requests ------------------------------------------------------------------------

describe("InvalidRequest", () => {
  const cases: ReadonlyArray<readonly [string, MuxRequest, ConverseOptions | undefined, RegExp]> = [
    ["a request with modelId", { ...hello, modelId: "x" } as MuxRequest, undefined, /modelId/],
    ["empty messages", { messages: [] }, undefined, /messages/],
    ["no messages", {} as MuxRequest, undefined, /messages/],
    ["an unknown label", hello, { label: "nope" }, /unknown route label "nope"/],
    ["a negative deadline", hello, { deadline: -5 }, /deadline/],
    ["a zero deadline", hello, { deadline: 0 }, /deadline/]
  ]
  for (const [name, request, options, pattern] of cases) {
    it.effect(`${name}: typed MuxError InvalidRequest, no attempt made`, () =>
      Effect.gen(function*() {
        const error = muxError((yield* runFor(timed(converse(options, request)))).exit)
        assert.strictEqual(error.reason._tag, "InvalidRequest")
        if (error.reason._tag === "InvalidRequest") assert.match(error.reason.problems.join("; "), pattern)
        assert.deepStrictEqual(error.attempts, [])
        assert.deepStrictEqual(yield* simAttempts, [])
      }).pipe(Effect.provide(muxOn(primaryFallback(), { models: { primary: {}, fallback: {} } }))))
  }
})

// --- 9. routes ----------------------------------------------------------------------------------

describe("routes", () => {
  const config = {
    models: [{ modelId: "chat", weight: 100 }, { modelId: "sum-a", weight: 50 }, { modelId: "sum-b", weight: 50, isFallback: true }],
    routes: { summarize: ["sum-a", "sum-b"] }
  }
  it.effect("label \"summarize\" uses only its models", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 40; i++) {
        const res = success((yield* runFor(timed(converse({ label: "summarize" })), "1 second")).exit)
        assert.include(["sum-a", "sum-b"], res.routing.modelId)
      }
      const log = yield* simAttempts
      assert.isFalse(log.some((a) => a.modelId === "chat"))
      // sum-a throttles every other call (1, 3, 5, ...), one request a second. A throttle is an empty bucket, not a
      // dead model: it cools sum-a down for 500 ms (the first cooldown), the throttled request fails over to sum-b
      // (its route's fallback), and a second later sum-a takes the next request again
      assert.deepStrictEqual(
        log.filter((a) => a.modelId === "sum-a").map((a) => [a.start, a.outcome]),
        Array.from({ length: 40 }, (_, i) => [i * 1000, i % 2 === 0 ? "ThrottlingException" : "success"])
      )
      assert.deepStrictEqual(
        log.filter((a) => a.modelId === "sum-b").map((a) => a.start),
        Array.from({ length: 20 }, (_, i) => i * 2000)
      )
      assert.strictEqual(log.length, 40 + 20)
      // without a label, the whole pool: the primary tier is chat + sum-a
      const res = success((yield* runFor(timed(converse()), "1 second")).exit)
      assert.include(["chat", "sum-a"], res.routing.modelId)
    }).pipe(
      Effect.provide(muxOn(config, {
        seed: 5,
        models: {
          chat: {},
          "sum-a": { faults: [{ when: { calls: Array.from({ length: 20 }, (_, i) => 2 * i + 1) }, do: { kind: "error", error: "ThrottlingException" } }] },
          "sum-b": {}
        }
      })),
      Random.withSeed("routes")
    ))

  it.effect("a route never falls outside itself: its models down → NoModelsAvailable, the rest excluded by route", () =>
    Effect.gen(function*() {
      const error = muxError((yield* runFor(timed(converse({ label: "summarize" })))).exit)
      assert.strictEqual(error.reason._tag, "NoModelsAvailable")
      if (error.reason._tag === "NoModelsAvailable") {
        const why = Object.fromEntries(error.reason.models.map((m) => [m.modelId, m.excluded]))
        assert.deepStrictEqual(why, { chat: "route", "sum-a": "tried", "sum-b": "tried" })
      }
      assert.isFalse((yield* simAttempts).some((a) => a.modelId === "chat"))
    }).pipe(Effect.provide(muxOn(config, {
      models: {
        chat: {},
        "sum-a": { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
        "sum-b": { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] }
      }
    }))))
})

// --- 4. nothing eligible ------------------------------------------------------------------------

describe("NoModelsAvailable", () => {
  const layer = muxOn(
    { ...primaryFallback(), breaker: { failures: 1, cooldown: "10 seconds" } } as MuxConfig.Input,
    {
      seed: 6,
      models: {
        primary: { latency: 100, faults: [{ when: { to: 5_000 }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
        fallback: { latency: 100, faults: [{ when: { to: 5_000 }, do: { kind: "error", error: "ServiceUnavailableException", after: 500 } }] }
      }
    }
  )

  it.effect("when every breaker is open: each model's state and the earliest recovery; waitForRecovery waits and succeeds", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        // both fail once: both breakers open (primary until 10 000, fallback until 10 500)
        const first = yield* timed(converse())
        const second = yield* timed(converse())
        const health = yield* (yield* BedrockMux).health
        const tooShort = yield* timed(converse({ waitForRecovery: true, deadline: "5 seconds" }))
        const waited = yield* timed(converse({ waitForRecovery: true }))
        return { first, second, health, tooShort, waited }
      })
      const { first, second, health, tooShort, waited } = yield* runFor(program)

      const e1 = muxError(first.exit)
      assert.strictEqual(e1.reason._tag, "NoModelsAvailable")
      assert.deepStrictEqual(e1.attempts.map(brief), ["primary failure ServiceUnavailable failover", "fallback failure ServiceUnavailable failover"])
      assert.strictEqual(first.at, 500)

      const e2 = muxError(second.exit)
      assert.strictEqual(second.at, 500)
      assert.deepStrictEqual(e2.attempts, [])
      assert.strictEqual(e2.reason._tag, "NoModelsAvailable")
      if (e2.reason._tag === "NoModelsAvailable") {
        assert.strictEqual(e2.reason.earliestRecovery, 10_000)
        assert.deepStrictEqual(
          e2.reason.models.map((m) => [m.modelId, m.breaker, m.excluded, m.recoversAt]),
          [["primary", "open", "breaker", 10_000], ["fallback", "open", "breaker", 10_500]]
        )
      }
      assert.strictEqual(health.status, "unhealthy")
      assert.deepStrictEqual(health.models.map((m) => [m.breaker, m.available, m.recoversAt]), [["open", false, 10_000], ["open", false, 10_500]])

      // the recovery falls outside a 5 s deadline: no wait
      assert.strictEqual(muxError(tooShort.exit).reason._tag, "NoModelsAvailable")
      assert.strictEqual(tooShort.at, 500)

      // waits for the primary's half-open at 10 000; its probe succeeds (the outage ended at 5 000)
      const res = success(waited.exit)
      assert.strictEqual(res.routing.modelId, "primary")
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["primary success"])
      assert.strictEqual(waited.at, 10_100)
    }).pipe(Effect.provide(layer)))

  const reads = { count: 0 }
  it.effect("waitForRecovery while a half-open probe is in flight waits for it without spinning", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        yield* Effect.exit(converse()) // primary's only failure: open until 1 000
        yield* Effect.sleep("1 second")
        // a probe (2 s) is in flight; a second request may only use the primary
        const probe = yield* Effect.forkChild(timed(converse({ label: "primary-only" })))
        yield* Effect.sleep("10 millis")
        const waiter = yield* timed(converse({ label: "primary-only", waitForRecovery: true }))
        return { probe: yield* Fiber.join(probe), waiter }
      })
      const { probe, waiter } = yield* runFor(program, "1 minute")
      // each pass of the routing loop reads the store once: polling, not a busy loop, while the probe runs
      assert.isBelow(reads.count, 100)
      assert.strictEqual(success(probe.exit).routing.modelId, "primary")
      assert.strictEqual(probe.at, 3_000)
      // once the probe closed the breaker, the waiting request went through
      const res = success(waiter.exit)
      assert.strictEqual(res.routing.modelId, "primary")
      assert.isAtLeast(waiter.at, 3_000 + 2_000)
      assert.isAtMost(waiter.at, 3_000 + 2_000 + 1_000)
    }).pipe(Effect.provide(muxOn(
      { ...primaryFallback(), routes: { "primary-only": ["primary"] }, breaker: { failures: 1, cooldown: "1 second" } } as MuxConfig.Input,
      { models: { primary: { latency: 2_000, faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ServiceUnavailableException" } }] }, fallback: {} } }
    ).pipe(Layer.provide(Layer.succeed(MuxStore.MuxStore, countingStore(reads)))))))
})

// --- 5. the breaker, end to end -----------------------------------------------------------------

describe("breaker end to end", () => {
  it.effect("primary down 0-60 s, a request every 4 s for 120 s: fallback during the outage, a probe every 5 s, primary back within one probe interval + one request", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const out: Array<{ readonly at: number; readonly res: MuxResponse; readonly primary: string }> = []
        for (let i = 0; i < 30; i++) {
          const { exit } = yield* timed(converse())
          out.push({ at: i * 4_000, res: success(exit), primary: (yield* healthOf("primary")).breaker })
          yield* Effect.sleep((i + 1) * 4_000 - (yield* Clock.currentTimeMillis))
        }
        return out
      })
      const out = yield* runFor(program, "3 minutes")
      assert.strictEqual(out.length, 30)
      const log = (yield* simAttempts).filter((a) => a.modelId === "primary")
      // 5 counted failures open it (t = 0..16 s). While open, a probe is allowed every probe interval (5 s): the
      // first request after each interval is the probe (24, 32, 40, 48, 56 s). Each fails fast (a 503 response),
      // which keeps the interval; the probe at 64 s succeeds and the primary takes every request again
      const down = [0, 4_000, 8_000, 12_000, 16_000, 24_000, 32_000, 40_000, 48_000, 56_000]
      const back = Array.from({ length: 14 }, (_, i) => 64_000 + i * 4_000)
      assert.deepStrictEqual(log.map((a) => [a.start, a.outcome]), [
        ...down.map((t) => [t, "ServiceUnavailableException"]),
        ...back.map((t) => [t, "success"])
      ])
      // during the outage the fallback served everything; between probes the primary was not even tried
      for (const o of out.filter((o) => o.at < 64_000)) assert.strictEqual(o.res.routing.modelId, "fallback", `at ${o.at}`)
      for (const o of out.filter((o) => o.at > 16_000 && o.at < 64_000 && !down.includes(o.at))) {
        assert.deepStrictEqual(o.res.routing.attempts.map(brief), ["fallback success"], `at ${o.at}`)
      }
      for (const o of out.filter((o) => o.at >= 64_000)) assert.strictEqual(o.res.routing.modelId, "primary")
      // breaker state seen after each request
      assert.deepStrictEqual(out.filter((o) => o.at < 16_000).map((o) => o.primary), ["closed", "closed", "closed", "closed"])
      for (const o of out.filter((o) => o.at >= 16_000 && o.at < 64_000)) assert.strictEqual(o.primary, "open", `at ${o.at}`)
      assert.strictEqual(out.find((o) => o.at === 64_000)!.primary, "closed")
      // the goal: back within one probe interval (5 s) plus one request interval (4 s) of the recovery at 60 s
      const backAt = log.find((a) => a.outcome === "success")!.start
      assert.isAtMost(backAt - 60_000, 5_000 + 4_000)
      // and no hammering while down: at most one probe per probe interval
      const probes = down.filter((t) => t > 16_000)
      probes.slice(1).forEach((t, i) => assert.isAtLeast(t - probes[i]!, 5_000))
    }).pipe(Effect.provide(muxOn(primaryFallback(), {
      seed: 7,
      models: {
        primary: { latency: 100, faults: [{ when: { from: 0, to: 60_000 }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
        fallback: { latency: 100 }
      }
    }))))

  it.effect("throttles never open the breaker; a model that throttles everything is tried once per (doubling) cooldown", () =>
    Effect.gen(function*() {
      // one request a second for 45 s; every call to the primary throttles. Each throttle in a row doubles its
      // cooldown from 500 ms up to the 10 s cap, and when a cooldown ends one request tries it: at 0, 1, 2, 4, 8,
      // 16, 26 and 36 s (8 throttles within the breaker's 60 s window, far more than `failures: 2`); the fallback
      // alone takes the requests in between
      const tries = [0, 1_000, 2_000, 4_000, 8_000, 16_000, 26_000, 36_000]
      for (let i = 0; i < 45; i++) {
        const res = success((yield* runFor(timed(converse()), "1 second")).exit)
        assert.deepStrictEqual(
          res.routing.attempts.map(brief),
          tries.includes(i * 1_000) ? ["primary failure Throttled failover", "fallback success"] : ["fallback success"],
          `request ${i}`
        )
        const primary = yield* healthOf("primary")
        assert.strictEqual(primary.breaker, "closed", `request ${i}`)
      }
      assert.deepStrictEqual((yield* simAttempts).filter((a) => a.modelId === "primary").map((a) => a.start), tries)
      const primary = yield* healthOf("primary")
      assert.strictEqual(primary.breaker, "closed")
      assert.strictEqual(primary.throttles, tries.length)
      assert.strictEqual(primary.failures, 0)
      // at 45 s it is still cooling down from the throttle at 36 s (10 s, the cap): unavailable for that reason only
      assert.deepStrictEqual(primary.cooldown, { until: 46_000, kind: "requests" })
      assert.strictEqual(primary.unavailable, "cooldown")
      assert.isFalse(primary.available)
      yield* TestClock.adjust("1 second")
      assert.isTrue((yield* healthOf("primary")).available)
    }).pipe(Effect.provide(muxOn(primaryFallback({ breaker: { failures: 2 } }), failing("ThrottlingException")))))

  it.effect("half-open admits only `halfOpen` probes at once", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        yield* Effect.exit(converse()) // the primary's only failure opens it until 1 000
        yield* Effect.sleep(1_000 - (yield* Clock.currentTimeMillis))
        const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () => Effect.forkChild(converse()))
        yield* Effect.sleep("200 millis")
        const during = yield* healthOf("primary")
        const results = yield* Effect.forEach(fibers, Fiber.join)
        const after = yield* healthOf("primary")
        return { during, results, after }
      })
      const { during, results, after } = yield* runFor(program)
      assert.strictEqual(results.filter((r) => r.routing.modelId === "primary").length, 2)
      assert.strictEqual(results.filter((r) => r.routing.modelId === "fallback").length, 3)
      const probes = (yield* simAttempts).filter((a) => a.modelId === "primary" && a.start === 1_000)
      assert.strictEqual(probes.length, 2)
      assert.strictEqual(during.breaker, "half-open")
      assert.isFalse(during.available)
      assert.strictEqual(after.breaker, "closed")
    }).pipe(Effect.provide(muxOn(
      primaryFallback({ breaker: { failures: 1, cooldown: "1 second", halfOpen: 2 } }),
      { models: { primary: { latency: 500, faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ServiceUnavailableException" } }] }, fallback: { latency: 100 } } }
    ))))

  it.effect("ramp-up: right after closing, a model gets ~10% of its weight, then ramps linearly to 100%", () =>
    Effect.gen(function*() {
      const share = (n: number) =>
        Effect.gen(function*() {
          let a = 0
          for (let i = 0; i < n; i++) if (success(yield* Effect.exit(converse())).routing.modelId === "a") a++
          return a / n
        })
      // The 9 000 requests run on the test's own fiber, between clock adjustments: a fiber woken
      // by TestClock that stays busy past its warning delay (1 s of real time, e.g. on a loaded
      // machine) is no longer waited for, and its later sleeps would never be reached.
      const program = Effect.gen(function*() {
        const t0 = yield* Clock.currentTimeMillis
        yield* Effect.exit(converse({ label: "only-a" })) // a fails: open for 1 s
        yield* TestClock.adjust("1 second")
        assert.strictEqual(success(yield* Effect.exit(converse({ label: "only-a" }))).routing.modelId, "a") // probe closes it
        const w0 = (yield* healthOf("a")).effectiveWeight
        const s0 = yield* share(3_000)
        yield* TestClock.adjust("15 seconds")
        const w1 = (yield* healthOf("a")).effectiveWeight
        const s1 = yield* share(3_000)
        yield* TestClock.adjust("15 seconds")
        const w2 = (yield* healthOf("a")).effectiveWeight
        const s2 = yield* share(3_000)
        // no request waited on the clock: every step is the adjustment above
        assert.strictEqual((yield* Clock.currentTimeMillis) - t0, 31_000)
        return { w: [w0, w1, w2], s: [s0, s1, s2] }
      })
      const { s, w } = yield* program.pipe(Random.withSeed("ramp"))
      assert.deepStrictEqual(w.map((x) => Math.round(x * 1e6) / 1e6), [10, 55, 100])
      // expected shares a/(a+b): 10/110, 55/155, 100/200 (binomial sd <= 0.01 at n = 3000)
      assert.closeTo(s[0]!, 10 / 110, 0.03)
      assert.closeTo(s[1]!, 55 / 155, 0.04)
      assert.closeTo(s[2]!, 0.5, 0.04)
    }).pipe(Effect.provide(muxOn(
      {
        models: [{ modelId: "a", weight: 100 }, { modelId: "b", weight: 100 }],
        routes: { "only-a": ["a"] },
        breaker: { failures: 1, cooldown: "1 second", rampUp: "30 seconds" }
      },
      { models: { a: { faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ServiceUnavailableException" } }] }, b: {} } }
    ))))

  it.effect("a retry of the same model whose breaker just opened fails over instead of giving up", () =>
    Effect.gen(function*() {
      const [{ exit }, primary] = yield* runFor(Effect.zip(timed(converse()), healthOf("primary")))
      const res = success(exit)
      assert.strictEqual(res.routing.modelId, "fallback")
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["primary failure InternalServer retry-same", "fallback success"])
      assert.strictEqual(primary.breaker, "open")
    }).pipe(Effect.provide(muxOn(primaryFallback({ breaker: { failures: 1 } }), failing("InternalServerException")))))
})

describe("defects", () => {
  let calls = 0
  const runtime = BedrockRuntime.of({
    converse: (input) =>
      Effect.suspend(() => {
        calls++
        if (calls === 1) return Effect.fail(BedrockError.make(new BedrockError.ServiceUnavailable(), "down", input.modelId))
        if (calls === 2) return Effect.die(new Error("boom"))
        return Effect.succeed<ConverseCommandOutput>({
          $metadata: {},
          output: { message: { role: "assistant", content: [{ text: "ok" }] } },
          stopReason: "end_turn",
          usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
          metrics: { latencyMs: 0 }
        })
      }),
    converseStream: () => Stream.die("not used")
  })

  it.effect("a probe that dies gives its slot back: the half-open breaker still admits", () =>
    Effect.gen(function*() {
      assert.strictEqual(muxError(yield* Effect.exit(converse())).reason._tag, "NoModelsAvailable") // opens it
      yield* TestClock.adjust("1 second")
      const died = yield* Effect.exit(converse())
      assert.isTrue(Exit.isFailure(died) && died.cause.reasons.some((r) => r._tag === "Die"))
      assert.isTrue((yield* healthOf("only")).available)
      assert.strictEqual(success(yield* Effect.exit(converse())).routing.modelId, "only")
      assert.strictEqual(calls, 3)
    }).pipe(Effect.provide(
      BedrockMux.layer({ models: [{ modelId: "only" }], breaker: { failures: 1, cooldown: "1 second" } }).pipe(
        Layer.provide(Layer.succeed(BedrockRuntime, runtime))
      )
    )))
})

// --- 6. invariants over random pools and fault scripts ------------------------------------------

const ERRORS = SimulatorScript.ErrorNames
const STREAM_ERRORS = SimulatorScript.StreamErrorNames

const actionArb = (hang: boolean): fc.Arbitrary<Record<string, unknown>> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant("error"), error: fc.constantFrom(...ERRORS), originalStatusCode: fc.constantFrom(400, 429, 500, 503) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("cut", "malformed"), afterTokens: fc.nat({ max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("streamError"), afterTokens: fc.nat({ max: 3 }), error: fc.constantFrom(...STREAM_ERRORS) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("emptyOutput", "noMetadata") }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("slow"), latency: fc.integer({ min: 0, max: 3_000 }) }) },
    { weight: hang ? 2 : 0, arbitrary: fc.record({ kind: fc.constantFrom("hang", "stall"), afterTokens: fc.constant(0) }) }
  )

const modelArb = fc.record({
  tier: fc.integer({ min: 0, max: 2 }),
  weight: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 5, arbitrary: fc.integer({ min: 1, max: 100 }) }),
  latency: fc.integer({ min: 0, max: 500 }),
  hangs: fc.boolean(),
  timeout: fc.integer({ min: 200, max: 3_000 }),
  // a client-side RPM quota (the gaps put 5 to 15 requests within about a minute: 1 to 4 binds)
  rpm: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined, freq: 2 })
}).chain((m) =>
  fc.record({
    model: fc.constant(m),
    faults: fc.array(
      fc.record({
        when: fc.record({ probability: fc.oneof({ weight: 4, arbitrary: fc.double({ min: 0.05, max: 0.6, noNaN: true }) }, { weight: 1, arbitrary: fc.constant(1) }) }),
        do: actionArb(m.hangs)
      }),
      { maxLength: 3 }
    )
  })
)

const scenarioArb = fc.record({
  models: fc.array(modelArb, { minLength: 1, maxLength: 5 }),
  attempts: fc.integer({ min: 1, max: 6 }),
  deadline: fc.integer({ min: 1_000, max: 20_000 }),
  failures: fc.integer({ min: 1, max: 4 }),
  cooldown: fc.integer({ min: 500, max: 5_000 }),
  halfOpen: fc.integer({ min: 1, max: 2 }),
  gaps: fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 5, maxLength: 15 }),
  seed: fc.integer()
})

describe("invariants (property over random pools and fault scripts)", () => {
  it("attempts never exceed `attempts`; one outcome per request; no repeats without retry-same; tiers in order; no call to a model cooling down or out of quota", async () => {
    const seen = { success: 0, failure: 0, failovers: 0, retries: 0, rethrottled: 0, deadline: 0, tierChecks: 0, cooling: 0, quota: 0 }
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (sc) => {
        const entries = sc.models.map(({ model }, i) => ({
          modelId: `m${i}`,
          // the first model is always a primary
          tier: i === 0 ? 0 : model.tier,
          weight: i === 0 ? Math.max(1, model.weight) : model.weight,
          ...(model.hangs ? { timeout: Math.min(model.timeout, sc.deadline) } : {}),
          ...(model.rpm !== undefined ? { rpm: model.rpm } : {})
        }))
        const config = {
          models: entries,
          attempts: sc.attempts,
          timeout: Math.min(5_000, sc.deadline),
          deadline: sc.deadline,
          breaker: { failures: sc.failures, cooldown: sc.cooldown, cooldownMax: sc.cooldown * 4, halfOpen: sc.halfOpen, window: "30 seconds" },
          // throttle cooldowns from the same random scale, so that models cool down across requests
          cooldowns: { base: sc.cooldown }
        } as MuxConfig.Input
        const script = {
          seed: sc.seed,
          models: Object.fromEntries(sc.models.map(({ model, faults }, i) => [`m${i}`, { latency: model.latency, faults }]))
        } as unknown as SimulatorScript.ScriptInput
        const tierOf = new Map(entries.map((m) => [m.modelId, m.tier]))
        const rpmOf = new Map(entries.map((m) => [m.modelId, m.rpm]))
        // every kept reservation so far, with the time its call started: what the client-side RPM windows hold
        // (requests run one at a time, so none is in flight)
        // a network fault after the response began (a cut) keeps the reservation; one before it does not
        const keptNetwork = (outcome: string) => outcome === "cut"
        const admitted: Array<{ readonly modelId: string; readonly start: number }> = []
        /** no room in the model's sliding minute at `t`: it cannot be selected */
        const quotaFull = (modelId: string, t: number) => {
          const rpm = rpmOf.get(modelId)
          return rpm !== undefined && admitted.filter((a) => a.modelId === modelId && a.start > t - 60_000 && a.start <= t).length >= rpm
        }

        const program = Effect.gen(function*() {
          const mux = yield* BedrockMux
          for (const gap of sc.gaps) {
            yield* Effect.sleep(gap)
            const before = (yield* mux.health).models
            const logBefore = (yield* simAttempts).length
            const exit = yield* Effect.exit(mux.converse(hello))
            const log = yield* simAttempts

            // exactly one outcome: a response or a typed MuxError (no defect, no interruption)
            const attempts = Exit.isSuccess(exit) ? exit.value.routing.attempts : muxError(exit).attempts
            if (Exit.isSuccess(exit)) {
              seen.success++
              const last = attempts[attempts.length - 1]!
              assert.strictEqual(last.outcome, "success")
              assert.strictEqual(exit.value.routing.modelId, last.modelId)
              assert.strictEqual(exit.value.routing.target, last.target)
              assert.strictEqual(exit.value.routing.fallbackUsed, tierOf.get(last.modelId)! > 0)
            } else {
              seen.failure++
              const error = muxError(exit)
              if (error.reason._tag === "DeadlineExceeded") seen.deadline++
              if (error.reason._tag === "AttemptsExhausted") assert.strictEqual(attempts.length, sc.attempts)
              if (error.reason._tag === "Failed") assert.strictEqual(attempts[attempts.length - 1]!.decision, "fail-fast")
            }
            assert.isAtMost(attempts.length, sc.attempts)
            // every attempt but the last failed, or was aborted at its timeout
            attempts.slice(0, -1).forEach((a) =>
              assert.isTrue(a.outcome === "failure" || (a.outcome === "interrupted" && a.reason === "DeadlineExceeded"), brief(a))
            )
            // every attempt reached the provider once, and no call is left running after the request
            assert.strictEqual(log.length - logBefore, attempts.length)
            for (const a of log) assert.notStrictEqual(a.outcome, "pending")
            // when each attempt's call started (the provider's log, in the same order)
            const startOf = (k: number) => log[logBefore + k]!.start
            /** a throttle cooldown in force at `t`: cooldowns only start on throttles of models this request tried */
            const cooling = (m: (typeof before)[number], t: number) => m.cooldown !== undefined && m.cooldown.until > t

            attempts.forEach((a, k) => {
              const t = startOf(k)
              assert.strictEqual(log[logBefore + k]!.modelId, a.modelId)
              // no call goes to a model in a throttle cooldown or without room in its RPM quota
              assert.isFalse(cooling(before.find((m) => m.target === a.target)!, t), `attempt ${k} at ${t} to a cooling ${a.target}`)
              assert.isFalse(quotaFull(a.modelId, t), `attempt ${k} at ${t} to ${a.target} with its quota full`)
              const prev = attempts[k - 1]
              const repeat = attempts.slice(0, k).some((b) => b.target === a.target)
              if (prev?.decision === "failover") seen.failovers++
              if (repeat) {
                // a model appears again only right after a retry-same decision on it, or after it throttled: then
                // only once its cooldown is over (never at once: the request waited for the bucket to refill)
                const j = attempts.slice(0, k).map((b) => b.target).lastIndexOf(a.target)
                const earlier = attempts[j]!
                if (earlier.reason === "Throttled") {
                  assert.isAbove(t, startOf(j) + earlier.durationMs, `attempt ${k} of ${attempts.map(brief)}`)
                  seen.rethrottled++
                } else {
                  assert.strictEqual(prev?.target, a.target)
                  assert.strictEqual(prev?.decision, "retry-same")
                  seen.retries++
                }
                return
              }
              // closed before the request and untried in it: still closed (requests run one at a time);
              // eligible unless cooling down or out of quota when the attempt starts (a cooldown or a quota
              // window only frees up as time passes); no attempt may go to a higher tier than such a model
              const untried = before.filter((m) =>
                m.breaker === "closed" && m.weight > 0 && !attempts.slice(0, k).some((b) => b.target === m.target)
              )
              const eligible = untried.filter((m) => !cooling(m, t) && !quotaFull(m.modelId, t))
              const lowest = (ms: ReadonlyArray<{ readonly tier: number }>) => Math.min(...ms.map((m) => m.tier))
              if (untried.some((m) => cooling(m, t) && m.tier < tierOf.get(a.modelId)!)) seen.cooling++
              if (untried.some((m) => quotaFull(m.modelId, t) && m.tier < tierOf.get(a.modelId)!)) seen.quota++
              if (eligible.length > 0) {
                seen.tierChecks++
                assert.isAtMost(tierOf.get(a.modelId)!, lowest(eligible), `attempt ${k} of ${attempts.map(brief)}`)
              }
            })
            attempts.forEach((a, k) => {
              // a success keeps its reservation; so does a failure Bedrock may have counted (a timeout, a cut,
              // an in-stream failure); an error response gives it back
              const kept = a.outcome === "success" ||
                (a.reason !== undefined && ["DeadlineExceeded", "Incomplete", "ModelStreamError", "ModelTimeout"].includes(a.reason)) ||
                (a.reason === "Network" && log[logBefore + k]!.outcome !== "pending" && keptNetwork(log[logBefore + k]!.outcome))
              if (kept) admitted.push({ modelId: a.modelId, start: startOf(k) })
            })
          }
        })
        await Effect.runPromise(
          Effect.scoped(runFor(program, "2 hours")).pipe(
            Effect.provide(muxOn(config, script)),
            Random.withSeed(sc.seed),
            Effect.provide(TestClock.layer())
          )
        )
      }),
      { seed: 20260101, numRuns: 150 }
    )
    // the random scenarios exercise every path the invariants are about (a throttled model tried again later in
    // the same request takes a throttle, a wait and a second throttle-free model: rarer)
    for (const [k, v] of Object.entries(seen)) assert.isAbove(v, k === "rethrottled" ? 3 : 10, k)
  }, 120_000)
})

// --- 7. health and stats ------------------------------------------------------------------------

describe("health and stats", () => {
  /** JSON with every number zeroed: the shape only. */
  const shape = (u: unknown) => JSON.stringify(u, (_k, v) => (typeof v === "number" ? 0 : v))
  /**
   * Without what says the state of the moment (a model out now: why, until when; its last failure's text): two
   * snapshots taken at different moments may each find a model out for another reason, which is not growth.
   */
  const steady = (json: string) =>
    JSON.stringify(JSON.parse(json), (k, v) => (["unavailable", "recoversAt", "cooldown", "lastFailure", "breaker", "available"].includes(k) ? undefined : v))

  it.effect("bounded: 20 000 requests do not grow health or stats", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const mux = yield* BedrockMux
        const snapshots: Array<{ readonly stats: string; readonly health: string }> = []
        for (let i = 1; i <= 20_000; i++) {
          yield* Effect.exit(mux.converse(hello))
          yield* Effect.sleep("50 millis")
          if (i === 1_000 || i === 20_000) snapshots.push({ stats: JSON.stringify(yield* mux.stats), health: JSON.stringify(yield* mux.health) })
        }
        return { snapshots, stats: yield* mux.stats }
      })
      const { snapshots, stats } = yield* runFor(program.pipe(Random.withSeed("bounded")), "2 hours")
      assert.strictEqual(stats.requests, 20_000)
      assert.strictEqual(stats.successes + stats.failures, 20_000)
      assert.isAbove(stats.failovers, 100)
      const [early, late] = snapshots.map((s) => ({ stats: steady(s.stats), health: steady(s.health) }))
      assert.strictEqual(shape(JSON.parse(late!.stats)), shape(JSON.parse(early!.stats)))
      assert.strictEqual(shape(JSON.parse(late!.health)), shape(JSON.parse(early!.health)))
      // only the digits of the counters grow
      assert.isAtMost(late!.stats.length - early!.stats.length, 60)
      assert.isAtMost(late!.health.length - early!.health.length, 60)
    }).pipe(Effect.provide(muxOn(primaryFallback({ breaker: { failures: 20 } }), {
      seed: 8,
      logLimit: 10,
      models: {
        primary: { latency: { uniform: [0, 20] }, faults: [{ when: { probability: 0.1 }, do: { kind: "error", error: "ServiceUnavailableException" } }, { when: { probability: 0.1 }, do: { kind: "error", error: "ThrottlingException" } }] },
        fallback: { latency: 5 }
      }
    } as SimulatorScript.ScriptInput))), 60_000)

  it.effect("p50 / p95 reflect the simulator's latencies within 5 %", () =>
    Effect.gen(function*() {
      const results = yield* runFor(Effect.all(Array.from({ length: 2_000 }, () => Effect.exit(converse())), { concurrency: "unbounded" }), "5 seconds")
      results.forEach(success)
      const mux = yield* BedrockMux
      const stats = yield* mux.stats
      const model = (yield* mux.health).models[0]!
      // the latencies the simulator really produced (uniform on [100, 300] ms), from its attempt log
      const latencies = (yield* simAttempts).map((a) => a.end! - a.start).sort((a, b) => a - b)
      assert.strictEqual(latencies.length, 2_000)
      const quantile = (q: number) => latencies[Math.ceil(q * latencies.length) - 1]!
      const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length
      assert.closeTo(quantile(0.5), 200, 10) // sanity: the script's distribution
      assert.closeTo(quantile(0.95), 290, 10)
      for (const l of [model.latencyMs, stats.latencyMs]) {
        assert.closeTo(l.p50, quantile(0.5), quantile(0.5) * 0.05)
        assert.closeTo(l.p95, quantile(0.95), quantile(0.95) * 0.05)
        assert.closeTo(l.mean, mean, mean * 0.05)
      }
      assert.isAtLeast(stats.latencyMs.min, 100)
      assert.isAtMost(stats.latencyMs.max, 300)
      assert.strictEqual(model.successes, 2_000)
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "m" }] }, { seed: 9, models: { m: { latency: { uniform: [100, 300] } } } }))))

  it.effect("simpleHealth: 200 while one of three models is throttled and another open; 503 only when none can take traffic", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const mux = yield* BedrockMux
        const fresh = yield* mux.simpleHealth
        yield* Effect.exit(converse({ label: "throttled" }))
        yield* Effect.exit(converse({ label: "down" }))
        const partial = { simple: yield* mux.simpleHealth, health: yield* mux.health }
        return { fresh, partial }
      })
      const { fresh, partial } = yield* runFor(program)
      assert.deepStrictEqual(fresh, { status: "healthy", code: 200 })
      assert.deepStrictEqual(partial.simple, { status: "healthy", code: 200 })
      assert.strictEqual(partial.health.status, "degraded")
      // the throttled model's request waited out each cooldown and tried again (0, 0.5, 1.5, 3.5 s: 500 ms doubling),
      // 4 attempts; it is out until its last cooldown ends (its breaker stays closed); the other one is open
      assert.deepStrictEqual(
        partial.health.models.map((m) => [m.modelId, m.breaker, m.available, m.throttles, m.cooldown]),
        [
          ["throttled", "closed", false, 4, { until: 3_500 + 4_000, kind: "requests" }],
          ["down", "open", false, 0, undefined],
          ["ok", "closed", true, 0, undefined]
        ]
      )
    }).pipe(Effect.provide(muxOn(
      {
        models: [{ modelId: "throttled" }, { modelId: "down" }, { modelId: "ok" }],
        routes: { throttled: ["throttled"], down: ["down"] },
        breaker: { failures: 1 }
      },
      {
        models: {
          throttled: { faults: [{ do: { kind: "error", error: "ThrottlingException" } }] },
          down: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
          ok: {}
        }
      }
    ))))

  it.effect("simpleHealth: 503 when every breaker is open, 200 again once one half-opens", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const mux = yield* BedrockMux
        const error = muxError(yield* Effect.exit(converse()))
        const down = { simple: yield* mux.simpleHealth, health: yield* mux.health }
        yield* Effect.sleep("10 seconds")
        const recovered = yield* mux.simpleHealth
        return { error, down, recovered }
      })
      const { error, down, recovered } = yield* runFor(program)
      assert.strictEqual(error.attempts.length, 3)
      assert.deepStrictEqual(down.simple, { status: "unhealthy", code: 503 })
      assert.strictEqual(down.health.status, "unhealthy")
      assert.deepStrictEqual(down.health.models.map((m) => [m.breaker, m.recoversAt]), [["open", 10_000], ["open", 10_000], ["open", 10_000]])
      assert.deepStrictEqual(recovered, { status: "healthy", code: 200 })
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "a" }, { modelId: "b" }, { modelId: "c", tier: 1 }], breaker: { failures: 1, cooldown: "10 seconds" } },
      { models: { "*": { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] } }, unknownModels: "default" }
    ))))
})

describe("an Effect value runs many times", () => {
  it.effect("the same converse Effect, run twice, gives each run its own attempts", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const call = mux.converse({ messages: [{ role: "user", content: [{ text: "hi" }] }] })
      const first = yield* call
      const second = yield* call
      assert.strictEqual(first.routing.attempts.length, 1)
      assert.strictEqual(second.routing.attempts.length, 1)
      assert.notStrictEqual(first.routing.attempts, second.routing.attempts)
    }).pipe(
      Effect.provide(
        BedrockMux.layer({ models: [{ modelId: "a" }] }).pipe(Layer.provide(BedrockSimulator.layer({ models: { a: {} } })))
      )
    ))
})
