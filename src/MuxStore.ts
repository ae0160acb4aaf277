/**
 * `MuxStore`: where a mux keeps the state that must outlive one request:
 * circuit breakers, throttle cooldowns and quota windows, keyed by target.
 *
 * How it behaves:
 * - By default every `BedrockMux` layer makes its own in-memory store: two
 *   muxes in one process never share state unless you provide one store to
 *   both (`MuxStore.layerMemory`), or a shared one across processes
 *   (`MuxStore.layerRedis`).
 * - The store is typed: `states(kind, schema)` is a map of one kind of state
 *   (a breaker's, a cooldown's), and `modify` applies a pure transition to
 *   one key atomically. The in-memory store keeps each key in a `Ref` and
 *   applies the transition synchronously (no other fiber can interleave);
 *   the Redis store encodes states with their `Schema` as JSON and changes
 *   them by compare-and-set. Quota windows have domain operations of their
 *   own (`reserve`, `settle`, `release`, `usage`), one Lua script each in
 *   Redis.
 *
 * Gotchas:
 * - A store that fails (a Redis outage: an error, or no answer within the
 *   Redis store's `timeout`) surfaces `StoreError`; the mux then follows its
 *   `onStoreError` option: `"allow"` (the default; fail open: route as if
 *   every breaker were closed and no quota were set, so requests still get
 *   answered) or `"fail"` (every request fails with `MuxError` reason
 *   `StoreUnavailable`, before any call to Bedrock).
 * - A state that no longer decodes with its schema (written by another
 *   version) reads as absent: the breaker starts closed, the cooldown over.
 * - A Redis that is down when `layerRedisClient` (or `NodeRedis.layer`) is
 *   built fails that layer (`RedisError`): an outage at startup is not a
 *   request-time `StoreError`.
 * - Shutting down after an outage: `layerRedisClient` closes within the
 *   store's `timeout`; `NodeRedis.layer` never does unless given
 *   `disableOfflineQueue: true` (see `layerRedis`).
 *
 * @since 0.1.0
 */
import { Clock, Context, Data, Duration, Effect, Layer, RcMap, Ref, Schedule, Schema, Semaphore } from "effect"
import { Redis } from "effect/persistence"
import * as Quota from "./internal/quota.ts"
import * as RedisClient from "./internal/redisClient.ts"

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
 * One kind of state, by key. Absent keys read as `undefined`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { MuxStore } from "effect-bedrock-mux"
 * const Counter = Schema.Struct({ n: Schema.Int })
 * const bump = (store: MuxStore.Service) =>
 *   store.states("counter", Counter).modify("a", (s) => [s?.n ?? 0, { n: (s?.n ?? 0) + 1 }] as const)
 * ```
 * @since 0.1.0
 */
export interface States<S> {
  /** Reads several keys at once (one round trip in a shared store). */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<S | undefined>, StoreError>
  /** Atomically replaces one key's state with `f`'s second result (undefined: delete) and returns its first. */
  readonly modify: <A>(key: string, f: (state: S | undefined) => readonly [A, S | undefined]) => Effect.Effect<A, StoreError>
  /** `getMany` without an Effect, where the states are at hand (the in-memory store); the mux's fast path reads it */
  readonly getManyUnsafe?: ((keys: ReadonlyArray<string>) => ReadonlyArray<S | undefined>) | undefined
  /** where the states are at hand: no key holds a state (every read would be `undefined`) */
  readonly emptyUnsafe?: (() => boolean) | undefined
  /**
   * where the states are at hand: a number that changes whenever a state may have (every `modify` moves it), so
   * a reader can keep what it derived from the states until it moves
   */
  readonly versionUnsafe?: (() => number) | undefined
}

/**
 * The store's operations.
 * @since 0.1.0
 */
export interface Service {
  /**
   * The map of one kind of state. `schema` encodes it for a shared store; the
   * same `kind` always gets the same map.
   */
  readonly states: <S, I>(kind: string, schema: Schema.Codec<S, I>) => States<S>
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
  /**
   * The quota operations without an Effect, where the windows are at hand
   * (the in-memory store): the mux's fast path admits a model with `rpm` /
   * `tpm` in plain code through them.
   */
  readonly quotaUnsafe?: {
    readonly reserve: (key: string, now: number, limits: Quota.Limits, id: string, tokens: number) => Quota.Reservation
    readonly settle: (key: string, id: string, tokens: number) => void
    readonly release: (key: string, id: string) => void
  } | undefined
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
  const kinds = new Map<string, States<any>>()
  // quota windows are hand-mutated, not in a Ref: the mux's fast path reserves and settles them in plain code
  // (`quotaUnsafe`). Measured (`npm run bench -- admission`, 200 in flight): in-memory rpm/tpm admission adds
  // 8.7 µs per call this way, about 50 µs as an Effect per step. One fiber runs at a time, so no update interleaves.
  const windows = new Map<string, Quota.QuotaWindow>()
  const windowOf = (key: string): Quota.QuotaWindow => {
    let w = windows.get(key)
    if (w === undefined) {
      w = new Quota.QuotaWindow()
      windows.set(key, w)
    }
    return w
  }
  const memoryStates = <S>(): States<S> => {
    const refs = new Map<string, Ref.Ref<S | undefined>>()
    // how many keys hold a state: the common case (nothing held anywhere) is answered without a read per key
    let held = 0
    let version = 0
    const refOf = (key: string): Ref.Ref<S | undefined> => {
      let ref = refs.get(key)
      if (ref === undefined) {
        ref = Ref.makeUnsafe<S | undefined>(undefined)
        refs.set(key, ref)
      }
      return ref
    }
    const modify = <A>(key: string, f: (state: S | undefined) => readonly [A, S | undefined]): Effect.Effect<A> =>
      Ref.modify(refOf(key), (current) => {
        const [a, next] = f(current)
        version += 1
        held += (next === undefined ? 0 : 1) - (current === undefined ? 0 : 1)
        return [a, next]
      })
    // a plain read of each Ref: the hot path reads every target's state per request
    const getManyUnsafe = (keys: ReadonlyArray<string>) =>
      keys.map((k) => {
        const r = refs.get(k)
        return r === undefined ? undefined : Ref.getUnsafe(r)
      })
    return {
      getMany: (keys) => Effect.sync(() => getManyUnsafe(keys)),
      getManyUnsafe,
      emptyUnsafe: () => held === 0,
      versionUnsafe: () => version,
      modify
    }
  }
  return {
    states: <S, I>(kind: string, _schema: Schema.Codec<S, I>): States<S> => {
      let states = kinds.get(kind)
      if (states === undefined) {
        states = memoryStates<S>()
        kinds.set(kind, states)
      }
      return states as States<S>
    },
    reserve: (key, now, limits, id, tokens) => Effect.sync(() => windowOf(key).reserve(now, limits, id, tokens)),
    settle: (key, id, tokens) => Effect.sync(() => windowOf(key).settle(id, tokens)),
    release: (key, id) => Effect.sync(() => windowOf(key).release(id)),
    usage: (key, now) => Effect.sync(() => windowOf(key).usage(now)),
    quotaUnsafe: {
      reserve: (key, now, limits, id, tokens) => windowOf(key).reserve(now, limits, id, tokens),
      settle: (key, id, tokens) => windowOf(key).settle(id, tokens),
      release: (key, id) => windowOf(key).release(id)
    }
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
 * same algorithm as `internal/quota.ts`: a sorted set holds reservation ids
 * by time, a hash their tokens, a counter the running token sum (so a
 * reservation is O(log n), not a scan). `now` comes from the caller's Clock.
 */
const PRUNE = `
local function prune(z, h, sumk, now, window)
  while true do
    local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - window, 'LIMIT', 0, 1000)
    if #old == 0 then return end
    local toks = redis.call('HMGET', h, unpack(old))
    local freed = 0
    for _, t in ipairs(toks) do freed = freed + (tonumber(t) or 0) end
    redis.call('HDEL', h, unpack(old))
    redis.call('ZREM', z, unpack(old))
    redis.call('DECRBY', sumk, freed)
  end
end
`

const reserveScript = Redis.script(
  (key: string, now: number, windowMs: number, rpm: number, tpm: number, id: string, tokens: number) => [
    key,
    key + ":t",
    key + ":sum",
    now,
    windowMs,
    rpm,
    tpm,
    id,
    tokens
  ],
  {
    numberOfKeys: 3,
    lua: PRUNE + `
local z, h, sumk = KEYS[1], KEYS[2], KEYS[3]
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
local id, tokens = ARGV[5], tonumber(ARGV[6])
prune(z, h, sumk, now, window)
local n = redis.call('ZCARD', z)
-- both limits are checked; when both bind the longer wait wins (-1: not binding, -2: never fits)
local rpmWait = -1
if rpm > 0 and n >= rpm then
  local e = redis.call('ZRANGE', z, n - rpm, n - rpm, 'WITHSCORES')
  rpmWait = math.max(0, tonumber(e[2]) + window - now)
end
local tpmWait = -1
if tpm > 0 then
  if tokens > tpm then
    tpmWait = -2
  else
    local used = tonumber(redis.call('GET', sumk) or '0')
    if used + tokens > tpm then
      local need = used + tokens - tpm
      local at = now
      local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
      for i = 1, #entries, 2 do
        if need <= 0 then break end
        need = need - (tonumber(redis.call('HGET', h, entries[i])) or 0)
        at = tonumber(entries[i + 1]) + window
      end
      tpmWait = math.max(0, at - now)
    end
  end
end
if tpmWait == -2 then return {0, 2, -1} end
if rpmWait >= 0 or tpmWait >= 0 then
  if tpmWait > rpmWait then return {0, 2, tpmWait} end
  return {0, 1, rpmWait}
end
redis.call('ZADD', z, now, id)
redis.call('HSET', h, id, tokens)
redis.call('INCRBY', sumk, tokens)
redis.call('PEXPIRE', z, window * 2)
redis.call('PEXPIRE', h, window * 2)
redis.call('PEXPIRE', sumk, window * 2)
return {1, 0, 0}
`
  }
).withReturnType<[number, number, number]>()

const settleScript = Redis.script(
  (key: string, id: string, tokens: number) => [key, key + ":t", key + ":sum", id, tokens],
  {
    numberOfKeys: 3,
    lua: `
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]) - tonumber(old))
end
return 1
`
  }
)

const releaseScript = Redis.script(
  (key: string, id: string) => [key, key + ":t", key + ":sum", id],
  {
    numberOfKeys: 3,
    lua: `
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('DECRBY', KEYS[3], tonumber(old))
end
return 1
`
  }
)

/** Compare-and-set: replace a key's JSON only if it is still what the caller read ('' is absent: DEL). */
const casScript = Redis.script(
  (key: string, expected: string, next: string) => [key, expected, next],
  {
    numberOfKeys: 1,
    lua: `
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`
  }
).withReturnType<number>()

const usageScript = Redis.script(
  (key: string, now: number, windowMs: number) => [key, key + ":t", key + ":sum", now, windowMs],
  {
    numberOfKeys: 3,
    lua: PRUNE + `
prune(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[3]) or '0')}
`
  }
).withReturnType<[number, number]>()

/** The Redis store's default bound on one command. */
const DEFAULT_TIMEOUT = Duration.millis(250)

/** Compare-and-set rounds a modify may lose to other processes before it fails with StoreError. */
const CAS_ROUNDS = 32

/** A compare-and-set round lost to another process (retried). */
class Contended extends Data.TaggedError("Contended")<{}> {}

/**
 * A store in Redis, shared by every process that points at it (over any
 * `Redis.Redis`; `layerRedisClient` brings its own client). Breakers and
 * cooldowns change by compare-and-set (read, compute the pure transition,
 * write only if unchanged, else retry); quota reservations are one Lua script.
 * Every command is bounded by `timeout` (default 250 ms, wall-clock time even
 * under TestClock); a failure or timeout is a `StoreError`, which the mux
 * answers with its `onStoreError`. Modifies of one key queue within a process,
 * so only other processes contend for its compare-and-set.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { NodeRedis } from "@effect/platform-node"
 * import { MuxStore } from "effect-bedrock-mux"
 * const Store = MuxStore.layerRedis({ prefix: "mux:" }).pipe(
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
 * )
 * ```
 * @since 0.1.0
 */
export const makeRedis = Effect.fnUntraced(function*(options: {
  readonly prefix?: string
  readonly timeout?: Duration.Input
} = {}) {
  const redis = yield* Redis.Redis
  const wallClock = Clock.Clock.defaultValue()
  const prefix = options.prefix ?? "bedrock-mux:"
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  // A network timeout is wall-clock time, whatever Clock the caller runs on: under TestClock a
  // virtual timeout would never fire for a hung Redis, and would fire spuriously (a StoreError,
  // so quotas fail open) whenever the test advances time while a command is in flight.
  const bounded = <A>(eff: Effect.Effect<A, unknown>): Effect.Effect<A, StoreError> =>
    eff.pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new StoreError({ message: `Redis did not answer within ${Duration.toMillis(Duration.fromInputUnsafe(timeout))} ms` }))
      }),
      Effect.provideService(Clock.Clock, wallClock),
      Effect.mapError((e) => (e instanceof StoreError ? e : new StoreError({ message: String((e as { message?: unknown })?.message ?? e), cause: e })))
    )
  const reserveEval = redis.eval(reserveScript)
  const settleEval = redis.eval(settleScript)
  const releaseEval = redis.eval(releaseScript)
  const casEval = redis.eval(casScript)
  const usageEval = redis.eval(usageScript)
  const k = (key: string) => prefix + key

  // One modify per key at a time in this process: its fibers queue on the key's lock instead of
  // racing each other's compare-and-set (N concurrent modifies of one key would need N rounds, and
  // all but a few ran out of retries). Only other processes contend in Redis. The locks live in an
  // RcMap: a key's lock exists while a modify holds or waits for it. When a modify fails (Redis
  // down), the ones already queued behind it fail with it at once instead of timing out one after
  // another.
  interface Lock {
    readonly semaphore: Semaphore.Semaphore
    failures: number
    lastError: StoreError | undefined
  }
  const locks = yield* RcMap.make({
    lookup: (_key: string) => Effect.sync((): Lock => ({ semaphore: Semaphore.makeUnsafe(1), failures: 0, lastError: undefined }))
  })
  const serialized = <A>(key: string, eff: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
    Effect.scoped(Effect.flatMap(RcMap.get(locks, key), (l) => {
      const seen = l.failures
      return l.semaphore.withPermits(1)(Effect.suspend(() =>
        l.failures > seen && l.lastError !== undefined
          ? Effect.fail(l.lastError)
          : Effect.tapError(eff, (e) =>
            Effect.sync(() => {
              l.failures++
              l.lastError = e
            }))
      ))
    }))

  // contention between processes: a jittered exponential wait on the real clock (Redis is real
  // I/O) before the next round, at most 16 ms
  const contention = Schedule.min([Schedule.exponential("1 millis"), Schedule.spaced("16 millis")]).pipe(Schedule.jittered)

  const states = <S, I>(kind: string, schema: Schema.Codec<S, I>): States<S> => {
    const codec = Schema.fromJsonString(Schema.toCodecJson(schema))
    const encode = Schema.encodeSync(codec)
    const decode = Schema.decodeUnknownOption(codec)
    // undefined is "absent" ('' for the compare-and-set); a state that no longer decodes reads as absent
    const read = (raw: string | null | undefined): S | undefined => {
      if (raw === null || raw === undefined || raw === "") return undefined
      const d = decode(raw)
      return d._tag === "Some" ? d.value : undefined
    }
    const key = (id: string) => k(`${kind}/${id}`)
    const modify = <A>(id: string, f: (state: S | undefined) => readonly [A, S | undefined]): Effect.Effect<A, StoreError> => {
      const round = Effect.gen(function*() {
        const raw = yield* bounded(redis.send<string | null>("GET", key(id)))
        const current = raw ?? ""
        const [a, next] = f(read(current))
        const json = next === undefined ? "" : encode(next)
        if (json === current) return a
        const ok = yield* bounded(casEval(key(id), current, json))
        if (ok === 1) return a
        return yield* new Contended()
      })
      return serialized(
        key(id),
        round.pipe(
          Effect.retry({ schedule: contention, times: CAS_ROUNDS - 1, while: (e) => e._tag === "Contended" }),
          Effect.provideService(Clock.Clock, wallClock),
          Effect.catchTag("Contended", () =>
            Effect.fail(new StoreError({ message: `contention on ${kind}/${id}: compare-and-set failed ${CAS_ROUNDS} times` })))
        )
      )
    }
    return {
      getMany: (ids) =>
        ids.length === 0
          ? Effect.succeed([])
          : Effect.map(bounded(redis.send<Array<string | null>>("MGET", ...ids.map(key))), (vals) => vals.map(read)),
      modify
    }
  }

  return {
    states,
    reserve: (key, now, limits, id, tokens) =>
      Effect.map(
        bounded(reserveEval(k(key), now, Quota.WINDOW_MS, limits.rpm ?? 0, limits.tpm ?? 0, id, tokens)),
        ([ok, kind, retry]): Quota.Reservation =>
          ok === 1
            ? { ok: true }
            : { ok: false, kind: kind === 1 ? "requests" : "tokens", retryAfterMs: retry < 0 ? Infinity : retry }
      ),
    settle: (key, id, tokens) => Effect.asVoid(bounded(settleEval(k(key), id, tokens))),
    release: (key, id) => Effect.asVoid(bounded(releaseEval(k(key), id))),
    usage: (key, now) =>
      Effect.map(bounded(usageEval(k(key), now, Quota.WINDOW_MS)), ([requests, tokens]) => ({ requests, tokens }))
  } satisfies Service
})

/**
 * Provides a Redis-backed `MuxStore` to every mux built under it over a
 * `Redis.Redis` you provide (effect/persistence, e.g. `NodeRedis.layer`).
 *
 * Gotcha: `NodeRedis.layer`'s finalizer waits for every command its client
 * still holds, and after a Redis outage it never settles (node-redis keeps
 * the commands the store gave up on queued offline, and its `close()` waits
 * for a socket that no longer exists). Give it `disableOfflineQueue: true`,
 * or use `layerRedisClient`, whose shutdown is bounded in every case.
 *
 * @example
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { MuxStore } from "effect-bedrock-mux"
 * const Store = MuxStore.layerRedis({ prefix: "mux:" }).pipe(
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
 * )
 * ```
 * @since 0.1.0
 */
export const layerRedis = (options: { readonly prefix?: string; readonly timeout?: Duration.Input } = {}) =>
  Layer.effect(MuxStore, makeRedis(options))

/**
 * Options of `layerRedisClient`.
 * @example
 * ```ts
 * import { MuxStore } from "effect-bedrock-mux"
 * const options: MuxStore.RedisClientOptions = { url: "rediss://cache.internal:6380", timeout: "200 millis", client: { password: "…" } }
 * ```
 * @since 0.1.0
 */
export interface RedisClientOptions {
  /** `redis[s]://[[user][:password]@]host[:port][/db]` (default: node-redis' `redis://localhost:6379`). */
  readonly url?: string | undefined
  /** Put before every key (default `"bedrock-mux:"`). */
  readonly prefix?: string
  /** The longest wait for one command, and for the graceful close (default 250 ms, wall-clock time). */
  readonly timeout?: Duration.Input
  /** Any other node-redis `createClient` option (TLS, credentials, database, ...). */
  readonly client?: RedisClient.ClientOptions
}

/**
 * A Redis-backed `MuxStore` on its own node-redis client (the `redis`
 * package; no `@effect/platform-node` needed), made so that an outage holds
 * neither requests nor the shutdown:
 * - while Redis is unreachable a command fails at once (no offline queue),
 *   so `onStoreError` decides without waiting for `timeout`;
 * - a command the store gives up on leaves the client's queue;
 * - it reconnects for as long as it lives; the first connection must
 *   succeed, else the layer fails with `RedisError`;
 * - closing waits at most `timeout` for replies, then destroys the client:
 *   disposal takes at most `timeout` (plus milliseconds), and the process
 *   then exits by itself.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { BedrockMux, BedrockRuntime, MuxStore } from "effect-bedrock-mux"
 * const MuxLive = BedrockMux.layerConfig().pipe(
 *   Layer.provide(BedrockRuntime.layer({ region: "us-east-1" })),
 *   Layer.provide(MuxStore.layerRedisClient({ url: "redis://127.0.0.1:6379", timeout: "250 millis" }))
 * )
 * ```
 * @since 0.1.0
 */
export const layerRedisClient = (options: RedisClientOptions = {}): Layer.Layer<never, Redis.RedisError> =>
  Layer.effect(MuxStore, makeRedis(options)).pipe(
    Layer.provide(RedisClient.layer({
      url: options.url,
      timeout: options.timeout === undefined ? DEFAULT_TIMEOUT : Duration.fromInputUnsafe(options.timeout),
      client: options.client
    }))
  )
