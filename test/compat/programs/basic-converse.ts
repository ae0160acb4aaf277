// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Basic Converse: the README's quick start. A pool of a primary and a
 * fallback built with `createMultiplexer` (and once more with
 * `new BedrockMultiplexer(config)`), a `ConverseCommandInput` without a
 * `modelId`, and the SDK's `ConverseCommandOutput` back.
 *
 * The fake Bedrock the harness starts answers every model with
 * "answered by <modelId>".
 */
import type { ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import { BedrockMultiplexer, createMultiplexer, type ModelConfiguration, MultiplexerError } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const PRIMARY = "amazon.nova-2-lite-v1:0"
const FALLBACK = "amazon.nova-pro-v1:0"

const models: ModelConfiguration[] = [
  { modelId: PRIMARY, weight: 100, isFallback: false },
  { modelId: FALLBACK, weight: 30, isFallback: true }
]

const question: Omit<ConverseCommandInput, "modelId"> = {
  system: [{ text: "Answer in one sentence." }],
  messages: [{ role: "user", content: [{ text: "Explain quantum computing in simple terms" }] }],
  inferenceConfig: { maxTokens: 1000, temperature: 0.7 }
}

async function main(): Promise<void> {
  const multiplexer = createMultiplexer(models, { maxRetries: 3, clientConfig: { region: "us-east-1" } })
  const response = await multiplexer.processRequest(question)
  same("the assistant's message", response.output?.message, { role: "assistant", content: [{ text: `answered by ${PRIMARY}` }] })
  same("the stop reason", response.stopReason, "end_turn")
  check("input and output tokens are reported", (response.usage?.inputTokens ?? 0) > 0 && (response.usage?.outputTokens ?? 0) > 0)
  // what a caller serializes is the SDK's output: the routing record is there to read, but not enumerable
  same("the keys JSON sees", Object.keys(JSON.parse(JSON.stringify(response))).sort(), ["$metadata", "metrics", "output", "stopReason", "usage"])
  same("the model that answered", [response.routing.modelId, response.routing.fallbackUsed], [PRIMARY, false])
  console.log(`Assistant: ${response.output?.message?.content?.[0]?.text}`)

  await multiplexer.destroy()
  const late = await multiplexer.processRequest(question).then(() => "resolved", (e: unknown) => e)
  check("a request after destroy() rejects with MultiplexerError DESTROYED", late instanceof MultiplexerError && late.code === "DESTROYED")

  // the same pool through the class and one config object
  const direct = new BedrockMultiplexer({ models, defaultTimeoutMs: 30_000, maxRetries: 3, clientConfig: { region: "us-east-1" } })
  const again = await direct.processRequest(question)
  same("the class's answer", again.output?.message?.content, [{ text: `answered by ${PRIMARY}` }])
  await direct.destroy()
  console.log("Both forms answered.")
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
