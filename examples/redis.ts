/**
 * Two muxes share breakers through Redis (`MuxStore.layerRedisClient`), as two
 * processes (Lambda instances, containers) would. Mux 1 sees its primary fail
 * twice: the shared breaker opens, and mux 2 then skips its own (healthy)
 * primary without trying it. Muxes share state when they share a Redis, a key
 * prefix and a config `name`.
 *
 * `layerRedisClient` brings the store's own node-redis client (the `redis`
 * package): while Redis is down a command fails at once and the mux follows
 * its `onStoreError`, and closing the layer takes at most `timeout`. The
 * example deletes its keys when done, over a client of its own.
 *
 * Needs a Redis: REDIS_URL=redis://127.0.0.1:6379 node examples/redis.ts
 * (without REDIS_URL it prints how to start one and exits 0).
 */
import { Clock, Config, Console, Context, Effect, Layer } from "effect"
import { createClient } from "redis"
import { BedrockMux, BedrockSimulator, MuxStore, type SimulatorScript } from "../src/index.ts"

const config = {
  name: "redis-example",
  models: [{ modelId: "primary" }, { modelId: "fallback", isFallback: true }],
  breaker: { failures: 2, probeInterval: "5 minutes" }
}
const hello = { messages: [{ role: "user" as const, content: [{ text: "hello" }] }] }

/** Deletes every key under `prefix` when the scope closes. */
const cleanUp = (url: string, prefix: string) =>
  Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const client = createClient({ url })
      await client.connect()
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(keys)
      await client.close()
    }).pipe(Effect.ignore))

export const program = Effect.gen(function*() {
  const url = yield* Config.String("REDIS_URL")
  const prefix = `bedrock-mux-example:${process.pid}:${(yield* Clock.currentTimeMillis).toString(36)}:`
  yield* cleanUp(url, prefix)
  // one mux "process": its own simulated Bedrock, its own Redis client, the shared prefix
  const instance = (script: SimulatorScript.ScriptInput) =>
    Effect.map(
      Layer.build(BedrockMux.layer(config).pipe(
        Layer.provide(BedrockSimulator.layer(script)),
        Layer.provide(MuxStore.layerRedisClient({ url, prefix, timeout: "250 millis" }))
      )),
      (ctx) => Context.get(ctx, BedrockMux)
    )
  const one = yield* instance({ models: { primary: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] }, fallback: {} } })
  const two = yield* instance({ models: { primary: {}, fallback: {} } })

  const before = (yield* two.converse(hello)).routing.modelId
  for (let i = 0; i < 2; i++) yield* one.converse(hello) // two failures of the primary: the shared breaker opens
  const breaker = (yield* two.health).models[0]!.breaker
  const after = yield* two.converse(hello)
  const tried = after.routing.attempts.map((a) => a.modelId)
  yield* Console.log(`mux 2 before: ${before}; primary breaker as mux 2 sees it: ${breaker}; mux 2 after: tried ${tried}`)
  return { before, breaker, after: after.routing.modelId, tried }
}).pipe(Effect.scoped)

if (import.meta.main) {
  if (process.env["REDIS_URL"] === undefined) {
    console.log("examples/redis.ts needs a Redis. Start one and set REDIS_URL, for example:")
    console.log("  redis-server --port 6390 --save '' --daemonize yes")
    console.log("  REDIS_URL=redis://127.0.0.1:6390 node examples/redis.ts")
  } else Effect.runPromise(program)
}
