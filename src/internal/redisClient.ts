/**
 * The Redis client behind `MuxStore.layerRedisClient`: a node-redis client
 * set up so that a Redis outage holds neither requests nor the shutdown.
 *
 * Why not `NodeRedis.layer` (@effect/platform-node): its finalizer calls
 * node-redis' `close()`, which waits until the command queue is empty, and
 * re-checks only when the socket delivers data or ends. After an outage the
 * queue holds the commands the store gave up on (Effect's timeout interrupts
 * the promise, but `NodeRedis`' `send` passes no `AbortSignal`, so the command
 * stays queued, offline, until node-redis' own 5 s timeout). `close()` also
 * stops the reconnects, so no socket ever delivers anything again: disposal
 * never settles, even after the queue empties.
 *
 * How this client behaves instead:
 * - `disableOfflineQueue`: while disconnected a command fails at once
 *   (a `StoreError` without waiting for the timeout); nothing is queued.
 * - Every command carries the interrupting fiber's `AbortSignal`, so a
 *   command abandoned before it was written leaves the queue at once, and
 *   node-redis' own command timeout is the store's `timeout`.
 * - It reconnects for as long as it lives (50 ms doubling to 1 s, plus a
 *   per-process offset from `Random` so processes spread out), but the first
 *   connection must succeed: a Redis that is down when the layer is built
 *   fails the layer with `RedisError`.
 * - The finalizer closes gracefully for at most `timeout` (wall-clock time),
 *   then destroys the client, failing whatever is still waiting (a Redis that
 *   took a command and went silent). Disposal takes at most `timeout` plus a
 *   few milliseconds.
 *
 * Gotchas:
 * - After disposal the process can stay alive for up to one reconnect delay
 *   (at most 1.1 s) or one `connectTimeout` (default 1 s here) while an
 *   attempt under way ends: node-redis gives no handle on those timers.
 * - The service supports `send` and `eval` only; `reserve` and `subscribe`
 *   fail (the store uses neither).
 * - `redis` is an optional peer dependency, loaded when the layer is built.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Layer, Random } from "effect"
import { Redis } from "effect/persistence"
import type { createClient } from "redis"

type Client = ReturnType<typeof createClient>

/**
 * node-redis client options (`createClient`'s), passed through.
 * @since 0.1.0
 */
export type ClientOptions = NonNullable<Parameters<typeof createClient>[0]>

/**
 * What `make` needs.
 * @since 0.1.0
 */
export interface Options {
  /** `redis[s]://[[user][:password]@]host[:port][/db]`; overrides `client.url`. */
  readonly url?: string | undefined
  /** The store's timeout: node-redis' command timeout and the graceful close's bound. */
  readonly timeout: Duration.Duration
  /** Any other node-redis option; ours are defaults it overrides. */
  readonly client?: ClientOptions | undefined
}

/**
 * The wait before reconnect attempt `retries + 1`: 50 ms doubling to 1 s,
 * plus this process's `offset` (so processes that lost Redis together do not
 * reconnect in lockstep).
 *
 * @example
 * ```ts
 * reconnectDelay(0, 0) // 50
 * reconnectDelay(10, 40) // 1040
 * ```
 * @since 0.1.0
 */
export const reconnectDelay = (retries: number, offset: number): number => Math.min(50 * 2 ** retries, 1_000) + offset

/** The longest a connection attempt may take, unless `client.socket.connectTimeout` says otherwise. */
const CONNECT_TIMEOUT_MS = 1_000

/**
 * A connected client as a `Redis.Redis` service, closed (bounded) with the scope.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import * as RedisClient from "./redisClient.ts"
 * const redis = RedisClient.make({ url: "redis://127.0.0.1:6379", timeout: Duration.millis(250) })
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const { createClient } = yield* Effect.tryPromise({
    try: () => import("redis"),
    catch: (cause) => new Redis.RedisError({ cause })
  })
  // the network is real: wall-clock time, whatever Clock the caller runs on (see MuxStore.makeRedis)
  const wallClock = Clock.Clock.defaultValue()
  const offset = yield* Random.nextIntBetween(0, 100)
  const user = options.client ?? {}
  let ready = false

  const client = yield* Effect.acquireRelease(
    Effect.sync((): Client =>
      createClient({
        ...user,
        ...(options.url !== undefined ? { url: options.url } : {}),
        disableOfflineQueue: user.disableOfflineQueue ?? true,
        commandOptions: { timeout: Duration.toMillis(options.timeout), ...user.commandOptions },
        socket: {
          connectTimeout: CONNECT_TIMEOUT_MS,
          ...user.socket,
          // before the first ready: fail the layer; after: never give up (a dead client would
          // fail every store command until the process restarts)
          reconnectStrategy: user.socket?.reconnectStrategy ??
            ((retries: number, cause: Error) => (ready ? reconnectDelay(retries, offset) : cause))
        }
      })
    ),
    (client) => close(client, options.timeout, wallClock)
  )

  // node-redis rethrows an `error` event nobody listens to. One warning per lost connection;
  // the failed reconnect attempts after it at debug level.
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  let warned = false
  client.on("ready", () => {
    warned = false
  })
  client.on("error", (cause: unknown) => {
    if (!ready) return // the connect below fails with it
    runFork(warned ? Effect.logDebug("Redis reconnect failed", cause) : Effect.logWarning("Redis connection lost; reconnecting", cause))
    warned = true
  })

  yield* Effect.tryPromise({
    try: () => client.connect(),
    catch: (cause) => new Redis.RedisError({ cause })
  })
  ready = true

  const send = <A = unknown>(command: string, ...args: ReadonlyArray<string>): Effect.Effect<A, Redis.RedisError> =>
    Effect.tryPromise({
      try: (signal) => client.sendCommand([command, ...args], { abortSignal: signal }) as Promise<A>,
      catch: (cause) => new Redis.RedisError({ cause })
    })
  const unsupported = Effect.fail(
    new Redis.RedisError({ cause: new Error("the MuxStore Redis client supports send and eval only") })
  )
  return yield* Redis.make({ send, connect: unsupported, subscribe: () => unsupported })
})

/**
 * Closes gracefully for at most `timeout`, then destroys: `close()` waits for
 * replies to every command sent, and without a socket (Redis gone) it would
 * wait forever.
 */
const close = (client: Client, timeout: Duration.Duration, wallClock: Clock.Clock): Effect.Effect<void> =>
  Effect.promise(() => client.close().catch(() => undefined)).pipe(
    Effect.timeoutOption(timeout),
    Effect.provideService(Clock.Clock, wallClock),
    Effect.andThen(Effect.sync(() => {
      client.destroy()
      // a connection attempt under way cannot be cancelled; if it still succeeds, drop it
      client.on("connect", () => client.destroy())
    }))
  )

/**
 * `make` as a layer.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import * as RedisClient from "./redisClient.ts"
 * const RedisLive = RedisClient.layer({ url: "redis://127.0.0.1:6379", timeout: Duration.millis(250) })
 * ```
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<Redis.Redis, Redis.RedisError> =>
  Layer.effect(Redis.Redis, make(options))
