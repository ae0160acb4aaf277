/**
 * The pool at run time through the Effect API: `mux.addModel` /
 * `mux.removeModel` on the simulator. Where a model joins the route (by its
 * tier, beside the models of that tier, also after a tier emptied), the
 * routes of its labels, what a request already routing keeps, the events,
 * and bad entries; an emptied pool's health; a removed model's breaker and
 * cooldown forgotten (kept in a provided store). The pure placement
 * (`insertAt`) is checked on random routes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import * as fc from "fast-check"
import { TestClock } from "effect/testing"
import { BedrockMux, type MuxRequest } from "../src/BedrockMux.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import { insertAt } from "../src/internal/engine.ts"
import * as Model from "../src/Model.ts"
import * as MuxStore from "../src/MuxStore.ts"
import * as Route from "../src/Route.ts"
import type * as MuxConfig from "../src/MuxConfig.ts"
import type * as SimulatorScript from "../src/SimulatorScript.ts"

const hello: MuxRequest = { messages: [{ role: "user", content: [{ text: "hello" }] }] }
/** The mux on a simulated Bedrock that knows every model named (the ones added later too), answering at once. */
const muxOn = (config: MuxConfig.Input, known: ReadonlyArray<string>, script: Record<string, SimulatorScript.ScriptInput["models"][string]> = {}) =>
  BedrockMux.layer(config).pipe(
    Layer.provideMerge(BedrockSimulator.layer({ models: Object.fromEntries(known.map((id) => [id, script[id] ?? {}])) }))
  )

/** Who answers `n` requests, in order. */
const answeredBy = (n: number, label?: string) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const out: Array<string> = []
    for (let i = 0; i < n; i++) out.push((yield* mux.converse(hello, label === undefined ? {} : { label })).routing.modelId)
    return out
  })

const tiersOf = (mux: BedrockMux["Service"]) =>
  Effect.map(mux.models, (models) => models.map((m) => [m.modelId, m.tier] as const))

describe("mux.addModel / mux.removeModel", () => {
  it.effect("a re-added primary is a primary again, not a fallback: all primaries removed, then one added back", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.isTrue(yield* mux.removeModel("a"))
      assert.deepStrictEqual(yield* answeredBy(5), ["b", "b", "b", "b", "b"])
      yield* mux.addModel({ modelId: "a" })
      // the fallback tier stays the fallback: every request goes to the primary while it answers
      assert.deepStrictEqual(yield* answeredBy(20), Array.from({ length: 20 }, () => "a"))
      assert.deepStrictEqual(yield* tiersOf(mux), [["a", 0], ["b", 1]])
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }, { modelId: "b", isFallback: true }] }, ["a", "b"]))))

  it.effect("an added model joins its tier beside the others, and a new tier between two takes its place in order", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      // a tier-1 model between the primary (0) and the last fallback (2)
      yield* mux.addModel({ modelId: "mid", tier: 1 })
      yield* mux.removeModel("a")
      assert.deepStrictEqual(yield* answeredBy(3), ["mid", "mid", "mid"])
      // a second primary next to nothing: tier 0 comes first again
      yield* mux.addModel({ modelId: "a2" })
      assert.deepStrictEqual(yield* answeredBy(3), ["a2", "a2", "a2"])
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }, { modelId: "z", tier: 2 }] }, ["a", "z", "mid", "a2"]))))

  it.effect("a label's route gains the model; a label that had no route gets one", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      yield* mux.addModel({ modelId: "summarizer", labels: ["summarize", "new-label"] })
      assert.deepStrictEqual(yield* answeredBy(2, "new-label"), ["summarizer", "summarizer"])
      yield* mux.removeModel("s1")
      assert.deepStrictEqual(yield* answeredBy(2, "summarize"), ["summarizer", "summarizer"])
      // the default route has it too, at its tier, beside the primary
      const seen = new Set(yield* answeredBy(40))
      assert.deepStrictEqual([...seen].sort(), ["a", "summarizer"])
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }, { modelId: "s1", labels: ["summarize"] }, { modelId: "z", isFallback: true }] }, ["a", "s1", "z", "summarizer"]))))

  it.effect("a request already routing keeps the pool it started with: it is answered by the model removed under it", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const fiber = yield* Effect.forkChild(mux.converse(hello))
      yield* TestClock.adjust("100 millis")
      assert.isTrue(yield* mux.removeModel("slow"))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* Fiber.join(fiber)).routing.modelId, "slow")
      assert.deepStrictEqual(yield* answeredBy(2), ["z", "z"])
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "slow" }, { modelId: "z", isFallback: true }] }, ["slow", "z"], { slow: { latency: 1_000 } }))))

  it.effect("ModelAdded and ModelRemoved are published; removing an unknown model is false and publishes nothing", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const seen: Array<string> = []
      yield* Effect.forkChild(Stream.runForEach(mux.events, (e) =>
        Effect.sync(() => {
          if (e._tag === "ModelAdded") seen.push(`added ${e.modelId} tier ${e.tier} weight ${e.weight}`)
          if (e._tag === "ModelRemoved") seen.push(`removed ${e.modelId}`)
        })))
      yield* Effect.yieldNow
      yield* mux.addModel({ modelId: "b", weight: 3, isFallback: true })
      assert.isFalse(yield* mux.removeModel("nope"))
      assert.isTrue(yield* mux.removeModel("b"))
      yield* Effect.yieldNow
      assert.deepStrictEqual(seen, ["added b tier 1 weight 3", "removed b"])
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }] }, ["a", "b"]))))

  it.effect("a bad entry, a duplicate and an unknown client fail with MuxConfigError and change nothing", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const before = yield* mux.models
      const problems = (input: Model.Input) => Effect.map(Effect.flip(mux.addModel(input)), (e) => e.problems.map((p) => p.path))
      assert.deepStrictEqual(yield* problems({ modelId: "x", weight: -1 }), ["weight"])
      assert.deepStrictEqual(yield* problems({ modelId: "a" }), ["modelId"])
      assert.deepStrictEqual(yield* problems({ modelId: "x", client: "nowhere" }), ["client"])
      assert.deepStrictEqual(yield* problems({ modelId: "x", isFallbak: true } as Model.Input), ["isFallbak"])
      assert.deepStrictEqual(yield* mux.models, before)
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }] }, ["a", "x"]))))
})

describe("mux.removeModel: health and guard state", () => {
  it.effect("an empty pool is unhealthy: health, simpleHealth 503, and a request fails with NoModelsAvailable", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.strictEqual((yield* mux.health).status, "healthy")
      assert.isTrue(yield* mux.removeModel("a"))
      assert.strictEqual((yield* mux.health).status, "healthy")
      assert.isTrue(yield* mux.removeModel("b"))
      const health = yield* mux.health
      assert.deepStrictEqual([health.status, health.models.length], ["unhealthy", 0])
      assert.deepStrictEqual(yield* mux.simpleHealth, { status: "unhealthy", code: 503 })
      const error = yield* Effect.flip(mux.converse(hello))
      assert.strictEqual(error.reason._tag, "NoModelsAvailable")
      // a model added back serves, and health says so
      yield* mux.addModel({ modelId: "a" })
      assert.deepStrictEqual(yield* mux.simpleHealth, { status: "healthy", code: 200 })
    }).pipe(Effect.provide(muxOn({ models: [{ modelId: "a" }, { modelId: "b", isFallback: true }] }, ["a", "b"]))))

  const failingTwice = { a: { faults: [{ when: { calls: [1, 2] }, do: { kind: "error" as const, error: "ServiceUnavailableException" as const } }] } }
  const twoFailures = { models: [{ modelId: "a" }, { modelId: "b", isFallback: true }], breaker: { failures: 2 } }
  const healthOf = (mux: BedrockMux["Service"], id: string) => Effect.map(mux.health, (h) => h.models.find((m) => m.modelId === id)!)

  it.effect("a removed model's breaker is forgotten: added again it is closed, counts no failures and takes the next request", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.deepStrictEqual(yield* answeredBy(2), ["b", "b"])
      const open = yield* healthOf(mux, "a")
      // the breaker's own count: open on 2 failures reads 2, after a resetStats too
      assert.deepStrictEqual([open.breaker, open.breakerFailures, open.available], ["open", 2, false])
      yield* mux.resetStats
      assert.deepStrictEqual([(yield* healthOf(mux, "a")).breaker, (yield* healthOf(mux, "a")).breakerFailures], ["open", 2])
      yield* mux.removeModel("a")
      yield* mux.addModel({ modelId: "a" })
      const fresh = yield* healthOf(mux, "a")
      assert.deepStrictEqual([fresh.breaker, fresh.breakerFailures, fresh.available], ["closed", 0, true])
      assert.deepStrictEqual(yield* answeredBy(1), ["a"])
    }).pipe(Effect.provide(muxOn(twoFailures, ["a", "b"], failingTwice))))

  it.effect("a removed model's throttle cooldown is forgotten: added again it is not cooling", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.deepStrictEqual(yield* answeredBy(1), ["b"])
      assert.strictEqual((yield* healthOf(mux, "a")).unavailable, "cooldown")
      yield* mux.removeModel("a")
      yield* mux.addModel({ modelId: "a" })
      const fresh = yield* healthOf(mux, "a")
      assert.deepStrictEqual([fresh.available, fresh.cooldown], [true, undefined])
      assert.deepStrictEqual(yield* answeredBy(1), ["a"])
    }).pipe(Effect.provide(muxOn(
      { models: [{ modelId: "a" }, { modelId: "b", isFallback: true }] },
      ["a", "b"],
      { a: { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException" } }] } }
    ))))

  it.effect("with a store provided to the mux (shared), removal keeps the model's breaker: added again it is still open", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.deepStrictEqual(yield* answeredBy(2), ["b", "b"])
      yield* mux.removeModel("a")
      yield* mux.addModel({ modelId: "a" })
      assert.strictEqual((yield* healthOf(mux, "a")).breaker, "open")
      assert.deepStrictEqual(yield* answeredBy(1), ["b"])
    }).pipe(Effect.provide(muxOn(twoFailures, ["a", "b"], failingTwice).pipe(Layer.provide(MuxStore.layerMemory)))))
})

describe("insertAt (where an added model goes)", () => {
  const modelArb = (i: number) => fc.integer({ min: 0, max: 3 }).map((tier) => Model.make({ modelId: `m${i}`, tier }))
  const poolArb = fc.integer({ min: 0, max: 6 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => modelArb(i))))

  it("keeps tiers ordered by `tier`, puts the model beside its tier's members, and loses nothing", () => {
    fc.assert(fc.property(poolArb, fc.integer({ min: 0, max: 3 }), (models, tier) => {
      // a route whose tiers follow the models' `tier`, as the config builds it
      const route = Route.fromModels(models)
      const added = Model.make({ modelId: "new", tier })
      const next = insertAt(route, added)
      const tierValues = next.tiers.map((t) => t.map((m) => m.tier))
      // every tier holds one `tier` value, in increasing order
      for (const values of tierValues) assert.strictEqual(new Set(values).size, 1)
      const order = tierValues.map((v) => v[0]!)
      assert.deepStrictEqual(order, [...order].sort((a, b) => a - b))
      assert.strictEqual(new Set(order).size, order.length)
      // the model is in the tier of its `tier`, and every other model is still there
      const at = next.tiers.find((t) => t.some((m) => m.target === "new"))!
      assert.isTrue(at.every((m) => m.tier === tier))
      assert.deepStrictEqual(next.tiers.flat().map((m) => m.target).sort(), [...models.map((m) => m.target), "new"].sort())
    }))
  })
})
