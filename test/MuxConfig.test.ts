import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Duration, Effect, Layer, Random } from "effect"
import * as fc from "fast-check"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux, BedrockRuntimes } from "../src/BedrockMux.ts"
import { createMultiplexer } from "../src/createMultiplexer.ts"
import * as BedrockSimulator from "../src/BedrockSimulator.ts"
import { closest, editDistance, unknownKeyProblems } from "../src/internal/schema.ts"
import * as Guard from "../src/Guard.ts"
import * as MuxConfig from "../src/MuxConfig.ts"
import * as Policy from "../src/Policy.ts"
import * as Route from "../src/Route.ts"
import * as Selector from "../src/Selector.ts"
import { runFor, success } from "./support/mux.ts"
import { delaysOf, throttled, unavailable } from "./support/schedule.ts"

const ms = Duration.toMillis

const problemsOf = (input: unknown) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(MuxConfig.decode(input))
    assert.instanceOf(error, MuxConfig.MuxConfigError)
    return error
  })

/** The settings of a built-in guard of the decoded policy. */
const breakerOf = (p: Policy.Policy) => p.guards.find((g) => g.name === "breaker")!.settings as Guard.BreakerSettings
const cooldownsOf = (p: Policy.Policy) => p.guards.find((g) => g.name === "cooldown")!.settings as Guard.CooldownSettings
/** A route as the targets of its tiers. */
const tiersOf = (r: Route.Route | undefined) => r?.tiers.map((t) => t.map((m) => m.target))

const sim = BedrockSimulator.BedrockSimulator.layer({ models: { "*": {} }, unknownModels: "default" })

describe("MuxConfig: the deadline when only a timeout is given", () => {
  it.effect("the aws-samples JSON with defaultTimeoutMs: 120000 decodes: the deadline is the timeout × the attempts", () =>
    Effect.gen(function*() {
      const models = [{ modelId: "a", weight: 100, isFallback: false }]
      const config = yield* MuxConfig.decode({ models, defaultTimeoutMs: 120_000, maxRetries: 3 })
      assert.deepStrictEqual([ms(config.timeout), ms(config.deadline)], [120_000, 480_000])
      // MuxConfig.decodeSync too (it threw "longer than the deadline 60000 ms")
      assert.strictEqual(ms(MuxConfig.decodeSync({ models, defaultTimeoutMs: 120_000 }).deadline), 480_000)
      // the same through BedrockMux.layerConfig reading MODEL_CONFIG
      const policy = yield* Effect.map(Effect.service(BedrockMux), (m) => m.policy).pipe(
        Effect.provide(BedrockMux.layerConfig().pipe(Layer.provide(sim))),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { MODEL_CONFIG: JSON.stringify({ models, defaultTimeoutMs: 120_000 }) } })))
      )
      assert.strictEqual(ms(policy.deadline), 480_000)
    }))

  it.effect("a short timeout keeps the default 60 s; a per-model or `timeout` key counts; attempts or maxRetries set the factor", () =>
    Effect.gen(function*() {
      const deadline = (input: MuxConfig.Input) => Effect.map(MuxConfig.decode(input), (c) => ms(c.deadline))
      assert.strictEqual(yield* deadline({ models: [{ modelId: "a" }], timeout: 5_000 }), 60_000)
      assert.strictEqual(yield* deadline({ models: [{ modelId: "a" }] }), 60_000)
      assert.strictEqual(yield* deadline({ models: [{ modelId: "a", timeout: "40 seconds" }], attempts: 2 }), 80_000)
      assert.strictEqual(yield* deadline({ models: [{ modelId: "a" }], timeout: "1 minute" }), 240_000)
      assert.strictEqual(yield* deadline({ models: [{ modelId: "a" }], timeout: 30_000, maxRetries: 1 }), 60_000)
    }))

  it.effect("an explicit deadline is kept, and one shorter than a timeout is still a problem", () =>
    Effect.gen(function*() {
      assert.strictEqual(ms((yield* MuxConfig.decode({ models: [{ modelId: "a" }], timeout: 1_000, deadline: 5_000 })).deadline), 5_000)
      const error = yield* problemsOf({ models: [{ modelId: "a", timeout: 20_000 }], defaultTimeoutMs: 120_000, deadline: 90_000 })
      assert.deepStrictEqual(error.problems.map((p) => p.path), ["defaultTimeoutMs"])
      assert.match(error.problems[0]!.message, /120000 ms is longer than the deadline 90000 ms/)
    }))

  it("property: without a deadline, it is max(60 s, the longest timeout × the attempts), and every timeout fits in it", () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 1, max: 600_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 600_000 }), { nil: undefined }),
        fc.array(fc.option(fc.integer({ min: 1, max: 600_000 }), { nil: undefined }), { minLength: 1, maxLength: 3 }),
        fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
        (timeout, defaultTimeoutMs, modelTimeouts, attempts) => {
          const config = MuxConfig.decodeSync({
            models: modelTimeouts.map((t, i) => ({ modelId: `m${i}`, ...(t !== undefined ? { timeout: t } : {}) })),
            ...(timeout !== undefined ? { timeout } : {}),
            ...(defaultTimeoutMs !== undefined ? { defaultTimeoutMs } : {}),
            ...(attempts !== undefined ? { attempts } : {})
          })
          const longest = Math.max(0, ...[timeout, defaultTimeoutMs, ...modelTimeouts].filter((t): t is number => t !== undefined))
          const expected = Math.max(60_000, longest * (attempts ?? 4))
          assert.strictEqual(ms(config.deadline), expected)
          assert.isAtMost(ms(config.timeout), expected)
          for (const m of Policy.models(config)) if (m.timeout !== undefined) assert.isAtMost(ms(m.timeout), expected)
        }
      ),
      { seed: 7, numRuns: 200 }
    )
  })
})

describe("MuxConfig: the aws-samples shape decodes unchanged", () => {
  it.effect("a bare array of { modelId, weight, isFallback }", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode([
        { modelId: "amazon.nova-2-lite-v1:0", weight: 100, isFallback: false },
        { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
      ])
      assert.deepStrictEqual(
        Policy.models(config).map((m) => [m.modelId, m.target, m.tier, m.weight, m.client]),
        [["amazon.nova-2-lite-v1:0", "amazon.nova-2-lite-v1:0", 0, 100, undefined], ["amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", 1, 30, undefined]]
      )
      // the fallback is the route's second tier
      assert.deepStrictEqual(tiersOf(config.route), [["amazon.nova-2-lite-v1:0"], ["amazon.nova-pro-v1:0"]])
      // everything else is the default policy
      assert.strictEqual(config.attempts, Policy.defaults.attempts)
      assert.strictEqual(ms(config.timeout), 30_000)
      assert.strictEqual(ms(config.deadline), 60_000)
      assert.strictEqual(config.selector, Selector.weighted)
      assert.deepStrictEqual(config.guards.map((g) => g.name), ["breaker", "cooldown", "quota"])
      assert.deepStrictEqual(breakerOf(config), Guard.defaultBreaker)
      assert.strictEqual(breakerOf(config).failures, 5)
      assert.strictEqual(ms(breakerOf(config).window), 60_000)
      // by design: an open breaker probes every 5 s (was: a 30 s cooldown)
      assert.strictEqual(ms(breakerOf(config).probeInterval), 5_000)
      assert.strictEqual(ms(breakerOf(config).probeIntervalMax), 300_000)
      assert.deepStrictEqual(cooldownsOf(config), Guard.defaultCooldown)
      assert.strictEqual(config.name, "default")
      assert.strictEqual(config.routes.size, 0)
      assert.deepStrictEqual([config.tenants.limits.size, config.tenants.default], [0, undefined])
      assert.deepStrictEqual(Policy.check(config), [])
    }))

  it.effect("{ models, defaultTimeoutMs, maxRetries }: maxRetries n is n + 1 attempts", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({
        models: [{ modelId: "a", weight: 100, isFallback: false }, { modelId: "b", weight: 30, isFallback: true }],
        defaultTimeoutMs: 12_000,
        maxRetries: 3
      })
      assert.strictEqual(config.attempts, 4)
      assert.strictEqual(ms(config.timeout), 12_000)
      assert.deepStrictEqual(Policy.models(config).map((m) => m.tier), [0, 1])
      // weight and isFallback may be left out: weight 1, tier 0
      const minimal = yield* MuxConfig.decode([{ modelId: "only" }])
      assert.deepStrictEqual([Policy.models(minimal)[0]!.weight, Policy.models(minimal)[0]!.tier], [1, 0])
      assert.strictEqual((yield* MuxConfig.decode({ models: [{ modelId: "a" }], maxRetries: 0 })).attempts, 1)
    }))

  it("decodeSync agrees with decode and throws MuxConfigError", () => {
    assert.strictEqual(Policy.models(MuxConfig.decodeSync([{ modelId: "a" }])).length, 1)
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
      const models = Policy.models(config)
      assert.strictEqual(ms(models[0]!.timeout!), 2000)
      assert.strictEqual(ms(models[1]!.timeout!), 750)
      assert.strictEqual(ms(config.timeout), 1500)
      assert.strictEqual(ms(config.deadline), 20_000)
      // `cooldown` / `cooldownMax` are the older names of the probe interval and its cap
      const b = breakerOf(config)
      assert.deepStrictEqual(
        [b.failures, ms(b.window), ms(b.probeInterval), ms(b.probeIntervalMax), b.halfOpen, ms(b.rampUp)],
        [3, 60_000, 10_000, 120_000, 2, 30_000]
      )
      assert.isDefined(config.backoff)
      assert.deepStrictEqual([ms(config.backoffSettings!.base), ms(config.backoffSettings!.max), config.backoffSettings!.times], [250, 4000, 3])
    }))

  it.effect("routes and labels become routes (tiers from the models' tiers); selection and decisions decode into policy values", () =>
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
      // by design a label's route is a Route: its tier-0 models first, its fallbacks after
      // (was: an index list in the order written, "c" then the labelled "b")
      assert.deepStrictEqual(tiersOf(config.routes.get("summarize")), [["b"], ["west:c"]])
      assert.deepStrictEqual(tiersOf(config.routes.get("chat")), [["a"], ["west:c"]])
      assert.deepStrictEqual([...config.routes.keys()].sort(), ["chat", "summarize"])
      // the routes hold the pool's own models, and the default route has every model
      const models = Policy.models(config)
      for (const r of config.routes.values()) for (const m of Route.models(r)) assert.include(models, m)
      assert.deepStrictEqual(tiersOf(config.route), [["a", "b"], ["west:c"]])
      assert.strictEqual(models[2]!.target, "west:c")
      assert.strictEqual(config.selector, Selector.ordered)
      assert.isTrue(config.waitForRecovery)
      const denied = new BedrockError.BedrockError({ reason: new BedrockError.AccessDenied(), message: "x" })
      const throttled = new BedrockError.BedrockError({ reason: new BedrockError.Throttled({ kind: "requests" }), message: "x" })
      assert.isTrue(config.classification(denied).failover)
      assert.deepStrictEqual(config.classification(throttled), BedrockError.decisionOf(throttled.reason))
    }))

  it.effect("the same modelId on different clients is two models", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({ models: [{ modelId: "a" }, { modelId: "a", client: "west" }] })
      assert.deepStrictEqual(Policy.models(config).map((m) => m.target), ["a", "west:a"])
    }))
})

describe("MuxConfig: the new keys (probe interval, cooldown base, prices, selectors)", () => {
  it.effect("breaker.probeInterval / probeIntervalMax decode as the breaker's probe interval and its cap", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({ models: [{ modelId: "a" }], breaker: { probeInterval: "2 seconds", probeIntervalMax: 90_000 } })
      const b = breakerOf(config)
      assert.deepStrictEqual([ms(b.probeInterval), ms(b.probeIntervalMax)], [2_000, 90_000])
      // the rest stays the default
      assert.deepStrictEqual([b.failures, b.window, b.halfOpen, b.rampUp], [5, Guard.defaultBreaker.window, 1, Guard.defaultBreaker.rampUp])
      // one of them alone: the other is the default
      const only = breakerOf(yield* MuxConfig.decode({ models: [{ modelId: "a" }], breaker: { probeIntervalMax: "10 minutes" } }))
      assert.deepStrictEqual([ms(only.probeInterval), ms(only.probeIntervalMax)], [5_000, 600_000])
    }))

  it.effect("cooldown / cooldownMax are still read as the older names, alone or next to the other pair's new name", () =>
    Effect.gen(function*() {
      const old = breakerOf(yield* MuxConfig.decode({ models: [{ modelId: "a" }], breaker: { cooldown: 3_000, cooldownMax: "1 minute" } }))
      assert.deepStrictEqual([ms(old.probeInterval), ms(old.probeIntervalMax)], [3_000, 60_000])
      const mixed = breakerOf(yield* MuxConfig.decode({ models: [{ modelId: "a" }], breaker: { probeInterval: "2 seconds", cooldownMax: "30 seconds" } }))
      assert.deepStrictEqual([ms(mixed.probeInterval), ms(mixed.probeIntervalMax)], [2_000, 30_000])
      const mixed2 = breakerOf(yield* MuxConfig.decode({ models: [{ modelId: "a" }], breaker: { cooldown: "2 seconds", probeIntervalMax: "30 seconds" } }))
      assert.deepStrictEqual([ms(mixed2.probeInterval), ms(mixed2.probeIntervalMax)], [2_000, 30_000])
    }))

  it.effect("giving both names of one setting is a problem at the older name", () =>
    Effect.gen(function*() {
      const both = yield* problemsOf({ models: [{ modelId: "a" }], breaker: { probeInterval: "2 seconds", cooldown: "2 seconds" } })
      assert.deepStrictEqual(both.problems, [{ path: "breaker.cooldown", message: "cooldown is the older name of probeInterval; give one of them" }])
      const bothMax = yield* problemsOf({ models: [{ modelId: "a" }], breaker: { probeIntervalMax: "1 minute", cooldownMax: "1 minute" } })
      assert.deepStrictEqual(bothMax.problems, [{ path: "breaker.cooldownMax", message: "cooldownMax is the older name of probeIntervalMax; give one of them" }])
      const all = yield* problemsOf({ models: [{ modelId: "a" }], breaker: { probeInterval: 1, cooldown: 1, probeIntervalMax: 2, cooldownMax: 2 } })
      assert.deepStrictEqual(all.problems.map((p) => p.path), ["breaker.cooldown", "breaker.cooldownMax"])
    }))

  it.effect("the probe interval's range: above 0, at most its cap (the cap may be left at its default)", () =>
    Effect.gen(function*() {
      const zero = yield* problemsOf({ models: [{ modelId: "a" }], breaker: { probeInterval: 0 } })
      assert.deepStrictEqual(zero.problems, [{ path: "breaker.probeInterval", message: "probeInterval must be positive; allowed: 0 < probeInterval <= probeIntervalMax" }])
      const above = yield* problemsOf({ models: [{ modelId: "a" }], breaker: { probeInterval: "2 minutes", probeIntervalMax: "1 minute" } })
      assert.deepStrictEqual(above.problems, [{
        path: "breaker.probeIntervalMax",
        message: "probeIntervalMax 60000 ms is shorter than the probe interval 120000 ms; allowed: probeIntervalMax >= probeInterval"
      }])
      // longer than the default cap (5 minutes) without a cap of its own
      const aboveDefault = yield* problemsOf({ models: [{ modelId: "a" }], breaker: { probeInterval: "10 minutes" } })
      assert.deepStrictEqual(aboveDefault.problems.map((p) => p.path), ["breaker.probeIntervalMax"])
      assert.match(aboveDefault.problems[0]!.message, /300000 ms is shorter than the probe interval 600000 ms/)
      // equal is allowed
      const equal = breakerOf(yield* MuxConfig.decode({ models: [{ modelId: "a" }], breaker: { probeInterval: "1 minute", probeIntervalMax: 60_000 } }))
      assert.strictEqual(ms(equal.probeIntervalMax), 60_000)
    }))

  it.effect("cooldowns.base: the first throttle cooldown (default 500 ms); the caps per kind as before", () =>
    Effect.gen(function*() {
      const c = cooldownsOf(yield* MuxConfig.decode({ models: [{ modelId: "a" }], cooldowns: { base: "250 millis", tokens: "1 minute" } }))
      assert.deepStrictEqual([c.base, c.requests, c.tokens, c.daily, c.unknown].map(ms), [250, 10_000, 60_000, 3_600_000, 10_000])
      const d = cooldownsOf(yield* MuxConfig.decode({ models: [{ modelId: "a" }], cooldowns: { requests: 2_000 } }))
      assert.deepStrictEqual([d.base, d.requests].map(ms), [500, 2_000])
      const bad = yield* problemsOf({ models: [{ modelId: "a" }], cooldowns: { base: "soon" } })
      assert.deepStrictEqual(bad.problems.map((p) => p.path), ["cooldowns.base"])
    }))

  it.effect("models[].price: USD per 1,000 tokens, input and output, on the model; both needed, neither negative", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({ models: [{ modelId: "a", price: { input: 0.06, output: 0.24 } }, { modelId: "b", isFallback: true }] })
      assert.deepStrictEqual(Policy.models(config).map((m) => m.price), [{ input: 0.06, output: 0.24 }, undefined])
      const free = yield* MuxConfig.decode({ models: [{ modelId: "a", price: { input: 0, output: 0 } }] })
      assert.deepStrictEqual(Policy.models(free)[0]!.price, { input: 0, output: 0 })
      const bad = yield* problemsOf({ models: [{ modelId: "a", price: { input: -1, output: "cheap" } }, { modelId: "b", price: { input: 1 } }] })
      assert.deepStrictEqual(bad.problems.map((p) => p.path).sort(), ["models[0].price.input", "models[0].price.output", "models[1].price.output"])
      // decodeModel (addModel) reads it too
      const m = yield* MuxConfig.decodeModel({ modelId: "c", price: { input: 1, output: 2 } })
      assert.deepStrictEqual(m.price, { input: 1, output: 2 })
    }))

  it.effect("selection: each name decodes into the selector of that name", () =>
    Effect.gen(function*() {
      for (const selection of ["weighted", "ordered", "latency", "cheapest"] as const) {
        const config = yield* MuxConfig.decode({ models: [{ modelId: "a" }], selection })
        assert.strictEqual(config.selector.name, selection)
      }
      assert.strictEqual((yield* MuxConfig.decode({ models: [{ modelId: "a" }], selection: "weighted" })).selector, Selector.weighted)
      assert.strictEqual((yield* MuxConfig.decode({ models: [{ modelId: "a" }], selection: "ordered" })).selector, Selector.ordered)
      assert.strictEqual((yield* MuxConfig.decode({ models: [{ modelId: "a" }] })).selector.name, "weighted")
      const bad = yield* problemsOf({ models: [{ modelId: "a" }], selection: "fastest" })
      assert.deepStrictEqual(bad.problems.map((p) => p.path), ["selection"])
    }))

  it.effect("the decoded config is a Policy: BedrockMux.layer runs it, and the policy option transforms it", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.strictEqual(mux.policy.selector.name, "cheapest")
      assert.strictEqual(mux.policy.attempts, 7)
      assert.strictEqual(ms(breakerOf(mux.policy).probeInterval), 1_500)
    }).pipe(
      Effect.provide(
        BedrockMux.layer(
          { models: [{ modelId: "a", price: { input: 1, output: 1 } }], selection: "cheapest", breaker: { probeInterval: 1_500 } },
          { policy: Policy.withAttempts(7) }
        ).pipe(Layer.provide(sim))
      )
    ))
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
        breaker: { cooldown: "10 seconds", cooldownMax: "5 seconds" }, // cooldownMax < cooldown (the older names)
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
      // by design the range names the new keys (the path is the key written)
      assert.match(byPath.get("breaker.cooldownMax")!, /^cooldownMax 5000 ms is shorter than the probe interval 10000 ms; allowed: probeIntervalMax >= probeInterval$/)
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
      // the layer checks the policy it runs (JSON or code), whose models have no JSON index: the path names the target
      assert.deepStrictEqual(noneProblems.map((p) => p.path), ["models[west:a].client"])
      assert.match(noneProblems[0]!.message, /unknown client "west"; allowed: none provided/)

      const some = yield* build(
        { models: [{ modelId: "a", client: "west" }, { modelId: "b", client: "north", isFallback: true }] },
        BedrockRuntimes.layer({ east: sim, south: sim })
      )
      const problems = (some as MuxConfig.MuxConfigError).problems
      assert.deepStrictEqual(problems.map((p) => p.path), ["models[west:a].client", "models[north:b].client"])
      assert.match(problems[0]!.message, /unknown client "west"; allowed: "east", "south"/)
      assert.match(problems[1]!.message, /unknown client "north"; allowed: "east", "south"/)
    }))

  it.effect("a known client key builds", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.deepStrictEqual((yield* mux.models).map((m) => m.target), ["a", "east:a"])
      assert.deepStrictEqual(Policy.models(mux.policy).map((m) => m.target), ["a", "east:a"])
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
      assert.deepStrictEqual((yield* mux.models).map((m) => [m.modelId, m.tier, m.weight]), [["a", 0, 100], ["b", 1, 30]])
      assert.strictEqual(mux.policy.attempts, 3)
    }).pipe(Effect.provide(BedrockMux.layerConfig("MODEL_CONFIG").pipe(Layer.provide(sim), Layer.provide(withEnv({ MODEL_CONFIG: json }))))))

  it.effect("reads another variable when named", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      assert.strictEqual((yield* mux.models).length, 2)
    }).pipe(Effect.provide(BedrockMux.layerConfig("MUX_JSON").pipe(Layer.provide(sim), Layer.provide(withEnv({ MUX_JSON: json }))))))

  const failure = (env: Record<string, string>) =>
    Effect.flip(Effect.scoped(Layer.build(BedrockMux.layerConfig("MODEL_CONFIG").pipe(Layer.provide(sim), Layer.provide(withEnv(env))))))

  it.effect("a missing variable fails saying \"MODEL_CONFIG is not set\"; malformed JSON says it is not JSON", () =>
    Effect.gen(function*() {
      const missing = yield* failure({})
      assert.instanceOf(missing, MuxConfig.MuxConfigError)
      const missingProblems = (missing as MuxConfig.MuxConfigError).problems
      assert.deepStrictEqual(missingProblems.map((p) => p.path), [""])
      assert.match(missingProblems[0]!.message, /^MODEL_CONFIG is not set/)
      assert.match(missing.message, /\n {2}MODEL_CONFIG is not set/)
      const malformed = yield* failure({ MODEL_CONFIG: "{ models: [" })
      assert.instanceOf(malformed, MuxConfig.MuxConfigError)
      assert.match((malformed as MuxConfig.MuxConfigError).problems[0]!.message, /^MODEL_CONFIG is not valid JSON: /)
    }))

  it.effect("without a provider of the caller's, process.env as it is when each layer is built (Effect's default provider is a copy taken at its first use)", () =>
    Effect.gen(function*() {
      const name = "EFFECT_BEDROCK_MUX_TEST_CONFIG"
      const build = Effect.scoped(Effect.flatMap(Layer.build(BedrockMux.layerConfig(name).pipe(Layer.provide(sim))), (ctx) => Context.get(ctx, BedrockMux).models))
      const set = (value: string | undefined) =>
        Effect.sync(() => {
          if (value === undefined) delete process.env[name]
          else process.env[name] = value
        })
      yield* Effect.ensuring(
        Effect.gen(function*() {
          yield* set(json)
          assert.strictEqual((yield* build).length, 2)
          yield* set(JSON.stringify({ models: [{ modelId: "a", isFallbak: true }] }))
          const typo = yield* Effect.flip(build)
          assert.deepStrictEqual((typo as MuxConfig.MuxConfigError).problems.map((p) => p.path), ["models[0].isFallbak"])
          yield* set(undefined)
          const unset = yield* Effect.flip(build)
          assert.match((unset as MuxConfig.MuxConfigError).problems[0]!.message, new RegExp(`^${name} is not set`))
        }),
        set(undefined)
      )
    }))

  it.effect("the variable's own name is the one reported", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Layer.build(
        BedrockMux.layerConfig("MUX_JSON").pipe(Layer.provide(sim), Layer.provide(withEnv({ MODEL_CONFIG: json })))
      )))
      assert.match((error as MuxConfig.MuxConfigError).problems[0]!.message, /^MUX_JSON is not set/)
    }))

  it.effect("a typo in the variable's config fails the layer with the unknown key", () =>
    Effect.gen(function*() {
      const error = yield* failure({ MODEL_CONFIG: JSON.stringify({ models: [{ modelId: "a" }, { modelId: "b", isFallbak: true }] }) })
      assert.deepStrictEqual((error as MuxConfig.MuxConfigError).problems, [
        { path: "models[1].isFallbak", message: "unknown key; did you mean `isFallback`?" }
      ])
    }))

  it.effect("well-formed JSON with a bad config fails with MuxConfigError listing its problems", () =>
    Effect.gen(function*() {
      const error = yield* failure({ MODEL_CONFIG: JSON.stringify([{ modelId: "a", weight: -1 }, { modelId: "a" }]) })
      assert.instanceOf(error, MuxConfig.MuxConfigError)
      assert.deepStrictEqual((error as MuxConfig.MuxConfigError).problems.map((p) => p.path), ["models[0].weight", "models[1].modelId"])
    }))
})

// --- unknown keys -------------------------------------------------------------------------------

/** The issue's config: three typos, each of which silently changed behaviour before. */
const typos = {
  models: [{ modelId: "a" }, { modelId: "b", isFallbak: true }],
  deadlin: "5 seconds",
  stream: { stalTimeout: "2 seconds" }
}
const typoProblems = [
  { path: "deadlin", message: "unknown key; did you mean `deadline`?" },
  { path: "models[1].isFallbak", message: "unknown key; did you mean `isFallback`?" },
  { path: "stream.stalTimeout", message: "unknown key; did you mean `stallTimeout`?" }
]

describe("MuxConfig: unknown keys are problems, at every depth, with a suggestion", () => {
  it.effect("the issue's config: every typo with its path and the key it meant", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf(typos)
      assert.deepStrictEqual(error.problems, typoProblems)
      assert.throws(() => MuxConfig.decodeSync(typos), /models\[1\]\.isFallbak: unknown key; did you mean `isFallback`\?/)
      // corrected, it decodes: the fallback is a fallback
      const fixed = yield* MuxConfig.decode({
        models: [{ modelId: "a" }, { modelId: "b", isFallback: true }],
        deadline: "5 seconds",
        stream: { stallTimeout: "2 seconds" }
      })
      assert.deepStrictEqual(Policy.models(fixed).map((m) => m.tier), [0, 1])
      assert.strictEqual(ms(fixed.deadline), 5_000)
      assert.strictEqual(ms(fixed.stream.stall), 2_000)
    }))

  it("createMultiplexer (the Promise facade) throws it at construction", () => {
    const thrown = (() => {
      try {
        createMultiplexer(typos.models as never, { deadlin: "5 seconds", bedrockRuntime: sim } as never)
      } catch (e) {
        return e
      }
    })()
    assert.instanceOf(thrown, MuxConfig.MuxConfigError)
    assert.deepStrictEqual((thrown as MuxConfig.MuxConfigError).problems, [typoProblems[0], typoProblems[1]])
  })

  it.effect("BedrockMux.layer rejects it too", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Layer.build(BedrockMux.layer(typos as MuxConfig.Input).pipe(Layer.provide(sim)))))
      assert.instanceOf(error, MuxConfig.MuxConfigError)
      assert.deepStrictEqual((error as MuxConfig.MuxConfigError).problems, typoProblems)
    }))

  it.effect("every section: models, breaker, backoff, stream, hedge, cooldowns, tenants, defaultTenant, decisions", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({
        models: [{ modelId: "a", wieght: 2 }],
        breaker: { failurs: 3 },
        backoff: { base: 100, max: 1000, times: 2, jiter: true },
        stream: { hedge: { budgte: 0.1 } },
        cooldowns: { request: 1000 },
        tenants: { T: { rpn: 1 } },
        defaultTenant: { tmp: 5 },
        decisions: { Throttld: { failover: false }, AccessDenied: { failOver: true } },
        selecton: "ordered"
      })
      assert.deepStrictEqual(error.problems.map((p) => [p.path, p.message]).sort(), [
        ["backoff.jiter", "unknown key; allowed: `base`, `max`, `times`"],
        ["breaker.failurs", "unknown key; did you mean `failures`?"],
        ["cooldowns.request", "unknown key; did you mean `requests`?"],
        ["decisions.AccessDenied.failOver", "unknown key; did you mean `failover`?"],
        ["decisions.Throttld", "unknown key; did you mean `Throttled`?"],
        ["defaultTenant.tmp", "unknown key; did you mean `tpm`?"],
        ["models[0].wieght", "unknown key; did you mean `weight`?"],
        ["selecton", "unknown key; did you mean `selection`?"],
        ["stream.hedge.budgte", "unknown key; did you mean `budget`?"],
        ["tenants.T.rpn", "unknown key; did you mean `rpm`?"]
      ])
    }))

  it.effect("nothing close: the allowed keys are listed", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({ models: [{ modelId: "a", region: "us-west-2" }], stream: { hedge: { xyz: 1 } } })
      assert.deepStrictEqual(error.problems, [
        {
          path: "models[0].region",
          message:
            "unknown key; allowed: `modelId`, `weight`, `isFallback`, `tier`, `timeout`, `contextWindow`, `labels`, `client`, `rpm`, `tpm`, `maxTokens`, `escalate`, `price`"
        },
        { path: "stream.hedge.xyz", message: "unknown key; allowed: `after`, `budget`" }
      ])
    }))

  it.effect("an unknown decisions tag: every reason tag may be suggested; nothing close lists them all", () =>
    Effect.gen(function*() {
      for (const tag of BedrockError.reasonTags) {
        const typo = tag.slice(0, -1) // one letter short
        const error = yield* problemsOf({ models: [{ modelId: "a" }], decisions: { [typo]: { failover: true } } })
        assert.strictEqual(error.problems.length, 1)
        assert.strictEqual(error.problems[0]!.path, `decisions.${typo}`)
        assert.match(error.problems[0]!.message, /^unknown key; did you mean `\w+`\?$/)
      }
      const far = yield* problemsOf({ models: [{ modelId: "a" }], decisions: { Outage: {} } })
      assert.strictEqual(far.problems[0]!.message, `unknown key; allowed: ${BedrockError.reasonTags.map((t) => `\`${t}\``).join(", ")}`)
    }))

  it.effect("unknown keys and range errors, all in one error", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({
        models: [{ modelId: "a", weight: -1, isFallbak: true }, { modelId: "b", timeout: 0 }],
        timeout: 0,
        deadlin: "5 seconds",
        stream: { stalTimeout: 1, firstTokenTimeout: 0, onInterrupt: 5 }
      })
      assert.deepStrictEqual(error.problems.map((p) => p.path).sort(), [
        "deadlin",
        "models[0].isFallbak",
        "models[0].weight",
        "models[1].timeout",
        "stream.firstTokenTimeout",
        "stream.onInterrupt",
        "stream.stalTimeout",
        "timeout"
      ])
    }))

  // every place a key can go, with the keys allowed there
  const sites: ReadonlyArray<readonly [string, ReadonlyArray<string>, (key: string) => unknown]> = [
    ["", Object.keys(MuxConfig.schema.fields), (k) => ({ models: [{ modelId: "a" }], [k]: 1 })],
    ["models[0]", ["modelId", "weight", "isFallback", "tier", "timeout", "contextWindow", "labels", "client", "rpm", "tpm", "maxTokens", "escalate", "price"], (k) => ({ models: [{ modelId: "a", [k]: 1 }] })],
    ["models[0].price", ["input", "output"], (k) => ({ models: [{ modelId: "a", price: { input: 1, output: 1, [k]: 1 } }] })],
    ["breaker", ["failures", "window", "probeInterval", "probeIntervalMax", "cooldown", "cooldownMax", "halfOpen", "rampUp"], (k) => ({ models: [{ modelId: "a" }], breaker: { [k]: 1 } })],
    ["stream", ["firstTokenTimeout", "stallTimeout", "metadataGrace", "onInterrupt", "hedge"], (k) => ({ models: [{ modelId: "a" }], stream: { [k]: 1 } })],
    ["cooldowns", ["base", "requests", "tokens", "daily", "unknown"], (k) => ({ models: [{ modelId: "a" }], cooldowns: { [k]: 1 } })],
    ["retry", ["base", "max"], (k) => ({ models: [{ modelId: "a" }], retry: { base: 100, [k]: 1 } })],
    ["decisions", [...BedrockError.reasonTags], (k) => ({ models: [{ modelId: "a" }], decisions: { [k]: {} } })],
    ["decisions.Network", ["retrySame", "failover", "breaker", "largerContextOnly"], (k) => ({ models: [{ modelId: "a" }], decisions: { Network: { [k]: 1 } } })]
  ]
  /** one random edit of `key`: drop, double, swap two neighbours, or change a letter */
  const typoOf = (key: string) =>
    fc.tuple(fc.nat({ max: key.length - 1 }), fc.constantFrom("drop", "double", "swap", "change"), fc.constantFrom("x", "q", "z")).map(
      ([i, edit, c]) => {
        switch (edit) {
          case "drop":
            return key.slice(0, i) + key.slice(i + 1)
          case "double":
            return key.slice(0, i + 1) + key.slice(i)
          case "swap":
            return i + 1 < key.length ? key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2) : key.slice(0, i) + c
          case "change":
            return key.slice(0, i) + c + key.slice(i + 1)
        }
      }
    )

  it("property: a one-edit typo of a key, anywhere, is one problem at its path suggesting a key one edit away", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: sites.length - 1 }).chain((s) =>
          fc.constantFrom(...sites[s]![1]).chain((key) => typoOf(key).map((typo) => [s, key, typo] as const))
        ),
        ([s, key, typo]) => {
          const [path, allowed, build] = sites[s]!
          fc.pre(!allowed.includes(typo) && typo.length > 0)
          const r = Effect.runSync(Effect.result(MuxConfig.decode(build(typo))))
          assert.isTrue(r._tag === "Failure", `${path}.${typo} was accepted`)
          const unknown = (r as { failure: MuxConfig.MuxConfigError }).failure.problems.filter((p) => p.message.startsWith("unknown key"))
          assert.deepStrictEqual(unknown.map((p) => p.path), [path === "" ? typo : `${path}.${typo}`])
          const suggested = /did you mean `(.+)`\?$/.exec(unknown[0]!.message)
          assert.isNotNull(suggested, `${typo} (from ${key}): ${unknown[0]!.message}`)
          assert.include(allowed, suggested![1])
          // the original is one edit away: the suggestion is never farther
          assert.isAtMost(editDistance(typo, suggested![1]!), editDistance(typo, key))
        }
      ),
      { seed: 1010, numRuns: 400 }
    )
  })
})

describe("unknownKeyProblems, editDistance, closest", () => {
  it("the issue's example, the root path, and values that are not objects", () => {
    assert.deepStrictEqual(unknownKeyProblems({ modelId: "b", isFallbak: true }, ["modelId", "weight", "isFallback"], "models[1]"), [
      { path: "models[1].isFallbak", message: "unknown key; did you mean `isFallback`?" }
    ])
    assert.deepStrictEqual(unknownKeyProblems({ deadlin: 1, models: [] }, ["models", "deadline"], ""), [
      { path: "deadlin", message: "unknown key; did you mean `deadline`?" }
    ])
    assert.deepStrictEqual(unknownKeyProblems({ zzz: 1 }, ["a", "b"], "x"), [{ path: "x.zzz", message: "unknown key; allowed: `a`, `b`" }])
    assert.deepStrictEqual(unknownKeyProblems({ zzz: 1 }, [], ""), [{ path: "zzz", message: "unknown key; no keys are allowed here" }])
    for (const notAnObject of [undefined, null, 3, "s", [1, 2], true]) assert.deepStrictEqual(unknownKeyProblems(notAnObject, ["a"], ""), [])
    assert.deepStrictEqual(unknownKeyProblems({ a: 1, b: 2 }, ["a", "b"], ""), [])
  })

  it("Damerau distance: transpositions and case cost little; far names are not suggested", () => {
    assert.strictEqual(editDistance("weigth", "weight"), 1)
    assert.strictEqual(editDistance("MODELID", "modelId"), 0)
    assert.strictEqual(editDistance("", "abc"), 3)
    assert.strictEqual(closest("modelID", ["modelId", "weight"]), "modelId")
    assert.strictEqual(closest("retries", ["maxRetries", "attempts"]), "maxRetries")
    assert.isUndefined(closest("foo", ["name", "models"]))
    assert.isUndefined(closest("x", ["tier", "rpm"]))
  })

  it("property: a metric on strings (zero on equal, symmetric, at most the longer length)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
        assert.strictEqual(editDistance(a, a), 0)
        assert.strictEqual(editDistance(a, b), editDistance(b, a))
        assert.isAtMost(editDistance(a, b), Math.max(a.length, b.length))
      }),
      { seed: 7, numRuns: 300 }
    )
  })
})

// --- ranges and durations ------------------------------------------------------------------------

describe("MuxConfig: ranges that exclude 0, and how durations may be written", () => {
  it.effect("timeout 0 is rejected as its own range says (global, aws-samples name, per model)", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({ models: [{ modelId: "a", timeout: 0 }], timeout: 0 })
      assert.deepStrictEqual(error.problems, [
        { path: "models[0].timeout", message: "attempt timeout 0 ms is not positive; allowed: 0 < timeout <= deadline" },
        { path: "timeout", message: "attempt timeout 0 ms is not positive; allowed: 0 < timeout <= deadline" }
      ])
      const samples = yield* problemsOf({ models: [{ modelId: "a" }], defaultTimeoutMs: 0 })
      assert.deepStrictEqual(samples.problems.map((p) => p.path), ["defaultTimeoutMs"])
    }))

  it.effect("every other duration whose range excludes 0", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({
        models: [{ modelId: "a" }],
        deadline: 0,
        breaker: { window: 0, cooldown: 0 },
        backoff: { base: 0, max: 100, times: 1 },
        stream: { firstTokenTimeout: 0, stallTimeout: 0, hedge: { after: 0 } }
      })
      assert.deepStrictEqual(error.problems, [
        { path: "deadline", message: "deadline must be positive; allowed: 0 < deadline" },
        { path: "breaker.window", message: "window must be positive; allowed: 0 < window" },
        // the older name, reported as written; the range names the setting it is (probeInterval)
        { path: "breaker.cooldown", message: "cooldown must be positive; allowed: 0 < probeInterval <= probeIntervalMax" },
        { path: "backoff.base", message: "base must be positive; allowed: 0 < base <= max" },
        { path: "stream.firstTokenTimeout", message: "firstTokenTimeout must be positive; allowed: 0 < firstTokenTimeout" },
        { path: "stream.stallTimeout", message: "stallTimeout must be positive; allowed: 0 < stallTimeout" },
        { path: "stream.hedge.after", message: "hedge.after must be positive or \"p95\"; allowed: 0 < after" }
      ])
      const maxBelowBase = yield* problemsOf({ models: [{ modelId: "a" }], backoff: { base: 500, max: 100, times: 1 } })
      assert.deepStrictEqual(maxBelowBase.problems, [{ path: "backoff.max", message: "max 100 ms is shorter than base 500 ms; allowed: max >= base" }])
      // 0 stays allowed where it means "none": ramp-up, metadata grace, throttle cooldowns
      const zeros = yield* MuxConfig.decode({
        models: [{ modelId: "a" }],
        breaker: { rampUp: 0 },
        stream: { metadataGrace: 0 },
        cooldowns: { base: 0, requests: 0, tokens: 0, daily: 0, unknown: 0 }
      })
      assert.strictEqual(ms(breakerOf(zeros).rampUp), 0)
      assert.strictEqual(ms(zeros.stream.metadataGrace), 0)
      const c = cooldownsOf(zeros)
      assert.deepStrictEqual([c.base, c.requests, c.tokens, c.daily, c.unknown].map(ms), [0, 0, 0, 0, 0])
    }))

  it.effect("a duration that is not one names the accepted forms and what was given", () =>
    Effect.gen(function*() {
      const error = yield* problemsOf({ models: [{ modelId: "a" }], deadline: "soon", timeout: "5 secs", breaker: { window: true }, cooldowns: { daily: Number.NaN } })
      const byPath = new Map(error.problems.map((p) => [p.path, p.message]))
      assert.deepStrictEqual([...byPath.keys()].sort(), ["breaker.window", "cooldowns.daily", "deadline", "timeout"])
      for (const message of byPath.values()) {
        assert.include(message, "milliseconds as a number")
        assert.include(message, "\"30 seconds\"")
        assert.include(message, "units: nanos, micros, millis, seconds, minutes, hours, days, weeks")
      }
      assert.match(byPath.get("deadline")!, /got "soon"$/)
      assert.match(byPath.get("timeout")!, /got "5 secs"$/)
      assert.match(byPath.get("cooldowns.daily")!, /got NaN$/)
      const negative = yield* problemsOf({ models: [{ modelId: "a" }], deadline: -5, breaker: { window: "-1 seconds" } })
      assert.deepStrictEqual(negative.problems.map((p) => p.message), ["Expected a non-negative duration, got -5", "Expected a non-negative duration, got \"-1 seconds\""])
    }))

  it.effect("a type error in a section does not hide the range errors of its other fields", () =>
    Effect.gen(function*() {
      const stream = yield* problemsOf({ models: [{ modelId: "a" }], stream: { onInterrupt: 5, firstTokenTimeout: 0, stallTimeout: 0 } })
      assert.deepStrictEqual(stream.problems.map((p) => p.path), ["stream.onInterrupt", "stream.firstTokenTimeout", "stream.stallTimeout"])
      const hedge = yield* problemsOf({ models: [{ modelId: "a" }], stream: { hedge: { budget: 5, after: 0 } } })
      assert.deepStrictEqual(hedge.problems.map((p) => p.path), ["stream.hedge.budget", "stream.hedge.after"])
      const breaker = yield* problemsOf({ models: [{ modelId: "a" }], breaker: { failures: "many", cooldown: "1 minute", cooldownMax: "1 second" } })
      assert.deepStrictEqual(breaker.problems.map((p) => p.path), ["breaker.failures", "breaker.cooldownMax"])
      const backoff = yield* problemsOf({ models: [{ modelId: "a" }], backoff: { times: 0, base: 0, max: 1 } })
      assert.deepStrictEqual(backoff.problems.map((p) => p.path), ["backoff.times", "backoff.base"])
    }))

  it.effect("without a timeout, the attempt timeout is the default cut to the deadline (a short deadline is valid)", () =>
    Effect.gen(function*() {
      const short = yield* MuxConfig.decode({ models: [{ modelId: "a" }], deadline: "5 seconds" })
      assert.strictEqual(ms(short.timeout), 5_000)
      const long = yield* MuxConfig.decode({ models: [{ modelId: "a" }], deadline: "2 minutes" })
      assert.strictEqual(ms(long.timeout), 30_000)
    }))

  it.effect("decisions and backoff are kept as written, for display", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({
        models: [{ modelId: "a" }],
        decisions: { AccessDenied: { failover: true } },
        backoff: { base: "250 millis", max: 4000, times: 3 }
      })
      assert.deepStrictEqual(config.decisions, { AccessDenied: { failover: true } })
      assert.deepStrictEqual([ms(config.backoffSettings!.base), ms(config.backoffSettings!.max), config.backoffSettings!.times], [250, 4000, 3])
      assert.isDefined(config.backoff)
      const plain = yield* MuxConfig.decode({ models: [{ modelId: "a" }] })
      // by design `decisions` is always there (MuxConfig extends Policy): no overrides is {}
      assert.deepStrictEqual(plain.decisions, {})
      assert.isUndefined(plain.backoffSettings)
      assert.isUndefined(plain.backoff)
    }))
})

describe("MuxConfig: retry, the same-model retry schedule", () => {
  const inputs = [unavailable, unavailable, throttled(1_000), unavailable, unavailable, throttled(5_000), unavailable]

  it.effect("without retry: Policy.defaultRetry, and no settings kept", () =>
    Effect.gen(function*() {
      const config = yield* MuxConfig.decode({ models: [{ modelId: "a" }] })
      assert.strictEqual(config.retry, Policy.defaultRetry)
      assert.isUndefined(config.retrySettings)
      assert.strictEqual(MuxConfig.decodeSync([{ modelId: "a" }]).retry, Policy.defaultRetry)
    }))

  it.effect("retry: { base, max? } decodes to Policy.exponentialRetry with the same options: the same delays under one seed", () =>
    Effect.gen(function*() {
      for (const [retry, options] of [
        [{ base: "200 millis" }, { base: "200 millis" }],
        [{ base: 250, max: "1 second" }, { base: 250, max: "1 second" }],
        [{ base: "100 millis", max: 100 }, { base: "100 millis", max: 100 }]
      ] as const) {
        const config = yield* MuxConfig.decode({ models: [{ modelId: "a" }], retry })
        assert.notStrictEqual(config.retry, Policy.defaultRetry)
        const decoded = yield* delaysOf(config.retry, inputs, "retry-json")
        assert.deepStrictEqual(decoded, yield* delaysOf(Policy.exponentialRetry(options), inputs, "retry-json"), JSON.stringify(retry))
        assert.strictEqual(decoded.length, inputs.length)
        // a throttle's retry-after is honoured
        assert.isAtLeast(decoded[2] as number, 1_000)
        assert.isAtLeast(decoded[5] as number, 5_000)
      }
      // the section as written, durations decoded
      const capped = yield* MuxConfig.decode({ models: [{ modelId: "a" }], retry: { base: "250 millis", max: 4000 } })
      assert.deepStrictEqual([ms(capped.retrySettings!.base), ms(capped.retrySettings!.max!)], [250, 4000])
      const uncapped = yield* MuxConfig.decode({ models: [{ modelId: "a" }], retry: { base: 300 } })
      assert.strictEqual(ms(uncapped.retrySettings!.base), 300)
      assert.isUndefined(uncapped.retrySettings!.max)
    }))

  it.effect("the decoded schedule is the one the mux runs: a 500 is retried on the same model after the retry's delay", () =>
    Effect.gen(function*() {
      const script = {
        models: { a: { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "InternalServerException" } }] } }
      } as const
      /** the wait between the failed first attempt's end and the retry's start */
      const waitOf = (config: MuxConfig.Input) =>
        Effect.gen(function*() {
          const mux = yield* BedrockMux
          success(yield* runFor(Effect.exit(mux.converse({ messages: [{ role: "user", content: [{ text: "hi" }] }] }))))
          const [first, retry] = yield* BedrockSimulator.BedrockSimulator.attempts
          assert.deepStrictEqual([first?.modelId, retry?.modelId], ["a", "a"])
          return retry!.start - first!.end!
        }).pipe(
          Effect.provide(BedrockMux.layer(config).pipe(Layer.provideMerge(BedrockSimulator.BedrockSimulator.layer(script)))),
          Random.withSeed("retry-run")
        )
      const slow = yield* waitOf({ models: [{ modelId: "a" }], retry: { base: "2 seconds" } })
      assert.isAtLeast(slow, 1_600 - 1)
      assert.isAtMost(slow, 2_400 + 1)
      const byDefault = yield* waitOf({ models: [{ modelId: "a" }] })
      assert.isAtLeast(byDefault, 80 - 1)
      assert.isAtMost(byDefault, 120 + 1)
    }))

  it.effect("base 0, max shorter than base and a misspelt key are problems with their paths and the allowed range", () =>
    Effect.gen(function*() {
      const zero = yield* problemsOf({ models: [{ modelId: "a" }], retry: { base: 0 } })
      assert.deepStrictEqual(zero.problems, [{ path: "retry.base", message: "base must be positive; allowed: 0 < base <= max" }])
      const below = yield* problemsOf({ models: [{ modelId: "a" }], retry: { base: 500, max: "100 millis" } })
      assert.deepStrictEqual(below.problems, [{ path: "retry.max", message: "max 100 ms is shorter than base 500 ms; allowed: max >= base" }])
      const typo = yield* problemsOf({ models: [{ modelId: "a" }], retry: { bse: "200 millis" } })
      const byPath = Object.fromEntries(typo.problems.map((p) => [p.path, p.message]))
      assert.strictEqual(byPath["retry.bse"], "unknown key; did you mean `base`?")
      // base is required: the misspelt key does not count as it
      assert.include(Object.keys(byPath), "retry.base")
      const far = yield* problemsOf({ models: [{ modelId: "a" }], retry: { base: 100, jitter: true } })
      assert.deepStrictEqual(far.problems, [{ path: "retry.jitter", message: "unknown key; allowed: `base`, `max`" }])
      // a field that does not decode does not hide its neighbour's range problem
      const both = yield* problemsOf({ models: [{ modelId: "a" }], retry: { base: 0, max: "soon" } })
      assert.deepStrictEqual(both.problems.map((p) => p.path), ["retry.max", "retry.base"])
    }))
})
