/**
 * The original's `refusalDetection` through the facade, over the real SDK
 * and the loopback fake: a refusal fails the request over to another model,
 * is counted in `refusalCount` and never by the breaker; the classifier is
 * the heuristic, a function of the user's, or an ONNX model at `modelPath`;
 * `retryOnRefusal: false` classifies nothing, as in the original.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { createMultiplexer, type ModelOutcome, type MuxResponse, MultiplexerError, OutcomeType, type RefusalDetectionConfig } from "../../src/index.ts"
import { FakeBedrock } from "../../src/testing/index.ts"
import { refusalModel } from "../support/onnx.ts"

const credentials = { accessKeyId: "fake", secretAccessKey: "fake" }
const input = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }] }
const REFUSAL = "I'm sorry, but I can't help with that."
const ANSWER = "Here is the answer."
const pool = [{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: true }]

const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!()
})

const setup = async (answers: { readonly a: string; readonly b: string }, refusalDetection: RefusalDetectionConfig, extra: object = {}) => {
  const server = await FakeBedrock.start({ models: { a: { answer: answers.a }, b: { answer: answers.b } } })
  closers.push(() => server.close())
  const mux = createMultiplexer(pool, { refusalDetection, ...extra, clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
  closers.push(() => mux.destroy())
  return { server, mux }
}

const text = (res: MuxResponse) => res.output?.message?.content?.[0]?.text

describe("refusalDetection", () => {
  it("a refusal fails over to another model, counts in refusalCount, and never opens the breaker", async () => {
    const { server, mux } = await setup({ a: REFUSAL, b: ANSWER }, { enabled: true }, { breaker: { failures: 1 } })
    const errors: Array<[unknown, ModelOutcome]> = []
    mux.on("error", (error, outcome) => {
      if (outcome !== null) errors.push([error, outcome])
    })
    for (let i = 0; i < 3; i++) {
      const res = await mux.processRequest(input)
      expect(text(res)).toBe(ANSWER)
      expect(res.routing.attempts.map((a) => [a.modelId, a.reason ?? "ok"])).toEqual([["a", "Refused"], ["b", "ok"]])
    }
    expect(server.attempts().map((a) => a.modelId)).toEqual(["a", "b", "a", "b", "a", "b"])
    expect(mux.getStats()).toMatchObject({ refusalCount: 3, failFastCount: 0, successCount: 3, modelStats: { a: { refusalCount: 3, failFastCount: 0 }, b: { successCount: 3 } } })
    expect(mux.getCircuitBreakerStatus()["a"]).toEqual({ state: "CLOSED", failureCount: 0 })
    // the original reports a refusal as `error(null, outcome)` with a REFUSAL outcome
    expect(errors.map(([e, o]) => [e, o.modelId, o.type])).toEqual([[null, "a", OutcomeType.REFUSAL], [null, "a", OutcomeType.REFUSAL], [null, "a", OutcomeType.REFUSAL]])
  })

  it("the heuristic keeps an answer that only reads like a refusal", async () => {
    const { mux } = await setup({ a: "I can't wait to help you plan the trip! Day 1: Lisbon.", b: ANSWER }, { enabled: true })
    const res = await mux.processRequest(input)
    expect(res.routing.modelId).toBe("a")
    expect(mux.getStats().refusalCount).toBe(0)
  })

  it("a classifier of the user's (a Promise function) scores the answer's text, against confidenceThreshold", async () => {
    const seen: Array<string> = []
    const classifier = async (t: string) => {
      seen.push(t)
      return t.includes("blue") ? 0.8 : 0.1
    }
    const strict = await setup({ a: "The sky is blue.", b: ANSWER }, { enabled: true, classifier, confidenceThreshold: 0.8 })
    expect((await strict.mux.processRequest(input)).routing.modelId).toBe("b")
    expect(seen).toEqual(["The sky is blue.", ANSWER])
    const lenient = await setup({ a: "The sky is blue.", b: ANSWER }, { enabled: true, classifier, confidenceThreshold: 0.9 })
    expect((await lenient.mux.processRequest(input)).routing.modelId).toBe("a")
  })

  it("retryOnRefusal: false classifies nothing and keeps the answer, as the original does", async () => {
    let calls = 0
    const { mux } = await setup({ a: REFUSAL, b: ANSWER }, { enabled: true, retryOnRefusal: false, classifier: () => (calls++, 1) })
    const res = await mux.processRequest(input)
    expect([res.routing.modelId, text(res)]).toEqual(["a", REFUSAL])
    expect([calls, mux.getStats().refusalCount]).toEqual([0, 0])
  })

  it("when every model refuses, the request fails with NO_MODELS_AVAILABLE and each attempt's reason", async () => {
    const { mux } = await setup({ a: REFUSAL, b: "As an AI language model, I can't do that." }, { enabled: true })
    const e = await mux.processRequest(input).then(() => undefined, (e: unknown) => e)
    expect(e).toBeInstanceOf(MultiplexerError)
    const m = e as MultiplexerError
    expect(m.code).toBe("NO_MODELS_AVAILABLE")
    expect(m.details?.["attempts"].map((a: { readonly reason?: string }) => a.reason)).toEqual(["Refused", "Refused"])
    expect(mux.getStats().refusalCount).toBe(2)
  })

  it("modelPath: an ONNX model scores through onnxruntime-node; a model that cannot be loaded rejects calls with CLASSIFIER_UNAVAILABLE", async () => {
    const dir = mkdtempSync(join(tmpdir(), "facade-onnx-"))
    const modelPath = join(dir, "refusal.onnx")
    writeFileSync(modelPath, refusalModel({ sorry: 2, cannot: 2, "can't": 2 }, 1.5))
    const { mux } = await setup({ a: "I am sorry but I cannot help", b: ANSWER }, { enabled: true, modelPath })
    expect((await mux.processRequest(input)).routing.attempts.map((a) => a.reason ?? "ok")).toEqual(["Refused", "ok"])
    const broken = await setup({ a: ANSWER, b: ANSWER }, { enabled: true, modelPath: join(dir, "missing.onnx") })
    const e = await broken.mux.processRequest(input).then(() => undefined, (e: unknown) => e)
    expect(e).toMatchObject({ name: "MultiplexerError", code: "CLASSIFIER_UNAVAILABLE", details: { modelPath: join(dir, "missing.onnx") } })
    expect(broken.server.attempts()).toEqual([])
  })

  it("refusal-classification for every classified answer, refusal-detected with the text, in the original's order", async () => {
    const server = await FakeBedrock.start({ models: { a: { answer: REFUSAL }, b: { answer: "Here is the answer." } } })
    closers.push(() => server.close())
    const mux = createMultiplexer([{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: true }], {
      refusalDetection: { enabled: true },
      clientConfig: { region: "us-east-1", endpoint: server.url, credentials }
    })
    closers.push(() => mux.destroy())
    const log: Array<unknown> = []
    mux.on("model-invocation-complete", (id) => log.push(["complete", id]))
    mux.on("refusal-classification", (id, isRefusal, confidence, latencyMs) => log.push(["classification", id, isRefusal, confidence > 0.5, typeof latencyMs]))
    mux.on("refusal-detected", (id, confidence, text) => log.push(["detected", id, confidence > 0.5, text]))
    mux.on("error", (e, outcome) => outcome !== null && log.push(["error", e, outcome.type]))
    const res = await mux.processRequest(input)
    expect(res.routing.modelId).toBe("b")
    expect(log).toEqual([
      ["complete", "a"],
      ["classification", "a", true, true, "number"],
      ["detected", "a", true, REFUSAL],
      ["error", null, 3],
      ["complete", "b"],
      ["classification", "b", false, false, "number"]
    ])
    // no listener: nothing is measured or kept (a second request with the listeners gone)
    mux.removeAllListeners()
    expect((await mux.processRequest(input)).routing.modelId).toBe("b")
  })
})
