/**
 * The answer cache: answers keyed by a hash of what was sent (the model,
 * the operation, the system prompt, the messages, the inference config), so
 * a rerun, after a failure or with one new candidate, calls only what is
 * new. What a case expects is not in the key: editing a scorer re-scores the
 * cached answers and bills nothing.
 *
 * Only successful answers are cached: a call that failed is tried again.
 *
 * Two implementations: in memory, and a JSON Lines file through effect's
 * `FileSystem` (read when the layer is built; each new answer appended at
 * once, or all of them when the layer closes). A later line for the same key
 * wins; a line that does not decode (a write cut short) is skipped with a
 * warning that names the file and the count, never the content, and the
 * next append starts on a new line.
 */
import { Context, Effect, FileSystem, Layer, Path, Schema, Semaphore } from "effect"
import { createHash } from "node:crypto"

/** One cached answer. */
export interface CachedAnswer {
  readonly modelId: string
  readonly text: string
  readonly inputTokens: number
  readonly outputTokens: number
  readonly ttftMs?: number
  readonly latencyMs?: number
}

/** The cache, as the evaluation uses it. */
export interface Service {
  readonly get: (key: string) => Effect.Effect<CachedAnswer | undefined>
  readonly put: (key: string, answer: CachedAnswer) => Effect.Effect<void>
}

/** The cache that keeps nothing (the default). */
export const none: Service = { get: () => Effect.undefined, put: () => Effect.void }

/**
 * The answer cache of an evaluation; none unless provided.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Eval } from "effect-bedrock-mux"
 * const withCache = <A, E, R>(run: Effect.Effect<A, E, R>) => run.pipe(Effect.provide(Eval.AnswerCache.layerMemory()))
 * ```
 */
export class AnswerCache extends Context.Reference<Service>("effect-bedrock-mux/Eval/AnswerCache", {
  defaultValue: () => none
}) {
  /** An in-memory cache (optionally seeded with `entries`). */
  static readonly layerMemory = (entries: Iterable<readonly [string, CachedAnswer]> = []): Layer.Layer<never> =>
    Layer.effect(AnswerCache, Effect.sync(() => memory(new Map(entries)))) as Layer.Layer<never>

  /**
   * A cache in a JSON Lines file (created with its directory on the first
   * write). `write: "through"` (the default) appends each answer at once, so
   * a crash loses nothing; `"on-close"` appends them when the layer closes
   * (for a run on virtual time, where file I/O must stay outside the run).
   */
  static readonly layerFileSystem = (
    path: string,
    options: { readonly write?: "through" | "on-close" } = {}
  ): Layer.Layer<never, AnswerCacheError, FileSystem.FileSystem | Path.Path> =>
    Layer.effect(AnswerCache, fileSystem(path, options.write ?? "through")) as Layer.Layer<never, AnswerCacheError, FileSystem.FileSystem | Path.Path>
}

/** The cache file could not be read. */
export class AnswerCacheError extends Schema.TaggedError<AnswerCacheError>()("AnswerCacheError", {
  path: Schema.String,
  message: Schema.String
}) {}

const memory = (map: Map<string, CachedAnswer>): Service => ({
  get: (key) => Effect.sync(() => map.get(key)),
  put: (key, answer) => Effect.sync(() => void map.set(key, answer))
})

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Entry = Schema.Struct({
  key: Schema.String,
  modelId: Schema.String,
  text: Schema.String,
  inputTokens: NonNegativeInt,
  outputTokens: NonNegativeInt,
  ttftMs: Schema.optionalKey(Schema.Finite),
  latencyMs: Schema.optionalKey(Schema.Finite)
})
const decodeEntry = Schema.decodeUnknownOption(Schema.fromJsonString(Entry))

const fileSystem = (path: string, write: "through" | "on-close") =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* Path.Path
    const fail = (e: { readonly message: string }) => new AnswerCacheError({ path, message: e.message })
    const map = new Map<string, CachedAnswer>()
    // a write cut short leaves no newline at the end: the next append starts on a line of its own
    let cut = false
    if (yield* fs.exists(path).pipe(Effect.mapError(fail))) {
      const text = yield* fs.readFileString(path).pipe(Effect.mapError(fail))
      cut = text !== "" && !text.endsWith("\n")
      let skipped = 0
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue
        const entry = decodeEntry(line)
        if (entry._tag === "None") skipped += 1
        else {
          const { key, ...answer } = entry.value
          map.set(key, answer)
        }
      }
      if (skipped > 0) yield* Effect.logWarning(`answer cache ${path}: skipped ${skipped} line(s) that do not decode`)
    }
    const cache = memory(map)
    const lock = yield* Semaphore.make(1)
    const pending: Array<string> = []
    const flush = Semaphore.withPermits(lock, 1)(Effect.suspend(() => {
      if (pending.length === 0) return Effect.void
      const lines = (cut ? "\n" : "") + pending.splice(0).join("")
      cut = false
      return fs.makeDirectory(paths.dirname(path), { recursive: true }).pipe(
        Effect.andThen(fs.writeFileString(path, lines, { flag: "a" })),
        // a cache that cannot be written costs a rerun, not this run
        Effect.catch((e) => Effect.logWarning(`answer cache ${path}: cannot write: ${e.message}`))
      )
    }))
    if (write === "on-close") yield* Effect.addFinalizer(() => flush)
    return {
      get: cache.get,
      put: (key, answer) =>
        cache.put(key, answer).pipe(
          Effect.andThen(Effect.sync(() => pending.push(JSON.stringify({ key, ...answer }) + "\n"))),
          Effect.andThen(write === "through" ? flush : Effect.void)
        )
    } satisfies Service
  })

/** JSON with object keys sorted, so equal values hash equally. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v)

/** The cache key of a call: a SHA-256 of what is sent. */
export const keyOf = (call: {
  readonly operation: "converse" | "converseStream"
  readonly modelId: string
  readonly system: string | undefined
  readonly messages: unknown
  readonly inferenceConfig: unknown
}): string => createHash("sha256").update(canonical({ v: 1, ...call })).digest("hex")
