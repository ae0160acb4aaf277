/**
 * Every example in examples/ runs, and returns what its header says it shows.
 * The examples run on the simulator (virtual time where time matters), so
 * this file sleeps for real nowhere but in route-any-call, which goes through
 * the real SDK over loopback (one attempt waits for its 1 s timeout). The
 * Redis example needs REDIS_URL: it skips without it, unless CI=true (as
 * test/redis.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as basicConverse from "../examples/basic-converse.ts"
import * as composePolicy from "../examples/compose-policy.ts"
import * as customPolicy from "../examples/custom-policy.ts"
import * as evalGate from "../examples/eval-gate.ts"
import * as customSelector from "../examples/custom-selector.ts"
import * as effectCircuitBreaker from "../examples/effect-circuit-breaker.ts"
import * as opentelemetry from "../examples/opentelemetry.ts"
import * as promiseFacade from "../examples/promise-facade.ts"
import * as redis from "../examples/redis.ts"
import * as routeAnyCall from "../examples/route-any-call.ts"
import * as streamingHedging from "../examples/streaming-hedging.ts"
import * as taskRouting from "../examples/task-routing.ts"
import * as tenants from "../examples/tenants.ts"
import * as testingWithTestClock from "../examples/testing-with-testclock.ts"

const SKIP_REDIS = process.env["REDIS_URL"] === undefined && process.env["CI"] !== "true"

describe("examples", () => {
  it.effect("basic-converse: the primary answers until its RPM runs out, then the fallback", () =>
    Effect.gen(function*() {
      const { answeredBy, health } = yield* basicConverse.program
      assert.deepStrictEqual(answeredBy, [
        "amazon.nova-lite-v1:0",
        "amazon.nova-lite-v1:0",
        "amazon.nova-pro-v1:0",
        "amazon.nova-pro-v1:0"
      ])
      assert.deepStrictEqual(health, { status: "healthy", code: 200 })
    }))

  it.effect("promise-facade: a 503 on the primary fails over; stats count the success", () =>
    Effect.gen(function*() {
      const { text, routing, health, stats } = yield* promiseFacade.program
      assert.strictEqual(text, "Quantum computers use qubits.")
      assert.strictEqual(routing.modelId, "amazon.nova-pro-v1:0")
      assert.isTrue(routing.fallbackUsed)
      assert.deepStrictEqual(routing.attempts.map((a) => [a.modelId, a.reason ?? a.outcome, a.decision]), [
        ["amazon.nova-2-lite-v1:0", "ServiceUnavailable", "failover"],
        ["amazon.nova-pro-v1:0", "success", undefined]
      ])
      assert.deepStrictEqual(health, { status: "healthy", code: 200 })
      assert.strictEqual(stats.successCount, 1)
    }))

  it.effect("custom-policy: AccessDenied fails fast by default; the composed policy fails over and backs off", () =>
    Effect.gen(function*() {
      const { byDefault, withCustom } = yield* customPolicy.program
      assert.isTrue("failed" in byDefault && byDefault.failed === "Failed")
      assert.strictEqual(byDefault.attempts.at(-1)?.reason, "AccessDenied")
      assert.strictEqual(byDefault.attempts.at(-1)?.decision, "fail-fast")
      assert.isTrue("answeredBy" in withCustom && withCustom.answeredBy === "account-b.model")
      assert.deepStrictEqual(withCustom.attempts.map((a) => [a.modelId, a.reason ?? a.outcome]), [
        ["account-a.model", "AccessDenied"],
        ["account-b.model", "ServiceUnavailable"],
        ["account-b.model", "ServiceUnavailable"],
        ["account-b.model", "success"]
      ])
    }))

  it.effect("task-routing: labels pick their route, a route fails over inside itself, an unknown label is rejected", () =>
    Effect.gen(function*() {
      const results = yield* taskRouting.program
      assert.deepStrictEqual(results, {
        summarize: "amazon.nova-lite-v1:0",
        code: "anthropic.claude-sonnet-4-5-v1:0",
        "code again": "anthropic.claude-haiku-4-5-v1:0 (fallback)",
        "no label": "amazon.nova-lite-v1:0",
        translate: `InvalidRequest: unknown route label "translate"`
      })
    }))

  it.effect("streaming-hedging: the hedge wins and aborts the slow primary; cuts are rescued, never spliced", () =>
    Effect.gen(function*() {
      const { hedged, hedges, hedgesWon, rescued, restarted } = yield* streamingHedging.program
      const lite = "Lite: a breaker stops calls to a failing model."
      assert.strictEqual(hedged.text, lite)
      assert.strictEqual(hedged.routing?.timeToFirstTokenMs, 200)
      assert.deepStrictEqual(hedged.routing?.attempts.map((a) => [a.modelId, a.outcome, a.decision]), [
        ["amazon.nova-pro-v1:0", "interrupted", "hedge-lost"],
        ["amazon.nova-lite-v1:0", "success", undefined]
      ])
      assert.deepStrictEqual([hedges, hedgesWon], [1, 1])
      assert.deepStrictEqual([rescued.text, rescued.resets], [lite, 0])
      assert.deepStrictEqual([restarted.text, restarted.resets, restarted.routing?.restarts], [lite, 1, 1])
    }))

  it.effect("tenants: A's third request in the minute is QuotaExceeded; with waitForQuota it waits 60 s", () =>
    Effect.gen(function*() {
      const { rejected, waitedMs } = yield* tenants.program
      assert.isDefined(rejected)
      assert.deepStrictEqual([rejected!.tenant, rejected!.kind, rejected!.retryAfterMs], ["A", "requests", 60_000])
      assert.strictEqual(waitedMs, 60_000)
    }))

  it.effect("testing-with-testclock: the app fails over during the outage and gets the primary back after it", () =>
    Effect.gen(function*() {
      const log = yield* testingWithTestClock.program
      assert.deepStrictEqual(log, [
        "0s primary success",
        "10s primary ServiceUnavailableException",
        "10s fallback success",
        "10s primary ServiceUnavailableException",
        "10s fallback success",
        "30s fallback success",
        "80s primary success"
      ])
    }))

  it.effect("opentelemetry: the request span has the two attempt spans under it; GenAI and mux metrics are exported", () =>
    Effect.gen(function*() {
      const { answeredBy, spans, metrics } = yield* opentelemetry.program
      assert.strictEqual(answeredBy, "amazon.nova-pro-v1:0")
      assert.deepStrictEqual(
        spans.map((s) => [s.name, s.parent ?? "-", s.status, s.errorType ?? "-"]).sort(),
        [
          ["chat amazon.nova-2-lite-v1:0", "chat bedrock-mux", "error", "ServiceUnavailable"],
          ["chat amazon.nova-pro-v1:0", "chat bedrock-mux", "ok", "-"],
          ["chat bedrock-mux", "-", "ok", "-"]
        ]
      )
      assert.deepStrictEqual(metrics, [
        "bedrock_mux.attempts",
        "bedrock_mux.failovers",
        "bedrock_mux.requests",
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage"
      ])
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))) // only this example's metrics

  it.effect("eval-gate: the 1B model fails the math tag and is left out; the rerun is answered from the cache", () =>
    Effect.gen(function*() {
      const result = yield* evalGate.program
      assert.deepStrictEqual(result, {
        passed: true,
        promoted: ["us.amazon.nova-2-lite-v1:0"],
        leftOut: ["us.meta.llama3-2-1b-instruct-v1:0"],
        failedTags: ["math"],
        next: { models: [{ modelId: "us.amazon.nova-2-lite-v1:0", weight: 100, price: { input: 0.0003, output: 0.0025 } }] },
        calls: [10, 2],
        rerunCalls: [0, 0],
        ttftMs: [150, 80]
      })
    }))

  it.effect("compose-policy: the composed policy and the JSON one agree field by field and route alike; each piece acts", () =>
    Effect.gen(function*() {
      const { code, fromJson, byCode, byJson, byDecoded } = yield* composePolicy.program
      assert.deepStrictEqual(fromJson, code)
      // the schedules: jittered ±20 % around 200/400 ms (retry) and 250/500 ms (backoff); a retry-after of 1 s wins
      const within = (ms: number | "done" | undefined, nominal: number) => typeof ms === "number" && ms >= nominal * 0.8 && ms <= nominal * 1.2
      assert.isTrue(within(code.retry?.[0], 200) && within(code.retry?.[1], 400), `${code.retry}`)
      assert.isAtLeast(code.retry?.[2] as number, 1_000)
      assert.isTrue(within(code.backoff?.[0], 250) && within(code.backoff?.[1], 500), `${code.backoff}`)
      assert.strictEqual(code.backoff?.[2], "done")
      assert.deepStrictEqual(code.guards.map((g) => g.name), ["breaker", "cooldown", "quota"])
      // BedrockMux.layer takes the composed value, the JSON, or the decoded JSON: the same run
      assert.deepStrictEqual(byJson, byCode)
      assert.deepStrictEqual(byDecoded, byCode)

      const LITE = "us.amazon.nova-2-lite-v1:0"
      const HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
      const PRO = "us.amazon.nova-pro-v1:0"
      const req = (label: string) => byCode.requests.find((r) => r.label === label)!
      const callsOf = (modelId: string) => byCode.calls.filter((c) => c.modelId === modelId)
      // the last model left is retried after the backoff's delays
      assert.deepStrictEqual(req("long"), {
        label: "long",
        answeredBy: PRO,
        attempts: [`${PRO} failure ServiceUnavailable → failover`, `${PRO} failure ServiceUnavailable → failover`, `${PRO} success`]
      })
      const pro = callsOf(PRO)
      assert.isTrue(within(pro[1]!.start - pro[0]!.end!, 250) && within(pro[2]!.start - pro[1]!.end!, 500))
      // a 500 is retried on the same model after the retry schedule's first delay
      assert.deepStrictEqual(req("converse 1").attempts, [`${LITE} failure InternalServer → retry-same`, `${LITE} success`])
      const lite = callsOf(LITE)
      assert.isTrue(within(lite[1]!.start - lite[0]!.end!, 200))
      // a throttle fails over at once
      assert.strictEqual(req("converse 2").attempts[0], `${LITE} failure Throttled → failover`)
      // Haiku: three 503s open its breaker, and it is not called again
      assert.strictEqual(callsOf(HAIKU).length, 3)
      assert.strictEqual(byCode.breakers[HAIKU], "open")
      // the stream is hedged on the fallback, which wins
      assert.deepStrictEqual(req("stream"), {
        label: "stream",
        answeredBy: PRO,
        attempts: [`${LITE} interrupted → hedge-lost`, `${PRO} success`]
      })
      assert.strictEqual(byCode.stats.hedges, 1)
      // Nova Lite's 5 requests a minute are used (failures gave theirs back): the last request does not call it
      assert.strictEqual(lite.filter((c) => c.outcome === "success" || c.outcome === "interrupted").length, 5)
      assert.deepStrictEqual(req("converse 6").attempts, [`${PRO} success`])
    }))

  it.effect("custom-selector: the user's lowest-EWMA selector picks like Selector.latency({ explore: 0 }); cheapest goes by price, then quota", () =>
    Effect.gen(function*() {
      const { own, builtIn, cheapest } = yield* customSelector.program
      assert.deepStrictEqual(own, builtIn)
      // every model without samples first, then the lowest average: latency for Converse, first token for streams
      assert.deepStrictEqual([...own.converse.slice(0, 3)].sort(), ["haiku", "nova-lite", "sonnet"])
      assert.deepStrictEqual(own.converse.slice(3), ["nova-lite", "nova-lite", "nova-lite"])
      assert.deepStrictEqual([...own.stream.slice(0, 3)].sort(), ["haiku", "nova-lite", "sonnet"])
      assert.deepStrictEqual(own.stream.slice(3), ["haiku", "haiku", "haiku"])
      assert.deepStrictEqual(cheapest, ["nova-lite", "nova-lite", "haiku"])
    }))

  it.effect("effect-circuit-breaker: effect's CircuitBreaker opens, probes and closes as the guard; the maintenance window keeps secondary out", () =>
    Effect.gen(function*() {
      const { log, unavailable } = yield* effectCircuitBreaker.program
      assert.deepStrictEqual(log.map((e) => [e.at, e.answeredBy, e.tried.join(" "), e.circuit]), [
        [0, "fallback", "primary:ServiceUnavailable fallback:success", "Closed"],
        [0, "fallback", "primary:ServiceUnavailable fallback:success", "Open"],
        [1_000, "fallback", "fallback:success", "Open"],
        [12_000, "fallback", "primary:ServiceUnavailable fallback:success", "Open"],
        [31_000, "secondary", "secondary:success", "Open"],
        [35_000, "primary", "primary:success", "Closed"]
      ])
      assert.deepStrictEqual(unavailable, { primary: "available", secondary: "available", fallback: "available" })
    }))

  it.live("route-any-call: InvokeModel through mux.route fails over, opens the breaker and times out like Converse; a stream's permit is released when it ends", () =>
    Effect.gen(function*() {
      const { embeddings, timedOut, breakerOfV2, stream, wire } = yield* routeAnyCall.program
      const V2 = "amazon.titan-embed-text-v2:0"
      const V1 = "amazon.titan-embed-text-v1"
      assert.deepStrictEqual(embeddings, [
        { dims: 8, modelId: V1, tried: [`${V2}:ServiceUnavailable`, `${V1}:success`] },
        { dims: 8, modelId: V1, tried: [`${V2}:ServiceUnavailable`, `${V1}:success`] },
        { dims: 8, modelId: V1, tried: [`${V1}:success`] }
      ])
      assert.strictEqual(breakerOfV2, "open")
      assert.strictEqual(timedOut.reason._tag, "NoModelsAvailable")
      assert.deepStrictEqual(timedOut.attempts.map((a) => [a.modelId, a.outcome, a.reason]), [[V1, "interrupted", "DeadlineExceeded"]])
      assert.deepStrictEqual(wire, [
        `invokeModel ${V2} ServiceUnavailableException`,
        `invokeModel ${V1} success`,
        `invokeModel ${V2} ServiceUnavailableException`,
        `invokeModel ${V1} success`,
        `invokeModel ${V1} success`,
        `invokeModel ${V1} interrupted`,
        "converseStream chat-primary cut",
        "converseStream chat-fallback success"
      ])
      assert.strictEqual(stream.modelId, "chat-fallback")
      assert.strictEqual(stream.text, "An answer in five tokens.")
      // the cut before content is an attempt failure; the answering attempt's permit is released after its last content event
      assert.deepStrictEqual(stream.log.slice(0, 3), ["admit chat-primary", "release chat-primary Failure", "admit chat-fallback"])
      const release = stream.log.indexOf("release chat-fallback Success")
      assert.isAbove(release, stream.log.lastIndexOf("content"))
      assert.isAbove(stream.log.indexOf("content"), 2)
      assert.deepStrictEqual(stream.log.slice(release), ["release chat-fallback Success", "routing"])
    }))

  describe.skipIf(SKIP_REDIS)("redis (REDIS_URL)", () => {
    it.live("redis: a breaker opened through mux 1 makes mux 2 skip its primary", () =>
      Effect.gen(function*() {
        const result = yield* redis.program
        assert.deepStrictEqual(result, { before: "primary", breaker: "open", after: "fallback", tried: ["fallback"] })
      }))
  })
})
