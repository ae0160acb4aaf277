/**
 * The Promise facade, drop-in for the aws-samples multiplexer. Here on the
 * simulator; drop `bedrockRuntime` and pass `clientConfig: { region }` for
 * real Bedrock. Run: node examples/promise-facade.ts
 */
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
  const response = await multiplexer.processRequest({
    messages: [{ role: "user", content: [{ text: "Explain quantum computing in simple terms" }] }],
    inferenceConfig: { maxTokens: 1000, temperature: 0.7 }
  })
  console.log(response.output?.message?.content?.[0]?.text, response.routing.attempts)
  console.log(multiplexer.getSimpleHealthCheck(), multiplexer.getStats().latencyMetrics)
  await multiplexer.destroy()
}

if (import.meta.main) main()
