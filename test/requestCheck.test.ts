// Run-time checks of a request and its per-call options (for JavaScript callers): the pure
// functions, and the mux failing with InvalidRequest before any call reaches the (real-SDK) fake.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Stream } from "effect"
import * as fc from "fast-check"
import { BedrockMux, type ConverseOptions, type StreamOptions } from "../src/BedrockMux.ts"
import {
  converseOptionKeys,
  converseProblems,
  fullConverseProblems,
  fullStreamProblems,
  streamOptionKeys,
  streamProblems
} from "../src/internal/requestCheck.ts"
import { editDistance } from "../src/internal/schema.ts"
import type { MuxError } from "../src/MuxError.ts"
import { FakeBedrock } from "../src/testing/index.ts"

const hello = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }] }

describe("converseProblems / streamProblems (pure)", () => {
  it("a valid request with valid options has no problem", () => {
    assert.deepStrictEqual(converseProblems(hello, undefined), [])
    assert.deepStrictEqual(converseProblems(hello, {}), [])
    assert.deepStrictEqual(
      converseProblems(hello, { label: "x", deadline: "5 seconds", tenant: "t", waitForRecovery: true, waitForQuota: false }),
      []
    )
    assert.deepStrictEqual(
      streamProblems(hello, { firstTokenTimeout: 100, stallTimeout: "1 second", onInterrupt: "restart", hedge: { after: "p95", budget: 0 } }),
      []
    )
    assert.deepStrictEqual(streamProblems(hello, { hedge: true, deadline: undefined }), [])
  })

  it("unknown option keys: the closest known key, or the allowed ones", () => {
    assert.deepStrictEqual(converseProblems(hello, { labl: "x", deadlin: 5 }), [
      "labl: unknown key; did you mean `label`?",
      "deadlin: unknown key; did you mean `deadline`?"
    ])
    assert.deepStrictEqual(converseProblems(hello, { signal: 1 }), [
      "signal: unknown key; allowed: `label`, `deadline`, `tenant`, `waitForRecovery`, `waitForQuota`"
    ])
    // a streaming option given to converse is unknown there
    assert.deepStrictEqual(converseProblems(hello, { stallTimeout: 1 }), [
      "stallTimeout: unknown key; allowed: `label`, `deadline`, `tenant`, `waitForRecovery`, `waitForQuota`"
    ])
    assert.deepStrictEqual(streamProblems(hello, { stalTimeout: 1, hedge: { afer: "p95" } }), [
      "stalTimeout: unknown key; did you mean `stallTimeout`?",
      "hedge.afer: unknown key; did you mean `after`?"
    ])
  })

  it("wrong types and out-of-range values, every one, with what was given", () => {
    assert.deepStrictEqual(converseProblems(hello, { label: 3, tenant: {}, waitForRecovery: "yes", waitForQuota: 1, deadline: "soon" }), [
      "label: expected a string, got 3",
      "tenant: expected a string, got {}",
      "waitForRecovery: expected a boolean, got \"yes\"",
      "waitForQuota: expected a boolean, got 1",
      "deadline: expected a positive duration (milliseconds as a number, a Duration, or a string like \"30 seconds\" or \"500 millis\"), got \"soon\""
    ])
    assert.deepStrictEqual(converseProblems(hello, { deadline: 0 }), ["deadline: expected a positive duration, got 0"])
    assert.deepStrictEqual(converseProblems(hello, { deadline: Number.NaN }).length, 1)
    assert.deepStrictEqual(streamProblems(hello, { hedge: "fast", onInterrupt: "retry" }), [
      "onInterrupt: expected \"fail\" or \"restart\", got \"retry\"",
      "hedge: expected true, false or { after, budget }, got \"fast\""
    ])
    assert.deepStrictEqual(streamProblems(hello, { hedge: { after: "later", budget: "half" } }), [
      "hedge.after: expected a positive duration or \"p95\" (milliseconds as a number, a Duration, or a string like \"30 seconds\" or \"500 millis\"), got \"later\"",
      "hedge.budget: expected a share in [0, 1], got \"half\""
    ])
  })

  it("options that are not an object; a request that is not one", () => {
    assert.deepStrictEqual(converseProblems(hello, null), ["options: expected an object, got null"])
    assert.deepStrictEqual(streamProblems(hello, "fast"), ["options: expected an object, got \"fast\""])
    assert.deepStrictEqual(converseProblems(null, undefined), ["the request must be an object, got null"])
    assert.deepStrictEqual(converseProblems({ ...hello, modelId: "m" }, {}), [
      "modelId: the mux chooses the model; leave modelId out (use a route label to steer)"
    ])
  })

  it("property: a one-edit typo of an option key is reported with a suggestion no farther than the key", () => {
    const keyAndTypo = fc.constantFrom(...streamOptionKeys).chain((key) =>
      fc.tuple(fc.nat({ max: key.length - 1 }), fc.constantFrom("x", "q")).map(([i, c]) => [key, key.slice(0, i) + c + key.slice(i + 1)] as const)
    )
    fc.assert(
      fc.property(keyAndTypo, fc.boolean(), ([key, typo], stream) => {
        const keys: ReadonlyArray<string> = stream ? streamOptionKeys : converseOptionKeys
        fc.pre(!keys.includes(typo) && keys.includes(key))
        const problems = (stream ? streamProblems : converseProblems)(hello, { [typo]: undefined })
        assert.strictEqual(problems.length, 1)
        const m = /^(.+): unknown key; did you mean `(.+)`\?$/.exec(problems[0]!)
        assert.isNotNull(m, problems[0])
        assert.strictEqual(m![1], typo)
        assert.isAtMost(editDistance(typo, m![2]!), editDistance(typo, key))
      }),
      { seed: 42, numRuns: 300 }
    )
  })

  it("the shortcut agrees with the full check on values the property does not draw: hidden keys, getters, arrays, proxies", () => {
    const hidden = Object.defineProperty({}, "deadline", { value: "soon", enumerable: false })
    class Getter {
      get stallTimeout() {
        return 0
      }
    }
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { label: "x" })
    const proxy = new Proxy({}, { get: (_t, k) => (k === "tenant" ? 7 : undefined) })
    const arrayRequest = Object.assign([], { messages: hello.messages })
    const bareArray = Object.setPrototypeOf([], null) as unknown
    // a key converse does not know, read by nobody: only listed, never called
    const throwing = { get hedge(): unknown {
      throw new Error("read")
    } }
    const trapping = new Proxy({}, { getPrototypeOf: () => {
      throw new Error("trap")
    } })
    const cases: ReadonlyArray<readonly [unknown, unknown]> = [
      [hello, hidden],
      [hello, new Getter()],
      [hello, bare],
      [hello, proxy],
      [arrayRequest, undefined],
      [hello, bareArray],
      [hello, trapping]
    ]
    for (const [r, o] of cases) {
      assert.deepStrictEqual(converseProblems(r, o), fullConverseProblems(r, o))
      assert.deepStrictEqual(streamProblems(r, o), fullStreamProblems(r, o))
    }
    // and what the full check says of them
    assert.deepStrictEqual(converseProblems(hello, hidden).length, 1)
    assert.deepStrictEqual(streamProblems(hello, new Getter()), ["stallTimeout: expected a positive duration, got 0"])
    assert.deepStrictEqual(converseProblems(hello, bare), [])
    assert.deepStrictEqual(converseProblems(arrayRequest, undefined).length, 1)
    assert.deepStrictEqual(converseProblems(hello, bareArray).length, 1)
    assert.deepStrictEqual(converseProblems(hello, throwing), fullConverseProblems(hello, throwing))
    assert.deepStrictEqual(converseProblems(hello, throwing).length, 1)
  })

  it("property: the shortcut for the common call agrees with the full check", () => {
    // options built from the known keys (and some unknown ones) with values of every kind, right and wrong
    const value = fc.oneof(
      fc.constant(undefined),
      fc.string(),
      fc.boolean(),
      fc.integer({ min: -5, max: 5 }),
      fc.constantFrom("5 seconds", "nope", "fail", "restart", "p95"),
      fc.record({ after: fc.constantFrom(1, 0, "p95", "x"), budget: fc.constantFrom(0, 0.5, 2) }, { requiredKeys: [] }),
      fc.anything()
    )
    const key = fc.constantFrom(...streamOptionKeys, "labl", "modelId", "toString", "hedge ")
    const options = fc.oneof(fc.constant(undefined), fc.dictionary(key, value, { maxKeys: 4 }), fc.anything())
    const request = fc.oneof(
      fc.constant(hello),
      fc.record({ messages: fc.oneof(fc.constant([]), fc.constant(hello.messages), fc.anything()), modelId: fc.constantFrom(undefined, "m") }, { requiredKeys: [] }),
      fc.anything()
    )
    fc.assert(
      fc.property(request, options, (r, o) => {
        assert.deepStrictEqual(converseProblems(r, o), fullConverseProblems(r, o))
        assert.deepStrictEqual(streamProblems(r, o), fullStreamProblems(r, o))
      }),
      { seed: 11, numRuns: 3000 }
    )
  })

  it("property: never throws, whatever a JavaScript caller passes", () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBigInt: true }), fc.anything({ withNullPrototype: true, withBigInt: true }), (r, o) => {
        for (const f of [converseProblems, streamProblems]) {
          const problems = f(r, o)
          assert.isArray(problems)
          for (const p of problems) assert.isString(p)
        }
      }),
      { seed: 3, numRuns: 500 }
    )
  })
})

describe("BedrockMux: bad per-call options fail with InvalidRequest before any call (real SDK over the fake)", () => {
  const layer = BedrockMux.layer({ models: [{ modelId: "a" }, { modelId: "b", isFallback: true }] }).pipe(
    Layer.provideMerge(FakeBedrock.layerRuntime({ models: { a: {}, b: {} } }))
  )
  const invalid = (exit: Exit.Exit<unknown, MuxError>): ReadonlyArray<string> => {
    assert.isTrue(Exit.isFailure(exit))
    const error = (exit as Exit.Failure<unknown, MuxError>).cause.reasons[0]
    assert.strictEqual(error?._tag, "Fail")
    const e = (error as { error: MuxError }).error
    if (e.reason._tag !== "InvalidRequest") return assert.fail(e.reason._tag)
    assert.deepStrictEqual(e.attempts, [])
    assert.include(e.message, e.reason.problems.join("; "))
    return e.reason.problems
  }

  it.effect("converse: unknown keys, wrong types, ranges, all listed; a good call still goes through", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const fake = yield* FakeBedrock.FakeBedrock
      const bad = { labl: "x", deadline: 0, waitForQuota: "yes" } as unknown as ConverseOptions
      assert.deepStrictEqual(invalid(yield* Effect.exit(mux.converse(hello, bad))), [
        "labl: unknown key; did you mean `label`?",
        "waitForQuota: expected a boolean, got \"yes\"",
        "deadline: expected a positive duration, got 0"
      ])
      assert.deepStrictEqual(invalid(yield* Effect.exit(mux.converse(hello, null as unknown as ConverseOptions))), [
        "options: expected an object, got null"
      ])
      assert.strictEqual(fake.attempts().length, 0)
      const ok = yield* mux.converse(hello, { deadline: "10 seconds" })
      assert.strictEqual(ok.routing.modelId, "a")
      assert.strictEqual(fake.attempts().length, 1)
    }).pipe(Effect.provide(layer)))

  it.effect("converseStream: the streaming options too", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const fake = yield* FakeBedrock.FakeBedrock
      const bad = { stalTimeout: "2 seconds", hedge: { after: 0, budgte: 1 } } as unknown as StreamOptions
      const exit = yield* Effect.exit(Stream.runDrain(mux.converseStream(hello, bad)))
      assert.deepStrictEqual(invalid(exit), [
        "stalTimeout: unknown key; did you mean `stallTimeout`?",
        "hedge.budgte: unknown key; did you mean `budget`?",
        "hedge.after: expected a positive duration or \"p95\", got 0"
      ])
      assert.strictEqual(fake.attempts().length, 0)
    }).pipe(Effect.provide(layer)))
})
