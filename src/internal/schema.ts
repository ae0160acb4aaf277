/**
 * Schema pieces shared by every JSON-decoded value of the library (the mux
 * config, the simulator script) and the one way their problems are reported.
 */
import { Duration, Schema, SchemaIssue } from "effect"

/**
 * A duration given as milliseconds (a number) or an Effect duration string
 * ("500 millis", "30 seconds"); never negative. `Infinity` is allowed.
 */
export const DurationInput = Schema.Union([Schema.DurationFromMillis, Schema.DurationFromString]).check(
  Schema.makeFilter((d: Duration.Duration) =>
    Duration.toMillis(d) >= 0 ? undefined : "Expected a non-negative duration (milliseconds or a string like \"30 seconds\")"
  )
)

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

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Every problem of a schema error, each with its field path (`models[1].weight`). */
export const problemsOf = (error: Schema.SchemaError): ReadonlyArray<Problem> =>
  formatter(error.issue).issues.map((i) => ({
    path: formatPath(i.path ?? []),
    message: i.message
  }))

/** `["models", 1, "weight"]` → `models[1].weight`. */
export const formatPath = (path: ReadonlyArray<unknown>): string => {
  let out = ""
  for (const seg of path) {
    const key = typeof seg === "object" && seg !== null && "key" in seg ? (seg as { key: unknown }).key : seg
    if (typeof key === "number") out += `[${key}]`
    else out += out === "" ? String(key) : `.${String(key)}`
  }
  return out === "" ? "(root)" : out
}
