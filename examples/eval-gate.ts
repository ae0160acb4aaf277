/**
 * The evaluation gate, on the simulator: a small golden set, two candidates
 * and a judge, one scorer of your own next to the built-ins, an answer
 * cache. Nova Lite answers everything; the 1B model gets the arithmetic
 * wrong, so it fails the bar on the `math` tag and is left out of the next
 * config. The second run is answered from the cache: no call is made.
 *
 * It runs on virtual time (TestClock), so the scripted latencies take no
 * real time. For real Bedrock, provide `BedrockRuntime.layer({ region })`
 * instead of the simulator and drop the TestClock.
 *
 * Run: node examples/eval-gate.ts
 */
import { Console, Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { BedrockSimulator, Eval } from "../src/index.ts"

const LITE = "us.amazon.nova-2-lite-v1:0"
const SMALL = "us.meta.llama3-2-1b-instruct-v1:0"
const JUDGE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

// your own expectation: `"maxWords": n`
const maxWords = Eval.scorer({
  name: "maxWords",
  description: "the answer has at most this many words",
  expectation: Schema.Int,
  score: (max, { answer }) => {
    const words = answer.split(/\s+/).filter((w) => w !== "").length
    return Effect.succeed({ score: words <= max ? 1 : 0, pass: words <= max, detail: `${words} words` })
  }
})
const scorers = [...Eval.builtins, maxWords]

const golden = [
  { id: "sum-1", prompt: "What is 12 + 30?", expect: { number: 42 }, tags: ["math"] },
  { id: "sum-2", prompt: "What is 7 * 6?", expect: { number: 42 }, tags: ["math"] },
  { id: "sum-3", prompt: "What is 100 - 58?", expect: { number: 42 }, tags: ["math"] },
  { id: "order", prompt: "Extract the order as JSON: 2 lamps", expect: { json: { type: "object", required: ["item", "qty"] } }, tags: ["extract"] },
  { id: "tone", prompt: "Reply to a customer whose parcel is late.", expect: { judge: "apologetic and brief", maxWords: 30 }, tags: ["support"] }
].map((c) => JSON.stringify(c)).join("\n")

// what each model answers, matched on the prompt text: [prompt contains, Lite, 1B]
const answers = [
  ["12 + 30", "42", "41"],
  ["7 * 6", "42", "42"],
  ["100 - 58", "42", "48"],
  ["lamps", "{\"item\": \"lamp\", \"qty\": 2}", "{\"item\": \"lamp\", \"qty\": 2}"],
  ["parcel", "We are sorry your parcel is late; it ships today.", "Sorry about the delay, it ships today."]
] as const

const Simulated = BedrockSimulator.layer({
  models: {
    [LITE]: { firstToken: 150, tokensPerSecond: 100, answers: answers.map(([includes, answer]) => ({ includes, answer })) },
    [SMALL]: { firstToken: 80, tokensPerSecond: 200, answers: answers.map(([includes, , answer]) => ({ includes, answer })) },
    [JUDGE]: { answer: "Apologetic and brief.\nSCORE: 9" }
  }
})

const gate = Effect.gen(function*() {
  const cases = yield* Eval.decodeGolden(golden, scorers)
  return yield* Eval.run({
    golden: cases,
    scorers,
    candidates: [LITE, SMALL],
    judge: JUDGE,
    bar: 0.7,
    minTagCases: 3,
    // the incumbent's price comes from the config (models[].price); the others' from the price table
    prices: {
      [SMALL]: { input: 0.0001, output: 0.0001 },
      [JUDGE]: { input: 0.003, output: 0.015 }
    },
    current: { models: [{ modelId: LITE, weight: 100, price: { input: 0.0003, output: 0.0025 } }] }
  })
})

/** Runs `effect` on virtual time. */
const virtual = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    yield* TestClock.adjust("10 minutes")
    return yield* Fiber.join(fiber)
  })

export const program = Effect.gen(function*() {
  const report = yield* virtual(gate)
  yield* Console.log(Eval.toMarkdown(report))
  const rerun = yield* virtual(gate)
  return {
    passed: report.gate.passed,
    promoted: report.gate.promoted,
    leftOut: report.gate.leftOut,
    failedTags: report.models.find((m) => m.modelId === SMALL)!.failedTags,
    next: report.next.input,
    calls: [report.cost.calls, report.cost.judgeCalls],
    rerunCalls: [rerun.cost.calls, rerun.cost.judgeCalls],
    ttftMs: report.models.map((m) => m.summary.ttftMs?.p50)
  }
}).pipe(
  Effect.provide(Simulated),
  Effect.provide(Eval.AnswerCache.layerMemory()),
  Effect.provide(TestClock.layer())
)

if (import.meta.main) Effect.runPromise(program).then((r) => console.log(r))
