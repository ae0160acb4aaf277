/**
 * The Redis `MuxStore` against a live Redis (REDIS_URL; `npm test` starts one
 * when redis-server is on the PATH, see test/globalSetup.ts).
 *
 * Without a Redis these tests skip, saying how to get one; with CI=true they
 * always run and fail when REDIS_URL is missing. Every test writes under its
 * own key prefix and deletes its keys afterwards.
 */
import * as net from "node:net"
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, References, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { BedrockMux } from "../src/BedrockMux.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import type * as MuxConfig from "../src/MuxConfig.ts"
import { MuxError } from "../src/MuxError.ts"
import * as MuxStore from "../src/MuxStore.ts"
import type * as SimulatorScript from "../src/SimulatorScript.ts"
import { HOW_TO_GET_REDIS, ON_CI } from "./fixtures/redisServer.ts"

const REDIS_URL = process.env["REDIS_URL"]
const SKIP = REDIS_URL === undefined && !ON_CI

const redisUrl = (): string => {
  if (REDIS_URL === undefined) throw new Error("REDIS_URL must be set when CI=true (the Redis tests are mandatory on CI)")
  return REDIS_URL
}

// --- helpers ------------------------------------------------------------------------------------

let prefixes = 0
/** A key prefix no other test (or earlier run) uses. */
const uniquePrefix = (name: string) => `ebm-test:${name}:${process.pid}:${Date.now().toString(36)}:${++prefixes}:`

/**
 * One Redis connection (its own node-redis client), closed with the test's scope. Its
 * connection-error warnings (expected in the outage tests) are not logged.
 */
const connection = (url = redisUrl()) =>
  Layer.build(NodeRedis.layer({ url })).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))

/** Deletes every key under `prefix` when the test's scope closes. */
const cleanupAfter = (prefix: string) =>
  Effect.gen(function*() {
    const ctx = yield* connection()
    const client = Context.get(ctx, NodeRedis.NodeRedis).client
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        const keys = await client.keys(`${prefix}*`)
        if (keys.length > 0) await client.del(keys)
      }).pipe(Effect.ignore)
    )
  })

/** A Redis store on its own connection: `NodeRedis.layer`, as a user provides one. */
const redisStore = (prefix: string, options: { readonly timeout?: number } = {}) =>
  Effect.gen(function*() {
    const ctx = yield* connection()
    return yield* MuxStore.makeRedis({ prefix, ...(options.timeout !== undefined ? { timeout: options.timeout } : {}) }).pipe(
      Effect.provideContext(ctx)
    )
  })

/**
 * A Redis store on its own client (`MuxStore.layerRedisClient`) at `url`: the
 * one whose shutdown is bounded when Redis goes away (NodeRedis.layer's never
 * settles after an outage; see test/redis.outage.test.ts).
 */
const clientStore = (prefix: string, url: string, timeout: number) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(MuxStore.layerRedisClient({ url, prefix, timeout })).pipe(
      // its reconnect warnings are expected in the outage tests
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
    const store = Context.get(ctx, MuxStore.MuxStore)
    assert.isDefined(store)
    return store!
  })

/**
 * A TCP proxy in front of the real Redis, to simulate an outage: `freeze`
 * keeps every connection open but forwards nothing more (Redis stops
 * answering: commands time out), `cut` closes the port and drops every
 * connection (the client reconnects in vain).
 */
const redisProxy = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly url: string; readonly freeze: () => void; readonly cut: () => void }>((resolve, reject) => {
      const upstream = new URL(redisUrl())
      const sockets = new Set<net.Socket>()
      let frozen = false
      const track = (s: net.Socket) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
        s.on("error", () => s.destroy())
      }
      const server = net.createServer((client) => {
        const up = net.connect(Number(upstream.port || 6379), upstream.hostname)
        track(client)
        track(up)
        client.on("data", (d) => frozen || up.write(d))
        up.on("data", (d) => frozen || client.write(d))
        client.on("close", () => up.destroy())
        up.on("close", () => client.destroy())
      })
      const cut = () => {
        server.close()
        for (const s of sockets) s.destroy()
      }
      server.on("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resolve({ url: `redis://127.0.0.1:${port}`, freeze: () => (frozen = true), cut })
      })
    })
  ),
  (proxy) => Effect.sync(() => proxy.cut())
)

const hello = { messages: [{ role: "user" as const, content: [{ text: "hello" }] }] }

/** A mux on its own simulator, over the given store. */
const muxOver = (
  store: MuxStore.Service,
  config: MuxConfig.Input,
  script: SimulatorScript.ScriptInput
) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(
      BedrockMux.layer(config).pipe(
        Layer.provideMerge(BedrockSimulator.layer(script)),
        Layer.provide(Layer.succeed(MuxStore.MuxStore, store))
      )
    )
    return { mux: Context.get(ctx, BedrockMux), simulator: Context.get(ctx, BedrockSimulator) }
  })

/** A typed state map for the store tests (what the breaker and cooldown guards use, with a schema of their own). */
const Counter = Schema.Struct({ n: Schema.Number })
const counters = (store: MuxStore.Service) => store.states("test-counter", Counter)
const numbers = (store: MuxStore.Service) => store.states("test-number", Schema.Number)

const storeOps = (store: MuxStore.Service, now: number) => ({
  getMany: counters(store).getMany(["a", "b"]),
  modify: counters(store).modify("a", (s) => [s, { n: 1 }] as const),
  reserve: store.reserve("q", now, { rpm: 1 }, "id", 1),
  settle: store.settle("q", "id", 1),
  release: store.release("q", "id"),
  usage: store.usage("q", now)
})

// --- the tests ----------------------------------------------------------------------------------

describe.skipIf(SKIP)(`MuxStore.makeRedis (live Redis at REDIS_URL)${SKIP ? `: ${HOW_TO_GET_REDIS}` : ""}`, () => {
  it("REDIS_URL is set (mandatory when CI=true)", () => {
    assert.isDefined(REDIS_URL, "REDIS_URL must be set when CI=true")
  })

  // --- agreement with the in-memory store ---------------------------------------------------------

  type Op =
    | { readonly _tag: "reserve"; readonly key: number; readonly dt: number; readonly tokens: number }
    | { readonly _tag: "settle"; readonly pick: number; readonly tokens: number }
    | { readonly _tag: "release"; readonly pick: number }
    | { readonly _tag: "usage"; readonly key: number; readonly dt: number }

  // time steps: none (same instant), small, large, and exactly one window (the prune boundary)
  const dt = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 5_000, max: 70_000 }), fc.constant(60_000))
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ _tag: fc.constant("reserve" as const), key: fc.nat(1), dt, tokens: fc.nat(120) }) },
    { weight: 2, arbitrary: fc.record({ _tag: fc.constant("settle" as const), pick: fc.nat(), tokens: fc.nat(120) }) },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("release" as const), pick: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ _tag: fc.constant("usage" as const), key: fc.nat(1), dt }) }
  )
  const limits: fc.Arbitrary<MuxStore.Limits> = fc.record({
    rpm: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
    tpm: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined })
  })

  /** Runs the same operations on both stores; every result and every usage must agree. */
  const agree = (redis: MuxStore.Service, ops: ReadonlyArray<Op>, perKey: readonly [MuxStore.Limits, MuxStore.Limits]) =>
    Effect.gen(function*() {
      const memory = MuxStore.makeMemory()
      const ids: Array<string> = ["never-reserved"]
      let now = 1_700_000_000_000 // epoch-sized, as a real Clock gives
      for (const [i, o] of ops.entries()) {
        const run = <A>(f: (s: MuxStore.Service) => Effect.Effect<A, MuxStore.StoreError>) =>
          Effect.gen(function*() {
            const m = yield* f(memory)
            const r = yield* f(redis)
            assert.deepStrictEqual(r, m, `op ${i} ${JSON.stringify(o)} at ${now}`)
          })
        switch (o._tag) {
          case "reserve": {
            now += o.dt
            const id = `r${i}`
            ids.push(id)
            yield* run((s) => s.reserve(`q${o.key}`, now, perKey[o.key]!, id, o.tokens))
            break
          }
          case "settle": {
            const id = ids[o.pick % ids.length]!
            yield* run((s) => Effect.all([s.settle("q0", id, o.tokens), s.settle("q1", id, o.tokens)]))
            break
          }
          case "release": {
            const id = ids[o.pick % ids.length]!
            yield* run((s) => Effect.all([s.release("q0", id), s.release("q1", id)]))
            break
          }
          case "usage": {
            now += o.dt
            yield* run((s) => s.usage(`q${o.key}`, now))
            break
          }
        }
      }
      // and at the end, both windows
      yield* Effect.forEach([0, 1], (k) =>
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* redis.usage(`q${k}`, now), yield* memory.usage(`q${k}`, now), `final usage of q${k}`)
        }))
    })

  it.live("agrees with the in-memory store on random reserve/settle/release/usage sequences (100 seeded runs)", () =>
    Effect.gen(function*() {
      const base = uniquePrefix("agree")
      yield* cleanupAfter(base)
      const ctx = yield* connection()
      let run = 0
      const property = fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 40 }),
        fc.tuple(limits, limits),
        (ops, perKey) =>
          Effect.runPromise(
            Effect.gen(function*() {
              const redis = yield* MuxStore.makeRedis({ prefix: `${base}${++run}:`, timeout: 2_000 })
              yield* agree(redis, ops, perKey)
            }).pipe(Effect.scoped, Effect.provideContext(ctx))
          )
      )
      yield* Effect.promise(() => fc.assert(property, { seed: 20240601, numRuns: 100 }))
      assert.isAtLeast(run, 100)
    }))

  it.live("the reservation is atomic: 200 concurrent reserves from 4 connections, rpm 20, same instant: exactly 20 admitted", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("atomic")
      yield* cleanupAfter(prefix)
      const stores = yield* Effect.all(Array.from({ length: 4 }, () => redisStore(prefix, { timeout: 5_000 })))
      const now = 1_700_000_000_000
      const results = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => stores[i % 4]!.reserve("quota", now, { rpm: 20 }, `id-${i}`, 1),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter((r) => r.ok).length, 20)
      for (const r of results) {
        if (!r.ok) assert.deepStrictEqual(r, { ok: false, kind: "requests", retryAfterMs: 60_000 })
      }
      assert.deepStrictEqual(yield* stores[0]!.usage("quota", now), { requests: 20, tokens: 20 })
    }))

  it.live("TPM is atomic too: 100 concurrent reserves of 7 tokens from 4 connections, tpm 100: exactly 14 admitted", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("atomic-tpm")
      yield* cleanupAfter(prefix)
      const stores = yield* Effect.all(Array.from({ length: 4 }, () => redisStore(prefix, { timeout: 5_000 })))
      const now = 1_700_000_000_000
      const results = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => stores[i % 4]!.reserve("quota", now, { tpm: 100 }, `id-${i}`, 7),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter((r) => r.ok).length, 14)
      assert.deepStrictEqual(yield* stores[3]!.usage("quota", now), { requests: 14, tokens: 98 })
    }))

  it.live("modify is compare-and-set: 100 concurrent increments from 4 connections end at exactly 100", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("cas")
      yield* cleanupAfter(prefix)
      const stores = yield* Effect.all(Array.from({ length: 4 }, () => redisStore(prefix, { timeout: 5_000 })))
      const seen = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) =>
          counters(stores[i % 4]!).modify("counter", (s) => {
            const n = (s?.n ?? 0) + 1
            return [n, { n }] as const
          }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(yield* counters(stores[1]!).getMany(["counter", "absent"]), [{ n: 100 }, undefined])
      // every increment saw a different state: 1..100, each once
      assert.deepStrictEqual([...seen].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1))
    }))

  it.live("modify to undefined deletes the key, as the in-memory store reads it", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("delete")
      yield* cleanupAfter(prefix)
      const redis = yield* redisStore(prefix)
      const memory = MuxStore.makeMemory()
      for (const store of [counters(redis), counters(memory)]) {
        assert.strictEqual(yield* store.modify("k", (s) => [s, { n: 1 }] as const), undefined)
        assert.deepStrictEqual(yield* store.modify("k", (s) => [s, undefined] as const), { n: 1 })
        assert.deepStrictEqual(yield* store.getMany(["k"]), [undefined])
        assert.strictEqual(yield* store.modify("k", (s) => [s, { n: 2 }] as const), undefined)
      }
    }))

  it.effect("under TestClock, advancing virtual time does not time out commands in flight (the timeout is wall-clock)", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("testclock")
      yield* cleanupAfter(prefix)
      const store = yield* redisStore(prefix, { timeout: 2_000 })
      const now = yield* Clock.currentTimeMillis
      const fiber = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => Effect.all([store.reserve("q", now, { rpm: 10 }, `id-${i}`, 1), numbers(store).modify(`k${i % 3}`, () => [i, i] as const)]),
          { concurrency: "unbounded" }
        )
      )
      // virtual time jumps far past every command's 2 s timeout while they are in flight
      yield* TestClock.adjust("1 hour")
      const results = yield* Fiber.join(fiber)
      assert.strictEqual(results.filter(([r]) => r.ok).length, 10)
    }))

  // --- outage ---------------------------------------------------------------------------------------

  // the stores here run on MuxStore.layerRedisClient: a store over NodeRedis.layer would hang
  // the test's scope when it closes after the outage (test/redis.outage.test.ts)
  describe("outage (Redis stops answering; timeout 200 ms)", () => {
    const config = (name: string, onStoreError: "allow" | "fail"): MuxConfig.Input => ({
      name,
      models: [{ modelId: "primary", rpm: 1 }, { modelId: "fallback", isFallback: true }],
      breaker: { failures: 1, cooldown: "5 minutes" },
      onStoreError
    })
    // the primary fails its first call (trips its breaker), then answers
    const script: SimulatorScript.ScriptInput = {
      models: {
        primary: { faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
        fallback: {}
      }
    }

    it.live("every store operation fails with StoreError, within its timeout", () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("outage-ops")
        yield* cleanupAfter(prefix)
        const proxy = yield* redisProxy
        const store = yield* clientStore(prefix, proxy.url, 200)
        const now = yield* Clock.currentTimeMillis
        // up: every operation works
        for (const [name, eff] of Object.entries(storeOps(store, now))) {
          assert.isTrue(Exit.isSuccess(yield* Effect.exit(eff as Effect.Effect<unknown, MuxStore.StoreError>)), name)
        }
        proxy.freeze()
        for (const [name, eff] of Object.entries(storeOps(store, now))) {
          const t0 = Date.now()
          const error = yield* Effect.flip(eff as Effect.Effect<unknown, MuxStore.StoreError>)
          assert.instanceOf(error, MuxStore.StoreError, name)
          // its 200 ms timeout, with room for a loaded machine
          assert.isBelow(Date.now() - t0, 2_000, `${name} failed within its timeout`)
        }
        // 30 concurrent modifies of one key (they queue in-process): all fail together, not one
        // timeout after another (30 x 200 ms)
        const t0 = Date.now()
        const exits = yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i),
          (i) => Effect.exit(numbers(store).modify("hot", () => [i, i] as const)),
          { concurrency: "unbounded" }
        )
        assert.isTrue(exits.every((e) => Exit.isFailure(e) && String(e.cause).includes("StoreError")))
        assert.isBelow(Date.now() - t0, 3_000, "queued modifies fail with the one in flight (not 30 x 200 ms)")
      }))

    it.live(`onStoreError "allow" fails open: breakers read as closed, quotas not enforced, requests answered`, () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("outage-allow")
        yield* cleanupAfter(prefix)
        const proxy = yield* redisProxy
        const store = yield* clientStore(prefix, proxy.url, 200)
        const { mux } = yield* muxOver(store, config("allow", "allow"), script)
        // up: the primary's first call fails and trips its breaker (in Redis); the fallback answers
        const first = yield* mux.converse(hello)
        assert.strictEqual(first.routing.modelId, "fallback")
        assert.strictEqual((yield* mux.health).models[0]!.breaker, "open")
        const second = yield* mux.converse(hello)
        assert.strictEqual(second.routing.modelId, "fallback", "the open breaker keeps the primary out")

        proxy.cut()
        // down: the open breaker and the rpm 1 quota are not seen; the primary answers every request
        for (let i = 0; i < 2; i++) {
          const res = yield* mux.converse(hello)
          assert.strictEqual(res.routing.modelId, "primary")
          assert.deepStrictEqual(res.routing.attempts.map((a) => a.outcome), ["success"])
        }
        // health reads store failures as closed, too
        assert.strictEqual((yield* mux.health).models[0]!.breaker, "closed")
      }))

    it.live(`onStoreError "fail" fails closed: every request fails with MuxError StoreUnavailable`, () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("outage-fail")
        yield* cleanupAfter(prefix)
        const proxy = yield* redisProxy
        const store = yield* clientStore(prefix, proxy.url, 200)
        const { mux, simulator } = yield* muxOver(store, config("fail", "fail"), script)
        const up = yield* mux.converse(hello)
        assert.strictEqual(up.routing.modelId, "fallback")
        const callsBefore = (yield* simulator.attempts).length

        proxy.cut()
        for (let i = 0; i < 3; i++) {
          const error = yield* Effect.flip(mux.converse(hello))
          assert.instanceOf(error, MuxError)
          assert.strictEqual(error.reason._tag, "StoreUnavailable")
          assert.deepStrictEqual(error.attempts, [])
        }
        assert.strictEqual((yield* simulator.attempts).length, callsBefore, "no call reached Bedrock")
      }))

    it.live("a Redis that is down when the layer is built fails the NodeRedis layer (RedisError), not a request", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(connection("redis://127.0.0.1:1"))
        assert.isTrue(Exit.isFailure(exit))
        assert.include(String(exit), "RedisError")
      }))
  })

  // --- shared breakers ------------------------------------------------------------------------------

  it.live("two muxes over one Redis share breakers: a trip through mux 1 makes mux 2 skip the primary", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("shared")
      yield* cleanupAfter(prefix)
      // two layers, two connections, one prefix: as two processes would be
      const config: MuxConfig.Input = {
        name: "shared",
        models: [{ modelId: "primary" }, { modelId: "fallback", isFallback: true }],
        breaker: { failures: 2, cooldown: "5 minutes" }
      }
      const one = yield* muxOver(yield* redisStore(prefix), config, {
        models: { primary: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] }, fallback: {} }
      })
      const two = yield* muxOver(yield* redisStore(prefix), config, { models: { primary: {}, fallback: {} } })

      // before: mux 2 uses its (healthy) primary
      assert.strictEqual((yield* two.mux.converse(hello)).routing.modelId, "primary")
      // mux 1 sees two failures of its primary: the shared breaker opens
      for (let i = 0; i < 2; i++) assert.strictEqual((yield* one.mux.converse(hello)).routing.modelId, "fallback")
      assert.strictEqual((yield* two.mux.health).models[0]!.breaker, "open")

      const before = (yield* two.simulator.attempts).filter((a) => a.modelId === "primary").length
      for (let i = 0; i < 3; i++) {
        const res = yield* two.mux.converse(hello)
        assert.strictEqual(res.routing.modelId, "fallback")
        assert.deepStrictEqual(res.routing.attempts.map((a) => a.modelId), ["fallback"], "the primary was skipped, not tried")
      }
      assert.strictEqual((yield* two.simulator.attempts).filter((a) => a.modelId === "primary").length, before)
    }))
})
