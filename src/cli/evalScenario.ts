/**
 * The demo's evaluation scenario (`npm run demo -- eval`): the gate on the
 * simulator, on virtual time. Three candidates answer a 24-case golden set
 * (JSON extraction, arithmetic, sentiment, summaries graded by a judge):
 * - Nova 2 Lite, the incumbent: clearly good, fast and cheap;
 * - Claude Sonnet: as good, but slower and pricier;
 * - Llama 3.2 3B: good overall, but wrong on a third of the arithmetic, so it
 *   fails the bar on the `math` tag (and the judge gives one unparseable
 *   answer for it, which is recorded, not a crash).
 * The scenario passes when the gate passes, Llama is left out, the other
 * two are promoted with cost weights, and the config it would write
 * validates. Under its table it prints the report's model and tag tables
 * (the Markdown of `Eval.toMarkdown`), the worst cases, the diff and the
 * next config as `--out` would write it.
 */
import { Effect } from "effect"
import * as Eval from "../Eval.ts"
import { modelsSection, tagsSection, whyOf, worstOf } from "../internal/eval/report.ts"
import * as MuxConfig from "../MuxConfig.ts"
import type { ScriptInput } from "../SimulatorScript.ts"
import { progress, type Scenario, sim, type Table, virtual } from "./scenarioKit.ts"

const LITE = "us.amazon.nova-2-lite-v1:0"
const SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
const LLAMA = "us.meta.llama3-2-3b-instruct-v1:0"
const JUDGE = "us.anthropic.claude-opus-4-1-20250805-v1:0"

interface DemoCase {
  readonly id: string
  readonly tag: string
  readonly prompt: string
  readonly expect: Record<string, unknown>
  /** the right answer (what Lite and Sonnet say) */
  readonly answer: string
  /** Llama's answer, when it differs */
  readonly llama?: string
}

const orderSchema = {
  type: "object",
  required: ["item", "qty"],
  properties: { item: { type: "string", minLength: 1 }, qty: { type: "integer", minimum: 1 } },
  additionalProperties: false
}

const orders = [["3 red bikes", "red bike", 3], ["a dozen eggs", "egg", 12], ["two lamps", "lamp", 2], ["1 desk", "desk", 1], [
  "five pens",
  "pen",
  5
], ["4 chairs", "chair", 4]] as const
const sums = [[17, 23], [48, 12], [305, 7], [19, 19], [64, 11], [125, 8]] as const
const moods = [["I love this phone", "positive"], ["The delivery was late again", "negative"], ["It arrived on Tuesday", "neutral"], [
  "Best purchase this year",
  "positive"
], ["The screen cracked in a week", "negative"], ["The box is blue", "neutral"]] as const
const topics = ["circuit breakers", "retries with backoff", "request deadlines", "failover", "rate limits", "hedged requests"] as const

const cases: ReadonlyArray<DemoCase> = [
  ...orders.map(([text, item, qty], i): DemoCase => ({
    id: `extract-${i + 1}`,
    tag: "extract",
    prompt: `Extract the order as JSON with "item" and "qty": ${text}`,
    expect: { json: orderSchema },
    answer: JSON.stringify({ item, qty })
  })),
  ...sums.map(([a, b], i): DemoCase => ({
    id: `math-${i + 1}`,
    tag: "math",
    prompt: `What is ${a} * ${b}? Answer with the number.`,
    expect: { number: a * b },
    answer: `${a * b}`,
    // wrong on a third of the products
    ...(i % 3 === 0 ? { llama: `${a * b + 10}` } : {})
  })),
  ...moods.map(([text, mood], i): DemoCase => ({
    id: `classify-${i + 1}`,
    tag: "classify",
    prompt: `Classify the sentiment as positive, negative or neutral: "${text}"`,
    expect: { exact: { value: mood, ignoreCase: true } },
    answer: mood,
    ...(i === 0 ? { llama: "Positive" } : {})
  })),
  ...topics.map((topic, i): DemoCase => ({
    id: `summarize-${i + 1}`,
    tag: "summarize",
    prompt: `Summarize in one sentence why a Bedrock client needs ${topic}.`,
    expect: { contains: { all: [topic.split(" ")[0]!], ignoreCase: true }, judge: "one accurate sentence that states the purpose" },
    answer: `${topic[0]!.toUpperCase()}${topic.slice(1)} keep calls to Bedrock alive and bounded when a model misbehaves.`,
    ...(i === 5 ? { llama: `${topic[0]!.toUpperCase()}${topic.slice(1)} are useful, as many things are.` } : {})
  }))
]

/** The golden set as the JSON Lines a user would write. */
export const goldenText = cases.map((c) => JSON.stringify({ id: c.id, prompt: c.prompt, expect: c.expect, tags: [c.tag] })).join("\n")

const answersOf = (pick: (c: DemoCase) => string) => cases.map((c) => ({ prompt: c.prompt, answer: pick(c) }))

/** The simulated models: answers per prompt, latencies, and the judge. */
export const script: ScriptInput = {
  seed: "eval-demo",
  models: {
    [LITE]: { firstToken: 180, tokensPerSecond: 120, answers: answersOf((c) => c.answer) },
    [SONNET]: { firstToken: 650, tokensPerSecond: 45, answers: answersOf((c) => c.answer) },
    [LLAMA]: { firstToken: 120, tokensPerSecond: 150, answers: answersOf((c) => c.llama ?? c.answer) },
    [JUDGE]: {
      firstToken: 400,
      tokensPerSecond: 60,
      answer: "Accurate, one sentence, states the purpose.\nSCORE: 9",
      answers: [{ includes: "are useful, as many things are", answer: "I would rather not grade this one." }]
    }
  }
}

/** USD per 1 000 tokens (illustrative list prices) of the models the config does not price. */
export const prices: Eval.Prices = {
  [SONNET]: { input: 0.003, output: 0.015 },
  [LLAMA]: { input: 0.00015, output: 0.00015 },
  [JUDGE]: { input: 0.015, output: 0.075 }
}

/** The config in production before the gate: Lite alone, with its price. */
export const current: MuxConfig.Input = {
  models: [{ modelId: LITE, weight: 100, rpm: 200, price: { input: 0.0003, output: 0.0025 } }],
  deadline: "30 seconds"
}

const f2 = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(2))

/** What the demo prints under its table: the report's tables, the worst cases, the diff and the next config. */
const detailsOf = (report: Eval.Report): Array<string> => {
  const worst = report.models.flatMap((m) => worstOf(m.results, 2).map((r) => [m.modelId, r] as const))
  return [
    "From the report (`Eval.toMarkdown`; `bedrock-mux eval --report report.md` writes it whole, with the chart):",
    "",
    ...modelsSection(report),
    ...tagsSection(report),
    "### Worst cases",
    "",
    ...(worst.length === 0 ? ["none: every case passed"] : worst.flatMap(([modelId, r]) => [
      `- \`${modelId}\` ${r.caseId} (line ${r.line}): score ${f2(r.score)}; ${whyOf(r)}`,
      `  prompt: ${r.prompt}`,
      `  answer: ${r.answer ?? "(none)"}`
    ])),
    "",
    "The diff against the current config:",
    ...(report.next.diff.length === 0 ? ["  (no change)"] : report.next.diff.map((d) => `  ${d.op} ${d.text}`)),
    "",
    "The next config (what `bedrock-mux eval --out next.json` writes):",
    ...JSON.stringify(report.next.input, null, 2).split("\n")
  ]
}

/** The scenario. */
export const evalScenario: Scenario = virtual(
  Effect.gen(function*() {
    const golden = yield* Eval.decodeGolden(goldenText)
    const tick = yield* progress(cases.length * 3)
    const report = yield* Eval.run({
      golden,
      candidates: [LITE, { modelId: SONNET, rpm: 50 }, { modelId: LLAMA, rpm: 100 }],
      judge: { modelId: JUDGE, rpm: 50 },
      bar: 0.7,
      prices,
      current,
      weights: "cost",
      minModels: 2,
      concurrency: 6,
      onProgress: () => tick
    })
    const valid = yield* Effect.result(MuxConfig.decode(report.next.input))
    const nextModels = (report.next.input as {
      readonly models: ReadonlyArray<{ readonly modelId: string; readonly weight?: number; readonly price?: unknown }>
    }).models
    const weightOf = (id: string) => nextModels.find((m) => m.modelId === id)?.weight
    const byId = (id: string) => report.models.find((m) => m.modelId === id)!
    const lite = byId(LITE).summary
    const sonnet = byId(SONNET).summary
    return {
      title: "(eval) the gate: 3 candidates on a 24-case golden set, bar 0.7 on the 95 % lower bound, cost weights",
      expectation:
        "Lite and Sonnet promoted (Sonnet slower and pricier, so a smaller weight); Llama fails the bar on the math tag and is left out; the written config validates and carries both models' prices",
      columns: ["model", "status", "mean", "95% CI", "math", "TTFT p50 ms", "latency p50 ms", "$ / 1k cases", "judge failures", "next weight"],
      rows: report.models.map((m) => [
        m.modelId,
        m.promoted ? "promoted" : `left out (${m.failedTags.join(",") || "overall"})`,
        f2(m.summary.mean),
        m.summary.ci === undefined ? "-" : `[${f2(m.summary.ci[0])}, ${f2(m.summary.ci[1])}]`,
        f2(m.tags["math"]?.mean),
        Math.round(m.summary.ttftMs?.p50 ?? 0),
        Math.round(m.summary.latencyMs?.p50 ?? 0),
        (m.summary.costPer1kCases ?? 0).toFixed(3),
        m.summary.judgeFailures,
        weightOf(m.modelId) ?? "-"
      ]),
      summary: {
        gate: report.gate.passed ? "PASS" : "FAIL",
        promoted: report.gate.promoted.length,
        leftOut: report.gate.leftOut.join(",") || "none",
        configValid: valid._tag === "Success"
      },
      details: detailsOf(report),
      ok: report.gate.passed &&
        valid._tag === "Success" &&
        report.gate.leftOut.length === 1 && report.gate.leftOut[0] === LLAMA &&
        byId(LLAMA).failedTags.includes("math") &&
        nextModels.every((m) => m.modelId !== LLAMA && m.price !== undefined) &&
        (sonnet.latencyMs?.p50 ?? 0) > (lite.latencyMs?.p50 ?? 0) &&
        (sonnet.costPer1kCases ?? 0) > (lite.costPer1kCases ?? 0) &&
        (weightOf(SONNET) ?? 100) < (weightOf(LITE) ?? 0)
    } satisfies Table
  }).pipe(Effect.provide(sim(script)))
)
