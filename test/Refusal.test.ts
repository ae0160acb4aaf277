/**
 * Refusal classifiers: the heuristic on refusals and on answers that only
 * look like them, scores always in [0, 1], scorers that fail or misbehave,
 * and the ONNX classifier through onnxruntime-node on a tiny model written
 * by the test (test/support/onnx.ts). Then refusal-triggered failover in the
 * Effect API (`Policy.withRefusal`) on the simulator: Converse, and streams
 * with and without the hold-back.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Stream } from "effect"
import fc from "fast-check"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BedrockMux, BedrockSimulator, type MuxConfig, type MuxEvent, MuxStream, Policy, Refusal, type SimulatorScript } from "../src/index.ts"
import { muxError } from "./support/mux.ts"
import { refusalModel } from "./support/onnx.ts"

const score = (text: string) => Effect.runSync(Refusal.heuristic.score(text))

const refusals = [
  "I'm sorry, but I can't help with that request.",
  "I’m sorry, but I cannot assist with creating that content.", // typographic apostrophe
  "I cannot and will not provide instructions for building a weapon.",
  "As an AI language model, I can't browse the internet or share personal data about private individuals.",
  "I appreciate the question, but I'm not able to assist with that. Is there something else I can help with?",
  "I must respectfully decline to write that.",
  "Unfortunately, I am unable to provide medical diagnoses. Please see a doctor.",
  "That request goes against my guidelines, so I won't be generating it.",
  "I don't think it would be appropriate for me to generate that kind of content.",
  "I'm afraid I can't do that."
]

const answers = [
  "The water cycle has four stages: evaporation, condensation, precipitation and collection.",
  "I can't wait to help you plan the trip! Day 1: arrive in Lisbon and walk through Alfama.",
  "I can't help but notice that your loop never ends: the counter is never incremented.",
  "I cannot stress enough how important backups are. Here is a 3-2-1 plan you can follow.",
  "Sorry for the delay. Here is the summary you asked for: revenue rose 12 % on the year.",
  "Unfortunately, the API cannot handle more than 10 requests per second, so batch them like this:",
  "I won't bore you with the history; the key steps are: install, configure, deploy.",
  "To implement binary search, compare the middle element with the target and halve the range each step.",
  "You can't go wrong with a cast-iron pan: it lasts for decades.",
  ""
]

describe("Refusal.heuristic", () => {
  it("scores refusal phrasings at or above 0.5", () => {
    for (const text of refusals) assert.isAtLeast(score(text), 0.5, text)
  })

  it("scores answers, including ones that read like refusals, below 0.5", () => {
    for (const text of answers) assert.isBelow(score(text), 0.5, text)
  })

  it("a refusal opening the answer counts more than the same words quoted deep in a long answer", () => {
    const quoted = `${"A detailed, helpful answer about customer support scripts. ".repeat(20)} Avoid replies like "I'm sorry, but I can't help with that" when the customer only needs a refund.`
    assert.isBelow(score(quoted), score("I'm sorry, but I can't help with that."))
    assert.isBelow(score(quoted), 0.5)
  })

  it("every score is in [0, 1], for any text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.constantFrom(...refusals, ...answers).map((t) => t.repeat(3))), (text) => {
        const s = score(text)
        return s >= 0 && s <= 1
      }),
      { seed: 7, numRuns: 500 }
    )
  })
})

describe("Refusal.fromPromise, textOf", () => {
  it.effect("a scorer's value is kept; a rejection scores 0, an out-of-range value is clamped", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Refusal.fromPromise("ok", async () => 0.7).score("x"), 0.7)
      assert.strictEqual(yield* Refusal.fromPromise("sync", () => 0.2).score("x"), 0.2)
      assert.strictEqual(yield* Refusal.fromPromise("boom", async () => Promise.reject(new Error("down"))).score("x"), 0)
      assert.strictEqual(yield* Refusal.fromPromise("throws", () => { throw new Error("bad") }).score("x"), 0)
      assert.strictEqual(yield* Refusal.fromPromise("high", () => 7).score("x"), 1)
      assert.strictEqual(yield* Refusal.fromPromise("nan", () => Number.NaN).score("x"), 0)
    }))

  it("textOf joins the answer's text blocks", () => {
    const out = { output: { message: { role: "assistant" as const, content: [{ text: "a" }, { image: undefined } as never, { text: "b" }] } } }
    assert.strictEqual(Refusal.textOf(out), "a b")
    assert.strictEqual(Refusal.textOf({ output: undefined }), "")
  })
})

describe("Refusal.onnx", () => {
  const dir = mkdtempSync(join(tmpdir(), "refusal-onnx-"))
  const modelPath = join(dir, "refusal.onnx")
  writeFileSync(modelPath, refusalModel({ sorry: 2, cannot: 2, unable: 2, decline: 3 }, 1.5))

  it.effect("scores through onnxruntime-node: the raw text in, the refusal probability out", () =>
    Effect.scoped(Effect.gen(function*() {
      const classifier = yield* Refusal.onnx({ modelPath })
      assert.strictEqual(classifier.name, "onnx")
      const refused = yield* classifier.score("I am sorry but I cannot help")
      const answered = yield* classifier.score("The water cycle has four stages")
      // softmax of [1.5 - 4, -1.5 + 4] and of [1.5, -1.5]
      assert.closeTo(refused, 1 / (1 + Math.exp(-5)), 1e-6)
      assert.closeTo(answered, 1 / (1 + Math.exp(3)), 1e-6)
      assert.isAbove(yield* classifier.score("I must decline"), 0.5)
    })))

  it.effect("a missing model file, or a model without the expected input, fails with RefusalClassifierError", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.exit(Effect.scoped(Refusal.onnx({ modelPath: join(dir, "nope.onnx") })))
      assert.isTrue(Exit.isFailure(missing))
      const wrongInput = yield* Effect.exit(Effect.scoped(Refusal.onnx({ modelPath, inputName: "text" })))
      assert.isTrue(Exit.isFailure(wrongInput) && String(wrongInput.cause).includes("has no input \"text\""))
    }))
})

// --- refusal-triggered failover (Effect API) -------------------------------------------------------

const hi = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }] }
const REFUSAL = "I'm sorry, but I can't help with that."
const ANSWER = "The water cycle has four stages."
const pair: MuxConfig.Input = { models: [{ modelId: "a" }, { modelId: "b", isFallback: true }], selection: "ordered", breaker: { failures: 1 } }

/** The mux over the simulator with refusal detection, and every event it publishes. */
const withRefusals = <A, E>(
  refusal: Parameters<typeof Policy.withRefusal>[0],
  script: SimulatorScript.ScriptInput,
  body: (mux: BedrockMux["Service"], seen: ReadonlyArray<MuxEvent.MuxEvent>) => Effect.Effect<A, E>
) =>
  Effect.scoped(Effect.gen(function*() {
    const mux = yield* BedrockMux
    const seen: Array<MuxEvent.MuxEvent> = []
    yield* Stream.runForEach(mux.events, (e) => Effect.sync(() => void seen.push(e))).pipe(Effect.forkScoped({ startImmediately: true }))
    return yield* body(mux, seen)
  })).pipe(Effect.provide(BedrockMux.layer(pair, { policy: Policy.withRefusal(refusal) }).pipe(Layer.provide(BedrockSimulator.layer(script)))))

/** A classifier that scores what its table says (0 otherwise), and remembers what it was given. */
const scripted = (table: Record<string, number>) => {
  const texts: Array<string> = []
  const classifier: Refusal.Classifier = {
    name: "scripted",
    score: (text) => Effect.sync(() => (texts.push(text), table[text] ?? 0))
  }
  return { classifier, texts }
}

describe("Policy.withRefusal", () => {
  it.effect("a refused Converse answer fails over with reason Refused: counted in refusals, never by the breaker, announced as Refused", () => {
    const { classifier, texts } = scripted({ [REFUSAL]: 0.9 })
    return withRefusals({ classifier, threshold: 0.5 }, { models: { a: { answer: REFUSAL }, b: { answer: ANSWER } } }, (mux, seen) =>
      Effect.gen(function*() {
        for (let i = 0; i < 3; i++) {
          const res = yield* mux.converse(hi)
          assert.deepStrictEqual(res.routing.attempts.map((a) => [a.modelId, a.reason ?? "ok", a.decision ?? "-"]), [["a", "Refused", "failover"], ["b", "ok", "-"]])
          assert.strictEqual(res.output?.message?.content?.[0]?.text, ANSWER)
        }
        assert.deepStrictEqual(texts, [REFUSAL, ANSWER, REFUSAL, ANSWER, REFUSAL, ANSWER])
        const a = (yield* mux.health).models.find((m) => m.modelId === "a")!
        // breaker failures: 1, yet three refusals leave it closed
        assert.deepStrictEqual([a.breaker, a.refusals, a.failures, a.failFast, a.windowFailures], ["closed", 3, 0, 0, 0])
        const refused = seen.filter((e): e is MuxEvent.Refused => e._tag === "Refused")
        assert.deepStrictEqual(refused.map((e) => [e.modelId, e.score, e.classifier]), [["a", 0.9, "scripted"], ["a", 0.9, "scripted"], ["a", 0.9, "scripted"]])
      }))
  })

  it.effect("the threshold: a score at it is a refusal, one below it is an answer", () =>
    Effect.gen(function*() {
      for (const [score, answeredBy] of [[0.7, "b"], [0.69, "a"]] as const) {
        const { classifier } = scripted({ [REFUSAL]: score })
        const res = yield* withRefusals({ classifier, threshold: 0.7 }, { models: { a: { answer: REFUSAL }, b: { answer: ANSWER } } }, (mux) => mux.converse(hi))
        assert.strictEqual(res.routing.modelId, answeredBy, `score ${score}`)
      }
    }))

  it.effect("the heuristic: a refusal fails over, an answer that only reads like one is kept", () =>
    Effect.gen(function*() {
      const refused = yield* withRefusals({ classifier: Refusal.heuristic }, { models: { a: { answer: REFUSAL }, b: { answer: ANSWER } } }, (mux) => mux.converse(hi))
      assert.strictEqual(refused.routing.modelId, "b")
      const idiom = "I can't wait to help you plan the trip! Day 1: Lisbon."
      const kept = yield* withRefusals({ classifier: Refusal.heuristic }, { models: { a: { answer: idiom }, b: { answer: ANSWER } } }, (mux) => mux.converse(hi))
      assert.strictEqual(kept.routing.modelId, "a")
    }))

  it.effect("every model refusing ends the request without an answer (NoModelsAvailable, each attempt Refused)", () => {
    const { classifier } = scripted({ [REFUSAL]: 1 })
    return withRefusals({ classifier }, { models: { a: { answer: REFUSAL }, b: { answer: REFUSAL } } }, (mux) =>
      Effect.gen(function*() {
        const error = muxError(yield* Effect.exit(mux.converse(hi)))
        assert.strictEqual(error.reason._tag, "NoModelsAvailable")
        assert.deepStrictEqual(error.attempts.map((a) => a.reason), ["Refused", "Refused"])
      }))
  })

  it.effect("streams with a hold-back: a refusal fails over before anything reaches the caller", () => {
    const { classifier } = scripted({ [REFUSAL]: 0.9 })
    return withRefusals({ classifier, holdBack: 200 }, { models: { a: { answer: REFUSAL }, b: { answer: ANSWER } } }, (mux) =>
      Effect.gen(function*() {
        const answer = yield* MuxStream.collect(mux.converseStream(hi))
        assert.strictEqual(answer.text, ANSWER)
        assert.strictEqual(answer.resets, 0)
        assert.deepStrictEqual(answer.routing?.attempts.map((a) => [a.modelId, a.reason ?? "ok"]), [["a", "Refused"], ["b", "ok"]])
      }))
  })

  it.effect("streams without a hold-back are not checked: the answer streams as it comes", () => {
    const { classifier, texts } = scripted({ [REFUSAL]: 0.9 })
    return withRefusals({ classifier }, { models: { a: { answer: REFUSAL }, b: { answer: ANSWER } } }, (mux) =>
      Effect.gen(function*() {
        const answer = yield* MuxStream.collect(mux.converseStream(hi))
        assert.strictEqual(answer.text, REFUSAL)
        assert.strictEqual(answer.routing?.modelId, "a")
        assert.deepStrictEqual(texts, [])
      }))
  })
})
