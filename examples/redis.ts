/**
 * Two muxes share breakers through Redis (`MuxStore.layerRedis`), as two
 * processes (Lambda instances, containers) would. Mux 1 sees its primary fail
 * twice: the shared breaker opens, and mux 2 then skips its own (healthy)
 * primary without trying it. Muxes share state when they share a Redis, a key
 * prefix and a config `name`. The example deletes its keys when done.
 *
 * Needs a Redis: REDIS_URL=redis://127.0.0.1:6379 node examples/redis.ts
 * (without REDIS_URL it prints how to start one and exits 0).
 */
import { NodeRedis } from "@effect/platform-node"
import { Config, Console, Context, Effect, Layer } from "effect"
import { Redis } from "effect/persistence"
import { BedrockMux, BedrockSimulator, MuxStore, type SimulatorScript } from "../src/index.ts"

const config = {
  name: "redis-example",
  models: [{ modelId: "primary" }, { modelId: "fallback", isFallback: true }],
  breaker: { failures: 2, cooldown: "5 minutes" }
}
const hello = { messages: [{ role: "user" as const, content: [{ text: "hello" }] }] }

export const program = Effect.gen(function*() {
  const redis = yield* Redis.Redis
  const prefix = `bedrock-mux-example:${process.pid}:${Date.now().toString(36)}:`
  yield* Effect.addFinalizer(() =>
    redis.send<Array<string>>("KEYS", `${prefix}*`).pipe(
      Effect.flatMap((keys) => (keys.length > 0 ? redis.send("DEL", ...keys) : Effect.void)),
      Effect.ignore
    ))
  // one mux "process": its own simulated Bedrock, the Redis store under the shared prefix
  const instance = (script: SimulatorScript.ScriptInput) =>
    Effect.map(
      Layer.build(BedrockMux.layer(config).pipe(
        Layer.provide(BedrockSimulator.layer(script)),
        Layer.provide(MuxStore.layerRedis({ prefix, timeout: "250 millis" }))
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
}).pipe(Effect.scoped, Effect.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL") })))

if (import.meta.main) {
  if (process.env["REDIS_URL"] === undefined) {
    console.log("examples/redis.ts needs a Redis. Start one and set REDIS_URL, for example:")
    console.log("  redis-server --port 6390 --save '' --daemonize yes")
    console.log("  REDIS_URL=redis://127.0.0.1:6390 node examples/redis.ts")
  } else Effect.runPromise(program)
}
