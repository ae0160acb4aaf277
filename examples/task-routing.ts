/**
 * Task routing: a request's `label` picks the route of models that may serve it.
 * Routes come from `routes` (label → modelIds) and from each model's `labels`.
 * Tiers still apply inside a route, so a route can have its own fallback; a
 * request without a label uses the whole pool; an unknown label is an
 * InvalidRequest. `selection: "ordered"` makes the picks predictable here.
 *
 * Run: node examples/task-routing.ts
 */
import { Console, Effect, Layer } from "effect"
import { BedrockMux, BedrockSimulator } from "../src/index.ts"

const MuxLive = BedrockMux.layer({
  models: [
    { modelId: "amazon.nova-lite-v1:0", labels: ["summarize"] },
    { modelId: "anthropic.claude-sonnet-4-5-v1:0" },
    { modelId: "anthropic.claude-haiku-4-5-v1:0", isFallback: true }
  ],
  routes: { code: ["anthropic.claude-sonnet-4-5-v1:0", "anthropic.claude-haiku-4-5-v1:0"] },
  selection: "ordered"
}).pipe(Layer.provide(BedrockSimulator.layer({
  models: {
    "amazon.nova-lite-v1:0": {},
    // the code model's second call is a 503: that request fails over inside its route
    "anthropic.claude-sonnet-4-5-v1:0": { faults: [{ when: { calls: 2 }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
    "anthropic.claude-haiku-4-5-v1:0": {}
  }
})))

export const program = Effect.gen(function*() {
  const mux = yield* BedrockMux
  const ask = (label: string | undefined) =>
    mux.converse({ messages: [{ role: "user", content: [{ text: "..." }] }] }, label === undefined ? {} : { label }).pipe(
      Effect.map((res) => `${res.routing.modelId}${res.routing.fallbackUsed ? " (fallback)" : ""}`),
      Effect.catchTag("MuxError", (e) => Effect.succeed(`${e.reason._tag}: ${e.message}`))
    )
  const results: Record<string, string> = {}
  for (const [name, label] of [
    ["summarize", "summarize"],
    ["code", "code"],
    ["code again", "code"],
    ["no label", undefined],
    ["translate", "translate"]
  ] as const) {
    results[name] = yield* ask(label)
    yield* Console.log(`${name.padEnd(10)} → ${results[name]}`)
  }
  return results
}).pipe(Effect.provide(MuxLive))

if (import.meta.main) Effect.runPromise(program)
