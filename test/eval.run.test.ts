// Eval.run end to end on the in-memory simulator, under TestClock: what is
// measured (time to first token, latency, tokens, cost), what is counted
// (errors, refusals, judge failures), cost control (admission, concurrency,
// the cache, the cost limit), the gate and the next config, the report.
import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import * as Eval from "../src/Eval.ts"
import { JUDGE_SYSTEM, judgePrompt } from "../src/internal/eval/judge.ts"
import { inputTokenBound, JUDGE_TOKENS_PER_ANSWER_TOKEN } from "../src/internal/eval/prices.ts"
import { THROTTLED_SENDS } from "../src/internal/eval/runner.ts"
import * as MuxConfig from "../src/MuxConfig.ts"
import * as Policy from "../src/Policy.ts"
import type { ScriptInput } from "../src/SimulatorScript.ts"

const jsonl = (...cases: ReadonlyArray<Record<string, unknown>>) => cases.map((c) => JSON.stringify(c)).join("\n")

const geo = [
  { id: "fr", prompt: "Capital of France?", expect: { contains: "Paris" }, tags: ["geo"] },
  { id: "it", prompt: "Capital of Italy?", expect: { contains: "Rome" }, tags: ["geo"] },
  { id: "add", prompt: "What is 2+2?", expect: { number: 4 }, tags: ["math"] },
  { id: "mul", prompt: "What is 3*3?", expect: { number: 9 }, tags: ["math"] }
]

const right = [
  { includes: "France", answer: "Paris." },
  { includes: "Italy", answer: "Rome." },
  { includes: "2+2", answer: "It is 4." },
  { includes: "3*3", answer: "9" }
]

/** Forks `effect`, moves the TestClock far enough, joins. */
const onTestClock = <A, E, R>(effect: Effect.Effect<A, E, R>, horizon: Duration.Input = "1 hour") =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    yield* TestClock.adjust(horizon)
    return yield* Fiber.join(fiber)
  })

const evaluate = (options: Omit<Eval.Options, "golden"> & { readonly cases?: ReadonlyArray<Record<string, unknown>> }) =>
  Effect.gen(function*() {
    const golden = yield* Eval.decodeGolden(jsonl(...(options.cases ?? geo)))
    return yield* onTestClock(Eval.run({ ...options, golden }))
  })

describe("Eval.run on the simulator", () => {
  it.effect("time to first token and latency are the answering attempt's, on the Clock; tokens and cost from usage", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({
        cases: [{ id: "a", prompt: "Say three words.", expect: { contains: "three" } }],
        candidates: ["m"],
        bar: 0.5,
        prices: { m: { input: 1, output: 10 } }
      })
      const r = report.models[0]!.results[0]!
      // first token at 100 ms, then 2 more tokens at 10 tokens/s
      assert.deepStrictEqual([r.answer, r.ttftMs, r.latencyMs, r.inputTokens, r.outputTokens], ["one two three", 100, 300, 7, 3])
      assert.closeTo(r.costUsd!, (7 * 1 + 3 * 10) / 1000, 1e-12)
      assert.deepStrictEqual(report.models[0]!.summary.latencyMs, { p50: 300, p95: 300 })
      assert.closeTo(report.models[0]!.summary.costPer1kCases!, 37, 1e-9)
      assert.closeTo(report.cost.billedUsd, 0.037, 1e-12)
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: { m: { firstToken: 100, tokensPerSecond: 10, inputTokens: 7, answers: [{ includes: "three", answer: "one two three" }] } }
    }))))

  it.effect("per model and per tag: mean, interval, pass rate, errors; a failed call scores 0", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({ candidates: ["good", "flaky"], bar: 0.5, minTagCases: 2 })
      const [good, flaky] = report.models
      assert.deepStrictEqual([good!.summary.mean, good!.summary.ci, good!.summary.passRate, good!.summary.errors], [1, [1, 1], 1, 0])
      assert.deepStrictEqual(report.tags, ["geo", "math"])
      assert.deepStrictEqual(report.gatedTags, ["geo", "math"])
      // flaky: France right, Italy a 400 (fail fast), math wrong
      const byCase = Object.fromEntries(flaky!.results.map((r) => [r.caseId, [r.score, r.pass, r.error?.split(":")[0]]]))
      assert.deepStrictEqual(byCase, { fr: [1, true, undefined], it: [0, false, "Failed"], add: [0, false, undefined], mul: [0, false, undefined] })
      assert.strictEqual(flaky!.summary.errors, 1)
      assert.strictEqual(flaky!.tags["geo"]!.mean, 0.5)
      assert.deepStrictEqual(flaky!.failedTags, ["geo", "math"])
      assert.isFalse(flaky!.promoted)
      assert.deepStrictEqual(report.gate.promoted, ["good"])
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: {
        good: { answers: right },
        flaky: {
          answers: [{ includes: "France", answer: "Paris" }],
          answer: "no idea",
          faults: [{ when: { calls: 2 }, do: { kind: "error", error: "ValidationException" } }]
        }
      }
    }))))

  it.effect("the same inputs give the same report; another seed moves the intervals only", () =>
    Effect.gen(function*() {
      const cases = Array.from({ length: 20 }, (_, i) => ({ id: `c${i}`, prompt: `Question ${i}?`, expect: { contains: { all: ["a", "b", "c"] } } }))
      const once = (seed: string) =>
        evaluate({ cases, candidates: ["m"], bar: 0.3, seed }).pipe(
          Effect.map((r) => r.models[0]!.summary),
          Effect.provide(BedrockSimulator.layer({
            models: { m: { answers: cases.map((c, i) => ({ prompt: c.prompt, answer: ["a", "a b", "a b c", "none"][i % 4]! })) } }
          }))
        )
      const a = yield* once("s1")
      assert.deepStrictEqual(yield* once("s1"), a)
      const b = yield* once("s2")
      assert.strictEqual(b.mean, a.mean)
      assert.notDeepEqual(b.ci, a.ci)
    }))

  it.effect("refusals are counted with a classifier, and not without one", () =>
    Effect.gen(function*() {
      const refusal = (text: string) => Effect.succeed(/can't help/i.test(text))
      const withIt = yield* evaluate({ candidates: ["m"], bar: 0, refusal })
      const without = yield* evaluate({ candidates: ["m"], bar: 0 })
      assert.strictEqual(withIt.models[0]!.summary.refusals, 2)
      assert.deepStrictEqual(withIt.models[0]!.results.map((r) => r.refusal), [false, true, false, true])
      assert.isUndefined(without.models[0]!.summary.refusals)
      assert.isUndefined(without.models[0]!.results[0]!.refusal)
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: { m: { answers: [right[0]!, right[2]!], answer: "Sorry, I can't help with that." } }
    }))))

  it.effect("the judge: its score counts, an unparseable answer is a recorded judge failure left out of the score", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({
        cases: [
          { id: "warm", prompt: "Greet Ada.", expect: { judge: "a warm greeting" } },
          { id: "cold", prompt: "Greet Bob.", expect: { judge: { rubric: "a warm greeting", pass: 0.5 } } },
          { id: "both", prompt: "Greet Cy.", expect: { judge: "a warm greeting", contains: "Cy" } }
        ],
        candidates: ["m"],
        judge: "j",
        bar: 0,
        prices: { m: { input: 0, output: 0 }, j: { input: 1, output: 1 } }
      })
      const rs = report.models[0]!.results
      assert.deepStrictEqual(rs.map((r) => [r.caseId, r.score, r.pass]), [["warm", 0.9, true], ["cold", 0.4, false], ["both", 1, true]])
      const failed = rs[2]!.checks.find((k) => k.scorer === "judge")!
      assert.deepStrictEqual(failed, { scorer: "judge", status: "failed", failure: "no score in the judge's answer: \"Hmm, hard to say.\"" })
      assert.strictEqual(report.models[0]!.summary.judgeFailures, 1)
      assert.isAbove(rs[0]!.judgeCostUsd!, 0)
      assert.deepStrictEqual([report.cost.judgeCalls, report.judge], [3, "j"])
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: {
        m: { answers: [{ includes: "Ada", answer: "Hello Ada, lovely to see you!" }, { includes: "Bob", answer: "Bob." }, { includes: "Cy", answer: "Yo Cy" }] },
        j: {
          answers: [{ includes: "lovely", answer: "Warm.\nSCORE: 9" }, { includes: "ANSWER:\nBob.", answer: "Curt. **Score:** 2/5" }],
          answer: "Hmm, hard to say."
        }
      }
    }))))

  it.effect("admission: calls wait for the candidate's rpm, so no throttled call is sent; a throttle is asked again", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({ candidates: [{ modelId: "m", rpm: 2 }, "t"], bar: 0.5 })
      const log = yield* BedrockSimulator.attempts
      assert.deepStrictEqual(log.filter((a) => a.modelId === "m").map((a) => [a.start, a.outcome]), [
        [0, "success"],
        [0, "success"],
        [60_000, "success"],
        [60_000, "success"]
      ])
      // t throttles its first call (Bedrock's own quota): the case waits out the cooldown and is asked again
      assert.deepStrictEqual(log.filter((a) => a.modelId === "t").map((a) => a.outcome), ["ThrottlingException", "success", "success", "success", "success"])
      assert.deepStrictEqual(report.models.map((m) => m.summary.errors), [0, 0])
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: {
        m: { rpm: 2, answers: right },
        t: { answers: right, faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ThrottlingException" } }] }
      }
    }))))

  it.effect("a throttled case waits out the growing cooldowns and is sent again; latency and TTFT leave the waits out", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({ cases: [geo[0]!], candidates: ["t"], bar: 0.5 })
      // cooldowns of 500 ms, 1 s, 2 s after the three throttles, each followed by one send
      assert.deepStrictEqual((yield* BedrockSimulator.attempts).map((a) => [a.start, a.outcome]), [
        [0, "ThrottlingException"],
        [500, "ThrottlingException"],
        [1500, "ThrottlingException"],
        [3500, "success"]
      ])
      const r = report.models[0]!.results[0]!
      // first token at 100 ms, then 3 more tokens at 10 tokens/s
      assert.deepStrictEqual([r.answer, r.error, r.ttftMs, r.latencyMs], ["Paris is the capital.", undefined, 100, 400])
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: {
        t: {
          answer: "Paris is the capital.",
          firstToken: 100,
          tokensPerSecond: 10,
          faults: [{ when: { calls: { from: 1, to: 3 } }, do: { kind: "error", error: "ThrottlingException" } }]
        }
      }
    }))))

  it.effect(`a model that throttles everything: the case is an error after ${THROTTLED_SENDS} sends`, () =>
    Effect.gen(function*() {
      const report = yield* evaluate({ cases: [geo[0]!], candidates: ["t"], bar: 0 })
      const log = yield* BedrockSimulator.attempts
      assert.strictEqual(log.length, THROTTLED_SENDS)
      assert.isTrue(log.every((a) => a.outcome === "ThrottlingException"))
      // the cooldowns double from 500 ms up to the requests cap (10 s)
      assert.deepStrictEqual(log.slice(1).map((a, i) => a.start - log[i]!.start), [500, 1000, 2000, 4000, 8000, 10_000, 10_000])
      assert.strictEqual(report.models[0]!.summary.errors, 1)
      assert.match(
        report.models[0]!.results[0]!.error!,
        new RegExp(`^AttemptsExhausted: all ${THROTTLED_SENDS} attempts failed; last attempt: Throttled: ThrottlingException: Too many requests`)
      )
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: { t: { faults: [{ do: { kind: "error", error: "ThrottlingException", message: "Too many requests, please wait before trying again." } }] } }
    }))))

  it.effect("a daily token quota ends the case at once: its cooldown outlasts the deadline", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({ cases: [geo[0]!], candidates: ["t"], bar: 0 })
      assert.deepStrictEqual((yield* BedrockSimulator.attempts).map((a) => [a.start, a.outcome]), [[0, "ThrottlingException"]])
      assert.match(report.models[0]!.results[0]!.error!, /^NoModelsAvailable: .*Too many tokens per day/)
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: { t: { faults: [{ do: { kind: "error", error: "ThrottlingException", message: "Too many tokens per day, please wait before trying again." } }] } }
    }))))

  it.effect("an outage shows as errors: every case is sent (the eval mux has no breaker)", () =>
    Effect.gen(function*() {
      const cases = Array.from({ length: 12 }, (_, i) => ({ id: `c${i}`, prompt: `Q${i}`, expect: { contains: "x" } }))
      const report = yield* evaluate({ cases, candidates: ["down"], bar: 0, concurrency: 1 })
      assert.strictEqual(report.models[0]!.summary.errors, 12)
      assert.match(report.models[0]!.results[0]!.error!, /ServiceUnavailable/)
      // one attempt per case (ServiceUnavailable fails over, and there is nowhere to go): 12 calls at once,
      // none held back by an open breaker
      assert.deepStrictEqual(
        (yield* BedrockSimulator.attempts).map((a) => [a.start, a.outcome]),
        Array.from({ length: 12 }, () => [0, "ServiceUnavailableException"])
      )
      assert.deepStrictEqual([report.models[0]!.summary.mean, report.gate.passed], [0, true])
    }).pipe(Effect.provide(BedrockSimulator.layer({
      models: { down: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] } }
    }))))

  it.effect("concurrency: at most n cases in flight; progress after each case of each model", () =>
    Effect.gen(function*() {
      const cases = Array.from({ length: 9 }, (_, i) => ({ id: `c${i}`, prompt: `Q${i}`, expect: { contains: "x" } }))
      const seen: Array<Eval.Progress> = []
      yield* evaluate({ cases, candidates: ["a", "b"], bar: 0, concurrency: 3, onProgress: (p) => Effect.sync(() => void seen.push(p)) })
      // 0/18 first, then one report per (case, model), the last one 18/18
      assert.deepStrictEqual(seen.map((p) => p.done), Array.from({ length: 19 }, (_, i) => i))
      assert.deepStrictEqual(seen.at(-1), { done: 18, total: 18, cached: 0, errors: 0 })
      const log = yield* BedrockSimulator.attempts
      const peak = Math.max(...log.map((a) => log.filter((b) => b.start <= a.start && b.end! > a.start).length))
      assert.strictEqual(peak, 3)
      assert.strictEqual(log.length, 18)
    }).pipe(Effect.provide(BedrockSimulator.layer({ models: { a: { firstToken: 100 }, b: { firstToken: 100 } } }))))

  it.effect("the cache: a rerun makes no calls and gives the same results; only a new candidate is called", () =>
    Effect.gen(function*() {
      const first = yield* evaluate({ candidates: ["good"], bar: 0.5, judge: "j", cases: [...geo, { id: "j", prompt: "Greet Ada.", expect: { judge: "warm" } }] })
      const calls = (yield* BedrockSimulator.attempts).length
      assert.strictEqual(calls, 6)
      const sim = yield* BedrockSimulator
      yield* sim.clearAttempts
      const again = yield* evaluate({ candidates: ["good"], bar: 0.5, judge: "j", cases: [...geo, { id: "j", prompt: "Greet Ada.", expect: { judge: "warm" } }] })
      assert.deepStrictEqual(yield* BedrockSimulator.attempts, [])
      assert.deepStrictEqual(again.models[0]!.results.map((r) => [r.answer, r.score, r.cached, r.latencyMs]), first.models[0]!.results.map((r) => [r.answer, r.score, true, r.latencyMs]))
      assert.deepStrictEqual([again.cost.calls, again.cost.cachedCalls, again.cost.judgeCalls, again.cost.judgeCachedCalls], [0, 5, 0, 1])
      // one more candidate: only its calls are made
      yield* evaluate({ candidates: ["good", "other"], bar: 0.5, judge: "j", cases: [...geo, { id: "j", prompt: "Greet Ada.", expect: { judge: "warm" } }] })
      assert.deepStrictEqual([...new Set((yield* BedrockSimulator.attempts).map((a) => a.modelId))].sort(), ["j", "other"])
      // another maxTokens is another request: called again
      yield* sim.clearAttempts
      yield* evaluate({ candidates: ["good"], bar: 0.5, inferenceConfig: { maxTokens: 100 } })
      assert.strictEqual((yield* BedrockSimulator.attempts).length, 4)
    }).pipe(
      Effect.provide(Eval.AnswerCache.layerMemory()),
      Effect.provide(BedrockSimulator.layer({
        models: {
          good: { answers: right, firstToken: 50 },
          // another answer to the judged case: another question for the judge
          other: { answers: [...right, { includes: "Ada", answer: "Hi Ada" }] },
          j: { answer: "SCORE: 7" }
        }
      }))
    ))

  it.effect("a failed call is not cached: the rerun asks again", () =>
    Effect.gen(function*() {
      const first = yield* evaluate({ candidates: ["m"], bar: 0, cases: [geo[0]!] })
      assert.isDefined(first.models[0]!.results[0]!.error)
      const again = yield* evaluate({ candidates: ["m"], bar: 0, cases: [geo[0]!] })
      assert.strictEqual(again.models[0]!.results[0]!.answer, "Paris.")
      assert.strictEqual((yield* BedrockSimulator.attempts).length, 2)
    }).pipe(
      Effect.provide(Eval.AnswerCache.layerMemory()),
      Effect.provide(BedrockSimulator.layer({
        models: { m: { answers: right, faults: [{ when: { calls: 1 }, do: { kind: "error", error: "AccessDeniedException" } }] } }
      }))
    ))

  it.effect("the cost estimate is an upper bound; above maxCostUsd nothing is called", () =>
    Effect.gen(function*() {
      const golden = yield* Eval.decodeGolden(jsonl(...geo))
      const prices = { good: { input: 0.5, output: 2 } }
      const options = { golden, candidates: ["good"], bar: 0.5, prices, inferenceConfig: { maxTokens: 20 } }
      const estimate = yield* Eval.estimate(options)
      const report = yield* onTestClock(Eval.run(options))
      assert.strictEqual(estimate.calls, 4)
      assert.isAtLeast(estimate.usd!, report.cost.billedUsd)
      // output bound: 4 calls × 20 tokens × $2 / 1000
      assert.isAtLeast(estimate.usd!, 0.16)
      const sim = yield* BedrockSimulator
      yield* sim.clearAttempts
      const refused = yield* Effect.flip(Eval.run({ ...options, maxCostUsd: estimate.usd! / 2 }))
      assert.strictEqual(refused._tag, "CostLimitExceeded")
      assert.match(refused.message, /above --max-cost/)
      assert.deepStrictEqual(yield* BedrockSimulator.attempts, [])
      const unpriced = yield* Effect.flip(Eval.run({ ...options, candidates: ["good", "other"], maxCostUsd: 10 }))
      assert.strictEqual(unpriced._tag, "EvalInputError")
      assert.match(unpriced.message, /no price for other: the cost cannot be bounded/)
    }).pipe(Effect.provide(BedrockSimulator.layer({ models: { good: { answers: right } } }))))

  it.effect("the judge's share of the estimate: the question's bytes, the answer as 2 × maxTokens until it is cached, then its bytes", () =>
    Effect.gen(function*() {
      const cases = [
        { id: "warm", prompt: "Greet Ada.", expect: { judge: "a warm greeting" } },
        { id: "plain", system: "Be brief.", prompt: "Greet Bob.", expect: { contains: "Bob" } }
      ]
      const golden = yield* Eval.decodeGolden(jsonl(...cases))
      // the candidate is free: everything the estimate charges is the judge's
      const prices = { m: { input: 0, output: 0 }, j: { input: 1, output: 3 } }
      const options = { golden, candidates: ["m"], judge: "j", bar: 0, prices, inferenceConfig: { maxTokens: 40 }, judgeMaxTokens: 50 }
      const judgeUsd = (answer: string | undefined) => {
        const question = judgePrompt({ rubric: "a warm greeting", prompt: "Greet Ada.", system: undefined, answer: answer ?? "" })
        const input = inputTokenBound(JUDGE_SYSTEM, [question]) + (answer === undefined ? JUDGE_TOKENS_PER_ANSWER_TOKEN * 40 : 0)
        return (input * 1 + 50 * 3) / 1000
      }
      const before = yield* Eval.estimate(options)
      assert.strictEqual(before.calls, 3, "two cases, one judged")
      assert.closeTo(before.usd!, judgeUsd(undefined), 1e-12)
      // a run caches the answers: a new judge is asked about known answers, bounded by their bytes
      const report = yield* onTestClock(Eval.run(options))
      assert.isAtMost(report.cost.billedUsd, before.usd!)
      const rejudged = yield* Eval.estimate({ ...options, judge: "j2", prices: { ...prices, j2: prices.j } })
      assert.strictEqual(rejudged.calls, 1)
      assert.closeTo(rejudged.usd!, judgeUsd("Hello Ada, lovely to see you!"), 1e-12)
      assert.deepStrictEqual((yield* Eval.estimate(options)).calls, 0, "every answer and judgement cached")
    }).pipe(
      Effect.provide(Eval.AnswerCache.layerMemory()),
      Effect.provide(BedrockSimulator.layer({
        models: {
          m: { answers: [{ includes: "Ada", answer: "Hello Ada, lovely to see you!" }, { includes: "Bob", answer: "Bob." }] },
          j: { answer: "Warm.\nSCORE: 9" }
        }
      }))
    ))

  it.effect("bad options fail before any call, with every problem", () =>
    Effect.gen(function*() {
      const golden = yield* Eval.decodeGolden(jsonl(...geo, { id: "j", prompt: "x", expect: { judge: "ok" } }))
      const error = yield* Effect.flip(Eval.run({
        golden,
        candidates: ["a", "a", { modelId: "b", rpm: 0 }],
        bar: 1.5,
        concurrency: 0,
        weights: "cost",
        prices: { a: { input: -1, output: 1 }, b: { input: 1, output: 1, outptu: 1 } as never },
        current: { models: [{ modelId: "a", weight: -1 }] }
      }))
      assert.strictEqual(error._tag, "EvalInputError")
      const paths = (error as Eval.EvalInputError).problems.map((p) => p.path)
      for (const p of ["bar", "candidates[1]", "candidates[2].rpm", "concurrency", "judge", "prices.a.input", "prices.b.outptu", "prices", "current.models[0].weight"]) {
        assert.include(paths, p)
      }
      assert.deepStrictEqual(yield* BedrockSimulator.attempts, [])
    }).pipe(Effect.provide(BedrockSimulator.layer({ models: { a: {} } }))))
})

describe("the gate and the next config", () => {
  const script: ScriptInput = {
    models: {
      good: { answers: right, firstToken: 100 },
      slow: { answers: right, firstToken: 900 },
      weak: { answers: right.slice(0, 2), answer: "no idea" }
    }
  }
  const prices = { good: { input: 0.001, output: 0.002 }, slow: { input: 0.004, output: 0.008 }, weak: { input: 0.0001, output: 0.0001 } }
  const cases = Array.from({ length: 12 }, (_, i) => geo[i % 4]!).map((c, i) => ({ ...c, id: `${c.id}-${i}` }))

  it.effect("an incumbent that now fails: the gate fails, with the reason; the config leaves it out and validates", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({
        cases,
        candidates: ["good", "weak"],
        bar: 0.8,
        current: { models: [{ modelId: "weak", weight: 100 }, { modelId: "good", weight: 10, isFallback: true }], timeout: "10 seconds" }
      })
      assert.isFalse(report.gate.passed)
      assert.deepStrictEqual(report.gate.incumbentsFailing, ["weak"])
      assert.deepStrictEqual(report.gate.reasons, ["weak is in the current config and now fails the bar"])
      assert.deepStrictEqual(report.next.input, { models: [{ modelId: "good", weight: 100 }], timeout: "10 seconds" })
      assert.deepStrictEqual(report.next.notes, ["good: moved to tier 0, the config had no primary left"])
      assert.isDefined(report.next.config)
      assert.strictEqual(Policy.models(report.next.config!)[0]!.tier, 0)
      assert.deepStrictEqual(report.next.diff.map((d) => d.op), ["-", "~"])
      assert.match(report.next.diff[0]!.text, /^model weak \(overall: lower bound 0\.\d\d < bar 0\.8; tag math: lower bound 0\.00 < bar 0\.8\)$/)
    }).pipe(Effect.provide(BedrockSimulator.layer(script))))

  it.effect("new candidates: cost weights, the weak one left out on its failing tag, paired comparisons against the incumbent", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({
        cases,
        candidates: ["good", "slow", "weak"],
        bar: 0.8,
        prices,
        weights: "cost",
        minModels: 2,
        current: { models: [{ modelId: "good", weight: 100 }] }
      })
      assert.isTrue(report.gate.passed)
      assert.deepStrictEqual([report.gate.promoted, report.gate.leftOut], [["good", "slow"], ["weak"]])
      const weak = report.models.find((m) => m.modelId === "weak")!
      assert.isTrue(weak.summary.passesBar === false || weak.failedTags.length > 0)
      assert.deepStrictEqual(weak.failedTags, ["math"])
      const slow = report.models.find((m) => m.modelId === "slow")!.summary
      const good = report.models.find((m) => m.modelId === "good")!.summary
      assert.isAbove(slow.ttftMs!.p50, good.ttftMs!.p50)
      const models = (report.next.input as { models: ReadonlyArray<{ modelId: string; weight: number }> }).models
      const ratio = good.costPer1kCases! / slow.costPer1kCases!
      assert.deepStrictEqual(models.map((m) => [m.modelId, m.weight]), [["good", 100], ["slow", Math.round(100 * ratio)]])
      assert.deepStrictEqual(report.comparisons.map((c) => [c.candidate, c.incumbent, c.verdict]), [
        ["slow", "good", "no significant difference"],
        ["weak", "good", "worse"]
      ])
      assert.isTrue(MuxConfig.decode(report.next.input).pipe(Effect.isSuccess, Effect.runSync))
    }).pipe(Effect.provide(BedrockSimulator.layer(script))))

  it.effect("prices from the current config's models[].price, the run's prices over them; both written into the next config", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({
        cases,
        candidates: ["good", "slow"],
        bar: 0.8,
        weights: "cost",
        // good's price from the config, slow's from the run; the run's price for good wins over the config's
        current: { models: [{ modelId: "good", weight: 100, price: { input: 5, output: 5 } }], deadline: "1 minute" },
        prices: { good: prices.good!, slow: prices.slow! }
      })
      const configOnly = yield* evaluate({
        cases,
        candidates: ["good"],
        bar: 0.8,
        current: { models: [{ modelId: "good", weight: 100, price: { input: 5, output: 5 } }] }
      })
      const good = report.models.find((m) => m.modelId === "good")!.summary
      const slow = report.models.find((m) => m.modelId === "slow")!.summary
      const r = configOnly.models[0]!.results[0]!
      assert.closeTo(r.costUsd!, (r.inputTokens * 5 + r.outputTokens * 5) / 1000, 1e-12)
      assert.closeTo(good.costPer1kCases!, 1000 * report.models[0]!.results.reduce((n, x) => n + x.costUsd!, 0) / cases.length, 1e-9)
      assert.isBelow(good.costPer1kCases!, configOnly.models[0]!.summary.costPer1kCases!)
      assert.deepStrictEqual(report.next.input, {
        models: [
          { modelId: "good", weight: 100, price: prices.good },
          { modelId: "slow", weight: Math.round((100 * good.costPer1kCases!) / slow.costPer1kCases!), price: prices.slow }
        ],
        deadline: "1 minute"
      })
      assert.deepStrictEqual(Policy.models(report.next.config!).map((m) => m.price), [prices.good, prices.slow])
      assert.deepStrictEqual(configOnly.next.input, { models: [{ modelId: "good", weight: 100, price: { input: 5, output: 5 } }] })
      assert.deepStrictEqual(configOnly.cost.unpriced, [])
    }).pipe(Effect.provide(BedrockSimulator.layer(script))))

  it.effect("routes: a model failing a tag stays, out of that tag's route; fewer than minModels fails the gate", () =>
    Effect.gen(function*() {
      // weak: right on 30 geography cases, wrong on 5 arithmetic ones
      const mostlyGeo = Array.from({ length: 35 }, (_, i) => ({ ...geo[i < 30 ? i % 2 : 2 + (i % 2)]!, id: `c${i}` }))
      const routed = yield* evaluate({ cases: mostlyGeo, candidates: ["good", "weak"], bar: 0.6, routes: true })
      assert.deepStrictEqual(routed.gatedTags, ["geo", "math"])
      assert.deepStrictEqual(routed.models[1]!.failedTags, ["math"])
      assert.deepStrictEqual(routed.gate.promoted, ["good", "weak"])
      assert.deepStrictEqual((routed.next.input as { routes: unknown }).routes, { math: ["good"] })
      assert.isDefined(routed.next.config)
      assert.deepStrictEqual([...routed.next.config!.routes.keys()], ["math"])
      const few = yield* evaluate({ cases: mostlyGeo, candidates: ["good", "weak"], bar: 0.6, minModels: 2 })
      assert.deepStrictEqual(few.models[1]!.reasons, ["tag math: lower bound 0.00 < bar 0.6"])
      assert.isFalse(few.gate.passed)
      assert.deepStrictEqual(few.gate.reasons, ["1 model(s) pass, fewer than the minimum of 2"])
    }).pipe(Effect.provide(BedrockSimulator.layer(script))))

  it.effect("the report: Markdown tables, worst cases with prompts and answers, the diff; JSON; SVG", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({ cases, candidates: ["good", "weak"], bar: 0.8, prices, current: { models: [{ modelId: "good" }] } })
      const md = Eval.toMarkdown(report, { chart: "report.svg", worst: 2 })
      assert.match(md, /^## Evaluation gate: ✅ PASS/)
      assert.include(md, "| model | status | mean | 95 % CI | pass rate |")
      assert.match(md, /\| `good` \(incumbent\) \| ✅ promoted \| 1\.00 \| \[1\.00, 1\.00\] \| 100 % \|/)
      assert.include(md, "| `weak` | ❌ left out |")
      assert.include(md, "| math | 6 | 1.00 [1.00, 1.00] ✅ | 0.00 [0.00, 0.00] ❌ |")
      assert.include(md, "| `weak` | `good` | 12 | -0.50 |")
      assert.include(md, "```diff\n! model good: tier 0, weight 1 → tier 0, weight 100, price $0.001 in / $0.002 out per 1k\n```")
      assert.include(md, "<summary><code>weak</code>: 2 worst cases</summary>")
      assert.include(md, "**`add-2`** (line 3, math): score 0.00; number ✗ no number in the answer")
      assert.include(md, "Prompt:\n\n```\nWhat is 2+2?\n```\n\nAnswer:\n\n```\nno idea\n```")
      assert.include(md, "![score against cost and latency](report.svg)")
      const json = JSON.parse(JSON.stringify(Eval.toJson(report)))
      assert.deepStrictEqual(json.gate, { passed: true, promoted: ["good"], leftOut: ["weak"], incumbentsFailing: [], reasons: [] })
      assert.isUndefined(json.next.config)
      assert.deepStrictEqual(json.next.input, { models: [{ modelId: "good", weight: 100, price: prices.good }] })
      const svg = Eval.toSvg(report)
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
      assert.strictEqual(svg.match(/<circle /g)!.length, 4, "two models on two panels")
      assert.include(svg, ">2  weak (left out; mean 0.50 [")
      assert.strictEqual((svg.match(/<text/g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length)
    }).pipe(Effect.provide(BedrockSimulator.layer(script))))

  it.effect("a fence in an answer does not break the report's code blocks", () =>
    Effect.gen(function*() {
      const report = yield* evaluate({ cases: [{ id: "f", prompt: "Show code", expect: { exact: "x" } }], candidates: ["m"], bar: 0 })
      const md = Eval.toMarkdown(report)
      assert.include(md, "````\n```js\nalert(1)\n```\n````")
    }).pipe(Effect.provide(BedrockSimulator.layer({ models: { m: { answer: "```js\nalert(1)\n```" } } }))))
})
