// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Statistics: `getStats()` (`successCount`, `rateLimitCount`,
 * `failFastCount`, `refusalCount`, `modelStats`, `latencyMetrics`), the
 * `stats` event, and `resetStats()`.
 *
 * The fake Bedrock throttles the primary's first call, answers with
 * "answered by <modelId>", and answers the third model with a
 * ValidationException. Five requests: the first is throttled on the
 * primary and answered by the fallback; all five succeed. A request to
 * the third model fails fast. `resetStats()` starts the counters again
 * and leaves health alone.
 */
import { createMultiplexer, type MultiplexerStats } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const PRIMARY = "amazon.nova-lite-v1:0"
const FALLBACK = "amazon.nova-pro-v1:0"
const REJECTS = "cohere.command-r-v1:0"
const clientConfig = { region: "us-east-1" }
const question = { messages: [{ role: "user" as const, content: [{ text: "Count to three" }] }] }
const counters = (s: MultiplexerStats) => [s.successCount, s.rateLimitCount, s.failFastCount, s.refusalCount]

async function main(): Promise<void> {
  const multiplexer = createMultiplexer(
    [
      { modelId: PRIMARY, weight: 100, isFallback: false },
      { modelId: FALLBACK, weight: 100, isFallback: true }
    ],
    { maxRetries: 3, clientConfig }
  )
  const start = multiplexer.getStats()
  same("the counters at start", counters(start), [0, 0, 0, 0])
  same("one entry per model", Object.keys(start.modelStats).sort(), [PRIMARY, FALLBACK].sort())
  same("fallback flags", [start.modelStats[PRIMARY]?.isFallback, start.modelStats[FALLBACK]?.isFallback], [false, true])
  let lastEvent: MultiplexerStats | undefined
  multiplexer.on("stats", (stats) => (lastEvent = stats))

  await multiplexer.processRequest(question)
  const first = multiplexer.getStats()
  same("after the throttled request", counters(first), [1, 1, 0, 0])
  same("the primary's throttle", first.modelStats[PRIMARY]?.rateLimitCount, 1)
  same("the fallback's success", first.modelStats[FALLBACK]?.successCount, 1)

  for (let i = 0; i < 4; i++) await multiplexer.processRequest(question)
  const stats = multiplexer.getStats()
  same("after five requests", counters(stats), [5, 1, 0, 0])
  const perModel = Object.values(stats.modelStats)
  same("per-model successes add up", perModel.reduce((n, m) => n + m.successCount, 0), 5)
  check("per-model average latencies are not negative", perModel.every((m) => m.averageLatency >= 0))
  const l = stats.latencyMetrics
  check(`latency figures are ordered (${JSON.stringify(l)})`, 0 <= l.min && l.min <= l.p50 && l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max)
  same("the last stats event", lastEvent === undefined ? undefined : counters(lastEvent), counters(stats))
  console.log(`  Successes:    ${stats.successCount}`)
  console.log(`  Rate limits:  ${stats.rateLimitCount}`)
  console.log(`  Latency p50/p95/p99: ${l.p50}/${l.p95}/${l.p99}ms`)

  const strict = createMultiplexer([{ modelId: REJECTS, weight: 100, isFallback: false }], { maxRetries: 3, clientConfig })
  await strict.processRequest(question).then(() => check("the invalid request rejects", false), () => undefined)
  same("a fail-fast error is counted", [strict.getStats().failFastCount, strict.getStats().modelStats[REJECTS]?.failFastCount], [1, 1])
  await strict.destroy()

  let resets = 0
  multiplexer.on("stats-reset", () => resets++)
  multiplexer.resetStats()
  const reset = multiplexer.getStats()
  same("after resetStats()", [resets, ...counters(reset)], [1, 0, 0, 0, 0])
  same("models keep their entries, at zero", Object.values(reset.modelStats).map((m) => m.successCount + m.rateLimitCount), [0, 0])
  same("health is not reset", multiplexer.getHealthStatus().metrics.totalRequests, 5)
  console.log(`Stats reset. Successes: ${reset.successCount}, rate limits: ${reset.rateLimitCount}`)
  await multiplexer.destroy()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
