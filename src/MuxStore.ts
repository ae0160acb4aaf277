/**
 * `MuxStore`: where a mux keeps the state that must outlive one request
 * (circuit breakers today; cooldowns and quota buckets share it), keyed by
 * string, changed only through an atomic `modify`.
 *
 * How it behaves:
 * - By default every `BedrockMux` layer makes its own in-memory store: two
 *   muxes in one process never share state unless you provide one store to
 *   both (`MuxStore.layerMemory`), or a shared one across processes.
 * - `modify` applies a pure function to one key's state atomically. The
 *   in-memory store runs it synchronously (JavaScript is single-threaded, so
 *   no other fiber can interleave); a shared store must do the same with its
 *   own atomic primitive.
 * - States are plain JSON-compatible values, so a store can serialise them.
 *
 * Gotchas:
 * - A store that fails (a Redis outage) surfaces `StoreError`; the mux then
 *   follows its `onStoreError` option: `"allow"` (fail open: route as if every
 *   breaker were closed) or `"fail"` (fail the request).
 *
 * @since 0.1.0
 */
import { Context, Data, Duration, Effect, Layer } from "effect"
import { Redis } from "effect/persistence"
import * as Quota from "./internal/quota.ts"

export type { Limits, Reservation } from "./internal/quota.ts"

/**
 * A store failure (connection lost, timeout).
 * @since 0.1.0
 */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The store's operations.
 * @since 0.1.0
 */
export interface Service {
  /** Reads several keys at once (undefined where absent). */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<unknown>, StoreError>
  /** Atomically replaces one key's state with `f`'s second result and returns its first. */
  readonly modify: <A>(key: string, f: (state: unknown) => readonly [A, unknown]) => Effect.Effect<A, StoreError>
  /**
   * Atomically reserves one request and `tokens` tokens in a quota's sliding
   * minute (`now` from the caller's Clock), or says which limit is in the way.
   */
  readonly reserve: (
    key: string,
    now: number,
    limits: Quota.Limits,
    id: string,
    tokens: number
  ) => Effect.Effect<Quota.Reservation, StoreError>
  /** Sets a reservation to the tokens the request really used. */
  readonly settle: (key: string, id: string, tokens: number) => Effect.Effect<void, StoreError>
  /** Gives a reservation back. */
  readonly release: (key: string, id: string) => Effect.Effect<void, StoreError>
  /** Requests and tokens used in a quota's window now. */
  readonly usage: (key: string, now: number) => Effect.Effect<{ readonly requests: number; readonly tokens: number }, StoreError>
}

/**
 * The store a mux uses; unset means "a fresh in-memory store per mux".
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { BedrockMux, MuxStore } from "effect-bedrock-mux"
 * // two muxes that share breaker state
 * const shared = MuxStore.layerMemory
 * ```
 * @since 0.1.0
 */
export const MuxStore = Context.Reference<Service | undefined>("effect-bedrock-mux/MuxStore", {
  defaultValue: () => undefined
})

/**
 * A new in-memory store.
 * @example
 * ```ts
 * import { MuxStore } from "effect-bedrock-mux"
 * const store = MuxStore.makeMemory()
 * ```
 * @since 0.1.0
 */
export const makeMemory = (): Service => {
  const states = new Map<string, unknown>()
  const windows = new Map<string, Quota.Window>()
  const windowOf = (key: string): Quota.Window => windows.get(key) ?? []
  return {
    getMany: (keys) => Effect.sync(() => keys.map((k) => states.get(k))),
    modify: (key, f) =>
      Effect.sync(() => {
        const [a, next] = f(states.get(key))
        states.set(key, next)
        return a
      }),
    reserve: (key, now, limits, id, tokens) =>
      Effect.sync(() => {
        const [result, next] = Quota.reserve(windowOf(key), now, limits, id, tokens)
        windows.set(key, next)
        return result
      }),
    settle: (key, id, tokens) => Effect.sync(() => void windows.set(key, Quota.settle(windowOf(key), id, tokens))),
    release: (key, id) => Effect.sync(() => void windows.set(key, Quota.release(windowOf(key), id))),
    usage: (key, now) => Effect.sync(() => Quota.usage(windowOf(key), now))
  }
}

/**
 * Provides one in-memory store, shared by every mux built under it.
 * @since 0.1.0
 */
export const layerMemory = Layer.sync(MuxStore, () => makeMemory())

// --- Redis -------------------------------------------------------------------------------------

/**
 * The quota reservation as one Lua script: prune the minute, check RPM and
 * TPM, add the reservation, all in one round trip (no check-then-act). The
 * same algorithm as `internal/quota.ts`. A sorted set holds reservation ids
 * by time, a hash their tokens. `now` comes from the caller's Clock.
 */
const reserveScript = Redis.script(
  (zset: string, hash: string, now: number, windowMs: number, rpm: number, tpm: number, id: string, tokens: number) => [
    zset,
    hash,
    now,
    windowMs,
    rpm,
    tpm,
    id,
    tokens
  ],
  {
    numberOfKeys: 2,
    lua: `
local z, h = KEYS[1], KEYS[2]
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
local id, tokens = ARGV[5], tonumber(ARGV[6])
local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - window)
for _, m in ipairs(old) do redis.call('HDEL', h, m) end
redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
local n = #entries / 2
if rpm > 0 and n >= rpm then
  return {0, 1, tonumber(entries[(n - rpm) * 2 + 2]) + window - now}
end
if tpm > 0 then
  if tokens > tpm then return {0, 2, -1} end
  local used = 0
  local tok = {}
  for i = 1, n do
    local t = tonumber(redis.call('HGET', h, entries[i * 2 - 1]) or '0')
    tok[i] = t
    used = used + t
  end
  if used + tokens > tpm then
    local need = used + tokens - tpm
    local at = now
    for i = 1, n do
      need = need - tok[i]
      at = tonumber(entries[i * 2]) + window
      if need <= 0 then break end
    end
    return {0, 2, math.max(0, at - now)}
  end
end
redis.call('ZADD', z, now, id)
redis.call('HSET', h, id, tokens)
redis.call('PEXPIRE', z, window * 2)
redis.call('PEXPIRE', h, window * 2)
return {1, 0, 0}
`
  }
).withReturnType<[number, number, number]>()

const settleScript = Redis.script(
  (zset: string, hash: string, id: string, tokens: number) => [zset, hash, id, tokens],
  {
    numberOfKeys: 2,
    lua: `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
`
  }
)

const releaseScript = Redis.script(
  (zset: string, hash: string, id: string) => [zset, hash, id],
  {
    numberOfKeys: 2,
    lua: `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`
  }
)

/** Compare-and-set: replace a key's JSON only if it is still what the caller read. */
const casScript = Redis.script(
  (key: string, expected: string, next: string) => [key, expected, next],
  {
    numberOfKeys: 1,
    lua: `
local cur = redis.call('GET', KEYS[1]) or ''
if cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
`
  }
).withReturnType<number>()

const usageScript = Redis.script(
  (zset: string, hash: string, now: number, windowMs: number) => [zset, hash, now, windowMs],
  {
    numberOfKeys: 2,
    lua: `
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[2])), '+inf')
local used = 0
for _, m in ipairs(entries) do used = used + tonumber(redis.call('HGET', KEYS[2], m) or '0') end
return {#entries, used}
`
  }
).withReturnType<[number, number]>()

/**
 * A store in Redis, shared by every process that points at it. Breakers and
 * cooldowns change by compare-and-set (read, compute the pure transition,
 * write only if unchanged, else retry); quota reservations are one Lua script.
 * Every command is bounded by `timeout` (default 250 ms); a failure or
 * timeout is a `StoreError`, which the mux answers with its `onStoreError`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { NodeRedis } from "@effect/platform-node"
 * import { MuxStore } from "effect-bedrock-mux"
 * const Store = MuxStore.layerRedis({ prefix: "mux:" }).pipe(Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 * @since 0.1.0
 */
export const makeRedis = Effect.fnUntraced(function*(options: {
  readonly prefix?: string
  readonly timeout?: Duration.Input
} = {}) {
  const redis = yield* Redis.Redis
  const prefix = options.prefix ?? "bedrock-mux:"
  const timeout = options.timeout ?? Duration.millis(250)
  const bounded = <A>(eff: Effect.Effect<A, unknown>): Effect.Effect<A, StoreError> =>
    eff.pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new StoreError({ message: `Redis did not answer within ${Duration.toMillis(Duration.fromInputUnsafe(timeout))} ms` }))
      }),
      Effect.mapError((e) => (e instanceof StoreError ? e : new StoreError({ message: String((e as { message?: unknown })?.message ?? e), cause: e })))
    )
  const reserveEval = redis.eval(reserveScript)
  const settleEval = redis.eval(settleScript)
  const releaseEval = redis.eval(releaseScript)
  const casEval = redis.eval(casScript)
  const usageEval = redis.eval(usageScript)
  const k = (key: string) => prefix + key
  const parse = (raw: unknown): unknown => (typeof raw === "string" && raw !== "" ? JSON.parse(raw) : undefined)

  const modify = <A>(key: string, f: (state: unknown) => readonly [A, unknown]): Effect.Effect<A, StoreError> =>
    Effect.gen(function*() {
      for (let i = 0; i < 16; i++) {
        const raw = yield* bounded(redis.send<string | null>("GET", k(key)))
        const current = raw ?? ""
        const [a, next] = f(parse(current))
        const json = JSON.stringify(next)
        if (json === current) return a
        const ok = yield* bounded(casEval(k(key), current, json))
        if (ok === 1) return a
      }
      return yield* new StoreError({ message: `contention on ${key}: compare-and-set failed 16 times` })
    })

  return {
    getMany: (keys) =>
      keys.length === 0
        ? Effect.succeed([])
        : Effect.map(bounded(redis.send<Array<string | null>>("MGET", ...keys.map(k))), (vals) => vals.map(parse)),
    modify,
    reserve: (key, now, limits, id, tokens) =>
      Effect.map(
        bounded(reserveEval(k(key), k(key) + ":t", now, Quota.WINDOW_MS, limits.rpm ?? 0, limits.tpm ?? 0, id, tokens)),
        ([ok, kind, retry]): Quota.Reservation =>
          ok === 1
            ? { ok: true }
            : { ok: false, kind: kind === 1 ? "requests" : "tokens", retryAfterMs: retry < 0 ? Infinity : retry }
      ),
    settle: (key, id, tokens) => Effect.asVoid(bounded(settleEval(k(key), k(key) + ":t", id, tokens))),
    release: (key, id) => Effect.asVoid(bounded(releaseEval(k(key), k(key) + ":t", id))),
    usage: (key, now) =>
      Effect.map(bounded(usageEval(k(key), k(key) + ":t", now, Quota.WINDOW_MS)), ([requests, tokens]) => ({ requests, tokens }))
  } satisfies Service
})

/**
 * Provides a Redis-backed `MuxStore` to every mux built under it (needs
 * `Redis.Redis` from effect/persistence, e.g. `NodeRedis.layer`).
 * @since 0.1.0
 */
export const layerRedis = (options: { readonly prefix?: string; readonly timeout?: Duration.Input } = {}) =>
  Layer.effect(MuxStore, makeRedis(options))
