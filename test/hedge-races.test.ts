/**
 * Hedging's races with a request's end, pinned from a review of the hedge's
 * select stage (the permits a pick holds, the attempts' fibers): each case
 * failed before its fix.
 * - A caller's interruption landing between the hedge's select stage being
 *   forked and the race with the first attempt: the pick the stage makes
 *   later is released unused (NotSent).
 * - A hedged request's first pick from the plain-code select, its attempt's
 *   fiber interrupted before it ran: every permit released once.
 * - The hedge's select failing with a StoreError while the primary is in
 *   flight: no hedge; the primary's permit released once, nothing of the
 *   request runs on after it ended.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, type Duration, Effect, Exit, Fiber, Layer, pipe, Stream } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator, Guard, type MuxError as MuxErrors, type MuxEvent, MuxStore, MuxStream, Policy, Selector, type SimulatorScript } from "../src/index.ts"


const hi = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }] }

/** One request on a mux over `script`, on virtual time; `fiberRef.current` is the request's fiber while it runs. */
const once = (
  policy: Policy.Policy,
  script: SimulatorScript.ScriptInput,
  request: (mux: BedrockMux["Service"]) => Effect.Effect<unknown, MuxErrors.MuxError>,
  advance: Duration.Input = "1 minute"
) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const events: Array<MuxEvent.MuxEvent> = []
    yield* Stream.runForEach(mux.events, (e) => Effect.sync(() => void events.push(e))).pipe(Effect.forkScoped({ startImmediately: true }))
    const fiber = yield* Effect.forkChild(request(mux))
    yield* TestClock.adjust(advance)
    const exit = yield* Fiber.await(fiber)
    return { exit, events, ended: events.filter((e) => e._tag === "RequestEnded").map((e) => (e as MuxEvent.RequestEnded).outcome), calls: (yield* BedrockSimulator.attempts).map((a) => `${a.modelId} ${a.outcome}`), at: yield* Clock.currentTimeMillis }
  }).pipe(Effect.provide(BedrockMux.layer(policy).pipe(Layer.provideMerge(BedrockSimulator.layer(script)))), Effect.scoped)

/** A guard whose permits are never free, and the releases the mux made of each (by model). */
const permitLog = (sync: boolean, onAdmit: (modelId: string) => void = () => {}) => {
  const released: Array<{ modelId: string; outcomes: Array<string> }> = []
  const permit = (modelId: string): Guard.Permit => {
    onAdmit(modelId)
    const rec = { modelId, outcomes: [] as Array<string> }
    released.push(rec)
    return { release: (o) => Effect.sync(() => void rec.outcomes.push(o._tag)) }
  }
  const guard = Guard.make({
    name: "counting",
    view: (ts) => Effect.succeed(ts.map(() => Guard.open)),
    admit: (t) => Effect.sync(() => permit(t.model.modelId)),
    ...(sync ? { viewUnsafe: (ts: ReadonlyArray<unknown>) => ts.map(() => Guard.open), admitUnsafe: (t: any) => permit(t.model.modelId) } : {})
  })
  return { guard, released }
}

const exitTag = (exit: Exit.Exit<unknown, unknown>) => Exit.isSuccess(exit) ? "success" : exit.cause.reasons.map((r) => r._tag).join(",")

describe("hedgePick: an interruption between the stage's fork and the race's onInterrupt", () => {
  it.effect("caller's interrupt lands right after forkDetach(picking): the hedge's pick, made later, is released once (NotSent)", () =>
    Effect.gen(function*() {
      let reqFiber: Fiber.Fiber<unknown, unknown> | undefined
      const { guard, released } = permitLog(false)
      // b's admit: a store round trip of 3 s. As it is asked (inside forkDetach's startImmediately), the caller's
      // interruption arrives: it lands at the request fiber's next step, i.e. after the fork, before the race
      // (the same as a caller's interrupt delivered while the fiber yields there on its op budget)
      const slowForB = Guard.make({
        name: "slow-for-b",
        view: (ts) => Effect.succeed(ts.map(() => Guard.open)),
        admit: (t) =>
          t.model.modelId === "b"
            ? Effect.andThen(Effect.sync(() => reqFiber!.interruptUnsafe()), Effect.as(Effect.sleep("3 seconds"), Guard.noPermit))
            // a's admit runs in the select stage's fiber (selectWithin's `timed` child of the routing fiber)
            : Effect.withFiber((f) => { reqFiber = (f as any)._parent; return Effect.succeed(Guard.noPermit) })
      })
      const policy = pipe(
        Policy.make([{ modelId: "a" }, { modelId: "b" }], { guards: [guard, slowForB], selector: Selector.ordered }),
        Policy.withHedge(Policy.hedge({ after: "100 millis", budget: 1 }))
      )
      const { exit, calls } = yield* once(
        policy,
        { models: { a: { firstToken: 1000 }, b: { firstToken: 10 } } },
        (mux) => MuxStream.collect(mux.converseStream(hi, { deadline: "10 seconds" }))
      )
      assert.strictEqual(exitTag(exit), "Interrupt")
      assert.deepStrictEqual(calls.filter((c) => c.startsWith("b ")), [], "b never sent")
      const b = released.filter((r) => r.modelId === "b")
      assert.strictEqual(b.length, 1, "b was admitted (its pick made at 3.1 s)")
      assert.deepStrictEqual(b[0]!.outcomes, ["NotSent"], `b's permit: ${JSON.stringify(released)}`)
    }))
})

// A hedged request's first pick comes from the plain-code select (every guard synchronous): it is not in
// RequestState.picks. The first attempt runs in a forkChild fiber that is scheduled, not started. A caller that
// gives up before that fiber has run (here: it forks the request and interrupts it after `yields` scheduler
// turns) ends the request; the child is interrupted unstarted and never runs attempt's onInterrupt.
describe("hedged: the first attempt's fiber interrupted before it ran, its pick from selectUnsafe", () => {
  for (const yields of [0, 1, 3]) {
    it.effect(`the caller interrupts after ${yields} yields: every permit released once`, () =>
      Effect.gen(function*() {
        const { guard, released } = permitLog(true)
        const policy = pipe(Policy.make([{ modelId: "a" }, { modelId: "b" }], { guards: [guard] }), Policy.withHedge(Policy.hedge({ after: "100 millis", budget: 1 })))
        const r = yield* Effect.gen(function*() {
          const mux = yield* BedrockMux
          const ended: Array<string> = []
          yield* Stream.runForEach(mux.events, (e) => Effect.sync(() => e._tag === "RequestEnded" && void ended.push((e as MuxEvent.RequestEnded).outcome))).pipe(Effect.forkScoped({ startImmediately: true }))
          const f = yield* Effect.forkChild(MuxStream.collect(mux.converseStream(hi)), { startImmediately: true })
          for (let i = 0; i < yields; i++) yield* Effect.yieldNow
          yield* Fiber.interrupt(f)
          yield* TestClock.adjust("1 minute")
          return { ended, calls: (yield* BedrockSimulator.attempts).map((a) => `${a.modelId} ${a.outcome}`) }
        }).pipe(Effect.provide(BedrockMux.layer(policy).pipe(Layer.provideMerge(BedrockSimulator.layer({ models: { a: { firstToken: 50 }, b: { firstToken: 50 } } })))), Effect.scoped)
        const info = JSON.stringify({ released, ...r })
        assert.deepStrictEqual(r.ended, ["interrupted"], info)
        for (const p of released) assert.strictEqual(p.outcomes.length, 1, info)
      }))
  }
})

// The hedge's select stage fails with a StoreError (a guard's view: its store is down) while the primary is in
// flight: hedgePick fails, `hedged` fails, the request ends as a StoreError, and the primary's forkChild fiber runs
// on (it is interrupted only when the caller's fiber ends): the model answers into nowhere and its permit is
// never released when the caller's fiber outlives the request.
describe("hedged: the hedge's select fails with a StoreError while the primary is in flight", () => {
  it.effect("the primary's permit is released once; no model call after the request ended", () =>
    Effect.gen(function*() {
      const { guard, released } = permitLog(false)
      let views = 0
      const flaky = Guard.make({
        name: "flaky-store",
        view: (ts) => (views++ === 0 ? Effect.succeed(ts.map(() => Guard.open)) : Effect.fail(new MuxStore.StoreError({ message: "store down" }))),
        admit: () => Effect.succeed(Guard.noPermit)
      })
      const policy = pipe(
        Policy.make([{ modelId: "a" }, { modelId: "b" }], { guards: [guard, flaky], selector: Selector.ordered }),
        Policy.withHedge(Policy.hedge({ after: "100 millis", budget: 1 }))
      )
      const r = yield* Effect.gen(function*() {
        const mux = yield* BedrockMux
        const events: Array<string> = []
        yield* Stream.runForEach(mux.events, (e) => Effect.sync(() => void events.push(e._tag))).pipe(Effect.forkScoped({ startImmediately: true }))
        // the caller goes on after its request (its fiber does not end with the request)
        const f = yield* Effect.forkChild(Effect.gen(function*() {
          const exit = yield* Effect.exit(MuxStream.collect(mux.converseStream(hi)))
          yield* Effect.sleep("5 seconds")
          return exit
        }))
        yield* TestClock.adjust("1 minute")
        const exit = yield* Fiber.join(f)
        return { exit, events, calls: (yield* BedrockSimulator.attempts).map((a) => `${a.modelId} ${a.outcome}`) }
      }).pipe(Effect.provide(BedrockMux.layer(policy).pipe(Layer.provideMerge(BedrockSimulator.layer({ models: { a: { firstToken: 1000 }, b: {} } })))), Effect.scoped)
      const info = JSON.stringify({ released, events: r.events, calls: r.calls, exit: Exit.isFailure(r.exit) ? String(r.exit.cause) : "success" })
      assert.strictEqual(released.length, 1, info)
      assert.strictEqual(released[0]!.outcomes.length, 1, `a's permit released once: ${info}`)
    }))
})
