/**
 * Streaming with failover, a first-token limit and hedging. The primary
 * sometimes takes 8 s to its first token and sometimes cuts its stream:
 * - hedging (after 600 ms without a first token) starts the same request on
 *   the fallback; the first to deliver content wins, the other is aborted;
 * - a cut before any content fails over unseen;
 * - a cut after content is never a success: with `onInterrupt: "restart"`
 *   the caller gets a `reset` event, then the fallback's whole answer.
 * `MuxStream.collect` reads the text (honouring resets) and the routing
 * record, which is the stream's last event. Runs on virtual time.
 *
 * Run: node examples/streaming-hedging.ts
 */
import { Console, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator, MuxStream } from "../src/index.ts"

const MuxLive = BedrockMux.layer({
  models: [
    { modelId: "amazon.nova-pro-v1:0", weight: 100 },
    { modelId: "amazon.nova-lite-v1:0", weight: 100, isFallback: true }
  ],
  stream: { firstTokenTimeout: "3 seconds", stallTimeout: "3 seconds", hedge: { after: "600 millis", budget: 0.5 } }
}).pipe(Layer.provide(BedrockSimulator.layer({
  models: {
    "amazon.nova-pro-v1:0": {
      answer: "Pro: breakers trip on failures and probe before closing.",
      tokensPerSecond: 50,
      faults: [
        { when: { calls: 1 }, do: { kind: "slow", firstToken: "8 seconds" } },
        { when: { calls: 2 }, do: { kind: "cut", afterTokens: 0 } },
        { when: { calls: 3 }, do: { kind: "cut", afterTokens: 4 } }
      ]
    },
    "amazon.nova-lite-v1:0": { answer: "Lite: a breaker stops calls to a failing model.", firstToken: 200, tokensPerSecond: 50 }
  }
})))

const ask = { messages: [{ role: "user" as const, content: [{ text: "What does a circuit breaker do?" }] }] }

export const program = Effect.gen(function*() {
  const mux = yield* BedrockMux
  const run = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(effect)
      yield* TestClock.adjust("1 minute")
      return yield* Fiber.join(fiber)
    })

  // 1. slow first token: the hedge on the fallback wins at ~600 ms + 200 ms
  const hedged = yield* run(MuxStream.collect(mux.converseStream(ask)))
  yield* Console.log(`hedged: ${hedged.routing?.modelId} after ${hedged.routing?.timeToFirstTokenMs} ms to its first token: ${hedged.text}`)
  yield* Console.log(`  attempts: ${hedged.routing?.attempts.map((a) => `${a.modelId} ${a.outcome}${a.decision ? ` (${a.decision})` : ""}`).join(", ")}`)

  // 2. a cut before any content: failover the caller never sees
  const rescued = yield* run(MuxStream.collect(mux.converseStream(ask, { hedge: false })))
  yield* Console.log(`cut before content: ${rescued.routing?.modelId}, resets ${rescued.resets}: ${rescued.text}`)

  // 3. a cut after content, with restart: a reset, then the fallback's whole answer
  const restarted = yield* run(MuxStream.collect(mux.converseStream(ask, { hedge: false, onInterrupt: "restart" })))
  yield* Console.log(`cut after content: ${restarted.routing?.modelId}, resets ${restarted.resets}: ${restarted.text}`)

  const stats = yield* mux.stats
  return { hedged, rescued, restarted, hedges: stats.hedges, hedgesWon: stats.hedgesWon }
}).pipe(Effect.provide(MuxLive), Effect.provide(TestClock.layer()))

if (import.meta.main) Effect.runPromise(program)
