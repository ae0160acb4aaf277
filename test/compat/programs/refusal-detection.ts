// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Refusal detection (`refusalDetection`): an answer judged a refusal fails
 * its attempt over to another model, is counted in `refusalCount`, never
 * counts toward the breaker, and is reported by `refusal-classification`
 * and `refusal-detected`.
 *
 * The fake Bedrock's primary always refuses (REFUSAL below); the fallback
 * answers "answered by <modelId>". The same pool is scored by:
 * 1. the built-in heuristic (`{ enabled: true }`);
 * 2. a classifier function of our own (a Promise);
 * 3. an ONNX model at `modelPath` (needs onnxruntime-node; the harness
 *    writes a small one to ../models/refusal_classifier.onnx);
 * and then with `retryOnRefusal: false`, which scores nothing, so the
 * refusal is the answer. A pool of the refusing model alone rejects.
 */
import { createMultiplexer, type ModelConfiguration, MultiplexerError, OutcomeType, type RefusalDetectionConfig } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const REFUSER = "amazon.nova-pro-v1:0"
const HELPER = "amazon.titan-text-express-v1"
const REFUSAL = "I am sorry but I cannot help with that"
const clientConfig = { region: "us-east-1" }
const question = { messages: [{ role: "user" as const, content: [{ text: "Explain how rain forms" }] }] }
const pool: ModelConfiguration[] = [
  { modelId: REFUSER, weight: 100, isFallback: false },
  { modelId: HELPER, weight: 100, isFallback: true }
]

/** One request through `pool` with `refusalDetection`; what it answered and what was reported. */
async function ask(refusalDetection: RefusalDetectionConfig, models = pool) {
  const multiplexer = createMultiplexer(models, { maxRetries: 3, clientConfig, refusalDetection })
  const classified: Array<[string, boolean, boolean]> = []
  const detected: Array<[string, string]> = []
  const refusalOutcomes: Array<string> = []
  multiplexer.on("refusal-classification", (modelId, isRefusal, confidence, latencyMs) =>
    classified.push([modelId, isRefusal, confidence >= 0 && confidence <= 1 && latencyMs >= 0]))
  multiplexer.on("refusal-detected", (modelId, confidence, text) => {
    check(`a detected refusal's confidence reaches the threshold (${confidence})`, confidence >= (refusalDetection.confidenceThreshold ?? 0.5))
    detected.push([modelId, text])
  })
  // a refusal is an attempt failure without an error response: error(null, outcome)
  multiplexer.on("error", (error, outcome) => {
    if (error === null && outcome?.type === OutcomeType.REFUSAL) refusalOutcomes.push(outcome.modelId)
  })
  const answer = await multiplexer.processRequest(question).then((r) => r.output?.message?.content?.[0]?.text, (e: unknown) => e)
  const stats = multiplexer.getStats()
  const result = {
    answer,
    classified,
    detected,
    refusalOutcomes,
    refusals: [stats.refusalCount, stats.modelStats[REFUSER]?.refusalCount],
    breakerFailures: multiplexer.getCircuitBreakerStatus()[REFUSER]?.failureCount
  }
  await multiplexer.destroy()
  return result
}

/** What every detecting configuration must report for the pool. */
function expectFailover(name: string, r: Awaited<ReturnType<typeof ask>>): void {
  same(`${name}: the answer`, r.answer, `answered by ${HELPER}`)
  same(`${name}: classifications`, r.classified, [[REFUSER, true, true], [HELPER, false, true]])
  same(`${name}: the refusal detected, with its text`, r.detected, [[REFUSER, REFUSAL]])
  same(`${name}: the refused attempt's outcome`, r.refusalOutcomes, [REFUSER])
  same(`${name}: refusals counted, in total and for the model`, r.refusals, [1, 1])
  same(`${name}: the breaker does not count a refusal`, r.breakerFailures, 0)
  console.log(`✅ ${name}: ${REFUSER} refused, ${HELPER} answered`)
}

async function main(): Promise<void> {
  expectFailover("heuristic", await ask({ enabled: true }))
  expectFailover("classifier function", await ask({
    enabled: true,
    classifier: async (text) => (text.toLowerCase().includes("cannot help") ? 0.9 : 0.05)
  }))
  expectFailover("ONNX model", await ask({
    enabled: true,
    modelPath: `${__dirname}/../models/refusal_classifier.onnx`,
    confidenceThreshold: 0.6
  }))

  const off = await ask({ enabled: true, retryOnRefusal: false })
  same("retryOnRefusal false: the refusal is the answer", [off.answer, off.classified, off.refusals], [REFUSAL, [], [0, 0]])
  console.log("✅ retryOnRefusal false: nothing scored")

  const alone = await ask({ enabled: true }, [pool[0]!])
  const error = alone.answer
  check("a pool that only refuses rejects with MultiplexerError", error instanceof MultiplexerError)
  same("with every attempt refused", (error as MultiplexerError).details?.["attempts"]?.map((a: { reason: string }) => a.reason), ["Refused"])
  console.log(`✅ Only refusals: ${(error as MultiplexerError).code}`)
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
