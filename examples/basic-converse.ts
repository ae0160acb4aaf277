/**
 * Basic converse through the mux, on the built-in simulator.
 * Run: node examples/basic-converse.ts
 */
import { Effect, Layer } from "effect"
import { BedrockMux, BedrockSimulator } from "../src/index.ts"

const Bedrock = BedrockSimulator.layer({
  models: {
    "amazon.nova-lite-v1:0": { latency: 10, rpm: 2, answer: "Hello from Nova Lite." },
    "amazon.nova-pro-v1:0": { latency: 20, answer: "Hello from Nova Pro." }
  }
})

const MuxLive = BedrockMux.layer([
  { modelId: "amazon.nova-lite-v1:0", weight: 100, isFallback: false },
  { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
]).pipe(Layer.provide(Bedrock))

export const program = Effect.gen(function*() {
  const mux = yield* BedrockMux
  for (let i = 0; i < 4; i++) {
    const res = yield* mux.converse({ messages: [{ role: "user", content: [{ text: `Question ${i}` }] }] })
    console.log(res.routing.modelId, "→", res.output?.message?.content?.[0]?.text)
  }
  console.log(yield* mux.simpleHealth)
}).pipe(Effect.provide(MuxLive))

if (import.meta.main) Effect.runPromise(program)
