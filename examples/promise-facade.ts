/**
 * The Promise facade, drop-in for the aws-samples multiplexer: same
 * `createMultiplexer(models, options)`, `processRequest`, `getStats`,
 * `getSimpleHealthCheck`, `destroy`. Here the primary answers 503 and the
 * request fails over to the fallback (the original would fail it).
 *
 * On the simulator; for real Bedrock drop `bedrockRuntime` and pass
 * `clientConfig: { region: "us-east-1" }`.
 *
 * Run: node examples/promise-facade.ts
 */
import { Effect } from "effect"
import { BedrockSimulator, createMultiplexer } from "../src/index.ts"

export const main = async () => {
  const multiplexer = createMultiplexer(
    [
      { modelId: "amazon.nova-2-lite-v1:0", weight: 100, isFallback: false },
      { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
    ],
    {
      maxRetries: 3,
      bedrockRuntime: BedrockSimulator.layer({
        models: {
          "amazon.nova-2-lite-v1:0": { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
          "amazon.nova-pro-v1:0": { answer: "Quantum computers use qubits." }
        }
      })
    }
  )
  try {
    const response = await multiplexer.processRequest({
      messages: [{ role: "user", content: [{ text: "Explain quantum computing in simple terms" }] }],
      inferenceConfig: { maxTokens: 1000, temperature: 0.7 }
    })
    const text = response.output?.message?.content?.[0]?.text
    console.log(text, response.routing.attempts.map((a) => `${a.modelId}: ${a.reason ?? a.outcome}`))
    const health = multiplexer.getSimpleHealthCheck()
    const stats = multiplexer.getStats()
    console.log(health, stats.successCount, stats.latencyMetrics)
    return { text, routing: response.routing, health, stats }
  } finally {
    await multiplexer.destroy()
  }
}

/** The same, as an Effect (what test/examples.test.ts runs). */
export const program = Effect.promise(main)

if (import.meta.main) main()
