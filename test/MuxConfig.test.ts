import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer } from "effect"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux, BedrockRuntimes } from "../src/BedrockMux.ts"
import * as BedrockSimulator from "../src/BedrockSimulator.ts"
import * as MuxConfig from "../src/MuxConfig.ts"
import * as Policy from "../src/Policy.ts"

const ms = Duration.toMillis

const problemsOf = (input: unknown) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(MuxConfig.decode(input))
    assert.instanceOf(error, MuxConfig.MuxConfigError)
    return error
  })

const sim = BedrockSimulator.BedrockSimulator.layer({ models: { "*": {} }, unknownModels: "default" })

describe("MuxConfig: the aws-samples shape decodes unchanged", () => {
  it.effect("a bare array of { modelId, weight, isFallback }", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode([
        { modelId: "amazon.nova-2-lite-v1:0", weight: 100, isFallback: false },
        { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
      ])
      assert.deepStrictEqual(
        config.models.map((m) => [m.modelId, m.target, m.tier, m.weight, m.client]),
        [["amazon.nova-2-lite-v1:0", "amazon.nova-2-lite-v1:0", 0, 100, undefined], ["amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", 1, 30, undefined]]
      )
      // everything else is the default policy
      assert.strictEqual(config.policy.attempts, Policy.defaults.attempts)
      assert.strictEqual(ms(config.policy.timeout), 30_000)
      assert.strictEqual(ms(config.policy.deadline), 60_000)
      assert.strictEqual(config.policy.selection, Policy.weighted)
      assert.strictEqual(config.policy.breaker.failures, 5)
      assert.strictEqual(ms(config.policy.breaker.window), 60_000)
      assert.strictEqual(ms(config.policy.breaker.cooldown), 30_000)
      assert.strictEqual(config.name, "default")
      assert.strictEqual(config.routes.size, 0)
    }))

  it.effect("{ models, defaultTimeoutMs, maxRetries }: maxRetries n is n + 1 attempts", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({
        models: [{ modelId: "a", weight: 100, isFallback: false }, { modelId: "b", weight: 30, isFallback: true }],
        defaultTimeoutMs: 12_000,
        maxRetries: 3
      })
      assert.strictEqual(config.policy.attempts, 4)
      assert.strictEqual(ms(config.policy.timeout), 12_000)
      assert.deepStrictEqual(config.models.map((m) => m.tier), [0, 1])
      // weight and isFallback may be left out: weight 1, tier 0
      const minimal = yield* MuxConfig.decode([{ modelId: "only" }])
      assert.deepStrictEqual([minimal.models[0]!.weight, minimal.models[0]!.tier], [1, 0])
      assert.strictEqual((yield* MuxConfig.decode({ models: [{ modelId: "a" }], maxRetries: 0 })).policy.attempts, 1)
    }))

  it("decodeSync agrees with decode and throws MuxConfigError", () => {
    assert.strictEqual(MuxConfig.decodeSync([{ modelId: "a" }]).models.length, 1)
    assert.throws(() => MuxConfig.decodeSync({ models: [] }), /Invalid mux config/)
  })
})

describe("MuxConfig: durations, routes, decisions", () => {
  it.effect("durations are milliseconds or Effect duration strings", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({
        models: [{ modelId: "a", timeout: "2 seconds" }, { modelId: "b", timeout: 750, tier: 1 }],
        timeout: 1500,
        deadline: "20 seconds",
        breaker: { failures: 3, window: "1 minute", cooldown: 10_000, cooldownMax: "2 minutes", halfOpen: 2, rampUp: "30 seconds" },
        backoff: { base: "250 millis", max: 4000, times: 3 }
      })
      assert.strictEqual(ms(config.models[0]!.timeout!), 2000)
      assert.strictEqual(ms(config.models[1]!.timeout!), 750)
      assert.strictEqual(ms(config.policy.timeout), 1500)
      assert.strictEqual(ms(config.policy.deadline), 20_000)
      const b = config.policy.breaker
      assert.deepStrictEqual(
        [b.failures, ms(b.window), ms(b.cooldown), ms(b.cooldownMax), b.halfOpen, ms(b.rampUp)],
        [3, 60_000, 10_000, 120_000, 2, 30_000]
      )
      assert.isDefined(config.policy.backoff)
    }))

  it.effect("routes and labels become index lists; selection and decisions decode into policy values", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({
        models: [
          { modelId: "a" },
          { modelId: "b", labels: ["summarize"] },
          { modelId: "c", client: "west", isFallback: true }
        ],
        routes: { summarize: ["c"], chat: ["a", "west:c"] },
        selection: "ordered",
        decisions: { AccessDenied: { failover: true } },
        waitForRecovery: true
      })
      assert.deepStrictEqual(config.routes.get("summarize"), [2, 1])
      assert.deepStrictEqual(config.routes.get("chat"), [0, 2])
      assert.strictEqual(config.models[2]!.target, "west:c")
      assert.strictEqual(config.policy.selection, Policy.ordered)
      assert.isTrue(config.policy.waitForRecovery)
      const denied = new BedrockError.BedrockError({ reason: new BedrockError.AccessDenied(), message: "x" })
      const throttled = new BedrockError.BedrockError({ reason: new BedrockError.Throttled({ kind: "requests" }), message: "x" })
      assert.isTrue(config.policy.classification(denied).failover)
      assert.deepStrictEqual(config.policy.classification(throttled), BedrockError.decisionOf(throttled.reason))
    }))

  it.effect("the same modelId on different clients is two models", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({ models: [{ modelId: "a" }, { modelId: "a", client: "west" }] })
      assert.deepStrictEqual(config.models.map((m) => m.target), ["a", "west:a"])
    }))
})

describe("MuxConfig: a bad config lists every problem, with its path and the allowed range", () => {
  it.effect("schema and cross-field problems together, in one error", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({
        models: [
          { modelId: "a", weight: -1, isFallback: true }, // negative weight (schema)
          { modelId: "a", isFallback: true, timeout: "2 minutes" }, // duplicate; attempt timeout > deadline (per model)
          { modelId: "b", tier: 2 } // no tier-0 model at all: no primary
        ],
        timeout: "90 seconds", // attempt timeout > deadline (global)
        deadline: "60 seconds",
        breaker: { cooldown: "10 seconds", cooldownMax: "5 seconds" }, // cooldownMax < cooldown
        routes: { summarize: ["a", "zzz"] } // unknown model in a route
      })
      const byPath = new Map(error.problems.map((p) => [p.path, p.message]))
      assert.deepStrictEqual([...byPath.keys()].sort(), [
        "breaker.cooldownMax",
        "models",
        "models[0].weight",
        "models[1].modelId",
        "models[1].timeout",
        "routes.summarize[1]",
        "timeout"
      ])
      assert.strictEqual(error.problems.length, 7)
      assert.match(byPath.get("models[0].weight")!, /greater than or equal to 0/)
      assert.match(byPath.get("models[1].modelId")!, /duplicate model "a".*models\[0\]/)
      assert.match(byPath.get("models")!, /no primary model/)
      assert.match(byPath.get("models[1].timeout")!, /120000 ms.*60000 ms; allowed: 0 < timeout <= deadline/)
      assert.match(byPath.get("timeout")!, /90000 ms.*60000 ms; allowed: 0 < timeout <= deadline/)
      assert.match(byPath.get("breaker.cooldownMax")!, /allowed: cooldownMax >= cooldown/)
      assert.match(byPath.get("routes.summarize[1]")!, /unknown model "zzz"; allowed: a modelId of models\[\]/)
      // the message lists them all too
      for (const p of error.problems) assert.include(error.message, `${p.path}: ${p.message}`)
      assert.match(error.message, /^Invalid mux config \(7 problems\)/)
    }))

  it.effect("every schema problem at once (several bad fields), each with its path", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({
        models: [{ modelId: "", weight: "heavy" }, { modelId: "b", tier: -1, contextWindow: 0 }],
        attempts: 0,
        deadline: "soon",
        selection: "random",
        breaker: { failures: 0, halfOpen: 1.5 },
        onStoreError: "maybe"
      })
      const paths = error.problems.map((p) => p.path).sort()
      assert.deepStrictEqual(paths, [
        "attempts",
        "breaker.failures",
        "breaker.halfOpen",
        "deadline",
        "models[0].modelId",
        "models[0].weight",
        "models[1].contextWindow",
        "models[1].tier",
        "onStoreError",
        "selection"
      ])
    }))

  it.effect("isFallback with tier 0, and attempts contradicting maxRetries", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({
        models: [{ modelId: "a" }, { modelId: "b", isFallback: true, tier: 0 }],
        attempts: 3,
        maxRetries: 5
      })
      assert.deepStrictEqual(error.problems.map((p) => p.path).sort(), ["maxRetries", "models[1].tier"])
    }))

  it.effect("a model of weight 0 is not a primary; an empty or missing model list is rejected", () =>
    Effect.gen(function*() {
      const zero = yield* problemsOf([{ modelId: "a", weight: 0 }, { modelId: "b", isFallback: true }])
      assert.deepStrictEqual(zero.problems.map((p) => p.path), ["models"])
      const empty = yield* problemsOf({ models: [] })
      assert.isTrue(empty.problems.some((p) => p.path === "models"))
      const missing = yield* problemsOf({})
      assert.deepStrictEqual(missing.problems.map((p) => p.path), ["models"])
      const notAnObject = yield* problemsOf("models")
      assert.isAtLeast(notAnObject.problems.length, 1)
    }))
})

describe("MuxConfig at layer build", () => {
  const build = (config: MuxConfig.Input, clients?: Layer.Layer<never, unknown>) =>
    Effect.flip(Effect.scoped(Layer.build(
      BedrockMux.layer(config).pipe(
        clients === undefined ? (l) => l : Layer.provide(clients),
        Layer.provide(sim)
      )
    )))

  it.effect("an unknown `client` key fails the layer, listing the allowed keys", () =>
    Effect.gen(function*() {
      const none = yield* build({ models: [{ modelId: "a" }, { modelId: "a", client: "west", isFallback: true }] })
      assert.instanceOf(none, MuxConfig.MuxConfigError)
      const noneProblems = (none as MuxConfig.MuxConfigError).problems
      assert.deepStrictEqual(noneProblems.map((p) => p.path), ["models[1].client"])
      assert.match(noneProblems[0]!.message, /unknown client "west"; allowed: none provided/)

      const some = yield* build(
        { models: [{ modelId: "a", client: "west" }, { modelId: "b", client: "north", isFallback: true }] },
        BedrockRuntimes.layer({ east: sim, south: sim })
      )
      const problems = (some as MuxConfig.MuxConfigError).problems
      assert.deepStrictEqual(problems.map((p) => p.path), ["models[0].client", "models[1].client"])
      assert.match(problems[0]!.message, /unknown client "west"; allowed: "east", "south"/)
      assert.match(problems[1]!.message, /unknown client "north"; allowed: "east", "south"/)
    }))

  it.effect("a known client key builds", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.deepStrictEqual(mux.config.models.map((m) => m.target), ["a", "east:a"])
    }).pipe(
      Effect.provide(
        BedrockMux.layer({ models: [{ modelId: "a" }, { modelId: "a", client: "east", isFallback: true }] }).pipe(
          Layer.provide(BedrockRuntimes.layer({ east: sim })),
          Layer.provide(sim)
        )
      )
    ))

  it.effect("a bad config fails BedrockMux.layer with MuxConfigError", () =>
    Effect.gen(function*() {
      const error = yield* build({ models: [{ modelId: "a", weight: -5 }] })
      assert.instanceOf(error, MuxConfig.MuxConfigError)
    }))
})

describe("BedrockMux.layerConfig", () => {
  const withEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))
  const json = JSON.stringify({ models: [{ modelId: "a", weight: 100, isFallback: false }, { modelId: "b", weight: 30, isFallback: true }], maxRetries: 2 })

  it.effect("reads the JSON config from MODEL_CONFIG", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.deepStrictEqual(mux.config.models.map((m) => [m.modelId, m.tier, m.weight]), [["a", 0, 100], ["b", 1, 30]])
      assert.strictEqual(mux.config.policy.attempts, 3)
    }).pipe(Effect.provide(BedrockMux.layerConfig("MODEL_CONFIG").pipe(Layer.provide(sim), Layer.provide(withEnv({ MODEL_CONFIG: json }))))))

  it.effect("reads another variable when named", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.strictEqual(mux.config.models.length, 2)
    }).pipe(Effect.provide(BedrockMux.layerConfig("MUX_JSON").pipe(Layer.provide(sim), Layer.provide(withEnv({ MUX_JSON: json }))))))

  const failure = (env: Record<string, string>) =>
    Effect.flip(Effect.scoped(Layer.build(BedrockMux.layerConfig("MODEL_CONFIG").pipe(Layer.provide(sim), Layer.provide(withEnv(env))))))

  it.effect("malformed JSON fails with a ConfigError; a missing variable too", () =>
    Effect.gen(function*() {
      const malformed = yield* failure({ MODEL_CONFIG: "{ models: [" })
      assert.strictEqual(malformed._tag, "ConfigError")
      assert.match(String(malformed), /MODEL_CONFIG/)
      const missing = yield* failure({})
      assert.strictEqual(missing._tag, "ConfigError")
    }))

  it.effect("well-formed JSON with a bad config fails with MuxConfigError listing its problems", () =>
    Effect.gen(function*() {
      const error = yield* failure({ MODEL_CONFIG: JSON.stringify([{ modelId: "a", weight: -1 }, { modelId: "a" }]) })
      assert.instanceOf(error, MuxConfig.MuxConfigError)
      assert.deepStrictEqual((error as MuxConfig.MuxConfigError).problems.map((p) => p.path), ["models[0].weight", "models[1].modelId"])
    }))
})
