/**
 * Selection replaced by your own, next to the built-ins.
 *
 * A selector gets only the eligible models of the first tier that has one
 * (each a `Candidate`: its `target`, effective `weight`, `tier`, `index`), so
 * whatever it picks keeps the tier order and never an excluded model; it
 * reads the mux's live per-model statistics from `candidate.target.stats`.
 *
 * - `lowestEwma` (written here, 10 lines): a model without samples first, then
 *   the lowest moving average of observed latency, or of time to first token
 *   for streams.
 * - `Selector.latency()` is the built-in of the same idea; with `explore: 0`
 *   it picks exactly like `lowestEwma` (its default sends 10 % of requests
 *   by weight so the averages of the others stay fresh).
 * - `Selector.cheapest()` (JSON: `"selection": "cheapest"`) picks the lowest
 *   estimated cost of the request from each model's `price` (USD per 1,000
 *   input / output tokens): the cheapest eligible model first, so when its
 *   client-side quota (`rpm: 2`) is used up, the next cheapest.
 *
 * On the simulator: "nova-lite" answers a Converse call in 300 ms but takes
 * 900 ms to its first streamed token; "haiku" answers in 800 ms with its first
 * token after 150 ms; "sonnet" takes 1.2 s for both. Converse requests end up
 * on nova-lite, streams on haiku. Runs on virtual time.
 *
 * Run: node examples/custom-selector.ts
 */
import { Console, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator, MuxStream, Policy, Selector } from "../src/index.ts"

/** Your own selector: unseen models first, then the lowest EWMA (latency, or time to first token for streams). */
export const lowestEwma = Selector.make("lowest-ewma", (candidates, request) => {
  const measure = (c: Selector.Candidate) =>
    request.operation === "converse_stream" ? c.target.stats.timeToFirstTokenEwmaMs : c.target.stats.latencyEwmaMs
  const unseen = candidates.find((c) => measure(c) === undefined)
  if (unseen !== undefined) return Effect.succeed(unseen)
  let best = candidates[0]
  for (const c of candidates) if (measure(c)! < measure(best)!) best = c
  return Effect.succeed(best)
})

const models = [{ modelId: "nova-lite" }, { modelId: "haiku" }, { modelId: "sonnet" }]

/** The same pool with prices (USD per 1,000 tokens) and a client-side quota on the cheapest. */
const priced = [
  { modelId: "nova-lite", price: { input: 0.00006, output: 0.00024 }, rpm: 2 },
  { modelId: "haiku", price: { input: 0.0008, output: 0.004 } },
  { modelId: "sonnet", price: { input: 0.003, output: 0.015 } }
]

const Simulated = BedrockSimulator.layer({
  models: {
    "nova-lite": { latency: 300, firstToken: 900, tokensPerSecond: 100, answer: "Lite here." },
    haiku: { latency: 800, firstToken: 150, tokensPerSecond: 100, answer: "Haiku here." },
    sonnet: { latency: 1200, firstToken: 1200, tokensPerSecond: 100, answer: "Sonnet here." }
  }
})

const ask = { messages: [{ role: "user" as const, content: [{ text: "Be quick." }] }], inferenceConfig: { maxTokens: 200 } }

/** Which model answered each of `n` Converse requests, then each of `n` streams (one at a time). */
const picks = (n: number) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const settle = <A, E>(self: Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(self)
        yield* TestClock.adjust("5 seconds")
        return yield* Fiber.join(fiber)
      })
    const converse: Array<string> = []
    const stream: Array<string> = []
    for (let i = 0; i < n; i++) converse.push((yield* settle(mux.converse(ask))).routing.modelId)
    for (let i = 0; i < n; i++) stream.push((yield* settle(MuxStream.collect(mux.converseStream(ask)))).routing?.modelId ?? "none")
    return { converse, stream }
  })

/** A mux on the same pool with `selector`, each on its own simulated Bedrock. */
const withSelector = (selector: Selector.Selector) =>
  picks(6).pipe(
    Effect.provide(BedrockMux.layer({ models }, { policy: Policy.withSelector(selector) }).pipe(Layer.provide(Simulated)))
  )

export const program = Effect.gen(function*() {
  const own = yield* withSelector(lowestEwma)
  const builtIn = yield* withSelector(Selector.latency({ explore: 0 }))
  // cost-aware selection straight from JSON: `price` per model, `selection: "cheapest"`
  const cheapest = yield* picks(3).pipe(
    Effect.provide(BedrockMux.layer({ models: priced, selection: "cheapest" }).pipe(Layer.provide(Simulated)))
  )
  yield* Console.log("lowest-ewma:              ", own)
  yield* Console.log("Selector.latency():       ", builtIn)
  yield* Console.log("cheapest (nova-lite rpm 2):", cheapest.converse)
  return { own, builtIn, cheapest: cheapest.converse }
}).pipe(Effect.provide(TestClock.layer()))

if (import.meta.main) Effect.runPromise(program)
