// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Weighted selection: two primaries weighted 90 and 10 and a fallback.
 * While the primaries answer, traffic follows their weights and the
 * fallback gets none. Counted from the `model-selected` event, checked
 * against each response's routing and against `getStats().modelStats`.
 *
 * The bounds hold for any honest weighted draw: with 200 requests at
 * 90:10, the light model is never picked with probability 0.9^200 < 1e-9,
 * and the heavy one below 150 times (mean 180, sd 4.2) with less than
 * 1e-9. A draw that ignored the weights (about 100 each) fails them.
 *
 * The fake Bedrock answers every model with "answered by <modelId>".
 */
import { createMultiplexer, type ModelConfiguration } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const HEAVY = "amazon.nova-2-lite-v1:0"
const LIGHT = "amazon.titan-text-express-v1"
const FALLBACK = "amazon.nova-pro-v1:0"
const REQUESTS = 200
const AT_ONCE = 20

const models: ModelConfiguration[] = [
  { modelId: HEAVY, weight: 90, isFallback: false },
  { modelId: LIGHT, weight: 10, isFallback: false },
  { modelId: FALLBACK, weight: 100, isFallback: true }
]

async function main(): Promise<void> {
  const multiplexer = createMultiplexer(models, { maxRetries: 3, clientConfig: { region: "us-east-1" } })
  const selected = new Map<string, number>()
  let fallbackSelections = 0
  multiplexer.on("model-selected", (modelId, isFallback) => {
    selected.set(modelId, (selected.get(modelId) ?? 0) + 1)
    if (isFallback) fallbackSelections++
  })

  const answeredBy = new Map<string, number>()
  for (let sent = 0; sent < REQUESTS; sent += AT_ONCE) {
    const batch = Array.from({ length: AT_ONCE }, (_, i) =>
      multiplexer.processRequest({ messages: [{ role: "user", content: [{ text: `question ${sent + i}` }] }] }))
    for (const response of await Promise.all(batch)) {
      const id = response.routing.modelId
      same("the answer is the selected model's", response.output?.message?.content?.[0]?.text, `answered by ${id}`)
      answeredBy.set(id, (answeredBy.get(id) ?? 0) + 1)
    }
  }

  const heavy = selected.get(HEAVY) ?? 0
  const light = selected.get(LIGHT) ?? 0
  same("selections in total (one attempt per request)", heavy + light, REQUESTS)
  same("selections of the fallback", [selected.get(FALLBACK) ?? 0, fallbackSelections], [0, 0])
  check(`the 90-weight primary carries most of the traffic (${heavy} of ${REQUESTS})`, heavy >= 150)
  check(`the 10-weight primary gets some (${light} of ${REQUESTS})`, light >= 1)
  same("answers per model", [answeredBy.get(HEAVY), answeredBy.get(LIGHT)], [heavy, light])
  const stats = multiplexer.getStats()
  same("getStats() per model", [HEAVY, LIGHT, FALLBACK].map((id) => stats.modelStats[id]?.successCount), [heavy, light, 0])
  same("getStats() in total", stats.successCount, REQUESTS)

  console.log("Selections:")
  for (const id of [HEAVY, LIGHT, FALLBACK]) console.log(`  ${id}: ${selected.get(id) ?? 0}`)
  await multiplexer.destroy()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
