/**
 * Tier escalation and the attempt budget: `countEscalations` (an escalated attempt that ran is outside the
 * budget where the policy does not count it; one a guard refused earns nothing), and an escalation after an
 * error the policy does not fail over on keeps the request on its model (no failover, no hedge). Fixed cases
 * of what test/laws.test.ts checks over random scenarios. On the simulator, under TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, pipe } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator, Guard, MuxError, MuxStream, Policy, Route, Selector, type SimulatorScript } from "../src/index.ts"

const request = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }] }

/** One request through a mux over the simulator; the calls the simulator saw ("model tier outcome"). */
const once = (
  policy: Policy.Policy,
  script: SimulatorScript.ScriptInput,
  call: (mux: BedrockMux["Service"]) => Effect.Effect<unknown, MuxError.MuxError> = (mux) => mux.converse(request)
) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const fiber = yield* Effect.forkChild(Effect.exit(call(mux)))
    yield* TestClock.adjust(Duration.minutes(1))
    const exit = yield* Fiber.join(fiber)
    const calls = (yield* BedrockSimulator.attempts).map((a) => `${a.modelId} ${a.serviceTier ?? "default"} ${a.outcome}`)
    return { exit, calls }
  }).pipe(Effect.provide(BedrockMux.layer(policy).pipe(Layer.provideMerge(BedrockSimulator.layer(script)))))

/** A guard that keeps one model out at one service tier (a maintenance window, say). */
const keepOut = (modelId: string, tier: "priority" | "reserved") =>
  Guard.make({
    name: "window",
    view: (targets, info) =>
      Effect.succeed(targets.map((t) => (t.model.modelId === modelId && info.serviceTier === tier ? { admits: false, weight: 0, why: "window" } : Guard.open))),
    admit: () => Effect.succeed(Guard.noPermit)
  })

const throttledOnce = { faults: [{ when: { calls: [1] }, do: { kind: "error" as const, error: "ThrottlingException" as const } }] }
const always = (error: SimulatorScript.ErrorName) => ({ faults: [{ do: { kind: "error" as const, error } }] })
const errorOf = (exit: Exit.Exit<unknown, MuxError.MuxError>): MuxError.MuxError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const e = Cause.findErrorOption((exit as Exit.Failure<unknown, MuxError.MuxError>).cause)
  assert.isTrue(e._tag === "Some")
  return (e as { readonly value: MuxError.MuxError }).value
}

describe("escalation and the budget", () => {
  const ab = pipe(Route.tier([{ modelId: "a", escalate: "priority" }]), Route.orElse(Route.tier([{ modelId: "b" }])))

  it.effect("countEscalations false: the escalated attempt that ran is outside the budget", () =>
    Effect.gen(function*() {
      const { calls, exit } = yield* once(Policy.make(ab, { attempts: 2, countEscalations: false }), { models: { a: always("ThrottlingException"), b: {} } })
      // a, a at priority (not counted), then b: 3 attempts on a budget of 2
      assert.deepStrictEqual(calls, ["a default ThrottlingException", "a priority ThrottlingException", "b default success"])
      assert.isTrue(Exit.isSuccess(exit))
    }))

  it.effect("a policy without the field (written before it) counts escalations", () =>
    Effect.gen(function*() {
      const { countEscalations: _, ...older } = Policy.make(ab, { attempts: 2 })
      const { calls } = yield* once(older, { models: { a: always("ThrottlingException"), b: {} } })
      assert.deepStrictEqual(calls, ["a default ThrottlingException", "a priority ThrottlingException"])
    }))

  it.effect("countEscalations true (the default): the escalation is one of the attempts", () =>
    Effect.gen(function*() {
      const { calls, exit } = yield* once(Policy.make(ab, { attempts: 2 }), { models: { a: always("ThrottlingException"), b: {} } })
      assert.deepStrictEqual(calls, ["a default ThrottlingException", "a priority ThrottlingException"])
      assert.strictEqual(errorOf(exit).reason._tag, "AttemptsExhausted")
    }))

  it.effect("countEscalations false: an escalation a guard refused earns no attempt", () =>
    Effect.gen(function*() {
      const policy = Policy.make(
        Route.tier([{ modelId: "a", escalate: "priority", weight: 100 }, { modelId: "b", weight: 10 }, { modelId: "c", weight: 1 }]),
        { attempts: 2, countEscalations: false, selector: Selector.ordered, guards: [...Policy.defaultGuards, keepOut("a", "priority")] }
      )
      const { calls, exit } = yield* once(policy, { models: { a: always("ThrottlingException"), b: always("ServiceUnavailableException"), c: {} } })
      // a, its escalation refused, then b: the two attempts of the budget, c never tried
      assert.deepStrictEqual(calls, ["a default ThrottlingException", "b default ServiceUnavailableException"])
      assert.strictEqual(errorOf(exit).reason._tag, "AttemptsExhausted")
    }))

  it.effect("countEscalations false: a refused escalation at the budget's end ends the request, attempts exhausted", () =>
    Effect.gen(function*() {
      const policy = Policy.make(
        Route.tier([{ modelId: "b", weight: 100 }, { modelId: "a", escalate: "priority", weight: 10 }, { modelId: "c", weight: 1 }]),
        { attempts: 2, countEscalations: false, selector: Selector.ordered, guards: [...Policy.defaultGuards, keepOut("a", "priority")] }
      )
      const { calls, exit } = yield* once(policy, { models: { a: always("ThrottlingException"), b: always("ServiceUnavailableException"), c: {} } })
      // b, then a, whose escalation a guard refuses: the budget is spent, c never tried
      assert.deepStrictEqual(calls, ["b default ServiceUnavailableException", "a default ThrottlingException"])
      assert.strictEqual(errorOf(exit).reason._tag, "AttemptsExhausted")
    }))
})

describe("an escalation after an error the policy does not fail over on", () => {
  const ab = pipe(Route.tier([{ modelId: "a", escalate: "priority" }]), Route.orElse(Route.tier([{ modelId: "b" }])))
  const noFailover = Policy.mapClassification(Policy.override("Throttled", { retrySame: 0, failover: false }))

  it.effect("a guard refuses it: the request fails fast, never on another model", () =>
    Effect.gen(function*() {
      const policy = pipe(Policy.make(ab, { guards: [...Policy.defaultGuards, keepOut("a", "priority")] }), noFailover)
      const { calls, exit } = yield* once(policy, { models: { a: throttledOnce, b: {} } })
      assert.deepStrictEqual(calls, ["a default ThrottlingException"])
      assert.strictEqual(errorOf(exit).reason._tag, "Failed")
    }))

  it.effect("a stream with hedging: no hedge to another model beside the escalated attempt", () =>
    Effect.gen(function*() {
      const policy = pipe(Policy.make(ab), noFailover, Policy.withHedge(Policy.hedge({ after: "50 millis", budget: 1 })))
      const { calls, exit } = yield* once(
        policy,
        { models: { a: { firstToken: 300, ...throttledOnce }, b: {} } },
        (mux) => MuxStream.collect(mux.converseStream(request))
      )
      assert.deepStrictEqual(calls, ["a default ThrottlingException", "a priority success"])
      assert.isTrue(Exit.isSuccess(exit))
    }))

  it.effect("a stream with hedging: no hedge beside a same-model retry either", () =>
    Effect.gen(function*() {
      const policy = pipe(
        Policy.make(pipe(Route.tier([{ modelId: "a" }]), Route.orElse(Route.tier([{ modelId: "b" }])))),
        Policy.mapClassification(Policy.override("ServiceQuotaExceeded", { retrySame: 1, failover: false })),
        Policy.withHedge(Policy.hedge({ after: "50 millis", budget: 1 }))
      )
      const { calls, exit } = yield* once(
        policy,
        { models: { a: { firstToken: 300, faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ServiceQuotaExceededException" } }] }, b: {} } },
        (mux) => MuxStream.collect(mux.converseStream(request))
      )
      assert.deepStrictEqual(calls, ["a default ServiceQuotaExceededException", "a default success"])
      assert.isTrue(Exit.isSuccess(exit))
    }))
})
