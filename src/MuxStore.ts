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
import { Context, Data, Effect, Layer } from "effect"

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
  return {
    getMany: (keys) => Effect.sync(() => keys.map((k) => states.get(k))),
    modify: (key, f) =>
      Effect.sync(() => {
        const [a, next] = f(states.get(key))
        states.set(key, next)
        return a
      })
  }
}

/**
 * Provides one in-memory store, shared by every mux built under it.
 * @since 0.1.0
 */
export const layerMemory = Layer.sync(MuxStore, () => makeMemory())
