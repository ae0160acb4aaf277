/**
 * The demo's scenarios: each builds a simulated Bedrock, runs a workload
 * through `BedrockRuntime` or `BedrockMux`, and returns a table. They run
 * on virtual time (TestClock), so a two-minute outage takes milliseconds and
 * every run prints the same numbers. Each reports its progress (requests
 * done / total) through `Progress`.
 */
import { Duration, Effect, Layer } from "effect"
import { BedrockMux } from "../BedrockMux.ts"
import { BedrockRuntime } from "../BedrockRuntime.ts"
import { BedrockSimulator } from "../BedrockSimulator.ts"
import type * as Guard from "../Guard.ts"
import { percentile, progress, request, type Scenario, sim, type Table, virtual } from "./scenarioKit.ts"
import { evalScenario } from "./evalScenario.ts"
import { streamingScenarios } from "./streamingScenarios.ts"

export type { Table } from "./scenarioKit.ts"

/** The foundation workload: 200 concurrent calls straight through BedrockRuntime. */
export const runtimeWorkload = (live?: Layer.Layer<BedrockRuntime>): Scenario => {
  const models = ["amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"]
  const n = live === undefined ? 200 : 4
  const work = Effect.gen(function*() {
    const bedrock = yield* BedrockRuntime
    const tick = yield* progress(n)
    const results = yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => models[i % models.length]!),
      (modelId) =>
        Effect.gen(function*() {
          const t0 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
          const ok = yield* bedrock.converse({ ...request, modelId }).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
          const t1 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
          return { modelId, ok, ms: t1 - t0 }
        }).pipe(Effect.tap(tick)),
      { concurrency: 50 }
    )
    const rows = models.map((m) => {
      const mine = results.filter((r) => r.modelId === m)
      return [m, mine.length, mine.filter((r) => r.ok).length, Math.round(percentile(mine.map((r) => r.ms), 0.5)), Math.round(percentile(mine.map((r) => r.ms), 0.95))]
    })
    const ok = results.filter((r) => r.ok).length
    return {
      title: "BedrockRuntime: 200 calls, 50 in flight",
      expectation: "every call succeeds; latency follows each model's script",
      columns: ["model", "requests", "successes", "p50 ms", "p95 ms"],
      rows,
      summary: {
        requests: results.length,
        successes: ok,
        p50: Math.round(percentile(results.map((r) => r.ms), 0.5)),
        p95: Math.round(percentile(results.map((r) => r.ms), 0.95))
      },
      ok: ok === results.length
    } satisfies Table
  })
  if (live !== undefined) return work.pipe(Effect.provide(live))
  return virtual(work.pipe(Effect.provide(sim({
    models: {
      "amazon.nova-lite-v1:0": { latency: { normal: { mean: 400, stddev: 80 } } },
      "amazon.nova-pro-v1:0": { latency: { uniform: [700, 1300] } }
    }
  }))))
}

/** The default pool of `muxWorkload`: two Nova models. */
export const defaultLiveModels: ReadonlyArray<string> = ["amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"]

/**
 * The live mux workload: a few requests through `BedrockMux` over real
 * Bedrock. The first model is the primary, the others are fallbacks.
 */
export const muxWorkload = (
  live: Layer.Layer<BedrockRuntime>,
  models: ReadonlyArray<string> = defaultLiveModels,
  n = 4
): Scenario =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const tick = yield* progress(n)
    const results = yield* Effect.forEach(
      Array.from({ length: n }),
      () =>
        Effect.gen(function*() {
          const t0 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
          const res = yield* Effect.result(mux.converse(request))
          const t1 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
          return { res, ms: t1 - t0 }
        }).pipe(Effect.tap(tick)),
      { concurrency: 2 }
    )
    const answered = results.flatMap((r) => (r.res._tag === "Success" ? [r.res.success.routing.modelId] : []))
    const firstError = results.flatMap((r) => (r.res._tag === "Failure" ? [r.res.failure.message] : []))[0]
    const health = yield* mux.health
    return {
      title: `BedrockMux (live): ${n} requests over ${models.join(", ")}`,
      expectation: "every request is answered (by the primary unless it throttles or fails)",
      columns: ["model", "tier", "answered", "breaker", "failures", "throttles"],
      rows: health.models.map((m) => [m.modelId, m.tier, answered.filter((x) => x === m.modelId).length, m.breaker, m.failures, m.throttles]),
      summary: {
        requests: n,
        successes: answered.length,
        p50: Math.round(percentile(results.map((r) => r.ms), 0.5)),
        ...(firstError === undefined ? {} : { firstError })
      },
      ok: answered.length === n
    } satisfies Table
  }).pipe(
    Effect.provide(BedrockMux.layer({
      models: models.map((modelId, i) => (i === 0 ? { modelId, weight: 100 } : { modelId, weight: 100, isFallback: true }))
    }).pipe(Layer.provide(live)))
  )

const pool = [
  { modelId: "primary", weight: 100 },
  { modelId: "fallback", weight: 30, isFallback: true }
] as const

/** (a) the seed scenario: primary 3 RPM, fallback 25 RPM, 10 concurrent requests. */
export const throttledPrimary: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const tick = yield* progress(10)
  const responses = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.result(mux.converse(request)).pipe(Effect.tap(tick)), {
    concurrency: "unbounded"
  })
  const ok = responses.filter((r) => r._tag === "Success")
  const byModel = (m: string) => ok.filter((r) => r._tag === "Success" && r.success.routing.modelId === m).length
  const attempts = yield* BedrockSimulator.attempts
  return {
    title: "(a) primary limited to 3 RPM, fallback 25 RPM, 10 concurrent requests",
    expectation: "10/10 succeed: 3 on the primary, 7 on the fallback; after the first throttle the primary cools down, so later requests skip it",
    columns: ["model", "answered", "calls seen by Bedrock", "throttled"],
    rows: ["primary", "fallback"].map((m) => [
      m,
      byModel(m),
      attempts.filter((a) => a.modelId === m).length,
      attempts.filter((a) => a.modelId === m && a.outcome === "ThrottlingException").length
    ]),
    summary: { requests: 10, successes: ok.length },
    ok: ok.length === 10 && byModel("primary") === 3
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({ models: [...pool] }).pipe(
    Layer.provideMerge(sim({ models: { primary: { rpm: 3, latency: 300 }, fallback: { rpm: 25, latency: 500 } } }))
  ))
))

const OUTAGE_MS = 60_000
const OUTAGE_EVERY_MS = 4_000
const OUTAGE_REQUESTS = 30

/**
 * (b) primary down for 60 s, one request every 4 s for 2 minutes, the default breaker (5 failures open it, a
 * probe every 5 s while open). A probe that fails fast (a 503 answer) keeps the interval, so the primary is
 * back within one probe interval plus one request of its recovery, and is never called more than once per
 * probe interval while it is down.
 */
export const outage: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const breaker = mux.policy.guards.find((g) => g.name === "breaker")!.settings as Guard.BreakerSettings
  const probeMs = Duration.toMillis(breaker.probeInterval)
  const rows: Array<Array<string | number>> = []
  const served: Array<{ t: number; model: string }> = []
  const begin = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
  const tick = yield* progress(OUTAGE_REQUESTS)
  // the breaker as the previous request left it: a call to the primary while it is open is a probe
  let wasOpen = false
  for (let i = 0; i < OUTAGE_REQUESTS; i++) {
    const t = i * OUTAGE_EVERY_MS
    const res = yield* Effect.result(mux.converse(request))
    yield* tick
    const model = res._tag === "Success" ? res.success.routing.modelId : "FAILED"
    served.push({ t, model })
    const primary = (yield* mux.health).models.find((m) => m.modelId === "primary")!
    // every request until just after the recovery, then the ramp-up every 12 s
    if (t <= OUTAGE_MS + 3 * OUTAGE_EVERY_MS || t % 12_000 === 0) {
      const called = res._tag === "Success" && res.success.routing.attempts.some((a) => a.modelId === "primary")
      const outcome = model === "primary" ? "answered" : "503"
      rows.push([`${t / 1000} s`, called ? (wasOpen ? `probe: ${outcome}` : outcome) : "-", model, primary.breaker, primary.effectiveWeight.toFixed(1)])
    }
    wasOpen = primary.breaker !== "closed"
    const now = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
    yield* Effect.sleep(Math.max(0, begin + t + OUTAGE_EVERY_MS - now))
  }
  const calls = (yield* BedrockSimulator.attempts).filter((a) => a.modelId === "primary")
  // the calls that opened the breaker (its `failures`), then the probes while it was open
  const probes = calls.slice(breaker.failures).filter((a) => a.start < OUTAGE_MS).map((a) => a.start)
  const probeGaps = probes.slice(1).map((p, i) => p - probes[i]!)
  const failures = served.filter((s) => s.model === "FAILED").length
  const back = served.find((s) => s.t >= OUTAGE_MS && s.model === "primary")
  const bound = probeMs + OUTAGE_EVERY_MS
  return {
    title: `(b) primary down from 0 s to ${OUTAGE_MS / 1000} s, one request every ${OUTAGE_EVERY_MS / 1000} s, default breaker (probe every ${probeMs / 1000} s while open)`,
    expectation: `every request answered; the fallback during the outage; while down, the primary is probed at most once per ${probeMs / 1000} s ` +
      `(a failed probe that answered fast keeps the interval); back on the primary within one probe interval + one request (${bound / 1000} s) of its recovery`,
    columns: ["time", "primary called", "answered by", "primary breaker", "primary weight"],
    rows,
    summary: {
      requests: served.length,
      failures,
      probesDuringOutage: probes.length,
      probeTimes: probes.map((p) => `${p / 1000}`).join(", ") + " s",
      minProbeGapMs: probeGaps.length === 0 ? 0 : Math.min(...probeGaps),
      primaryBackAt: back === undefined ? "never" : `${back.t / 1000} s`,
      backAfterRecoveryMs: back === undefined ? "never" : back.t - OUTAGE_MS,
      boundMs: bound
    },
    ok: failures === 0 && back !== undefined && back.t - OUTAGE_MS <= bound && probes.length > 0 && probeGaps.every((g) => g >= probeMs)
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({ models: [...pool] }).pipe(
    Layer.provideMerge(sim({
      models: {
        primary: { latency: 300, faults: [{ when: { from: 0, to: OUTAGE_MS }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
        fallback: { latency: 500 }
      }
    }))
  ))
), "10 minutes")

/** (c) a storm of ValidationExceptions: the request is at fault, not the model. */
export const validationStorm: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const tick = yield* progress(50)
  const results = yield* Effect.forEach(Array.from({ length: 50 }), () => Effect.result(mux.converse(request)).pipe(Effect.tap(tick)))
  const failFast = results.filter((r) => r._tag === "Failure" && r.failure.reason._tag === "Failed").length
  const health = yield* mux.health
  return {
    title: "(c) 50 requests that all get ValidationException",
    expectation: "each fails fast after one attempt; no breaker opens",
    columns: ["model", "breaker", "fail-fast errors"],
    rows: health.models.map((m) => [m.modelId, m.breaker, m.failFast]),
    summary: { requests: 50, failedFast: failFast, attemptsPerRequest: 1 },
    ok: failFast === 50 && health.models.every((m) => m.breaker === "closed")
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({ models: [...pool] }).pipe(
    Layer.provideMerge(sim({
      models: {
        primary: { faults: [{ do: { kind: "error", error: "ValidationException" } }] },
        fallback: { faults: [{ do: { kind: "error", error: "ValidationException" } }] }
      }
    }))
  ))
))

/** (d) one model hangs: each request still answers within timeout + the fallback's latency. */
export const hangingModel: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const durations: Array<number> = []
  const rows: Array<Array<string | number>> = []
  const tick = yield* progress(8)
  for (let i = 0; i < 8; i++) {
    const t0 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
    const res = yield* Effect.result(mux.converse(request))
    const t1 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
    yield* tick
    durations.push(t1 - t0)
    rows.push([i + 1, res._tag === "Success" ? res.success.routing.modelId : "FAILED", t1 - t0, res._tag === "Success" ? res.success.routing.attempts.length : 0])
  }
  const attempts = yield* BedrockSimulator.attempts
  const aborted = attempts.filter((a) => a.modelId === "primary" && a.outcome === "interrupted").length
  return {
    title: "(d) the primary hangs; attempt timeout 2 s, fallback latency 500 ms",
    expectation: "every request answers within 2 s + 500 ms; hung calls are aborted; the breaker then skips the primary",
    columns: ["request", "answered by", "ms", "attempts"],
    rows,
    summary: { maxMs: Math.max(...durations), bound: 2_500, abortedPrimaryCalls: aborted },
    ok: Math.max(...durations) <= 2_500 && rows.every((r) => r[1] === "fallback")
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({ models: [...pool], timeout: 2_000 }).pipe(
    Layer.provideMerge(sim({ models: { primary: { faults: [{ do: { kind: "hang" } }] }, fallback: { latency: 500 } } }))
  ))
))

/** (e) admission: the primary's 3 RPM is known, so no throttled call is sent at all. */
export const admission: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const tick = yield* progress(10)
  const responses = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.result(mux.converse(request)).pipe(Effect.tap(tick)), {
    concurrency: "unbounded"
  })
  const ok = responses.flatMap((r) => (r._tag === "Success" ? [r.success.routing.modelId] : []))
  const attempts = yield* BedrockSimulator.attempts
  const throttled = attempts.filter((a) => a.outcome === "ThrottlingException").length
  return {
    title: "(e) primary 3 RPM known to the mux (rpm: 3), fallback 25 RPM, 10 concurrent requests",
    expectation: "10/10 succeed, exactly 3 on the primary, 0 throttled calls sent",
    columns: ["model", "answered", "calls seen by Bedrock", "throttled"],
    rows: ["primary", "fallback"].map((m) => [
      m,
      ok.filter((x) => x === m).length,
      attempts.filter((a) => a.modelId === m).length,
      attempts.filter((a) => a.modelId === m && a.outcome === "ThrottlingException").length
    ]),
    summary: { requests: 10, successes: ok.length, throttledCallsSent: throttled },
    ok: ok.length === 10 && ok.filter((x) => x === "primary").length === 3 && throttled === 0
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({ models: [{ modelId: "primary", weight: 100, rpm: 3 }, { modelId: "fallback", weight: 30, isFallback: true, rpm: 25 }] }).pipe(
    Layer.provideMerge(sim({ models: { primary: { rpm: 3, latency: 300 }, fallback: { rpm: 25, latency: 500 } } }))
  ))
))

/** (f) two primaries of 3 RPM each and a fallback: 3, 3, 4. */
export const twoPrimaries: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const tick = yield* progress(10)
  const responses = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.result(mux.converse(request)).pipe(Effect.tap(tick)), {
    concurrency: "unbounded"
  })
  const ok = responses.flatMap((r) => (r._tag === "Success" ? [r.success.routing.modelId] : []))
  const count = (m: string) => ok.filter((x) => x === m).length
  const throttled = (yield* BedrockSimulator.attempts).filter((a) => a.outcome === "ThrottlingException").length
  return {
    title: "(f) two primaries at 3 RPM each (account sharding) and a fallback, 10 concurrent requests",
    expectation: "3, 3 and 4; no throttled call",
    columns: ["model", "answered"],
    rows: ["primary-a", "primary-b", "fallback"].map((m) => [m, count(m)]),
    summary: { requests: 10, successes: ok.length, throttledCallsSent: throttled },
    ok: count("primary-a") === 3 && count("primary-b") === 3 && count("fallback") === 4 && throttled === 0
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({
    models: [
      { modelId: "primary-a", weight: 50, rpm: 3 },
      { modelId: "primary-b", weight: 50, rpm: 3 },
      { modelId: "fallback", weight: 30, isFallback: true }
    ]
  }).pipe(Layer.provideMerge(sim({ models: { "primary-a": { rpm: 3 }, "primary-b": { rpm: 3 }, fallback: {} } }))))
))

/** (g) per-tenant quotas: A at 3 RPM, B and C at 10 RPM, 5 concurrent requests each. */
export const tenants: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const names = ["A", "B", "C"]
  const jobs = Array.from({ length: 15 }, (_, i) => names[i % 3]!)
  const tick = yield* progress(jobs.length)
  const results = yield* Effect.forEach(jobs, (tenant) =>
    Effect.map(Effect.result(mux.converse(request, { tenant })), (r) => ({ tenant, r })).pipe(Effect.tap(tick)), { concurrency: "unbounded" })
  const rows = names.map((t) => {
    const mine = results.filter((x) => x.tenant === t)
    return [
      t,
      t === "A" ? 3 : 10,
      mine.filter((x) => x.r._tag === "Success").length,
      mine.filter((x) => x.r._tag === "Failure" && x.r.failure.reason._tag === "QuotaExceeded").length
    ]
  })
  return {
    title: "(g) tenants A at 3 RPM, B and C at 10 RPM, 5 concurrent requests each",
    expectation: "A: 3 succeed, 2 QuotaExceeded; B and C: 5 of 5",
    columns: ["tenant", "rpm", "succeeded", "QuotaExceeded"],
    rows,
    summary: { requests: 15 },
    ok: rows[0]![2] === 3 && rows[0]![3] === 2 && rows[1]![2] === 5 && rows[2]![2] === 5
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({
    models: [...pool],
    tenants: { A: { rpm: 3 }, B: { rpm: 10 }, C: { rpm: 10 } }
  }).pipe(Layer.provideMerge(sim({ models: { primary: {}, fallback: {} } }))))
))

/**
 * (h) both models throttle 2 % of their calls at random (default config, one tier): a throttle cools only its
 * model, briefly (500 ms, doubling while the throttles keep coming), and a request whose every model is
 * cooling waits for the first to come back inside its deadline, so almost nothing fails.
 */
export const randomThrottles: Scenario = virtual(Effect.gen(function*() {
  const mux = yield* BedrockMux
  const callers = 50
  const perCaller = 20
  const tick = yield* progress(callers * perCaller)
  const results = yield* Effect.forEach(
    Array.from({ length: callers }),
    () =>
      Effect.forEach(Array.from({ length: perCaller }), () =>
        Effect.gen(function*() {
          const t0 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
          const res = yield* Effect.result(mux.converse(request))
          const t1 = yield* Effect.clockWith((c) => Effect.succeed(c.currentTimeMillisUnsafe()))
          return { res, ms: t1 - t0 }
        }).pipe(Effect.tap(tick))),
    { concurrency: "unbounded" }
  ).pipe(Effect.map((xs) => xs.flat()))
  const calls = yield* BedrockSimulator.attempts
  const failed = results.filter((r) => r.res._tag === "Failure").length
  const share = failed / results.length
  const rows = ["a", "b"].map((m) => {
    const mine = calls.filter((c) => c.modelId === m)
    return [
      m,
      results.filter((r) => r.res._tag === "Success" && r.res.success.routing.modelId === m).length,
      mine.length,
      mine.filter((c) => c.outcome === "ThrottlingException").length
    ]
  })
  return {
    title: `(h) two models that each throttle 2 % of calls at random, ${callers} callers x ${perCaller} requests, default config`,
    expectation: "fewer than 1 % of requests fail: a throttle cools one model for 500 ms, not the pool for 10 s; requests wait for a cooldown that ends inside their deadline",
    columns: ["model", "answered", "calls seen by Bedrock", "throttled"],
    rows,
    summary: {
      requests: results.length,
      failures: failed,
      failureShare: `${(100 * share).toFixed(2)} %`,
      callsPerRequest: (calls.length / results.length).toFixed(3),
      p50: Math.round(percentile(results.map((r) => r.ms), 0.5)),
      p95: Math.round(percentile(results.map((r) => r.ms), 0.95))
    },
    ok: share < 0.01
  } satisfies Table
}).pipe(
  Effect.provide(BedrockMux.layer({ models: [{ modelId: "a" }, { modelId: "b" }] }).pipe(
    Layer.provideMerge(sim({
      models: {
        // fixed latencies in whole milliseconds: every virtual time stays exact
        a: { latency: 250, faults: [{ when: { probability: 0.02 }, do: { kind: "error", error: "ThrottlingException" } }] },
        b: { latency: 350, faults: [{ when: { probability: 0.02 }, do: { kind: "error", error: "ThrottlingException" } }] }
      }
    }))
  ))
))

export const scenarios: Record<string, Scenario> = {
  runtime: runtimeWorkload(),
  "throttled-primary": throttledPrimary,
  outage,
  "validation-storm": validationStorm,
  "hanging-model": hangingModel,
  admission,
  "two-primaries": twoPrimaries,
  tenants,
  "random-throttles": randomThrottles,
  ...streamingScenarios,
  eval: evalScenario
}
