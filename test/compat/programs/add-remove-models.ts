// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * `addModel` and `removeModel` at run time. The fake Bedrock answers every
 * model with "answered by <modelId>".
 *
 * 1. A pool of one; `addModel` adds a fallback (`model-added`, and the
 *    model shows in stats, breaker status and health).
 * 2. The primary is removed while a request is in flight on it: that
 *    request still gets the primary's answer (`model-removed`); the next
 *    one goes to the fallback, and the primary's health is now null.
 * 3. Adding a model already in the pool, or a bad entry, throws
 *    MuxConfigError; removing an id that is not in the pool does nothing.
 * 4. The primary added back is in the pool again, its counters from zero, and a primary again: it answers.
 */
import { createMultiplexer } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const FIRST = "amazon.nova-lite-v1:0"
const SECOND = "amazon.nova-pro-v1:0"
const question = { messages: [{ role: "user" as const, content: [{ text: "Which model are you?" }] }] }

/** The error `f` throws, or undefined. */
function thrown(f: () => void): unknown {
  try {
    f()
  } catch (e) {
    return e
  }
  return undefined
}
const isConfigError = (e: unknown) => e instanceof Error && e.name === "MuxConfigError"

async function main(): Promise<void> {
  const multiplexer = createMultiplexer([{ modelId: FIRST, weight: 100, isFallback: false }], { maxRetries: 3, clientConfig: { region: "us-east-1" } })
  const changes: Array<string> = []
  multiplexer.on("model-added", (modelId) => changes.push(`added ${modelId}`))
  multiplexer.on("model-removed", (modelId) => changes.push(`removed ${modelId}`))

  multiplexer.addModel({ modelId: SECOND, weight: 50, isFallback: true })
  same("model-added", changes, [`added ${SECOND}`])
  same("the stats' models", Object.keys(multiplexer.getStats().modelStats).sort(), [FIRST, SECOND])
  same("the new model's breaker", multiplexer.getCircuitBreakerStatus()[SECOND], { state: "CLOSED", failureCount: 0 })
  same("the new model's health", multiplexer.getModelHealthStatus(SECOND)?.isHealthy, true)

  // removed the moment its invocation starts: the request in flight keeps the pool it started with
  const removeFirstOnce = (modelId: string) => {
    if (modelId === FIRST) {
      multiplexer.off("model-invocation-start", removeFirstOnce)
      multiplexer.removeModel(FIRST)
    }
  }
  multiplexer.on("model-invocation-start", removeFirstOnce)
  const inFlight = await multiplexer.processRequest(question)
  same("the request in flight is answered by the removed model", inFlight.output?.message?.content?.[0]?.text, `answered by ${FIRST}`)
  same("model-removed", changes, [`added ${SECOND}`, `removed ${FIRST}`])
  same("the removed model's health", multiplexer.getModelHealthStatus(FIRST), null)

  const selected: Array<[string, boolean]> = []
  multiplexer.on("model-selected", (modelId, isFallback) => selected.push([modelId, isFallback]))
  const next = await multiplexer.processRequest(question)
  same("the next request", [next.output?.message?.content?.[0]?.text, selected], [`answered by ${SECOND}`, [[SECOND, true]]])

  check("adding a model already in the pool throws MuxConfigError", isConfigError(thrown(() => multiplexer.addModel({ modelId: SECOND, weight: 1, isFallback: false }))))
  check("a negative weight throws MuxConfigError", isConfigError(thrown(() => multiplexer.addModel({ modelId: "amazon.titan-text-lite-v1", weight: -5, isFallback: false }))))
  same("removing an unknown id throws nothing", thrown(() => multiplexer.removeModel("not-in-the-pool")), undefined)
  same("and emits nothing", changes.length, 2)

  multiplexer.addModel({ modelId: FIRST, weight: 100, isFallback: false })
  same("the pool's changes", changes, [`added ${SECOND}`, `removed ${FIRST}`, `added ${FIRST}`])
  same("the model added back starts its counters afresh", multiplexer.getStats().modelStats[FIRST]?.successCount, 0)
  same("with a closed breaker", multiplexer.getCircuitBreakerStatus()[FIRST], { state: "CLOSED", failureCount: 0 })
  // a primary again, not a fallback: every request goes to it while it answers
  const after: Array<string | undefined> = []
  for (let i = 0; i < 10; i++) after.push((await multiplexer.processRequest(question)).routing.modelId)
  same("the primary added back answers every request", after, Array.from({ length: 10 }, () => FIRST))
  for (const change of changes) console.log(`  ${change}`)
  await multiplexer.destroy()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
