/**
 * The built-in scorers: one per `expect` key of a golden case. Each decodes
 * its argument with the golden set (so a bad regex or an unsupported JSON
 * Schema keyword is a problem at its line) and scores an answer in [0, 1].
 *
 * - `exact`: the answer equals the string, ends trimmed (`ignoreCase` optional). 1 or 0.
 * - `contains`: a string or a list (all of them), `{ all: [...] }` or
 *   `{ any: [...] }` (`ignoreCase` optional). `all` scores the share of
 *   strings found and passes when every one is; `any` scores 1 or 0.
 * - `regex`: a pattern (or `{ pattern, flags }`, flags among `i m s u`)
 *   that must match somewhere in the answer. 1 or 0.
 * - `json`: the answer (trimmed, or the body of its first ``` fence) parses
 *   as JSON and, unless the argument is `true`, matches the JSON Schema
 *   (the subset of `jsonSchema.ts`). 1 or 0.
 * - `number`: the last number in the answer (`1,234.5` reads as 1234.5) is
 *   within `max(tolerance, relative × |value|)` of `value`. 1 or 0.
 * - `judge`: a rubric (or `{ rubric, pass }`); the judge model scores the
 *   answer 0–10, read as 0–1, and the case passes at `pass` (default 0.7).
 *   No judge in the run, a failed judge call or an unparseable judge answer
 *   is a `ScoreFailure`: recorded, and the check is left out of the score.
 */
import { Effect, Result, Schema } from "effect"
import { checkSchema, validate } from "./jsonSchema.ts"
import { JUDGE_SYSTEM, judgePrompt, parseJudgeScore } from "./judge.ts"
import { type Score, ScoreFailure, type Scorer } from "./types.ts"

const NonEmpty = Schema.String.check(Schema.isMinLength(1))
const Needles = Schema.Array(NonEmpty).check(Schema.isMinLength(1, { message: "must be non-empty: give at least one string" }))
const Unit = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

const lower = (s: string, ignoreCase: boolean | undefined) => (ignoreCase === true ? s.toLowerCase() : s)
const binary = (pass: boolean, detail?: string): Score => ({ score: pass ? 1 : 0, pass, ...(detail === undefined ? {} : { detail }) })
const quote = (s: string): string => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s)

/** `exact`: the answer, trimmed, equals the expected string, trimmed. */
export const exact: Scorer<string | { readonly value: string; readonly ignoreCase?: boolean }> = {
  name: "exact",
  description: "the answer equals the string (ends trimmed; ignoreCase optional)",
  expectation: Schema.Union([Schema.String, Schema.Struct({ value: Schema.String, ignoreCase: Schema.optionalKey(Schema.Boolean) })]),
  score: (expected, { answer }) => {
    const { value, ignoreCase } = typeof expected === "string" ? { value: expected, ignoreCase: false } : expected
    const pass = lower(answer.trim(), ignoreCase) === lower(value.trim(), ignoreCase)
    return Effect.succeed(binary(pass, pass ? undefined : `expected ${quote(value.trim())}`))
  }
}

/** The object form: exactly one of `all` and `any`. */
type ContainsObject = { readonly all?: ReadonlyArray<string>; readonly any?: ReadonlyArray<string>; readonly ignoreCase?: boolean }

type ContainsArg = string | ReadonlyArray<string> | ContainsObject

// one struct with both keys optional, not a union of an `all` struct and an `any` one: a union reports a bad
// `{ "any": [] }` against both members (`any: unknown key`, `all: Missing key`); this reports the one problem
const ContainsObject = Schema.Struct({
  all: Schema.optionalKey(Needles),
  any: Schema.optionalKey(Needles),
  ignoreCase: Schema.optionalKey(Schema.Boolean)
}).check(Schema.makeFilter((a: ContainsObject) =>
  a.all === undefined && a.any === undefined
    ? "Expected `all` or `any`: the strings the answer must all, or any one of, contain"
    : a.all !== undefined && a.any !== undefined
    ? "Expected one of `all` and `any`, not both"
    : undefined
))

/** `contains`: the answer contains every string (`all`, the default) or one of them (`any`). */
export const contains: Scorer<ContainsArg> = {
  name: "contains",
  description: "the answer contains the strings: a string or list (all), { all: [...] } or { any: [...] }; ignoreCase optional",
  expectation: Schema.Union([NonEmpty, Needles, ContainsObject]),
  score: (expected, { answer }) => {
    const arg: ContainsObject = typeof expected === "string"
      ? { all: [expected] }
      : Array.isArray(expected)
      ? { all: expected as ReadonlyArray<string> }
      : expected as ContainsObject
    const ignoreCase = arg.ignoreCase
    const hay = lower(answer, ignoreCase)
    const found = (needle: string) => hay.includes(lower(needle, ignoreCase))
    if (arg.any !== undefined) {
      const pass = arg.any.some(found)
      return Effect.succeed(binary(pass, pass ? undefined : `none of ${arg.any.map(quote).join(", ")}`))
    }
    const list = arg.all ?? []
    const missing = list.filter((n) => !found(n))
    return Effect.succeed({
      score: (list.length - missing.length) / list.length,
      pass: missing.length === 0,
      ...(missing.length === 0 ? {} : { detail: `missing ${missing.map(quote).join(", ")}` })
    })
  }
}

const compiles = Schema.makeFilter((arg: string | { readonly pattern: string; readonly flags?: string }) => {
  const { pattern, flags } = typeof arg === "string" ? { pattern: arg, flags: "" } : { pattern: arg.pattern, flags: arg.flags ?? "" }
  if (!/^[imsu]*$/.test(flags)) return `flags ${quote(flags)} are not allowed; allowed: i, m, s, u`
  try {
    new RegExp(pattern, flags)
    return undefined
  } catch (e) {
    return (e as Error).message
  }
})

/** `regex`: the pattern matches somewhere in the answer. */
export const regex: Scorer<string | { readonly pattern: string; readonly flags?: string }> = {
  name: "regex",
  description: "the pattern matches somewhere in the answer: a pattern or { pattern, flags } (flags among i, m, s, u)",
  expectation: Schema.Union([NonEmpty, Schema.Struct({ pattern: NonEmpty, flags: Schema.optionalKey(Schema.String) })]).check(compiles),
  score: (expected, { answer }) => {
    const { pattern, flags } = typeof expected === "string" ? { pattern: expected, flags: "" } : expected
    const pass = new RegExp(pattern, flags ?? "").test(answer)
    return Effect.succeed(binary(pass, pass ? undefined : `no match for /${pattern}/${flags ?? ""}`))
  }
}

/** The JSON text of an answer: the body of its first ``` fence, else the whole answer; trimmed. */
export const jsonTextOf = (answer: string): string => {
  const fence = /```[a-zA-Z]*\s*\n([\s\S]*?)```/.exec(answer)
  return (fence === null ? answer : fence[1]!).trim()
}

const usableSchema = Schema.makeFilter((schema: unknown) =>
  checkSchema(schema).map((p) => ({ path: p.path, issue: p.message }))
)

/** `json`: the answer parses as JSON and matches the schema (`true`: any JSON). */
export const json: Scorer<true | { readonly [key: string]: unknown }> = {
  name: "json",
  description: "the answer (or its first ``` fence) parses as JSON and matches the JSON Schema (true: any JSON)",
  expectation: Schema.Union([Schema.Literal(true), Schema.Record(Schema.String, Schema.Unknown).check(usableSchema)]),
  score: (expected, { answer }) => {
    let value: unknown
    try {
      value = JSON.parse(jsonTextOf(answer))
    } catch (e) {
      return Effect.succeed(binary(false, `not JSON: ${(e as Error).message}`))
    }
    const errors = validate(expected, value)
    return Effect.succeed(
      binary(errors.length === 0, errors.length === 0 ? undefined : errors.slice(0, 3).join("; ") + (errors.length > 3 ? ` (+${errors.length - 3} more)` : ""))
    )
  }
}

const NUMBER = /[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?/g

/** The last number written in a text (thousands separators allowed), if any. */
export const lastNumberOf = (text: string): number | undefined => {
  const all = text.match(NUMBER)
  if (all === null) return undefined
  const n = Number(all.at(-1)!.replace(/,/g, ""))
  return Number.isFinite(n) ? n : undefined
}

type NumberArg = number | { readonly value: number; readonly tolerance?: number; readonly relative?: number }

/** `number`: the answer's last number is within tolerance of the value. */
export const number: Scorer<NumberArg> = {
  name: "number",
  description: "the answer's last number is within max(tolerance, relative × |value|) of value: a number or { value, tolerance, relative }",
  expectation: Schema.Union([
    Schema.Finite,
    Schema.Struct({ value: Schema.Finite, tolerance: Schema.optionalKey(NonNegative), relative: Schema.optionalKey(NonNegative) })
  ]),
  score: (expected, { answer }) => {
    const { value, tolerance, relative } = typeof expected === "number" ? { value: expected, tolerance: 0, relative: 0 } : expected
    const got = lastNumberOf(answer)
    if (got === undefined) return Effect.succeed(binary(false, "no number in the answer"))
    const allowed = Math.max(tolerance ?? 0, (relative ?? 0) * Math.abs(value))
    const pass = Math.abs(got - value) <= allowed
    return Effect.succeed(binary(pass, pass ? undefined : `got ${got}, expected ${value} ± ${allowed}`))
  }
}

type JudgeArg = string | { readonly rubric: string; readonly pass?: number }

/** The default score at which a judged case passes. */
export const DEFAULT_JUDGE_PASS = 0.7

/** `judge`: the judge model scores the answer against the rubric. */
export const judge: Scorer<JudgeArg> = {
  name: "judge",
  description: "the judge model scores the answer 0–10 against the rubric: a rubric or { rubric, pass } (pass in 0..1, default 0.7)",
  expectation: Schema.Union([NonEmpty, Schema.Struct({ rubric: NonEmpty, pass: Schema.optionalKey(Unit) })]),
  score: (expected, { answer, case: c, judge }) =>
    Effect.gen(function*() {
      const { rubric, pass } = typeof expected === "string" ? { rubric: expected, pass: DEFAULT_JUDGE_PASS } : expected
      if (judge === undefined) return yield* new ScoreFailure({ message: "no judge model in this run" })
      const reply = yield* judge.ask({ system: JUDGE_SYSTEM, prompt: judgePrompt({ rubric, prompt: c.prompt, system: c.system, answer }) })
      const parsed = parseJudgeScore(reply)
      if (Result.isFailure(parsed)) return yield* new ScoreFailure({ message: parsed.failure })
      const threshold = pass ?? DEFAULT_JUDGE_PASS
      return { score: parsed.success, pass: parsed.success >= threshold, detail: `judge ${Math.round(parsed.success * 10)}/10` }
    })
}

/** The built-in scorers, in the order the docs list them. */
export const builtins: ReadonlyArray<Scorer> = [exact, contains, regex, json, number, judge]
