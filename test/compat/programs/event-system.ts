// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * The event system: the multiplexer is an EventEmitter with `on`, `once`
 * and `off`. One request whose primary is throttled (the fake Bedrock
 * throttles the primary's first call and answers every model with
 * "answered by <modelId>") emits, in this order and before
 * `processRequest` resolves:
 *
 *   request → model-selected → model-invocation-start →
 *   model-invocation-complete → error (the 429) → stats →
 *   model-selected (the fallback) → model-invocation-start →
 *   model-invocation-complete → success → stats
 *
 * Then: a `once` listener is not called again, an `off` listener no more;
 * `addModel`, `removeModel` and `resetStats` emit `model-added`,
 * `model-removed` and `stats-reset` (and removing an id that is not in
 * the pool emits nothing).
 */
import { createMultiplexer, OutcomeType } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const PRIMARY = "amazon.nova-lite-v1:0"
const FALLBACK = "amazon.nova-pro-v1:0"
const EXTRA = "amazon.titan-text-express-v1"
const question = { messages: [{ role: "user" as const, content: [{ text: "Tell me about events" }] }] }

async function main(): Promise<void> {
  const multiplexer = createMultiplexer(
    [
      { modelId: PRIMARY, weight: 100, isFallback: false },
      { modelId: FALLBACK, weight: 100, isFallback: true }
    ],
    { maxRetries: 3, clientConfig: { region: "us-east-1" } }
  )
  const log: Array<string> = []
  const requestIds = new Set<string>()
  let received: unknown
  multiplexer.on("request", (input) => {
    received = input
    log.push("request")
  })
  multiplexer.on("model-selected", (modelId, isFallback, retryCount) => log.push(`model-selected ${modelId} ${isFallback} ${retryCount}`))
  multiplexer.on("model-invocation-start", (modelId, requestId) => {
    requestIds.add(requestId)
    log.push(`model-invocation-start ${modelId}`)
  })
  multiplexer.on("model-invocation-complete", (modelId, requestId, latency) => {
    requestIds.add(requestId)
    log.push(`model-invocation-complete ${modelId} ${typeof latency}`)
  })
  multiplexer.on("error", (error, outcome) => log.push(`error ${error?.code} ${outcome?.modelId} ${outcome?.type}`))
  const onStats = (stats: { successCount: number; rateLimitCount: number }) => log.push(`stats ${stats.successCount} ${stats.rateLimitCount}`)
  multiplexer.on("stats", onStats)
  let successes = 0
  multiplexer.on("success", (response, outcome) => {
    successes++
    log.push(`success ${outcome.modelId} ${outcome.type} ${response.output.message.content[0].text}`)
  })
  let onceCalls = 0
  multiplexer.once("success", () => onceCalls++)

  const response = await multiplexer.processRequest(question)
  same("the request's events, in order", log, [
    "request",
    `model-selected ${PRIMARY} false 0`,
    `model-invocation-start ${PRIMARY}`,
    `model-invocation-complete ${PRIMARY} number`,
    `error 429 ${PRIMARY} ${OutcomeType.RATE_LIMIT}`,
    "stats 0 1",
    `model-selected ${FALLBACK} true 1`,
    `model-invocation-start ${FALLBACK}`,
    `model-invocation-complete ${FALLBACK} number`,
    `success ${FALLBACK} ${OutcomeType.SUCCESS} answered by ${FALLBACK}`,
    "stats 1 1"
  ])
  check("request's argument is the input", received === question)
  same("one request id for both attempts, the response's", [...requestIds], [response.routing.requestId])
  for (const line of log) console.log(`  [${line}]`)

  multiplexer.off("stats", onStats)
  log.length = 0
  await multiplexer.processRequest(question)
  same("on('success') again, once('success') not", [successes, onceCalls], [2, 1])
  check("off('stats') removed the listener", log.every((line) => !line.startsWith("stats")))

  log.length = 0
  multiplexer.on("model-added", (modelId) => log.push(`model-added ${modelId}`))
  multiplexer.on("model-removed", (modelId) => log.push(`model-removed ${modelId}`))
  multiplexer.on("stats-reset", () => log.push("stats-reset"))
  multiplexer.addModel({ modelId: EXTRA, weight: 10, isFallback: true })
  multiplexer.removeModel(EXTRA)
  multiplexer.removeModel("not-in-the-pool")
  multiplexer.resetStats()
  same("the pool's and the stats' events", log, [`model-added ${EXTRA}`, `model-removed ${EXTRA}`, "stats-reset"])
  for (const line of log) console.log(`  [${line}]`)
  await multiplexer.destroy()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
