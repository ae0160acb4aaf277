// The fast path's shortcut when every guard is quiet (`Guard.Live.quietUnsafe`: nothing out, every permit the
// free one): the mux skips their views and permits. It must route exactly as it does without the shortcut, over
// random pools, fault scripts, selectors, built-in guards and request mixes (the scenarios of test/laws.test.ts,
// whose own guards are wrapped by a recorder and so never quiet). And a guard that does not say it is quiet is
// asked on every request.
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer, Random } from "effect"
import * as fc from "fast-check"
import { BedrockMux, BedrockSimulator, Guard, MuxStore, Policy, Route, type SimulatorScript } from "../src/index.ts"
import { type GuardsOf, guardOf, run, type Run, scenarioArb } from "./support/laws.ts"
import { runFor } from "./support/mux.ts"

/** The built-in guards only (the user guards of the laws' scenarios are never quiet). */
const builtIn = scenarioArb.map((s) => ({ ...s, guards: s.guards.filter((g) => g.kind === "breaker" || g.kind === "cooldown" || g.kind === "quota") }))

const plain: GuardsOf = (s) => s.guards.map((g) => guardOf(s.seed, g))
/** The same guards, never quiet: every request goes through their views and permits. */
const neverQuiet: GuardsOf = (s) =>
  s.guards.map((g) => {
    const inner = guardOf(s.seed, g)
    return { ...inner, build: (env) => Effect.map(inner.build(env), (live) => ({ ...live, quietUnsafe: undefined })) }
  })

/** What the callers and the event bus saw: outcomes, attempt records, times. */
const observed = (r: Run) => ({
  calls: r.calls.map((c) => ({
    index: c.index,
    endAt: c.endAt,
    exit: Exit.isSuccess(c.exit) ? "success" : Cause.pretty(c.exit.cause).split("\n")[0],
    attempts: c.attempts,
    reads: c.reads.map((x) => [x.at, x.kind, x.model])
  })),
  events: r.events.map((e) => JSON.stringify(e))
})

describe("every guard quiet: the shortcut routes exactly as the full path", () => {
  it("property: same outcomes, attempt records, stream reads and events, with and without the shortcut", { timeout: 300_000 }, () =>
    fc.assert(
      fc.asyncProperty(builtIn, async (s) => {
        const [fast, full] = [await run(s, "left", plain), await run(s, "left", neverQuiet)]
        assert.deepStrictEqual(observed(fast), observed(full), `scenario ${JSON.stringify(s)}`)
      }),
      { seed: 20261201, numRuns: Number(process.env["QUIET_RUNS"] ?? 300) }
    ))

  it.effect("a guard that does not say it is quiet is asked on every request; one that does is not", () =>
    Effect.gen(function*() {
      const counts = { loud: 0, quiet: 0, quietAdmits: 0 }
      /** Open to all, counting its views (and admits); quiet when it says so. */
      const counted = (name: "loud" | "quiet") =>
        Guard.make({
          name,
          view: (ts) => Effect.succeed(ts.map(() => Guard.open)),
          admit: () => Effect.succeed(Guard.noPermit),
          viewUnsafe: (ts) => {
            counts[name]++
            return ts.map(() => Guard.open)
          },
          admitUnsafe: () => {
            if (name === "quiet") counts.quietAdmits++
            return Guard.noPermit
          },
          ...(name === "quiet" ? { quietUnsafe: () => true } : {})
        })
      const loud = counted("loud")
      const quiet = counted("quiet")
      const calls = (policy: Policy.Policy) =>
        runFor(Effect.gen(function*() {
          const mux = yield* BedrockMux
          for (let i = 0; i < 20; i++) yield* mux.converse({ messages: [{ role: "user", content: [{ text: "hi" }] }] })
        }).pipe(Effect.provide(BedrockMux.layer(policy).pipe(Layer.provideMerge(BedrockSimulator.layer({ models: { a: {}, b: {} } }))))))
      const route = Route.tier([{ modelId: "a" }, { modelId: "b" }])
      yield* calls(Policy.make(route, { guards: [...Policy.defaultGuards, loud, quiet] }))
      // the loud guard keeps the quiet one (and the built-ins) on the full path: both are asked every time
      assert.deepStrictEqual([counts.loud, counts.quiet], [20, 20])
      counts.loud = counts.quiet = counts.quietAdmits = 0
      yield* calls(Policy.make(route, { guards: [...Policy.defaultGuards, quiet] }))
      // every guard quiet: no view at all, and each model's permits taken once
      assert.strictEqual(counts.quiet, 0)
      assert.isAtMost(counts.quietAdmits, 2)
    }))

  const hi = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }] }

  it.effect("a breaker another mux opens on a shared memory store ends the quiet at once", () =>
    Effect.gen(function*() {
      const store = MuxStore.makeMemory()
      const config = { models: [{ modelId: "a" }, { modelId: "b", isFallback: true }], selection: "ordered" as const, breaker: { failures: 1, window: "1 minute" } }
      const muxOver = (script: SimulatorScript.ScriptInput) =>
        Effect.map(
          Layer.build(BedrockMux.layer(config).pipe(Layer.provideMerge(BedrockSimulator.layer(script)), Layer.provide(Layer.succeed(MuxStore.MuxStore, store)))),
          (context) => Context.get(context, BedrockMux)
        )
      // the first mux's a fails once (its breaker opens, in the shared store); the second's never does
      const one = yield* muxOver({ models: { a: { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ServiceUnavailableException" } }] }, b: {} } })
      const two = yield* muxOver({ models: { a: {}, b: {} } })
      const models = (mux: BedrockMux["Service"]) => Effect.map(runFor(mux.converse(hi), "1 second"), (r) => r.routing.attempts.map((a) => `${a.modelId} ${a.outcome}`))
      assert.deepStrictEqual(yield* models(two), ["a success"])
      assert.deepStrictEqual(yield* models(one), ["a failure", "b success"])
      // the shared breaker is open: the second mux, quiet a moment ago, skips a
      assert.deepStrictEqual(yield* models(two), ["b success"])
    }).pipe(Effect.scoped))

  it.effect("a model added at run time joins the quiet route's candidates", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const picked = new Set<string>()
      for (let i = 0; i < 10; i++) picked.add((yield* runFor(mux.converse(hi))).routing.modelId)
      assert.deepStrictEqual([...picked], ["a"])
      yield* mux.addModel({ modelId: "b", weight: 1_000_000 })
      const after = (yield* runFor(mux.converse(hi))).routing.modelId
      assert.strictEqual(after, "b")
      yield* mux.removeModel("b")
      assert.strictEqual((yield* runFor(mux.converse(hi))).routing.modelId, "a")
    }).pipe(Effect.provide(BedrockMux.layer({ models: [{ modelId: "a" }] }).pipe(Layer.provideMerge(BedrockSimulator.layer({ models: { a: {}, b: {} } }))))))

  it.effect("a guard that says it is quiet but hands out permits that are not free: every permit goes back, and the picks are the full path's", () =>
    Effect.gen(function*() {
      const log = { admitted: 0, released: 0 }
      const liar = (quiet: boolean) =>
        Guard.make({
          name: "liar",
          view: (ts) => Effect.succeed(ts.map(() => Guard.open)),
          admit: () =>
            Effect.sync((): Guard.Permit => {
              log.admitted++
              return { release: () => Effect.sync(() => void log.released++) }
            }),
          viewUnsafe: (ts) => ts.map(() => Guard.open),
          admitUnsafe: (): Guard.Permit => {
            log.admitted++
            return { release: () => Effect.sync(() => void log.released++) }
          },
          ...(quiet ? { quietUnsafe: () => true } : {})
        })
      const picks = (quiet: boolean) =>
        runFor(Effect.gen(function*() {
          const mux = yield* BedrockMux
          const out: Array<string> = []
          for (let i = 0; i < 30; i++) out.push((yield* mux.converse(hi)).routing.modelId)
          return out
        }).pipe(
          Effect.provide(BedrockMux.layer(Policy.make(Route.tier([{ modelId: "a", weight: 1 }, { modelId: "b", weight: 2 }, { modelId: "c", weight: 3 }]), { guards: [...Policy.defaultGuards, liar(quiet)] })).pipe(
            Layer.provideMerge(BedrockSimulator.layer({ models: { a: {}, b: {}, c: {} } }))
          )),
          Random.withSeed("picks")
        ))
      const honest = yield* picks(false)
      log.admitted = log.released = 0
      const lying = yield* picks(true)
      assert.deepStrictEqual(lying, honest)
      assert.isAbove(log.admitted, 30)
      assert.strictEqual(log.released, log.admitted)
    }))
})
