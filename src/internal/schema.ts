/**
 * Schema pieces shared by every JSON-decoded value of the library (the mux
 * config, the simulator script), the one way their problems are reported, and
 * the one check for unknown keys (config, per-call options, facade options).
 *
 * Gotchas:
 * - Effect's `Schema.Struct` ignores keys it does not know. Decode with
 *   `strict` (`onExcessProperty: "error"`) and report with `problemsOf`: every
 *   unknown key becomes "unknown key; did you mean `x`?" with its path.
 * - A `Schema.Record` with literal keys (the config's `decisions`) is a struct
 *   of optional keys, so its unknown keys are reported the same way.
 */
import { Duration, Effect, Option, Schema, SchemaAST, SchemaIssue, SchemaTransformation } from "effect"

/** The units Effect's duration strings accept (singular or plural). */
export const DURATION_UNITS = ["nanos", "micros", "millis", "seconds", "minutes", "hours", "days", "weeks"] as const

/** How a duration may be written, for error messages. */
export const DURATION_FORMS = `milliseconds as a number (1500), or a string "<amount> <unit>" like "30 seconds" or "500 millis" (units: ${
  DURATION_UNITS.join(", ")
}; singular or plural)`

/** A plain object (not null, not an array). */
export const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** A value as it reads in JSON or code (strings quoted), for "got …" in messages; never throws. */
export const shown = (u: unknown): string => {
  try {
    return typeof u === "string" || Array.isArray(u) || isRecord(u) ? JSON.stringify(u) : String(u)
  } catch {
    return Object.prototype.toString.call(u)
  }
}

const durationFromJson = SchemaTransformation.transformEffect<Duration.Duration, number | string>({
  decode: (input, options) => {
    const d = typeof input === "number" && Number.isNaN(input) ? Option.none() : Duration.fromInput(input as Duration.Input)
    if (Option.isNone(d)) {
      return Effect.fail(new SchemaIssue.InvalidValue({ message: `Expected a duration: ${DURATION_FORMS}; got ${shown(input)}` }, input, options))
    }
    if (Duration.toMillis(d.value) < 0) {
      return Effect.fail(new SchemaIssue.InvalidValue({ message: `Expected a non-negative duration, got ${shown(input)}` }, input, options))
    }
    return Effect.succeed(d.value)
  },
  encode: (d) => Effect.succeed(Duration.toMillis(d))
})

/**
 * A duration given as milliseconds (a number) or an Effect duration string
 * ("500 millis", "30 seconds"); never negative. `Infinity` is allowed. A value
 * of another type, or a string that does not parse, is reported with the
 * accepted forms.
 */
export const DurationInput = Schema.Union([Schema.Number, Schema.String])
  .annotate({ expected: `a duration: ${DURATION_FORMS}` })
  .pipe(Schema.decodeTo(Schema.Duration, durationFromJson))

/** A finite number >= 0. */
export const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))
/** A finite number > 0. */
export const Positive = Schema.Finite.check(Schema.isGreaterThan(0))
/** An integer >= 0. */
export const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** An integer >= 1. */
export const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
/** A probability in [0, 1]. */
export const Probability = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))

/** One problem of a decoded value: where, and what was expected. */
export interface Problem {
  readonly path: string
  readonly message: string
}

/** Parse options that report every problem, unknown keys included. */
export const strict: SchemaAST.ParseOptions = { errors: "all", onExcessProperty: "error" }

// --- unknown keys --------------------------------------------------------------------------------

/**
 * Optimal-string-alignment distance (Levenshtein plus adjacent
 * transpositions), case-insensitive. Pure.
 */
export const editDistance = (a: string, b: string): number => {
  const s = a.toLowerCase()
  const t = b.toLowerCase()
  const d: Array<Array<number>> = Array.from({ length: s.length + 1 }, (_, i) => [i])
  for (let j = 1; j <= t.length; j++) d[0]![j] = j
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[s.length]![t.length]!
}

/**
 * The allowed key closest to `key`, if one is close enough to be a typo: at
 * most a third of the longer name's letters apart (at least one). Ties go to
 * the first in `allowed`. Pure.
 */
export const closest = (key: string, allowed: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of allowed) {
    const distance = editDistance(key, candidate)
    if (distance < bestDistance && distance <= Math.max(1, Math.floor(Math.max(key.length, candidate.length) / 3))) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** "unknown key; did you mean `x`?", or the allowed keys when none is close. */
export const unknownKeyMessage = (key: string, allowed: ReadonlyArray<string>): string => {
  const near = closest(key, allowed)
  if (near !== undefined) return `unknown key; did you mean \`${near}\`?`
  return allowed.length === 0
    ? "unknown key; no keys are allowed here"
    : `unknown key; allowed: ${allowed.map((k) => `\`${k}\``).join(", ")}`
}

/** `path` + `key` in the config's path syntax (`models[1].isFallbak`; a bare key at the root). */
export const joinPath = (path: string, key: string | number): string =>
  typeof key === "number" ? `${path}[${key}]` : path === "" ? key : `${path}.${key}`

/**
 * One problem per own key of `value` that is not in `allowed`, each with its
 * path (`path` is the object's own path, "" for the root) and a suggestion.
 * Not an object (or an array): no problems, the type check says what is wrong.
 * Pure.
 *
 * @example
 * ```ts
 * unknownKeyProblems({ modelId: "b", isFallbak: true }, ["modelId", "weight", "isFallback"], "models[1]")
 * // [{ path: "models[1].isFallbak", message: "unknown key; did you mean `isFallback`?" }]
 * ```
 */
export const unknownKeyProblems = (value: unknown, allowed: ReadonlyArray<string>, path: string): Array<Problem> => {
  if (!isRecord(value)) return []
  return Object.keys(value)
    .filter((key) => !allowed.includes(key))
    .map((key) => ({ path: joinPath(path, key), message: unknownKeyMessage(key, allowed) }))
}

/** The keys a struct (or literal-keyed record) AST allows. */
const allowedKeys = (ast: SchemaAST.AST): ReadonlyArray<string> =>
  SchemaAST.isObjects(ast) ? ast.propertySignatures.map((p) => String(p.name)) : []

// --- reporting ------------------------------------------------------------------------------------

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Every problem of a schema error, each with its field path
 * (`models[1].weight`). Unknown keys (from decoding with `strict`) read
 * "unknown key; did you mean `x`?".
 */
export const problemsOf = (error: Schema.SchemaError): ReadonlyArray<Problem> => {
  // the formatter drops the struct an unknown key was found in: collect the allowed keys by path first
  const unknown = new Map<string, ReadonlyArray<string>>()
  const walk = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): void => {
    switch (issue._tag) {
      case "UnexpectedKey":
        unknown.set(formatPath(path), allowedKeys(issue.ast))
        return
      case "Pointer":
        return walk(issue.issue, [...path, ...issue.path])
      case "Composite":
      case "AnyOf":
        for (const i of issue.issues) walk(i, path)
        return
      case "Filter":
      case "Encoding":
        return walk(issue.issue, path)
      default:
        return
    }
  }
  walk(error.issue, [])
  return formatter(error.issue).issues.map((i) => {
    const path = formatPath(i.path ?? [])
    const allowed = unknown.get(path)
    const segments = i.path ?? []
    const last = segments[segments.length - 1]
    const key = typeof last === "object" && last !== null && "key" in last ? (last as { key: unknown }).key : last
    return allowed === undefined ? { path, message: i.message } : { path, message: unknownKeyMessage(String(key), allowed) }
  })
}

/** `["models", 1, "weight"]` → `models[1].weight`. */
export const formatPath = (path: ReadonlyArray<unknown>): string => {
  let out = ""
  for (const seg of path) {
    const key = typeof seg === "object" && seg !== null && "key" in seg ? (seg as { key: unknown }).key : seg
    out = joinPath(out, typeof key === "number" ? key : String(key))
  }
  return out === "" ? "(root)" : out
}
