/**
 * Admission control end to end, through the mux on the simulator and under
 * TestClock: client-side model quotas (rpm/tpm), throttle cooldowns,
 * per-tenant quotas, service-tier escalation, and what health and
 * NoModelsAvailable say about them.
 */
import type { ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Layer, Logger, Random } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { BedrockMux, type ConverseOptions, type MuxRequest, type MuxResponse } from "../src/BedrockMux.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { type Attempt, BedrockSimulator } from "../src/BedrockSimulator.ts"
import type * as MuxConfig from "../src/MuxConfig.ts"
import { type AttemptRecord, MuxError } from "../src/MuxError.ts"
import * as MuxStore from "../src/MuxStore.ts"
import * as Policy from "../src/Policy.ts"
import type * as SimulatorScript from "../src/SimulatorScript.ts"
import { muxError, runFor, success, timed } from "./support/mux.ts"

// --- helpers ------------------------------------------------------------------------------------

/** "hello": 5 characters, one message: the default estimator says ceil(5 / 4) + 3 = 5 input tokens. */
const hello: MuxRequest = { messages: [{ role: "user", content: [{ text: "hello" }] }] }
const HELLO_TOKENS = 5
const withMax = (maxTokens: number, request: MuxRequest = hello): MuxRequest => ({ ...request, inferenceConfig: { maxTokens } })
/** a request of about `chars` characters */
const sized = (chars: number, maxTokens: number): MuxRequest => withMax(maxTokens, { messages: [{ role: "user", content: [{ text: "x".repeat(chars) }] }] })

/** three output tokens ("one two three") */
const ANSWER = "one two three"

type PolicyOption = (p: Policy.Policy) => Policy.Policy

/** The mux on the simulator (both services exposed); optionally a store of the test's own and a policy. */
const muxOn = (
  config: MuxConfig.Input,
  script: SimulatorScript.ScriptInput,
  options: { readonly store?: MuxStore.Service; readonly policy?: PolicyOption; readonly runtime?: Layer.Layer<BedrockRuntime, never, BedrockRuntime> } = {}
) => {
  let mux = BedrockMux.layer(config, options.policy === undefined ? {} : { policy: options.policy })
  if (options.store !== undefined) mux = mux.pipe(Layer.provide(Layer.succeed(MuxStore.MuxStore, options.store)))
  if (options.runtime !== undefined) mux = mux.pipe(Layer.provide(options.runtime))
  return mux.pipe(Layer.provideMerge(BedrockSimulator.layer(script)))
}

/** A BedrockRuntime that records every Converse input, then calls the simulator's. */
const spying = (inputs: Array<ConverseCommandInput>): Layer.Layer<BedrockRuntime, never, BedrockRuntime> =>
  Layer.effect(
    BedrockRuntime,
    Effect.gen(function*() {
      const rt = yield* BedrockRuntime
      return BedrockRuntime.of({
        converse: (input) => Effect.suspend(() => (inputs.push(input), rt.converse(input))),
        converseStream: rt.converseStream
      })
    })
  )

const converse = (options?: ConverseOptions, request: MuxRequest = hello) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    return yield* mux.converse(request, options)
  })


/** Starts `self` at virtual time `ms` (from now) and times it. */
const startAt = <A, E, R>(ms: number, self: Effect.Effect<A, E, R>) =>
  Effect.andThen(Effect.sleep(ms), Effect.flatMap(Clock.currentTimeMillis, (start) => Effect.map(timed(self), (r) => ({ ...r, start }))))


const concurrently = <A, E, R>(effects: ReadonlyArray<Effect.Effect<A, E, R>>) => Effect.all(effects, { concurrency: "unbounded" })

/** The QuotaExceeded reason of a failed request (fails the test on any other outcome). */
const quotaExceeded = <A>(exit: Exit.Exit<A, MuxError>) => {
  const error = muxError(exit)
  if (error.reason._tag !== "QuotaExceeded") assert.fail(`expected QuotaExceeded, got ${error.reason._tag}: ${error.message}`)
  return { error, reason: error.reason }
}
/** The fields of a QuotaExceeded reason. */
const fieldsOf = (r: { readonly tenant: string; readonly kind: string; readonly retryAfterMs: number }) => ({ tenant: r.tenant, kind: r.kind, retryAfterMs: r.retryAfterMs })
const noModels = <A>(exit: Exit.Exit<A, MuxError>) => {
  const error = muxError(exit)
  if (error.reason._tag !== "NoModelsAvailable") assert.fail(`expected NoModelsAvailable, got ${error.reason._tag}: ${error.message}`)
  return { error, reason: error.reason }
}

const brief = (a: AttemptRecord) => [a.modelId, a.outcome, a.reason, a.decision].filter((x) => x !== undefined).join(" ")
const calls = (log: ReadonlyArray<Attempt>, modelId: string) => log.filter((a) => a.modelId === modelId)
const throttled = (log: ReadonlyArray<Attempt>) => log.filter((a) => a.outcome === "ThrottlingException")
const modelOf = (r: { readonly exit: Exit.Exit<MuxResponse, MuxError> }) => success(r.exit).routing.modelId
const count = <A>(xs: ReadonlyArray<A>, p: (a: A) => boolean) => xs.filter(p).length

const healthOf = (modelId: string) =>
  Effect.gen(function*() {
    const health = yield* (yield* BedrockMux).health
    return health.models.find((x) => x.modelId === modelId)!
  })

const simAttempts = BedrockSimulator.attempts

/** What the store holds in a quota's sliding minute now. */
const usage = (store: MuxStore.Service, key: string) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.orDie(store.usage(key, now)))

// --- 1. model quotas: no throttled call is sent when the limit is known --------------------------

describe("model quotas (rpm / tpm in the config)", () => {
  it.effect("primary 3 RPM (config and simulator), fallback 25 RPM, 10 concurrent requests: 10/10, 3 on the primary, no throttled call sent", () =>
    Effect.gen(function*() {
      const results = yield* runFor(concurrently(Array.from({ length: 10 }, () => timed(converse()))), "1 minute")
      const responses = results.map((r) => ({ ...success(r.exit), at: r.at }))
      assert.strictEqual(responses.length, 10)
      const byPrimary = responses.filter((r) => r.routing.modelId === "primary")
      const byFallback = responses.filter((r) => r.routing.modelId === "fallback")
      assert.strictEqual(byPrimary.length, 3)
      assert.strictEqual(byFallback.length, 7)
      // the 7 spilled before anything was sent: one attempt each, no throttle in their story, no wait
      for (const r of byPrimary) assert.deepStrictEqual([r.routing.attempts.map(brief), r.at], [["primary success"], 200])
      for (const r of byFallback) assert.deepStrictEqual([r.routing.attempts.map(brief), r.at], [["fallback success"], 300])
      const log = yield* simAttempts
      assert.strictEqual(throttled(log).length, 0)
      assert.strictEqual(calls(log, "primary").length, 3)
      assert.strictEqual(calls(log, "fallback").length, 7)
      // the primary never throttled, so it is neither cooling down nor counted as throttled
      const primary = yield* healthOf("primary")
      assert.strictEqual(primary.throttles, 0)
      assert.isUndefined(primary.cooldown)
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "primary", weight: 100, rpm: 3 }, { modelId: "fallback", weight: 30, isFallback: true, rpm: 25 }] },
      { seed: 1, models: { primary: { rpm: 3, latency: 200 }, fallback: { rpm: 25, latency: 300 } } }
    ))))

  it.effect("two primaries of 3 RPM each and a fallback, 10 concurrent requests: 3, 3, 4, no throttled call sent", () =>
    Effect.gen(function*() {
      const results = yield* runFor(concurrently(Array.from({ length: 10 }, () => timed(converse()))), "1 minute")
      const by = (m: string) => count(results, (r) => modelOf(r) === m)
      assert.deepStrictEqual([by("p1"), by("p2"), by("fallback")], [3, 3, 4])
      // a full primary is skipped for the other one of its tier before the fallback tier is considered
      for (const r of results) assert.strictEqual(success(r.exit).routing.attempts.length, 1)
      assert.strictEqual(throttled(yield* simAttempts).length, 0)
    }).pipe(
      Effect.provide(muxOn(
        { models: [{ modelId: "p1", rpm: 3 }, { modelId: "p2", rpm: 3 }, { modelId: "fallback", isFallback: true }] },
        { seed: 2, models: { p1: { rpm: 3, latency: 100 }, p2: { rpm: 3, latency: 100 }, fallback: { latency: 100 } } }
      )),
      Random.withSeed("two-primaries")
    ))

  it.effect("the minute slides: a request every 5 s for 3 minutes on a 3 RPM primary gets exactly 3 per minute, the rest spills", () =>
    Effect.gen(function*() {
      const results = yield* runFor(concurrently(Array.from({ length: 36 }, (_, i) => startAt(i * 5_000, converse()))), "4 minutes")
      const primaryStarts = results.filter((r) => modelOf(r) === "primary").map((r) => r.start)
      // admitted at 0, 5, 10 s; the next room is at 60 s (when the request of 0 s leaves the minute), ...
      assert.deepStrictEqual(primaryStarts, [0, 5_000, 10_000, 60_000, 65_000, 70_000, 120_000, 125_000, 130_000])
      assert.strictEqual(count(results, (r) => modelOf(r) === "fallback"), 36 - 9)
      assert.strictEqual(throttled(yield* simAttempts).length, 0)
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "primary", rpm: 3 }, { modelId: "fallback", isFallback: true }] },
      { models: { primary: { rpm: 3, latency: 100 }, fallback: { latency: 100 } } }
    ))))

  describe("TPM", () => {
    const tpmPool = (tpm: number, extra: Record<string, unknown> = {}) =>
      ({ models: [{ modelId: "primary", tpm, ...extra }, { modelId: "fallback", isFallback: true }] }) as MuxConfig.Input
    const tpmScript = (tpm: number | undefined, primary: Record<string, unknown> = {}) =>
      ({
        models: { primary: { answer: ANSWER, latency: 1_000, ...(tpm !== undefined ? { tpm } : {}), ...primary }, fallback: { answer: ANSWER, latency: 1_000 } }
      }) as SimulatorScript.ScriptInput

    const store1 = MuxStore.makeMemory()
    it.effect("a reservation is the input estimate + the request's maxTokens: two of 500 fill a 1000 TPM minute exactly", () =>
      Effect.gen(function*() {
        const program = Effect.gen(function*() {
          // 5 + 495 = 500 each, in flight for 1 s
          const [a, b, c] = yield* concurrently([
            timed(converse({}, withMax(495))),
            timed(converse({}, withMax(495))),
            // 5 + 1 = 6 more does not fit in 1000
            Effect.andThen(Effect.sleep("10 millis"), timed(converse({}, withMax(1))))
          ])
          return { a, b, c }
        })
        const fiber = yield* Effect.forkChild(program)
        yield* TestClock.adjust("500 millis")
        // while both are in flight the minute holds their reservations
        assert.deepStrictEqual(yield* usage(store1, "default/quota/primary"), { requests: 2, tokens: 2 * (HELLO_TOKENS + 495) })
        yield* TestClock.adjust("1 minute")
        const { a, b, c } = yield* Fiber.join(fiber)
        assert.deepStrictEqual([modelOf(a), modelOf(b), modelOf(c)], ["primary", "primary", "fallback"])
        assert.deepStrictEqual(success(c.exit).routing.attempts.map(brief), ["fallback success"])
        assert.strictEqual(throttled(yield* simAttempts).length, 0)
      }).pipe(Effect.provide(muxOn(tpmPool(1_000), tpmScript(1_000), { store: store1 }))))

    const store2 = MuxStore.makeMemory()
    it.effect("a request whose reservation does not fit spills although its real usage would; settling frees the rest in the same minute", () =>
      Effect.gen(function*() {
        const program = Effect.gen(function*() {
          // A reserves 5 + 600 = 605 of 1000 and really uses 5 + 3 = 8
          const [a, b] = yield* concurrently([
            timed(converse({}, withMax(600))),
            // B (605 more) does not fit while A is in flight, though 8 + 8 would
            Effect.andThen(Effect.sleep("100 millis"), timed(converse({}, withMax(600))))
          ])
          const settled = yield* usage(store2, "default/quota/primary")
          // A ended at 1 s and was settled to 8: C (605) fits in the same minute
          const c = yield* timed(converse({}, withMax(600)))
          return { a, b, settled, c, end: yield* usage(store2, "default/quota/primary") }
        })
        const { a, b, settled, c, end } = yield* runFor(program, "1 minute")
        assert.deepStrictEqual([modelOf(a), modelOf(b), modelOf(c)], ["primary", "fallback", "primary"])
        assert.strictEqual(c.at, 2_100)
        assert.deepStrictEqual(settled, { requests: 1, tokens: HELLO_TOKENS + 3 })
        // the simulator (the same TPM) throttled nothing: the mux reserved what Bedrock reserves
        assert.strictEqual(throttled(yield* simAttempts).length, 0)
        assert.deepStrictEqual(end, { requests: 2, tokens: 2 * (HELLO_TOKENS + 3) })
      }).pipe(Effect.provide(muxOn(tpmPool(1_000), tpmScript(1_000), { store: store2 }))))

    const store3 = MuxStore.makeMemory()
    it.effect("a failed attempt releases its whole reservation at once", () =>
      Effect.gen(function*() {
        const program = Effect.gen(function*() {
          // A reserves 5 + 995 = 1000 (all of it); its call fails after 500 ms
          const fa = yield* Effect.forkChild(timed(converse({}, withMax(995))))
          yield* Effect.sleep("100 millis")
          const b = yield* timed(converse({}, withMax(1))) // nothing left: spills
          yield* Effect.sleep(600 - (yield* Clock.currentTimeMillis))
          const released = yield* usage(store3, "default/quota/primary")
          const c = yield* timed(converse({}, withMax(995))) // all of it again
          return { a: yield* Fiber.join(fa), b, released, c }
        })
        const { a, b, released, c } = yield* runFor(program, "1 minute")
        assert.deepStrictEqual(success(a.exit).routing.attempts.map(brief), ["primary failure ServiceUnavailable failover", "fallback success"])
        assert.strictEqual(modelOf(b), "fallback")
        assert.deepStrictEqual(released, { requests: 0, tokens: 0 })
        assert.deepStrictEqual(success(c.exit).routing.attempts.map(brief), ["primary success"])
      }).pipe(Effect.provide(muxOn(
        tpmPool(1_000),
        tpmScript(undefined, { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ServiceUnavailableException", after: 500 } }] }),
        { store: store3 }
      ))))

    const store4 = MuxStore.makeMemory()
    it.effect("without maxTokens in the request the model's maxTokens is reserved (default 4096); a reservation over the TPM never fits", () =>
      Effect.gen(function*() {
        const program = Effect.gen(function*() {
          const own = yield* timed(converse({ label: "own" })) // 5 + 200 of the model's maxTokens
          const ownUsage = yield* usage(store4, "default/quota/own")
          const dflt = yield* timed(converse({ label: "dflt" })) // 5 + 4096 > 4000: never fits
          const dfltUsage = yield* usage(store4, "default/quota/dflt")
          return { own, ownUsage, dflt, dfltUsage }
        })
        const fiber = yield* Effect.forkChild(program)
        yield* TestClock.adjust("500 millis")
        // in flight: the reservation of the model's maxTokens
        assert.deepStrictEqual(yield* usage(store4, "default/quota/own"), { requests: 1, tokens: HELLO_TOKENS + 200 })
        yield* TestClock.adjust("1 minute")
        const { own, ownUsage, dflt, dfltUsage } = yield* Fiber.join(fiber)
        assert.strictEqual(modelOf(own), "own")
        assert.deepStrictEqual(ownUsage, { requests: 1, tokens: HELLO_TOKENS + 3 })
        assert.deepStrictEqual(success(dflt.exit).routing.attempts.map(brief), ["fallback success"])
        assert.deepStrictEqual(dfltUsage, { requests: 0, tokens: 0 })
      }).pipe(Effect.provide(muxOn(
        {
          models: [{ modelId: "own", tpm: 1_000, maxTokens: 200 }, { modelId: "dflt", tpm: 4_000 }, { modelId: "fallback", isFallback: true }],
          routes: { own: ["own", "fallback"], dflt: ["dflt", "fallback"] }
        },
        { models: { own: { answer: ANSWER, latency: 1_000 }, dflt: { answer: ANSWER }, fallback: { answer: ANSWER } } },
        { store: store4 }
      ))))

    const store5 = MuxStore.makeMemory()
    it.effect("the policy's token estimator sizes the reservation (withTokenEstimator)", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(converse({}, withMax(10)))
        yield* TestClock.adjust("500 millis")
        assert.deepStrictEqual(yield* usage(store5, "default/quota/primary"), { requests: 1, tokens: 250 + 10 })
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Fiber.join(fiber)).routing.modelId, "primary")
        // settled to what the simulator says was used, not to the estimate
        assert.deepStrictEqual(yield* usage(store5, "default/quota/primary"), { requests: 1, tokens: HELLO_TOKENS + 3 })
      }).pipe(Effect.provide(muxOn(tpmPool(1_000), tpmScript(undefined), { store: store5, policy: Policy.withTokenEstimator(() => 250) }))))
  })
})

// --- 2. throttle cooldowns: learning the limits the config does not give -------------------------

describe("throttle cooldowns", () => {
  const learnPool = (extra: Record<string, unknown> = {}) =>
    ({ models: [{ modelId: "primary" }, { modelId: "fallback", isFallback: true }], ...extra }) as MuxConfig.Input
  /** the primary takes 1 RPM, which the config does not know */
  const oneRpm = (primary: Record<string, unknown> = {}) =>
    ({ models: { primary: { rpm: 1, latency: 100, ...primary }, fallback: { latency: 100 } } }) as SimulatorScript.ScriptInput

  it.effect("learning an unknown 1 RPM: 500 ms first, doubling with each throttle in a row up to 10 s, one trial per cooldown; the refilled minute serves again", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const out: Array<{ readonly at: number; readonly res: MuxResponse }> = []
        const health: Array<readonly [number, unknown, boolean]> = []
        for (let i = 0; i <= 70; i++) {
          yield* Effect.sleep(i * 1_000 - (yield* Clock.currentTimeMillis))
          out.push({ at: i * 1_000, res: success(yield* Effect.exit(converse())) })
          const h = yield* healthOf("primary")
          health.push([i * 1_000, h.cooldown, h.available])
        }
        return { out, health }
      })
      const { out, health } = yield* runFor(program, "2 minutes")
      const log = calls(yield* simAttempts, "primary")
      // one request a second. The minute's one request goes at 0 s. Then each throttle cools the primary for
      // 0.5, 1, 2, 4, 8 s, then the 10 s cap; the first request after each cooldown is its one trial. At 2 s the
      // 500 ms cooldown had been over as long as it lasted: no trial needed (but the level is remembered). The
      // minute slides at 60 s; the trial at 67 s gets through, and the next request learns the limit again
      const throttles = [1, 2, 3, 5, 9, 17, 27, 37, 47, 57, 68, 69, 70].map((t) => t * 1_000)
      const answered = [0, 67_000]
      const expected: Array<[number, string]> = [
        ...throttles.map((t): [number, string] => [t, "ThrottlingException"]),
        ...answered.map((t): [number, string] => [t, "success"])
      ]
      assert.deepStrictEqual(log.map((a): [number, string] => [a.start, a.outcome]), expected.sort((x, y) => x[0] - y[0]))
      // at most one call per cooldown
      assert.deepStrictEqual(health[1], [1_000, { until: 1_500, kind: "requests" }, false])
      assert.deepStrictEqual(health[9], [9_000, { until: 17_000, kind: "requests" }, false])
      assert.deepStrictEqual(health[17], [17_000, { until: 27_000, kind: "requests" }, false])
      assert.deepStrictEqual(health[67], [67_000, undefined, true])
      for (const o of out.filter((o) => !throttles.includes(o.at) && !answered.includes(o.at))) {
        assert.deepStrictEqual(o.res.routing.attempts.map(brief), ["fallback success"], `at ${o.at}`)
      }
      for (const t of throttles) {
        assert.deepStrictEqual(out[t / 1_000]!.res.routing.attempts.map(brief), ["primary failure Throttled failover", "fallback success"], `at ${t}`)
      }
      assert.strictEqual(out[67]!.res.routing.modelId, "primary")
      // throttles are not health: the breaker never opened
      const primary = yield* healthOf("primary")
      assert.strictEqual(primary.breaker, "closed")
      assert.strictEqual(primary.throttles, throttles.length)
    }).pipe(Effect.provide(muxOn(learnPool(), oneRpm()))))

  it.effect("a retry-after is used as it is: 30 s, or 5 s (shorter than the default cap)", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const first = yield* converse({ label: "long" })
        const long = yield* healthOf("long")
        yield* converse({ label: "short" })
        const short = yield* healthOf("short")
        yield* Effect.sleep("29999 millis")
        const stillOut = yield* converse({ label: "long" }).pipe(Effect.exit)
        yield* Effect.sleep("1 millis")
        const back = yield* converse({ label: "long" })
        return { first, long, short, stillOut, back }
      })
      const { first, long, short, stillOut, back } = yield* runFor(program)
      assert.deepStrictEqual(first.routing.attempts.map(brief), ["long failure Throttled failover", "other success"])
      assert.deepStrictEqual(long.cooldown, { until: 30_000, kind: "requests" })
      assert.deepStrictEqual(short.cooldown, { until: 5_000, kind: "requests" })
      assert.deepStrictEqual(success(stillOut).routing.attempts.map(brief), ["other success"])
      assert.deepStrictEqual(back.routing.attempts.map(brief), ["long success"])
    }).pipe(Effect.provide(muxOn(
      {
        models: [{ modelId: "long" }, { modelId: "short" }, { modelId: "other", isFallback: true }],
        routes: { long: ["long", "other"], short: ["short", "other"] }
      },
      {
        models: {
          long: { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException", retryAfter: "30 seconds" } }] },
          short: { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException", retryAfter: "5 seconds" } }] },
          other: {}
        }
      }
    ))))

  // two requests select the primary at 0 s, before either throttle is known; their throttles land at 1 s and 2 s
  const twoThrottles = (first: Record<string, unknown>, second: Record<string, unknown>) =>
    ({
      models: {
        primary: {
          faults: [
            { when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException", after: "1 second", ...first } },
            { when: { calls: [2] }, do: { kind: "error", error: "ThrottlingException", after: "2 seconds", ...second } }
          ]
        },
        fallback: {}
      }
    }) as SimulatorScript.ScriptInput
  const cooldownAfterTwo = Effect.gen(function*() {
    const program = Effect.gen(function*() {
      const results = yield* concurrently([converse(), converse()])
      return { results, primary: yield* healthOf("primary") }
    })
    const { results, primary } = yield* runFor(program, "3 seconds")
    for (const r of results) assert.deepStrictEqual(r.routing.attempts.map(brief), ["primary failure Throttled failover", "fallback success"])
    return primary.cooldown
  })

  it.effect("a later throttle never shortens a cooldown: 30 s from 1 s stays when a plain throttle lands at 2 s", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* cooldownAfterTwo, { until: 31_000, kind: "requests" })
    }).pipe(Effect.provide(muxOn(learnPool(), twoThrottles({ retryAfter: "30 seconds" }, {})))))

  it.effect("two requests in flight together are one empty bucket: the second's throttle does not double the cooldown", () =>
    Effect.gen(function*() {
      // 1 s: 500 ms (until 1.5 s); 2 s: a throttle of a request sent before the first came back stays at level 1:
      // 500 ms from 2 s, with its kind (counted as a throttle in a row it would be 1 s, until 3 s)
      assert.deepStrictEqual(yield* cooldownAfterTwo, { until: 2_500, kind: "tokens" })
    }).pipe(Effect.provide(muxOn(learnPool(), twoThrottles({}, { message: "Too many tokens, please wait before trying again." })))))

  it.effect("a longer retry-after on such a throttle still extends the cooldown, with its kind", () =>
    Effect.gen(function*() {
      // 1 s: 500 ms; 2 s: Bedrock says 5 s more: until 7 s, kind tokens
      assert.deepStrictEqual(yield* cooldownAfterTwo, { until: 7_000, kind: "tokens" })
    }).pipe(Effect.provide(muxOn(learnPool(), twoThrottles({}, { message: "Too many tokens, please wait before trying again.", retryAfter: "5 seconds" })))))

  /** The gaps between the calls a model that throttles everything gets, under a request every 100 ms for `seconds`. */
  const gapsUnderLoad = (seconds: number) =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        for (let i = 0; i < seconds * 10; i++) {
          yield* Effect.sleep(i * 100 - (yield* Clock.currentTimeMillis))
          success(yield* Effect.exit(converse()))
        }
      })
      yield* runFor(program, `${seconds + 1} seconds`)
      const starts = calls(yield* simAttempts, "primary").map((a) => a.start)
      return starts.slice(1).map((t, i) => t - starts[i]!)
    })

  const kinds: ReadonlyArray<readonly [string, string, ReadonlyArray<number>]> = [
    ["requests", "Too many requests, please wait before trying again.", [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]],
    ["tokens", "Too many tokens, please wait before trying again.", [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000]],
    ["unknown", "Rate exceeded", [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]]
  ]
  for (const [name, message, gaps] of kinds) {
    it.effect(`a ${name} throttle cools 500 ms first, doubling up to its cap (${gaps[gaps.length - 1]! / 1000} s): one call per cooldown under load`, () =>
      Effect.gen(function*() {
        const seen = yield* gapsUnderLoad(gaps.reduce((a, b) => a + b, 0) / 1000 + 1)
        assert.deepStrictEqual(seen.slice(0, gaps.length), gaps)
        // the first cooldown's kind and end, as health shows it
        const events = (yield* simAttempts).filter((a) => a.modelId === "primary")
        assert.strictEqual(events.length, gaps.length + 1)
      }).pipe(Effect.provide(muxOn(learnPool(), {
        models: { primary: { faults: [{ do: { kind: "error", error: "ThrottlingException", message } }] }, fallback: {} }
      } as SimulatorScript.ScriptInput))))
  }

  it.effect("cooldowns are configurable: the first (base) and the cap by kind", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual((yield* gapsUnderLoad(12)).slice(0, 4), [2_000, 3_000, 3_000, 3_000])
    }).pipe(Effect.provide(muxOn(learnPool({ cooldowns: { base: "2 seconds", requests: "3 seconds" } }), {
      models: { primary: { faults: [{ do: { kind: "error", error: "ThrottlingException" } }] }, fallback: {} }
    } as SimulatorScript.ScriptInput))))

  it.effect("a daily throttle cools the model down for 1 h and logs a warning", () =>
    Effect.gen(function*() {
      const logs: Array<{ readonly level: string; readonly message: string }> = []
      const capture = Logger.make((o) => {
        logs.push({ level: o.logLevel, message: Array.isArray(o.message) ? o.message.map(String).join(" ") : String(o.message) })
      })
      const program = Effect.gen(function*() {
        const first = yield* converse()
        const h = yield* healthOf("primary")
        yield* Effect.sleep("59 minutes")
        const during = yield* converse()
        yield* Effect.sleep("1 minute")
        const after = yield* converse()
        return { first, h, during, after }
      }).pipe(Effect.provide(Logger.layer([capture])))
      const { first, h, during, after } = yield* runFor(program, "2 hours")
      assert.deepStrictEqual(first.routing.attempts.map(brief), ["primary failure Throttled failover", "fallback success"])
      assert.deepStrictEqual(h.cooldown, { until: 3_600_000, kind: "daily" })
      assert.isFalse(h.available)
      assert.deepStrictEqual(during.routing.attempts.map(brief), ["fallback success"])
      assert.deepStrictEqual(after.routing.attempts.map(brief), ["primary success"])
      const warnings = logs.filter((l) => l.level === "Warn")
      assert.strictEqual(warnings.length, 1, JSON.stringify(logs))
      assert.match(warnings[0]!.message, /primary/)
      assert.match(warnings[0]!.message, /daily/)
    }).pipe(Effect.provide(muxOn(learnPool(), {
      models: {
        primary: { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException", message: "Too many tokens per day, please wait before trying again." } }] },
        fallback: {}
      }
    }))))

  it.effect("health shows each cooldown with its end; simpleHealth is 503 while every model cools down", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const mux = yield* BedrockMux
        const error = muxError(yield* Effect.exit(converse()))
        const cooling = { health: yield* mux.health, simple: yield* mux.simpleHealth }
        yield* Effect.sleep("500 millis")
        const partly = { health: yield* mux.health, simple: yield* mux.simpleHealth }
        yield* Effect.sleep("10 seconds")
        const over = { health: yield* mux.health, simple: yield* mux.simpleHealth }
        return { error, cooling, partly, over }
      })
      const { error, cooling, partly, over } = yield* runFor(program)
      assert.strictEqual(error.reason._tag, "AttemptsExhausted")
      assert.deepStrictEqual(error.attempts.map(brief), ["a failure Throttled failover", "b failure Throttled failover"])
      assert.deepStrictEqual(
        cooling.health.models.map((m) => [m.modelId, m.available, m.breaker, m.cooldown]),
        [["a", false, "closed", { until: 500, kind: "requests" }], ["b", false, "closed", { until: 10_000, kind: "tokens" }]]
      )
      assert.strictEqual(cooling.health.status, "unhealthy")
      assert.deepStrictEqual(cooling.simple, { status: "unhealthy", code: 503 })
      // a's cooldown is over: its next request is the trial
      assert.deepStrictEqual(partly.health.models.map((m) => [m.available, m.cooldown]), [[true, undefined], [false, { until: 10_000, kind: "tokens" }]])
      assert.strictEqual(partly.health.status, "degraded")
      assert.deepStrictEqual(partly.simple, { status: "healthy", code: 200 })
      assert.strictEqual(over.health.status, "healthy")
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "a" }, { modelId: "b", isFallback: true }], attempts: 2 },
      {
        models: {
          a: { faults: [{ do: { kind: "error", error: "ThrottlingException" } }] },
          b: { faults: [{ do: { kind: "error", error: "ThrottlingException", retryAfter: "10 seconds", message: "Too many tokens, please wait before trying again." } }] }
        }
      }
    ))))
})

// --- 3. NoModelsAvailable, waiting for cooldowns, waitForRecovery with quotas ---------------------

describe("NoModelsAvailable with cooldowns and quotas", () => {
  it.effect("every model cooling: the request waits for the earliest cooldown end inside its deadline, then sends there", () =>
    Effect.gen(function*() {
      const r = yield* runFor(timed(converse()))
      assert.deepStrictEqual(success(r.exit).routing.attempts.map(brief), ["only failure Throttled failover", "only success"])
      const [throttle, answer] = calls(yield* simAttempts, "only")
      // the throttle came back at 100 ms; the cooldown (500 ms) ended at 600 ms, and the request went there
      assert.deepStrictEqual([throttle!.start, throttle!.end, answer!.start], [0, 100, 600])
      assert.strictEqual(r.at, 700)
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "only" }] },
      { models: { only: { latency: 100, faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException", after: "100 millis" } }] } } }
    ))))

  it.effect("only when no cooldown ends inside the deadline does it fail: NoModelsAvailable with the retry-after, every model's last failure", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const first = yield* timed(converse({ deadline: "10 seconds" }))
        const second = yield* timed(converse({ deadline: "10 seconds" }))
        const waited = yield* timed(converse({ deadline: "40 seconds" }))
        return { first, second, waited }
      })
      const { first, second, waited } = yield* runFor(program)
      const e1 = noModels(first.exit)
      assert.deepStrictEqual(e1.error.attempts.map(brief), ["only failure Throttled failover"])
      assert.deepStrictEqual(e1.reason.models.map((m) => [m.modelId, m.excluded, m.recoversAt]), [["only", "cooldown", 30_000]])
      assert.strictEqual(e1.reason.earliestRecovery, 30_000)
      assert.strictEqual(e1.reason.retryAfterMs, 30_000)
      // the reason is never lost: the model's last failure comes with it
      assert.strictEqual(e1.reason.models[0]!.lastFailure?.reason, "Throttled")
      assert.strictEqual(first.at, 0)

      // the next one fails at once, without a call, and says the same
      const e2 = noModels(second.exit)
      assert.deepStrictEqual(e2.error.attempts, [])
      assert.deepStrictEqual(e2.reason.models.map((m) => [m.modelId, m.breaker, m.excluded, m.recoversAt]), [["only", "closed", "cooldown", 30_000]])
      assert.strictEqual(e2.reason.models[0]!.lastFailure?.reason, "Throttled")
      assert.strictEqual(second.at, 0)

      // a deadline past the cooldown's end: it waits, then the call goes through
      assert.deepStrictEqual(success(waited.exit).routing.attempts.map(brief), ["only success"])
      assert.strictEqual(waited.at, 30_000 + 100)
      assert.deepStrictEqual(calls(yield* simAttempts, "only").map((a) => a.start), [0, 30_000])
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "only" }] },
      { models: { only: { latency: 100, faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException", retryAfter: "30 seconds" } }] } } }
    ))))

  it.effect("models out of quota are excluded \"quota\" with the time a slot frees as recoversAt; waitForRecovery waits for it", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const admitted = yield* concurrently([timed(converse()), Effect.andThen(Effect.sleep("5 seconds"), timed(converse()))])
        const full = yield* timed(converse())
        // at 5.1 s: the first slot frees at 60 s, after a 50 s deadline
        const tooShort = yield* timed(converse({ waitForRecovery: true, deadline: "50 seconds" }))
        const waited = yield* timed(converse({ waitForRecovery: true, deadline: "90 seconds" }))
        return { admitted, full, tooShort, waited }
      })
      const { admitted, full, tooShort, waited } = yield* runFor(program)
      assert.deepStrictEqual(admitted.map(modelOf), ["primary", "fallback"])
      const e = noModels(full.exit)
      assert.deepStrictEqual(e.error.attempts, [])
      assert.deepStrictEqual(
        e.reason.models.map((m) => [m.modelId, m.excluded, m.recoversAt]),
        [["primary", "quota", 60_000], ["fallback", "quota", 65_000]]
      )
      assert.strictEqual(e.reason.earliestRecovery, 60_000)
      assert.strictEqual(noModels(tooShort.exit).reason.earliestRecovery, 60_000)
      assert.strictEqual(tooShort.at, 5_100)
      assert.strictEqual(modelOf(waited), "primary")
      assert.strictEqual(waited.at, 60_000 + 100)
      assert.strictEqual(throttled(yield* simAttempts).length, 0)
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "primary", rpm: 1 }, { modelId: "fallback", isFallback: true, rpm: 1 }] },
      { models: { primary: { rpm: 1, latency: 100 }, fallback: { rpm: 1, latency: 100 } } }
    ))))
})

// --- 4. tenants ---------------------------------------------------------------------------------

describe("tenant quotas", () => {
  const tenantPool = (extra: Record<string, unknown> = {}) =>
    ({ models: [{ modelId: "m" }], tenants: { A: { rpm: 3 }, B: { rpm: 10 }, C: { rpm: 10 } }, ...extra }) as MuxConfig.Input
  const slow = { models: { m: { latency: 20_000, answer: ANSWER } } } as SimulatorScript.ScriptInput

  it.effect("A at 3 RPM, B and C at 10, five requests each interleaved: A 3 + 2 QuotaExceeded at once, B and C 5/5", () =>
    Effect.gen(function*() {
      const tenants = ["A", "B", "C"] as const
      // one request a second, A B C A B C ...; each call takes 20 s, so they all overlap
      const results = yield* runFor(
        concurrently(Array.from({ length: 15 }, (_, i) => Effect.map(startAt(i * 1_000, converse({ tenant: tenants[i % 3]! })), (r) => ({ ...r, tenant: tenants[i % 3]! })))),
        "2 minutes"
      )
      const of = (t: string) => results.filter((r) => r.tenant === t)
      assert.strictEqual(count(of("B"), (r) => Exit.isSuccess(r.exit)), 5)
      assert.strictEqual(count(of("C"), (r) => Exit.isSuccess(r.exit)), 5)
      const a = of("A")
      assert.deepStrictEqual(a.map((r) => r.start), [0, 3_000, 6_000, 9_000, 12_000])
      for (const r of a.slice(0, 3)) assert.strictEqual(modelOf(r), "m")
      // rejected at once (nothing sent), told when the oldest of its 3 requests leaves the minute
      a.slice(3).forEach((r) => {
        const { error, reason } = quotaExceeded(r.exit)
        assert.deepStrictEqual(fieldsOf(reason), { tenant: "A", kind: "requests", retryAfterMs: 60_000 - r.start })
        assert.strictEqual(r.at, r.start)
        assert.deepStrictEqual(error.attempts, [])
      })
      assert.strictEqual((yield* simAttempts).length, 3 + 5 + 5)
    }).pipe(Effect.provide(muxOn(tenantPool(), slow))))

  it.effect("one tenant's burst (50 at once) never lowers another's admitted count", () =>
    Effect.gen(function*() {
      const results = yield* runFor(
        concurrently([
          ...Array.from({ length: 50 }, () => Effect.map(timed(converse({ tenant: "A" })), (r) => ({ ...r, tenant: "A" }))),
          ...Array.from({ length: 10 }, (_, i) => Effect.map(startAt(i * 100, converse({ tenant: i % 2 === 0 ? "B" : "C" })), (r) => ({ ...r, tenant: i % 2 === 0 ? "B" : "C" })))
        ]),
        "2 minutes"
      )
      const ok = (t: string) => count(results, (r) => r.tenant === t && Exit.isSuccess(r.exit))
      assert.deepStrictEqual([ok("A"), ok("B"), ok("C")], [3, 5, 5])
      for (const r of results.filter((r) => r.tenant === "A" && Exit.isFailure(r.exit))) {
        assert.deepStrictEqual(fieldsOf(quotaExceeded(r.exit).reason), { tenant: "A", kind: "requests", retryAfterMs: 60_000 })
      }
    }).pipe(Effect.provide(muxOn(tenantPool(), slow))))

  it.effect("a tenant TPM: the request's estimate + maxTokens is reserved, kind \"tokens\"; settling frees the unused part", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        // 5 + 495 = 500 each: two fill the tenant's 1000
        const inFlight = yield* concurrently([
          timed(converse({ tenant: "T" }, withMax(495))),
          timed(converse({ tenant: "T" }, withMax(495))),
          Effect.andThen(Effect.sleep("1 second"), timed(converse({ tenant: "T" }, withMax(1))))
        ])
        // both settled to 5 + 3: 984 of room in the same minute (5 + 979 fits exactly)
        const later = yield* timed(converse({ tenant: "T" }, withMax(979)))
        const over = yield* timed(converse({ tenant: "T" }, withMax(2_000)))
        return { inFlight, later, over }
      })
      const { inFlight, later, over } = yield* runFor(program)
      const [a, b, c] = inFlight
      assert.deepStrictEqual([modelOf(a!), modelOf(b!)], ["m", "m"])
      const rc = quotaExceeded(c!.exit).reason
      assert.deepStrictEqual([rc.tenant, rc.kind, rc.retryAfterMs], ["T", "tokens", 59_000])
      assert.strictEqual(modelOf(later), "m")
      // more than the whole TPM never fits
      assert.deepStrictEqual(fieldsOf(quotaExceeded(over.exit).reason), { tenant: "T", kind: "tokens", retryAfterMs: Infinity })
    }).pipe(Effect.provide(muxOn(tenantPool({ tenants: { T: { tpm: 1_000 } } }), slow))))

  it.effect("requests without a tenant share the \"default\" tenant's limits; an unlisted tenant gets the default limits in a bucket of its own", () =>
    Effect.gen(function*() {
      const results = yield* runFor(concurrently([
        ...Array.from({ length: 3 }, () => timed(converse())),
        ...Array.from({ length: 3 }, () => timed(converse({ tenant: "X" }))),
        ...Array.from({ length: 4 }, () => timed(converse({ tenant: "B" })))
      ]), "1 minute")
      const [d, x, b] = [results.slice(0, 3), results.slice(3, 6), results.slice(6)]
      assert.strictEqual(count(d, (r) => Exit.isSuccess(r.exit)), 2)
      assert.strictEqual(count(x, (r) => Exit.isSuccess(r.exit)), 2)
      assert.strictEqual(count(b, (r) => Exit.isSuccess(r.exit)), 4)
      assert.deepStrictEqual(quotaExceeded(d.find((r) => Exit.isFailure(r.exit))!.exit).reason.tenant, "default")
      assert.deepStrictEqual(quotaExceeded(x.find((r) => Exit.isFailure(r.exit))!.exit).reason.tenant, "X")
    }).pipe(Effect.provide(muxOn(tenantPool({ defaultTenant: { rpm: 2 } }), slow))))

  it.effect("no tenant limits configured: no request is refused", () =>
    Effect.gen(function*() {
      const results = yield* runFor(concurrently(Array.from({ length: 30 }, (_, i) => timed(converse(i % 2 === 0 ? {} : { tenant: "A" })))), "1 minute")
      for (const r of results) success(r.exit)
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "m" }] }, slow))))

  it.effect("a request that fails gives its tenant reservation back", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const failed = yield* timed(converse({ tenant: "A" }))
        const next = yield* timed(converse({ tenant: "A" }))
        const third = yield* timed(converse({ tenant: "A" }))
        return { failed, next, third }
      })
      const { failed, next, third } = yield* runFor(program)
      assert.strictEqual(muxError(failed.exit).reason._tag, "Failed")
      assert.strictEqual(modelOf(next), "m")
      assert.deepStrictEqual([failed.at, next.at, third.at], [0, 100, 100])
      // the tenant's one slot is now taken by the success admitted at 0 s
      assert.strictEqual(quotaExceeded(third.exit).reason.retryAfterMs, 59_900)
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "m" }], tenants: { A: { rpm: 1 } } },
      { models: { m: { latency: 100, faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ValidationException" } }] } } }
    ))))

  describe("waitForQuota", () => {
    const threeThenOne = (options: ConverseOptions) =>
      Effect.gen(function*() {
        const first = yield* concurrently(Array.from({ length: 3 }, () => timed(converse({ tenant: "A" }))))
        const fourth = yield* timed(converse({ tenant: "A", ...options }))
        return { first, fourth }
      })
    const fast = { models: { m: { latency: 100 } } } as SimulatorScript.ScriptInput

    it.effect("the 4th request of a 3 RPM tenant with a 90 s deadline waits for the minute and succeeds", () =>
      Effect.gen(function*() {
        const { first, fourth } = yield* runFor(threeThenOne({ waitForQuota: true, deadline: "90 seconds" }))
        for (const r of first) success(r.exit)
        assert.strictEqual(modelOf(fourth), "m")
        // it left the queue when the request admitted at 0 s left the minute
        assert.strictEqual(fourth.at, 60_000 + 100)
        assert.deepStrictEqual((yield* simAttempts).map((a) => a.start), [0, 0, 0, 60_000])
      }).pipe(Effect.provide(muxOn(tenantPool(), fast))))

    it.effect("with a 10 s deadline it fails with QuotaExceeded at once", () =>
      Effect.gen(function*() {
        const { fourth } = yield* runFor(threeThenOne({ waitForQuota: true, deadline: "10 seconds" }))
        assert.deepStrictEqual(fieldsOf(quotaExceeded(fourth.exit).reason), { tenant: "A", kind: "requests", retryAfterMs: 59_900 })
        assert.strictEqual(fourth.at, 100)
        assert.strictEqual((yield* simAttempts).length, 3)
      }).pipe(Effect.provide(muxOn(tenantPool(), fast))))

    it.effect("without waitForQuota it fails at once even when the deadline would allow the wait", () =>
      Effect.gen(function*() {
        const { fourth } = yield* runFor(threeThenOne({ deadline: "90 seconds" }))
        assert.strictEqual(quotaExceeded(fourth.exit).reason.retryAfterMs, 59_900)
        assert.strictEqual(fourth.at, 100)
      }).pipe(Effect.provide(muxOn(tenantPool(), fast))))
  })
})

// --- 5. escalation to another service tier ------------------------------------------------------

describe("escalation on a throttle", () => {
  const once = { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException" } }] }
  const script = (primary: Record<string, unknown>) =>
    ({ models: { primary: { latency: 100, ...primary }, fallback: { latency: 100 } } }) as SimulatorScript.ScriptInput
  const pool = (escalate?: "priority" | "reserved") =>
    ({
      models: [{ modelId: "primary", ...(escalate !== undefined ? { escalate } : {}) }, { modelId: "fallback", isFallback: true }]
    }) as MuxConfig.Input
  const tiers = (inputs: ReadonlyArray<ConverseCommandInput>) => inputs.map((i) => [i.modelId, i.serviceTier?.type ?? "default"])

  const inputs1: Array<ConverseCommandInput> = []
  it.effect("escalate \"priority\": the throttled model is retried once at the priority tier, which answers", () =>
    Effect.gen(function*() {
      const res = yield* runFor(converse())
      assert.strictEqual(res.routing.modelId, "primary")
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["primary failure Throttled escalate", "primary success"])
      assert.deepStrictEqual(tiers(inputs1), [["primary", "default"], ["primary", "priority"]])
      assert.deepStrictEqual((yield* simAttempts).map((a) => [a.modelId, a.outcome]), [["primary", "ThrottlingException"], ["primary", "success"]])
    }).pipe(Effect.provide(muxOn(pool("priority"), script(once), { runtime: spying(inputs1) }))))

  const inputs2: Array<ConverseCommandInput> = []
  it.effect("escalate \"reserved\" sends serviceTier reserved; a throttle at that tier fails over (one escalation per request)", () =>
    Effect.gen(function*() {
      const res = yield* runFor(converse())
      assert.deepStrictEqual(res.routing.attempts.map(brief), [
        "primary failure Throttled escalate",
        "primary failure Throttled failover",
        "fallback success"
      ])
      assert.deepStrictEqual(tiers(inputs2), [["primary", "default"], ["primary", "reserved"], ["fallback", "default"]])
    }).pipe(Effect.provide(muxOn(
      pool("reserved"),
      script({ faults: [{ when: { calls: [1, 2] }, do: { kind: "error", error: "ThrottlingException" } }] }),
      { runtime: spying(inputs2) }
    ))))

  const inputs3: Array<ConverseCommandInput> = []
  it.effect("a model without escalate fails over at once, without a serviceTier", () =>
    Effect.gen(function*() {
      const res = yield* runFor(converse())
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["primary failure Throttled failover", "fallback success"])
      assert.deepStrictEqual(tiers(inputs3), [["primary", "default"], ["fallback", "default"]])
    }).pipe(Effect.provide(muxOn(pool(), script(once), { runtime: spying(inputs3) }))))

  const inputs4: Array<ConverseCommandInput> = []
  it.effect("only a throttle escalates: a ServiceUnavailable fails over as usual", () =>
    Effect.gen(function*() {
      const res = yield* runFor(converse())
      assert.deepStrictEqual(res.routing.attempts.map(brief), ["primary failure ServiceUnavailable failover", "fallback success"])
      assert.deepStrictEqual(tiers(inputs4), [["primary", "default"], ["fallback", "default"]])
    }).pipe(Effect.provide(muxOn(
      pool("priority"),
      script({ faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ServiceUnavailableException" } }] }),
      { runtime: spying(inputs4) }
    ))))

  const inputs5: Array<ConverseCommandInput> = []
  it.effect("a throttle cools only the default tier: while it cools, the next request goes straight to the escalation tier, not to the fallback", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const first = yield* converse()
        const next = yield* converse()
        return { first, next, primary: yield* healthOf("primary") }
      })
      const { first, next, primary } = yield* runFor(program, "1 second")
      assert.strictEqual(first.routing.modelId, "primary")
      // the default tier's bucket is empty for its first cooldown (500 ms from the throttle at 0)...
      assert.deepStrictEqual(primary.cooldown, { until: 500, kind: "requests" })
      // ...but the model is not out for everyone: the priority tier answers
      assert.deepStrictEqual(next.routing.attempts.map((a) => [brief(a), a.serviceTier]), [["primary success", "priority"]])
      assert.deepStrictEqual(tiers(inputs5), [["primary", "default"], ["primary", "priority"], ["primary", "priority"]])
    }).pipe(Effect.provide(muxOn(pool("priority"), script(once), { runtime: spying(inputs5) }))))
})
// --- 6. properties ------------------------------------------------------------------------------

/** A request arriving at `at` (ms), with about `chars` characters and `maxTokens`. */
interface Arrival {
  readonly at: number
  readonly chars: number
  readonly maxTokens: number
}

/** the simulator's default answer: 14 output tokens unless maxTokens cuts it */
const DEFAULT_ANSWER_TOKENS = 14

/** Runs `program` on a fresh TestClock from 0 with the given layer, letting virtual time run for `advance`. */
const runScenario = <A, E>(program: Effect.Effect<A, E, BedrockMux | BedrockSimulator>, layer: Layer.Layer<BedrockMux | BedrockSimulator, unknown>, seed: number, advance: Duration.Input) =>
  Effect.runPromise(
    Effect.scoped(runFor(program, advance)).pipe(
      Effect.provide(layer),
      Random.withSeed(seed),
      Effect.provide(TestClock.layer())
    ) as Effect.Effect<A, unknown>
  )

/** Every arrival, concurrently, each at its own time; the results in arrival order. */
const arrive = (arrivals: ReadonlyArray<Arrival>, options: (a: Arrival, i: number) => ConverseOptions = () => ({})) =>
  concurrently(arrivals.map((a, i) => startAt(a.at, converse(options(a, i), sized(a.chars, a.maxTokens)))))

/** Distinct even arrival times (call ends are odd: no call starts as another ends). */
const arrivalsArb = (minLength: number, maxLength: number, span: number) =>
  fc.uniqueArray(
    fc.record({ at: fc.integer({ min: 0, max: span / 2 }).map((t) => t * 2), chars: fc.integer({ min: 0, max: 2_000 }), maxTokens: fc.integer({ min: 1, max: 60 }) }),
    { minLength, maxLength, selector: (a) => a.at }
  ).map((as) => [...as].sort((a, b) => a.at - b.at))

describe("properties", () => {
  it("a quota model never admits more requests or tokens than its limits in any sliding minute, never gets a throttled call, and spills only when full", async () => {
    const seen = { runs: 0, admitted: 0, spilled: 0, rpmBound: 0, tpmBound: 0 }
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          rpm: fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
          tpm: fc.option(fc.integer({ min: 300, max: 3_000 }), { nil: undefined }),
          // odd: calls end on odd ms
          latency: fc.integer({ min: 0, max: 14_000 }).map((n) => 2 * n + 1), // under the 30 s attempt timeout
          arrivals: arrivalsArb(1, 40, 180_000),
          seed: fc.integer()
        }).filter((s) => s.rpm !== undefined || s.tpm !== undefined),
        async (sc) => {
          const limits = { ...(sc.rpm !== undefined ? { rpm: sc.rpm } : {}), ...(sc.tpm !== undefined ? { tpm: sc.tpm } : {}) }
          const layer = muxOn(
            { models: [{ modelId: "q", ...limits }, { modelId: "f", isFallback: true }] },
            { seed: sc.seed, models: { q: { latency: sc.latency, ...limits }, f: { latency: sc.latency } } }
          )
          const { results, log } = await runScenario(
            Effect.gen(function*() {
              const results = yield* arrive(sc.arrivals)
              return { results, log: yield* simAttempts }
            }),
            layer,
            sc.seed,
            "30 minutes"
          )
          seen.runs++
          // every request succeeds (the fallback has no limit), in one attempt: nothing failed before
          results.forEach((r) => assert.strictEqual(success(r.exit).routing.attempts.length, 1))
          assert.strictEqual(throttled(log).length, 0)
          const q = calls(log, "q")
          const byStart = new Map(sc.arrivals.map((a) => [a.at, a]))
          const used = (a: Attempt) => a.inputTokens + a.outputTokens
          const reserved = (a: Attempt) => a.inputTokens + byStart.get(a.start)!.maxTokens
          for (const a of q) {
            assert.isAtMost(a.outputTokens, Math.min(DEFAULT_ANSWER_TOKENS, byStart.get(a.start)!.maxTokens))
            // the sliding minute that ends at this admission
            const inWindow = q.filter((b) => b.start > a.start - 60_000 && b.start <= a.start)
            if (sc.rpm !== undefined) assert.isAtMost(inWindow.length, sc.rpm, `requests in the minute to ${a.start}`)
            if (sc.tpm !== undefined) assert.isAtMost(inWindow.reduce((n, b) => n + used(b), 0), sc.tpm, `tokens in the minute to ${a.start}`)
          }
          seen.admitted += q.length
          // work-conserving: a request spilled only when q had no room when it arrived
          for (const f of calls(log, "f")) {
            seen.spilled++
            const t = f.start
            const window = q.filter((b) => b.start > t - 60_000 && b.start < t)
            const held = window.reduce((n, b) => n + (b.end! < t ? used(b) : reserved(b)), 0)
            const rpmFull = sc.rpm !== undefined && window.length >= sc.rpm
            const tpmFull = sc.tpm !== undefined && held + reserved(f) > sc.tpm
            assert.isTrue(rpmFull || tpmFull, `request at ${t} spilled while q had room`)
            if (rpmFull) seen.rpmBound++
            else seen.tpmBound++
          }
        }
      ),
      { seed: 4242, numRuns: 60 }
    )
    // the runs exercise both limits and both outcomes
    for (const [k, v] of Object.entries(seen)) assert.isAbove(v, 20, k)
  }, 120_000)

  it("when the pool's RPM covers the arrivals (every sliding minute), no request fails and no call is throttled", async () => {
    const seen = { runs: 0, requests: 0, atCapacity: 0 }
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          rpms: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
          tiers: fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 3, maxLength: 3 }),
          latency: fc.integer({ min: 0, max: 29_000 }),
          arrivals: arrivalsArb(10, 60, 150_000),
          seed: fc.integer()
        }),
        async (sc) => {
          const capacity = sc.rpms.reduce((a, b) => a + b, 0)
          // keep an arrival only while its sliding minute holds at most `capacity` arrivals
          const kept: Array<Arrival> = []
          for (const a of sc.arrivals) if (count(kept, (k) => k.at > a.at - 60_000) < capacity) kept.push(a)
          const models = sc.rpms.map((rpm, i) => ({ modelId: `m${i}`, rpm, tier: i === 0 ? 0 : sc.tiers[i]! }))
          const layer = muxOn(
            { models },
            { seed: sc.seed, models: Object.fromEntries(models.map((m) => [m.modelId, { rpm: m.rpm, latency: sc.latency }])) }
          )
          const { results, log } = await runScenario(
            Effect.gen(function*() {
              const results = yield* arrive(kept)
              return { results, log: yield* simAttempts }
            }),
            layer,
            sc.seed,
            "30 minutes"
          )
          seen.runs++
          seen.requests += results.length
          if (kept.some((a) => count(kept, (k) => k.at > a.at - 60_000 && k.at <= a.at) === capacity)) seen.atCapacity++
          results.forEach((r) => assert.deepStrictEqual(success(r.exit).routing.attempts.map((a) => a.outcome), ["success"]))
          assert.strictEqual(throttled(log).length, 0)
        }
      ),
      { seed: 777, numRuns: 60 }
    )
    assert.isAbove(seen.atCapacity, 20)
    assert.isAbove(seen.requests, 500)
  }, 120_000)

  it("a tenant is refused exactly when its own sliding minute is full, told when a slot frees; other tenants never matter", async () => {
    const seen = { refused: 0, admitted: 0 }
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          rpms: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
          arrivals: arrivalsArb(10, 60, 120_000),
          picks: fc.array(fc.nat(), { minLength: 60, maxLength: 60 }),
          latency: fc.integer({ min: 0, max: 29_000 }),
          seed: fc.integer()
        }),
        async (sc) => {
          const tenants = Object.fromEntries(sc.rpms.map((rpm, i) => [`t${i}`, { rpm }]))
          const tenantOf = (i: number) => `t${sc.picks[i]! % sc.rpms.length}`
          const { results } = await runScenario(
            Effect.gen(function*() {
              return { results: yield* arrive(sc.arrivals, (_, i) => ({ tenant: tenantOf(i) })) }
            }),
            muxOn({ models: [{ modelId: "m" }], tenants }, { seed: sc.seed, models: { m: { latency: sc.latency } } }),
            sc.seed,
            "30 minutes"
          )
          const admitted = new Map<string, Array<number>>()
          results.forEach((r, i) => {
            const tenant = tenantOf(i)
            const rpm = tenants[tenant]!.rpm
            const own = admitted.get(tenant) ?? []
            const window = own.filter((t) => t > r.start - 60_000)
            if (window.length < rpm) {
              success(r.exit)
              own.push(r.start)
              admitted.set(tenant, own)
              seen.admitted++
            } else {
              const { reason } = quotaExceeded(r.exit)
              assert.deepStrictEqual(fieldsOf(reason), { tenant, kind: "requests", retryAfterMs: window[window.length - rpm]! + 60_000 - r.start })
              assert.strictEqual(r.at, r.start)
              seen.refused++
            }
          })
        }
      ),
      { seed: 99, numRuns: 50 }
    )
    assert.isAbove(seen.refused, 100)
    assert.isAbove(seen.admitted, 100)
  }, 120_000)
})

// --- 7. a defect in the call ----------------------------------------------------------------------

describe("a call that dies", () => {
  let n = 0
  const dying = Layer.succeed(
    BedrockRuntime,
    BedrockRuntime.of({
      converse: (input) =>
        Effect.suspend(() => {
          n++
          return n === 1
            ? Effect.die(new Error("boom"))
            : Effect.succeed({
              $metadata: {},
              output: { message: { role: "assistant" as const, content: [{ text: "ok" }] } },
              stopReason: "end_turn" as const,
              usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
              metrics: { latencyMs: 0 },
              modelId: input.modelId
            })
        }),
      converseStream: () => {
        throw new Error("not used")
      }
    })
  )
  const store = MuxStore.makeMemory()
  it.effect("gives its model and tenant reservations back, like any failed request", () =>
    Effect.gen(function*() {
      const died = yield* Effect.exit(converse({ tenant: "A" }))
      assert.isTrue(Exit.isFailure(died) && died.cause.reasons.some((r) => r._tag === "Die"))
      assert.deepStrictEqual(yield* usage(store, "default/quota/only"), { requests: 0, tokens: 0 })
      assert.deepStrictEqual(yield* usage(store, "default/tenant/A"), { requests: 0, tokens: 0 })
      // the tenant's one request of the minute and the model's one are still there to take
      assert.strictEqual((yield* converse({ tenant: "A" })).routing.modelId, "only")
      assert.strictEqual(n, 2)
    }).pipe(Effect.provide(
      BedrockMux.layer({ models: [{ modelId: "only", rpm: 1 }], tenants: { A: { rpm: 1 } } }).pipe(
        Layer.provide(Layer.succeed(MuxStore.MuxStore, store)),
        Layer.provide(dying)
      )
    )))
})
