/**
 * Admission cost per call at concurrency 200, on the zero-latency
 * simulator: a mux whose primary has rpm/tpm (so every attempt reserves and
 * settles a quota), against the same mux without limits; with the in-memory
 * store and with Redis (one Lua round trip to reserve, one to settle).
 * Redis: REDIS_URL, else a redis-server started on a free loopback port, else
 * the Redis row is skipped with a note.
 */
import { NodeRedis } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { BedrockMux } from "../src/BedrockMux.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import * as MuxStore from "../src/MuxStore.ts"
import { quantile } from "./stats.ts"

const request = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 16 } }


const measure = (store: Layer.Layer<never, unknown> | undefined, limited: boolean, requests: number) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const one = Effect.gen(function*() {
      const t0 = performance.now()
      yield* Effect.orDie(mux.converse(request))
      return (performance.now() - t0) * 1000
    })
    yield* Effect.forEach(Array.from({ length: 2_000 }), () => one, { concurrency: 200 })
    const t0 = performance.now()
    const us = yield* Effect.forEach(Array.from({ length: requests }), () => one, { concurrency: 200 })
    const seconds = (performance.now() - t0) / 1000
    return { p50us: quantile(us, 0.5), p99us: quantile(us, 0.99), perCallUs: (seconds * 1e6) / requests } // wall time over the run, per call (the inverse of throughput)
  }).pipe(
    Effect.provide(
      BedrockMux.layer({
        name: `bench-${limited}-${Math.floor(performance.now())}`,
        models: [
          { modelId: "a", ...(limited ? { rpm: 100_000_000, tpm: 2_000_000_000 } : {}) },
          { modelId: "b", isFallback: true }
        ]
      }).pipe(
        Layer.provide(BedrockSimulator.layer({ models: { a: {}, b: {} } }, { logLimit: 0 })),
        Layer.provide(store ?? Layer.empty)
      )
    )
  )

const startRedis = (): { url: string; stop: () => void } | undefined => {
  const url = process.env["REDIS_URL"]
  if (url !== undefined) return { url, stop: () => {} }
  if (spawnSync("redis-server", ["--version"]).status !== 0) return undefined
  const port = 6300 + Math.floor(performance.now() % 90)
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore"
  })
  spawnSync("sleep", ["0.3"])
  return { url: `redis://127.0.0.1:${port}`, stop: () => proc.kill() }
}

export const run = async (options: { readonly requests: number }) => {
  const run = (store: Layer.Layer<never, unknown> | undefined, limited: boolean, requests: number) =>
    Effect.runPromise(measure(store, limited, requests) as Effect.Effect<{ p50us: number; p99us: number; perCallUs: number }>)
  const none = await run(undefined, false, options.requests)
  const memory = await run(undefined, true, options.requests)
  const result: Record<string, unknown> = {
    concurrency: 200,
    requests: options.requests,
    withoutLimits: none,
    memoryStore: memory,
    memoryAddedP50us: memory.p50us - none.p50us,
    memoryAddedPerCallUs: memory.perCallUs - none.perCallUs
  }
  const redis = startRedis()
  if (redis === undefined) {
    result["redis"] = "skipped: no REDIS_URL and no redis-server on PATH"
  } else {
    try {
      const store = MuxStore.layerRedis({ prefix: `bench:${Date.now()}:`, timeout: "2 seconds" }).pipe(
        Layer.provide(NodeRedis.layer({ url: redis.url }))
      ) as unknown as Layer.Layer<never, unknown>
      const redisLimited = await run(store, true, Math.min(options.requests, 20_000))
      const redisUnlimited = await run(store, false, Math.min(options.requests, 20_000))
      const ping = await Effect.runPromise(Effect.gen(function*() {
        const client = yield* NodeRedis.NodeRedis
        const xs: Array<number> = []
        for (let i = 0; i < 500; i++) {
          const t0 = performance.now()
          yield* client.use((c) => c.ping())
          xs.push((performance.now() - t0) * 1000)
        }
        return quantile(xs, 0.5)
      }).pipe(Effect.provide(NodeRedis.layer({ url: redis.url }))) as Effect.Effect<number>)
      result["redisStoreBreakersOnly"] = redisUnlimited
      result["redisStore"] = redisLimited
      result["redisAddedP50us"] = redisLimited.p50us - redisUnlimited.p50us
      result["redisAddedPerCallUs"] = redisLimited.perCallUs - redisUnlimited.perCallUs
      result["redisPingP50us"] = ping
    } finally {
      redis.stop()
    }
  }
  return result
}
