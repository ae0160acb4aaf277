// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Failover and retry, one pool per situation (the fake Bedrock scripts
 * each model; every answer is "answered by <modelId>"):
 * 1. both primaries throttle their first call: the request moves to the
 *    fallback at once (`model-selected` retryCount 0, 1, 2; two `error`
 *    events with a 429 RATE_LIMIT outcome; `rateLimitCount` 2);
 * 2. a primary that answers 503: the fallback answers, and the failure
 *    counts toward the primary's breaker (the original fails the request);
 * 3. a 500 on the first call: retried once on the same model, which answers;
 * 4. `tierEscalation`: a throttled model is retried at the priority tier and
 *    answers there (`tier-escalation`, `tier-escalation-success`);
 * 5. a ValidationException fails fast: `FailFastError` with the SDK's
 *    exception as `cause`, no other model tried, no breaker failure.
 */
import { ValidationException } from "@aws-sdk/client-bedrock-runtime"
import { createMultiplexer, FailFastError, type ModelConfiguration, OutcomeType } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const clientConfig = { region: "us-east-1" }
const question = { messages: [{ role: "user" as const, content: [{ text: "Summarize the water cycle" }] }] }
const pool = (primaries: string[], fallback: string): ModelConfiguration[] => [
  ...primaries.map((modelId) => ({ modelId, weight: 100, isFallback: false })),
  { modelId: fallback, weight: 100, isFallback: true }
]

async function throttledPrimaries(): Promise<void> {
  const [lite, micro, pro] = ["amazon.nova-lite-v1:0", "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0"]
  // as the original's own example 03 writes it: maxAttempts at the top level and in clientConfig
  const multiplexer = createMultiplexer(pool([lite, micro], pro), { maxRetries: 3, maxAttempts: 1, clientConfig: { ...clientConfig, maxAttempts: 1 } })
  const selections: Array<[string, boolean, number]> = []
  const errors: Array<[number | undefined, OutcomeType | undefined]> = []
  multiplexer.on("model-selected", (modelId, isFallback, retryCount) => selections.push([modelId, isFallback, retryCount]))
  multiplexer.on("error", (error, outcome) => errors.push([error?.code, outcome?.type]))
  const response = await multiplexer.processRequest(question)
  same("the answer", response.output?.message?.content?.[0]?.text, `answered by ${pro}`)
  same("fallback flags and retry counts", selections.map(([, f, n]) => [f, n]), [[false, 0], [false, 1], [true, 2]])
  same("the primaries tried", selections.slice(0, 2).map(([id]) => id).sort(), [lite, micro])
  // one per failed attempt; the request succeeded, so no final error(error, null)
  same("the attempts' error events", errors, [[429, OutcomeType.RATE_LIMIT], [429, OutcomeType.RATE_LIMIT]])
  same("throttles counted", multiplexer.getStats().rateLimitCount, 2)
  console.log(`✅ Two throttled primaries, answered by the fallback ${pro}`)
  await multiplexer.destroy()
}

async function unavailablePrimary(): Promise<void> {
  const [haiku, titan] = ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text-express-v1"]
  const multiplexer = createMultiplexer(pool([haiku], titan), { maxRetries: 3, clientConfig })
  const codes: Array<number | undefined> = []
  multiplexer.on("error", (error) => codes.push(error?.code))
  const response = await multiplexer.processRequest(question)
  same("the answer", response.output?.message?.content?.[0]?.text, `answered by ${titan}`)
  same("the failed attempt's status", codes, [503])
  same("the 503 counted toward the primary's breaker", multiplexer.getCircuitBreakerStatus()[haiku], { state: "CLOSED", failureCount: 1 })
  console.log(`✅ A 503 from ${haiku}, answered by ${titan}`)
  await multiplexer.destroy()
}

async function internalErrorOnce(): Promise<void> {
  const [llama, mistral] = ["meta.llama3-8b-instruct-v1:0", "mistral.mistral-7b-instruct-v0:2"]
  const multiplexer = createMultiplexer(pool([llama], mistral), { maxRetries: 3, clientConfig })
  const selections: Array<[string, number]> = []
  multiplexer.on("model-selected", (modelId, _isFallback, retryCount) => selections.push([modelId, retryCount]))
  const response = await multiplexer.processRequest(question)
  same("the answer", response.output?.message?.content?.[0]?.text, `answered by ${llama}`)
  same("the same model, twice", selections, [[llama, 0], [llama, 1]])
  console.log(`✅ A 500 from ${llama}, retried there once`)
  await multiplexer.destroy()
}

async function tierEscalation(): Promise<void> {
  const [premier, lite] = ["amazon.nova-premier-v1:0", "amazon.titan-text-lite-v1"]
  const multiplexer = createMultiplexer(pool([premier], lite), {
    maxRetries: 3,
    clientConfig,
    tierEscalation: { enabled: true, escalationTier: "priority" }
  })
  const tiers: Array<Array<string>> = []
  multiplexer.on("tier-escalation", (modelId, from, to) => tiers.push(["escalation", modelId, from, to]))
  multiplexer.on("tier-escalation-success", (modelId, tier) => tiers.push(["success", modelId, tier]))
  const response = await multiplexer.processRequest(question)
  same("the answer", response.output?.message?.content?.[0]?.text, `answered by ${premier}`)
  same("the escalation events", tiers, [["escalation", premier, "default", "priority"], ["success", premier, "priority"]])
  console.log(`✅ ${premier} throttled, then answered at the priority tier`)
  await multiplexer.destroy()
}

async function failFast(): Promise<void> {
  const [command, jamba] = ["cohere.command-r-v1:0", "ai21.jamba-1-5-mini-v1:0"]
  const multiplexer = createMultiplexer(pool([command], jamba), { maxRetries: 3, clientConfig })
  const selected: Array<string> = []
  multiplexer.on("model-selected", (modelId) => selected.push(modelId))
  const error = await multiplexer.processRequest(question).then(() => undefined, (e: unknown) => e)
  check("the request rejects with FailFastError", error instanceof FailFastError)
  const failed = error as FailFastError
  same("its name", failed.name, "FailFastError")
  check("its cause is the SDK's ValidationException", failed.cause instanceof ValidationException)
  same("its outcome", [failed.outcome.modelId, failed.outcome.type, failed.errorResponse.code], [command, OutcomeType.FAIL_FAST, 400])
  same("the models tried", selected, [command])
  same("a bad request is not the model's fault", multiplexer.getCircuitBreakerStatus()[command]?.failureCount, 0)
  console.log(`✅ A ValidationException from ${command} failed fast`)
  await multiplexer.destroy()
}

async function main(): Promise<void> {
  await throttledPrimaries()
  await unavailablePrimary()
  await internalErrorOnce()
  await tierEscalation()
  await failFast()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
