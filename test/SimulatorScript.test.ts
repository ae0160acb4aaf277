import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import * as SimulatorScript from "../src/SimulatorScript.ts"

const ms = (d: Duration.Duration | undefined): number => {
  assert.isDefined(d)
  return Duration.toMillis(d!)
}

/** The example of the module's documentation. */
const documented = {
  seed: "demo",
  models: {
    "primary": {
      latency: 200,
      rpm: 3,
      faults: [{ when: { from: "10 seconds", to: "70 seconds" }, do: { kind: "error", error: "ServiceUnavailableException" } }]
    },
    "fallback": { latency: { uniform: [100, 300] } }
  }
} as const

const problemsOf = (input: unknown) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(SimulatorScript.decode(input))
    assert.instanceOf(error, SimulatorScript.ScriptError)
    assert.strictEqual(error._tag, "ScriptError")
    return error.problems
  })

describe("SimulatorScript.decode", () => {
  it.effect("the documented example decodes", () =>
    Effect.gen(function*() {
      const script = yield* SimulatorScript.decode(documented)
      assert.strictEqual(script.seed, "demo")
      assert.deepStrictEqual(Object.keys(script.models), ["primary", "fallback"])
      const primary = script.models["primary"]!
      assert.strictEqual(ms(primary.latency as Duration.Duration), 200)
      assert.strictEqual(primary.rpm, 3)
      assert.strictEqual(primary.faults!.length, 1)
      const fault = primary.faults![0]!
      assert.strictEqual(ms(fault.when!.from), 10_000)
      assert.strictEqual(ms(fault.when!.to), 70_000)
      assert.deepStrictEqual(fault.do, { kind: "error", error: "ServiceUnavailableException" })
      const fallback = script.models["fallback"]!.latency as { readonly uniform: readonly [Duration.Duration, Duration.Duration] }
      assert.deepStrictEqual(fallback.uniform.map(Duration.toMillis), [100, 300])
    }))

  it.effect("durations are milliseconds or Effect duration strings", () =>
    Effect.gen(function*() {
      const script = yield* SimulatorScript.decode({
        models: {
          m: {
            latency: "1.5 seconds",
            firstToken: 250,
            faults: [
              { when: { from: "1 minute", to: 90_000 }, do: { kind: "error", error: "ThrottlingException", retryAfter: "2 seconds", after: 5 } },
              { do: { kind: "slow", latency: { normal: { mean: "3 seconds", stddev: 100 } } } }
            ]
          }
        }
      })
      const m = script.models["m"]!
      assert.strictEqual(ms(m.latency as Duration.Duration), 1500)
      assert.strictEqual(ms(m.firstToken as Duration.Duration), 250)
      const [first, second] = m.faults!
      assert.strictEqual(ms(first!.when!.from), 60_000)
      assert.strictEqual(ms(first!.when!.to), 90_000)
      const action = first!.do
      assert.strictEqual(action.kind, "error")
      if (action.kind === "error") {
        assert.strictEqual(ms(action.retryAfter), 2000)
        assert.strictEqual(ms(action.after), 5)
      }
      const slow = second!.do
      assert.strictEqual(slow.kind, "slow")
      if (slow.kind === "slow") {
        const normal = (slow.latency as { readonly normal: { readonly mean: Duration.Duration; readonly stddev: Duration.Duration } }).normal
        assert.strictEqual(Duration.toMillis(normal.mean), 3000)
        assert.strictEqual(Duration.toMillis(normal.stddev), 100)
      }
    }))

  it.effect("every fault kind and `when` form decodes", () =>
    Effect.gen(function*() {
      const faults = [
        { when: { calls: 1 }, do: { kind: "error", error: "ModelErrorException", originalStatusCode: 503, message: "x" } },
        { when: { calls: [2, 4] }, do: { kind: "hang" } },
        { when: { calls: { from: 5, to: 6 } }, do: { kind: "cut", afterTokens: 2 } },
        { when: { calls: { from: 7 } }, do: { kind: "stall", afterTokens: 0 } },
        { when: { probability: 0.5 }, do: { kind: "streamError", afterTokens: 1, error: "modelStreamErrorException", originalStatusCode: 500 } },
        { when: { probability: 0 }, do: { kind: "malformed", afterTokens: 3 } },
        { when: { probability: 1 }, do: { kind: "noMetadata" } },
        { do: { kind: "emptyOutput" } },
        { do: { kind: "slow", firstToken: { uniform: ["1 second", "2 seconds"] } } }
      ]
      const script = yield* SimulatorScript.decode({
        seed: 42,
        unknownModels: "default",
        models: { "*": { tokensPerSecond: 12.5, answer: "a b", inputTokens: 0, maxOutputTokens: 10, tpm: 1000, contextWindow: 200_000, faults } }
      })
      assert.strictEqual(script.seed, 42)
      assert.strictEqual(script.unknownModels, "default")
      assert.deepStrictEqual(script.models["*"]!.faults!.map((f) => f.do.kind), faults.map((f) => f.do.kind))
      assert.deepStrictEqual(script.models["*"]!.faults![2]!.when, { calls: { from: 5, to: 6 } })
    }))

  it.effect("a malformed script fails with every problem and its path", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        models: {
          m: {
            latency: -5,
            rpm: 0,
            tokensPerSecond: 0,
            faults: [
              { when: { probability: 1.5 }, do: { kind: "explode" } },
              { when: { calls: 0 }, do: { kind: "cut", afterTokens: -1 } },
              { do: { kind: "error", error: "TeapotException" } }
            ]
          },
          ok: { latency: "200 millis" },
          n: { latency: "soon" }
        },
        unknownModels: "maybe"
      })
      const paths = problems.map((p) => p.path)
      assert.deepStrictEqual([...paths].sort(), [
        "models.m.faults[0].do",
        "models.m.faults[0].when.probability",
        "models.m.faults[1].do.afterTokens",
        "models.m.faults[1].when.calls",
        "models.m.faults[2].do.error",
        "models.m.latency",
        "models.m.rpm",
        "models.m.tokensPerSecond",
        "models.n.latency",
        "unknownModels"
      ])
      assert.strictEqual(problems.length, 10)
      const byPath = new Map(problems.map((p) => [p.path, p.message]))
      assert.match(byPath.get("models.m.latency")!, /non-negative duration/)
      assert.match(byPath.get("models.m.rpm")!, /greater than or equal to 1/)
      assert.match(byPath.get("models.m.tokensPerSecond")!, /greater than 0/)
      assert.match(byPath.get("models.m.faults[0].when.probability")!, /between 0 and 1/)
      // an unknown kind matches no member of the action union: the message lists the kinds
      assert.match(byPath.get("models.m.faults[0].do")!, /"kind": "error"/)
      assert.match(byPath.get("models.m.faults[0].do")!, /"kind": "slow"/)
      assert.match(byPath.get("models.m.faults[1].do.afterTokens")!, /greater than or equal to 0/)
      assert.match(byPath.get("models.m.faults[2].do.error")!, /ThrottlingException/)
      assert.match(byPath.get("unknownModels")!, /"ResourceNotFoundException" \| "default"/)
      for (const p of problems) assert.isAbove(p.message.length, 0)
    }))

  it.effect("the ScriptError message lists every problem", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SimulatorScript.decode({ models: { m: { rpm: 0, tpm: -1 } } }))
      assert.strictEqual(error.problems.length, 2)
      assert.match(error.message, /^Invalid simulator script:/)
      assert.include(error.message, "models.m.rpm: ")
      assert.include(error.message, "models.m.tpm: ")
    }))

  it.effect("non-objects and missing models are reported at their path", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual((yield* problemsOf(null)).map((p) => p.path), ["(root)"])
      assert.deepStrictEqual((yield* problemsOf({})).map((p) => p.path), ["models"])
      assert.deepStrictEqual((yield* problemsOf({ models: { m: { faults: {} } } })).map((p) => p.path), ["models.m.faults"])
      assert.deepStrictEqual((yield* problemsOf({ models: { m: {} }, seed: Infinity })).map((p) => p.path), ["seed"])
    }))

  it("decodeSync returns the script or throws ScriptError", () => {
    const script = SimulatorScript.decodeSync(documented)
    assert.strictEqual(script.models["primary"]!.rpm, 3)
    let thrown: unknown
    try {
      SimulatorScript.decodeSync({ models: { m: { rpm: 0, faults: [{ when: { probability: 2 }, do: { kind: "hang" } }] } } })
    } catch (e) {
      thrown = e
    }
    assert.instanceOf(thrown, SimulatorScript.ScriptError)
    const error = thrown as SimulatorScript.ScriptError
    assert.deepStrictEqual(error.problems.map((p) => p.path).sort(), ["models.m.faults[0].when.probability", "models.m.rpm"])
  })

  it("the exported Script schema agrees with decode", () => {
    const exit = Effect.runSyncExit(SimulatorScript.decode({ models: { m: { latency: [1] } } }))
    assert.isTrue(Exit.isFailure(exit))
    assert.strictEqual(SimulatorScript.statusOf.ThrottlingException, 429)
    assert.strictEqual(SimulatorScript.statusOf.ServiceQuotaExceededException, 400)
    assert.strictEqual(SimulatorScript.ErrorNames.length, Object.keys(SimulatorScript.statusOf).length)
  })
})
