// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * The `tracing` option (the original sent X-Ray segments; here it is our
 * OpenTelemetry spans, sent to the global tracer provider, which an app
 * exports to X-Ray through the collector: docs/operations.md).
 *
 * 1. `tracing` with every documented key: a request whose primary answers
 *    503 fails over and is answered, with the selection events as usual.
 * 2. `tracing: { enabled: false }`: answered, and traced by nothing.
 * 3. A misspelt key is a config error that names it.
 *
 * This program registers no tracer provider (it imports only this package
 * and the SDK); the harness preloads one and checks the spans that the first
 * multiplexer, and only it, sent. The fake Bedrock answers the primary's
 * first call with 503, and every model with "answered by <modelId>".
 */
import { createMultiplexer, type ModelConfiguration } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const PRIMARY = "amazon.nova-lite-v1:0"
const FALLBACK = "amazon.nova-pro-v1:0"
const clientConfig = { region: "us-east-1" }
const models: ModelConfiguration[] = [
  { modelId: PRIMARY, weight: 100, isFallback: false },
  { modelId: FALLBACK, weight: 100, isFallback: true }
]
const question = { messages: [{ role: "user" as const, content: [{ text: "Trace this request" }] }] }

async function main(): Promise<void> {
  const traced = createMultiplexer(models, {
    maxRetries: 3,
    clientConfig,
    tracing: { enabled: true, serviceName: "compat-tracing", captureBodies: true, captureModelSelection: true }
  })
  const selected: Array<[string, number]> = []
  traced.on("model-selected", (modelId, _isFallback, retryCount) => selected.push([modelId, retryCount]))
  const response = await traced.processRequest(question)
  same("the traced request's answer", response.output?.message?.content?.[0]?.text, `answered by ${FALLBACK}`)
  same("its selections", selected, [[PRIMARY, 0], [FALLBACK, 1]])
  console.log(`Traced: ${PRIMARY} failed, ${FALLBACK} answered`)
  await traced.destroy()

  const untraced = createMultiplexer(models, { maxRetries: 3, clientConfig, tracing: { enabled: false } })
  const plain = await untraced.processRequest(question)
  same("the untraced request's answer", plain.output?.message?.content?.[0]?.text, `answered by ${PRIMARY}`)
  await untraced.destroy()

  let problem: unknown
  try {
    // a typo the original would have ignored
    createMultiplexer(models, { clientConfig, tracing: { enabled: true, captureBody: true } as { enabled: boolean } })
  } catch (e) {
    problem = e
  }
  check("a misspelt tracing key is rejected with MuxConfigError", problem instanceof Error && problem.name === "MuxConfigError")
  check("the error names the key and the right spelling", /tracing\.captureBody\b[^]*captureBodies/.test(String((problem as Error).message)))
  console.log("tracing.captureBody rejected: did you mean captureBodies?")
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
