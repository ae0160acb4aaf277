/**
 * How to test your own app: the app below is an ordinary Effect that needs
 * `BedrockMux`. The test gives it a mux over the simulator, whose primary has a
 * scripted outage from 10 s to 70 s, and moves virtual time with TestClock
 * through the outage: the app fails over, the breaker opens and keeps the
 * primary out, then after the outage and the cooldown a half-open probe brings
 * it back. The whole minute and a half takes milliseconds. In a vitest file,
 * the same body goes in `it.effect(...)` (which provides TestClock itself).
 *
 * Run: node examples/testing-with-testclock.ts
 */
import * as assert from "node:assert/strict"
import { Console, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator } from "../src/index.ts"

// --- the app under test ---------------------------------------------------------------------
export const answer = (question: string) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const res = yield* mux.converse({ messages: [{ role: "user", content: [{ text: question }] }] })
    return { modelId: res.routing.modelId, tried: res.routing.attempts.map((a) => a.modelId) }
  })

// --- the test -----------------------------------------------------------------------------
const TestMux = BedrockMux.layer({
  models: [{ modelId: "primary" }, { modelId: "fallback", isFallback: true }],
  breaker: { failures: 2, cooldown: "30 seconds" }
}).pipe(Layer.provideMerge(BedrockSimulator.layer({
  models: {
    primary: { faults: [{ when: { from: "10 seconds", to: "70 seconds" }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
    fallback: {}
  }
})))

export const program = Effect.gen(function*() {
  const mux = yield* BedrockMux
  assert.equal((yield* answer("t=0")).modelId, "primary")
  yield* TestClock.adjust("10 seconds") // the outage starts
  assert.deepEqual(yield* answer("t=10s"), { modelId: "fallback", tried: ["primary", "fallback"] })
  assert.deepEqual(yield* answer("t=10s"), { modelId: "fallback", tried: ["primary", "fallback"] })
  assert.equal((yield* mux.health).models[0]!.breaker, "open") // two failures: the breaker opened
  yield* TestClock.adjust("20 seconds")
  assert.deepEqual(yield* answer("t=30s"), { modelId: "fallback", tried: ["fallback"] }) // primary skipped
  yield* TestClock.adjust("50 seconds") // t = 80 s: outage over, cooldown over
  assert.deepEqual(yield* answer("t=80s"), { modelId: "primary", tried: ["primary"] }) // the probe succeeds
  assert.equal((yield* mux.health).models[0]!.breaker, "closed")
  const log = (yield* BedrockSimulator.attempts).map((a) => `${a.start / 1000}s ${a.modelId} ${a.outcome}`)
  yield* Console.log("all checks passed; what the simulated Bedrock saw:\n  " + log.join("\n  "))
  return log
}).pipe(Effect.provide(TestMux), Effect.provide(TestClock.layer()))

if (import.meta.main) Effect.runPromise(program)
