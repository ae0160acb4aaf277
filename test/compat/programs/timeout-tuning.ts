// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Timeout tuning with `defaultTimeoutMs`:
 * 1. the original's range is accepted (120 000 ms, past our 60 s default
 *    deadline); a negative timeout is a config error naming the option;
 * 2. measure: five requests, then a timeout derived from
 *    `getStats().latencyMetrics` (whose figures are ordered), and a new
 *    multiplexer with it that answers;
 * 3. a model that never answers is given up on after its timeout (an
 *    `error` event with the timeout's response and a FAIL_FAST outcome) and
 *    the request fails over; the fallback answers;
 * 4. a pool where no model answers rejects with `TimeoutError`
 *    ("Request timed out after 200ms"), after an `error` event per
 *    timed-out attempt.
 *
 * The fake Bedrock hangs on the two "stuck" models and answers the others
 * with "answered by <modelId>".
 */
import { createMultiplexer, type ErrorResponse, type ModelConfiguration, type ModelOutcome, OutcomeType, TimeoutError } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const QUICK = "amazon.nova-micro-v1:0"
const STUCK = "amazon.nova-premier-v1:0"
const ALSO_STUCK = "amazon.titan-text-lite-v1"
const clientConfig = { region: "us-east-1" }
const question = { messages: [{ role: "user" as const, content: [{ text: "How long is a piece of string?" }] }] }
const quick: ModelConfiguration[] = [{ modelId: QUICK, weight: 100, isFallback: false }]
/** An `error` event as a line: the attempt's message, model and outcome type, or the request's final `null` outcome. */
const errorLine = (error: ErrorResponse | null, outcome: ModelOutcome | null) =>
  outcome === null ? "request failed" : `${error?.message} ${outcome.modelId} ${outcome.type}`

async function range(): Promise<void> {
  const long = createMultiplexer(quick, { defaultTimeoutMs: 120_000, maxRetries: 3, clientConfig })
  await long.destroy()
  let problem: unknown
  try {
    createMultiplexer(quick, { defaultTimeoutMs: -1, clientConfig })
  } catch (e) {
    problem = e
  }
  check("a negative timeout is rejected with MuxConfigError", problem instanceof Error && problem.name === "MuxConfigError")
  check("the error names the option", String((problem as Error).message).includes("defaultTimeoutMs"))
  console.log("defaultTimeoutMs 120000 accepted; -1 rejected")
}

async function tuneFromLatency(): Promise<void> {
  const measuring = createMultiplexer(quick, { maxRetries: 3, clientConfig })
  for (let i = 0; i < 5; i++) await measuring.processRequest(question)
  const { average, min, p50, p95, p99, max } = measuring.getStats().latencyMetrics
  check(`min <= p50 <= p95 <= p99 <= max (${[min, p50, p95, p99, max].join(", ")})`, 0 <= min && min <= p50 && p50 <= p95 && p95 <= p99 && p99 <= max)
  check(`the average lies within [min, max] (${average})`, min <= average && average <= max)
  await measuring.destroy()

  // three times the slowest percentile, within the original's range of 1 to 300 seconds
  const suggested = Math.min(300_000, Math.max(1_000, Math.ceil(p99 * 3)))
  const tuned = createMultiplexer(quick, { defaultTimeoutMs: suggested, maxRetries: 3, clientConfig })
  const response = await tuned.processRequest(question)
  same("the tuned multiplexer's answer", response.output?.message?.content?.[0]?.text, `answered by ${QUICK}`)
  console.log(`p99 ${p99}ms; recreated with defaultTimeoutMs ${suggested}ms`)
  await tuned.destroy()
}

async function stuckModelFailsOver(): Promise<void> {
  const multiplexer = createMultiplexer(
    [
      // ours: a timeout for this model alone, so the fallback keeps the default and how fast it answers does not matter
      { modelId: STUCK, weight: 100, isFallback: false, timeout: 250 },
      { modelId: QUICK, weight: 100, isFallback: true }
    ],
    { maxRetries: 3, clientConfig }
  )
  const completed: Array<string> = []
  const errors: Array<string> = []
  multiplexer.on("model-invocation-complete", (modelId) => completed.push(modelId))
  multiplexer.on("error", (error, outcome) => errors.push(errorLine(error, outcome)))
  const response = await multiplexer.processRequest(question)
  same("the answer", response.output?.message?.content?.[0]?.text, `answered by ${QUICK}`)
  same("both invocations completed, the stuck one first", completed, [STUCK, QUICK])
  same("the timed-out attempt's error event", errors, [`Request timed out after 250ms ${STUCK} ${OutcomeType.FAIL_FAST}`])
  same("the stuck attempt's reason", response.routing.attempts[0]?.reason, "DeadlineExceeded")
  same("counted as a failure of the stuck model", multiplexer.getStats().modelStats[STUCK]?.failFastCount, 1)
  console.log(`${STUCK} timed out after 250ms; ${QUICK} answered`)
  await multiplexer.destroy()
}

async function nothingAnswers(): Promise<void> {
  const multiplexer = createMultiplexer(
    [
      { modelId: STUCK, weight: 100, isFallback: false },
      { modelId: ALSO_STUCK, weight: 100, isFallback: true }
    ],
    { defaultTimeoutMs: 200, maxRetries: 1, clientConfig }
  )
  const errors: Array<string> = []
  multiplexer.on("error", (error, outcome) => errors.push(errorLine(error, outcome)))
  const error = await multiplexer.processRequest(question).then(() => undefined, (e: unknown) => e)
  same("an error event per timed-out attempt, then the request's", errors, [
    `Request timed out after 200ms ${STUCK} ${OutcomeType.FAIL_FAST}`,
    `Request timed out after 200ms ${ALSO_STUCK} ${OutcomeType.FAIL_FAST}`,
    "request failed"
  ])
  check("the request rejects with TimeoutError", error instanceof TimeoutError)
  const timeout = error as TimeoutError
  same("name, message and code", [timeout.name, timeout.message, timeout.code], ["TimeoutError", "Request timed out after 200ms", "TIMEOUT"])
  same("the error type", timeout.errorResponse.errorType, "TIMEOUT")
  same("the last model tried", timeout.outcome.modelId, ALSO_STUCK)
  console.log(`No model answered: ${timeout.message}`)
  await multiplexer.destroy()
}

async function main(): Promise<void> {
  await range()
  await tuneFromLatency()
  await stuckModelFailsOver()
  await nothingAnswers()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
