// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Circuit breaker status: the README's "5 failures within 60 s take a
 * model out of rotation", read through `getCircuitBreakerStatus()`.
 *
 * The fake Bedrock answers the primary with 503 on every call and the
 * fallback with "answered by <modelId>". Each request fails over to the
 * fallback; the primary's failure count climbs 1..5 and its breaker opens
 * at the fifth. The sixth request leaves the primary out
 * (`model-circuit-open-skipped`) and never reaches it. The pool stays
 * healthy: the fallback can serve.
 */
import { CircuitBreakerState, createMultiplexer } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const FLAKY = "amazon.nova-lite-v1:0"
const STEADY = "amazon.nova-pro-v1:0"
const question = { messages: [{ role: "user" as const, content: [{ text: "What is a circuit breaker?" }] }] }

async function main(): Promise<void> {
  const multiplexer = createMultiplexer(
    [
      { modelId: FLAKY, weight: 100, isFallback: false },
      { modelId: STEADY, weight: 100, isFallback: true }
    ],
    {
      maxRetries: 3,
      clientConfig: { region: "us-east-1" },
      // ours, not the original's: a window and probe interval longer than this program runs, so that what it sees
      // does not depend on how fast the machine is (by default a breaker lets a probe through every 5 s)
      breaker: { window: "5 minutes", probeInterval: "5 minutes" }
    }
  )
  const skipped: Array<string> = []
  multiplexer.on("model-circuit-open-skipped", (modelId) => skipped.push(modelId))

  const closed = { state: CircuitBreakerState.CLOSED, failureCount: 0 }
  same("a fresh pool", multiplexer.getCircuitBreakerStatus(), { [FLAKY]: closed, [STEADY]: closed })

  for (let failures = 1; failures <= 5; failures++) {
    const response = await multiplexer.processRequest(question)
    same(`request ${failures}'s answer`, response.output?.message?.content?.[0]?.text, `answered by ${STEADY}`)
    const expected = failures < 5 ? CircuitBreakerState.CLOSED : CircuitBreakerState.OPEN
    same(`the primary after ${failures} failures`, multiplexer.getCircuitBreakerStatus()[FLAKY], { state: expected, failureCount: failures })
    console.log(`  ${FLAKY}: ${expected} (failures: ${failures})`)
  }
  same("no model was skipped while the breaker was closed", skipped, [])
  same("the fallback's breaker", multiplexer.getCircuitBreakerStatus()[STEADY], closed)
  same("the primary's health", multiplexer.getModelHealthStatus(FLAKY)?.circuitState, CircuitBreakerState.OPEN)

  const selected: Array<[string, boolean, number]> = []
  multiplexer.on("model-selected", (modelId, isFallback, retryCount) => selected.push([modelId, isFallback, retryCount]))
  const sixth = await multiplexer.processRequest(question)
  same("the sixth answer", sixth.output?.message?.content?.[0]?.text, `answered by ${STEADY}`)
  same("the open breaker's model is left out", skipped, [FLAKY])
  same("the sixth request's only attempt", selected, [[STEADY, true, 0]])
  check("the pool is still healthy: the fallback can serve", multiplexer.isHealthy())
  console.log(`Breaker of ${FLAKY} open; requests go to ${STEADY}.`)
  await multiplexer.destroy()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
