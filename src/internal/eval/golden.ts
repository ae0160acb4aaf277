/**
 * The golden set: JSON Lines, one case per line, decoded with Schema. Every
 * problem of every line is reported with its line number and field path, in
 * one pass: bad JSON, unknown keys, a missing `id`, both or neither of
 * `prompt` and `messages`, messages that do not alternate from `user` to a
 * last `user`, an unknown expectation, a bad expectation argument (decoded
 * by its scorer), a duplicate id. Blank lines are skipped.
 */
import type { Message } from "@aws-sdk/client-bedrock-runtime"
import { Result, Schema } from "effect"
import { problemsOf } from "../schema.ts"
import { promptOf } from "../simulation.ts"
import type { Case, Expectation, Golden, InferenceSettings, Scorer } from "./types.ts"

/** One problem of a golden set: where (line, field) and what was expected. */
export interface GoldenProblem {
  readonly line: number
  readonly path: string
  readonly message: string
}

const NonEmpty = Schema.String.check(Schema.isMinLength(1))

const MessageLine = Schema.Struct({
  role: Schema.Literals(["user", "assistant"]),
  content: Schema.Union([NonEmpty, Schema.Array(Schema.Struct({ text: Schema.String })).check(Schema.isMinLength(1))])
})

const Inference = Schema.Struct({
  maxTokens: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  temperature: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  topP: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  stopSequences: Schema.optionalKey(Schema.Array(Schema.String))
})

/** The schema of one line (the `expect` arguments are decoded by their scorers). */
export const Line = Schema.Struct({
  id: NonEmpty,
  prompt: Schema.optionalKey(NonEmpty),
  messages: Schema.optionalKey(Schema.Array(MessageLine).check(Schema.isMinLength(1))),
  system: Schema.optionalKey(Schema.String),
  expect: Schema.Record(Schema.String, Schema.Unknown),
  weight: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThan(0))),
  tags: Schema.optionalKey(Schema.Array(NonEmpty)),
  inferenceConfig: Schema.optionalKey(Inference)
})

const decodeLine = Schema.decodeUnknownResult(Line)
const strict = { errors: "all", onExcessProperty: "error" } as const
const KEYS = Object.keys(Line.fields)

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The fields of a line that decode on their own (the others left out). */
const salvage = (json: unknown): Partial<typeof Line.Type> => {
  const out: Record<string, unknown> = {}
  if (!isObject(json)) return out
  for (const key of KEYS) {
    if (!(key in json)) continue
    const one = Schema.Struct({ [key]: Line.fields[key as keyof typeof Line.fields] }) as unknown as Schema.Decoder<Record<string, unknown>>
    const r = Schema.decodeUnknownResult(one)({ [key]: json[key] }, strict)
    if (Result.isSuccess(r)) Object.assign(out, r.success)
  }
  return out
}

/** `expect.json` + `properties.a` → `expect.json.properties.a`; `(root)` adds nothing. */
const under = (prefix: string, path: string): string =>
  path === "(root)" ? prefix : path.startsWith("[") ? `${prefix}${path}` : `${prefix}.${path}`

const messagesProblems = (messages: ReadonlyArray<typeof MessageLine.Type>): Array<{ path: string; message: string }> => {
  const problems: Array<{ path: string; message: string }> = []
  messages.forEach((m, i) => {
    const expected = i % 2 === 0 ? "user" : "assistant"
    if (m.role !== expected) {
      problems.push({ path: `messages[${i}].role`, message: `Expected "${expected}": messages alternate, starting with "user"` })
    }
  })
  if (messages.length > 0 && messages.at(-1)!.role !== "user") {
    problems.push({ path: `messages[${messages.length - 1}]`, message: "Expected the last message to be the user's (the prompt)" })
  }
  return problems
}

const toMessages = (line: typeof Line.Type): ReadonlyArray<Message> =>
  line.prompt !== undefined
    ? [{ role: "user", content: [{ text: line.prompt }] }]
    : (line.messages ?? []).map((m) => ({
      role: m.role,
      content: typeof m.content === "string" ? [{ text: m.content }] : m.content.map((b) => ({ text: b.text }))
    }))

/**
 * Decodes a golden set. `scorers` are the expectations a line may name (the
 * built-ins and yours). Returns every case, or every problem. Pure.
 */
export const decodeGolden = (
  text: string,
  scorers: ReadonlyArray<Scorer<any, any>>
): Result.Result<Golden, ReadonlyArray<GoldenProblem>> => {
  const byName = new Map(scorers.map((s) => [s.name, s] as const))
  const allowed = scorers.map((s) => s.name).join(", ")
  const problems: Array<GoldenProblem> = []
  const cases: Array<Case> = []
  const seen = new Map<string, number>()
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1
    if (raw.trim() === "") return
    const at = (path: string, message: string) => problems.push({ line, path, message })
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch (e) {
      return at("(line)", `not valid JSON: ${(e as Error).message}`)
    }
    const decoded = decodeLine(json, strict)
    if (Result.isFailure(decoded)) {
      for (const p of problemsOf(decoded.failure)) at(p.path, p.message)
    }
    // the checks below run on what did decode, so one pass lists every problem of the line
    const l: Partial<typeof Line.Type> = Result.isSuccess(decoded) ? decoded.success : salvage(json)
    const before = problems.length
    const has = (key: string) => isObject(json) && key in json
    if (isObject(json) && has("prompt") === has("messages")) {
      at(has("prompt") ? "messages" : "prompt", "Expected exactly one of `prompt` and `messages`")
    }
    for (const p of messagesProblems(l.messages ?? [])) at(p.path, p.message)
    const keys = Object.keys(l.expect ?? {})
    if (l.expect !== undefined && keys.length === 0) at("expect", `Expected at least one expectation; allowed: ${allowed}`)
    const expect: Array<Expectation> = []
    for (const key of keys) {
      const scorer = byName.get(key)
      if (scorer === undefined) {
        at(`expect.${key}`, `unknown expectation "${key}"; allowed: ${allowed}`)
        continue
      }
      const arg = Schema.decodeUnknownResult(scorer.expectation)(l.expect![key], strict)
      if (Result.isFailure(arg)) for (const p of problemsOf(arg.failure)) at(under(`expect.${key}`, p.path), p.message)
      else expect.push({ scorer: key, expected: arg.success })
    }
    const previous = l.id === undefined ? undefined : seen.get(l.id)
    if (previous !== undefined) at("id", `duplicate id "${l.id}" (also on line ${previous}); ids must be unique`)
    else if (l.id !== undefined) seen.set(l.id, line)
    if (problems.length > before || Result.isFailure(decoded)) return
    const messages = toMessages(decoded.success)
    cases.push({
      id: decoded.success.id,
      line,
      messages,
      prompt: promptOf(messages as Array<Message>),
      system: l.system,
      expect,
      weight: l.weight ?? 1,
      tags: l.tags ?? [],
      inferenceConfig: l.inferenceConfig as InferenceSettings | undefined
    })
  })
  if (problems.length === 0 && cases.length === 0) problems.push({ line: 0, path: "(file)", message: "no cases: the golden set is empty" })
  return problems.length > 0 ? Result.fail(problems) : Result.succeed({ cases })
}

/** `line 3, expect.regex: invalid regular expression ...`. */
export const formatProblem = (p: GoldenProblem): string =>
  `${p.line === 0 ? "" : `line ${p.line}, `}${p.path}: ${p.message}`

