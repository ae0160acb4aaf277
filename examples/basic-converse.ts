/**
 * Basic converse through the mux, on the built-in simulator (no AWS needed).
 *
 * The primary has an RPM quota of 2 on the simulated Bedrock. The third request
 * is throttled there, fails over to the fallback at once, and the primary stays
 * out of rotation for its throttle cooldown (10 s), so the fourth goes straight to
 * the fallback. For real Bedrock, replace the simulator layer with
 * `BedrockRuntime.layer({ region: "us-east-1" })`.
 *
 * Run: node examples/basic-converse.ts
 */
import { Console, Effect, Layer } from "effect"
import { BedrockMux, BedrockSimulator } from "../src/index.ts"

const Bedrock = BedrockSimulator.layer({
  models: {
    "amazon.nova-lite-v1:0": { rpm: 2, answer: "Hello from Nova Lite." },
    "amazon.nova-pro-v1:0": { answer: "Hello from Nova Pro." }
  }
})

const MuxLive = BedrockMux.layer([
  { modelId: "amazon.nova-lite-v1:0", weight: 100, isFallback: false },
  { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
]).pipe(Layer.provide(Bedrock))

export const program = Effect.gen(function*() {
  const mux = yield* BedrockMux
  const answeredBy: Array<string> = []
  for (let i = 0; i < 4; i++) {
    const res = yield* mux.converse({ messages: [{ role: "user", content: [{ text: `Question ${i}` }] }] })
    const tried = res.routing.attempts.map((a) => `${a.modelId}:${a.reason ?? a.outcome}`).join(" → ")
    yield* Console.log(`${res.routing.modelId} answered "${res.output?.message?.content?.[0]?.text}" (${tried})`)
    answeredBy.push(res.routing.modelId)
  }
  const health = yield* mux.simpleHealth
  yield* Console.log(health)
  return { answeredBy, health }
}).pipe(Effect.provide(MuxLive))

if (import.meta.main) Effect.runPromise(program)
