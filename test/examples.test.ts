/**
 * Every example in examples/ runs, and returns what its header says it shows.
 * The examples run on the simulator (virtual time where time matters), so
 * this file sleeps for real nowhere. The Redis example needs REDIS_URL: it
 * skips without it, unless CI=true (as test/redis.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as basicConverse from "../examples/basic-converse.ts"
import * as customPolicy from "../examples/custom-policy.ts"
import * as evalGate from "../examples/eval-gate.ts"
import * as opentelemetry from "../examples/opentelemetry.ts"
import * as promiseFacade from "../examples/promise-facade.ts"
import * as redis from "../examples/redis.ts"
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

  describe.skipIf(SKIP_REDIS)("redis (REDIS_URL)", () => {
    it.live("redis: a breaker opened through mux 1 makes mux 2 skip its primary", () =>
      Effect.gen(function*() {
        const result = yield* redis.program
        assert.deepStrictEqual(result, { before: "primary", breaker: "open", after: "fallback", tried: ["fallback"] })
      }))
  })
})
