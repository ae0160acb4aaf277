/**
 * The facade's options: which keys exist, how their problems are reported,
 * and how they become a `MuxConfig` input. Pure.
 *
 * An option the facade does not know is a problem (with a suggestion), never
 * silently ignored: a typo like `isFallbak` or the original's misplaced
 * top-level `maxAttempts` would otherwise change routing without a word.
 * The check is one function (`unknownKeys`) so that the library-wide one can
 * replace it.
 */
import { Duration } from "effect"
import type { Problem } from "../schema.ts"
import * as MuxConfig from "../../MuxConfig.ts"
import type { ModelConfiguration } from "./model.ts"

/** The original's option keys. */
const ORIGINAL = ["models", "defaultTimeoutMs", "maxRetries", "clientConfig", "tracing", "refusalDetection", "tierEscalation"] as const
/** Every top-level key: the original's, our config's, and the facade's own. */
export const OPTION_KEYS: ReadonlyArray<string> = [
  ...new Set([...ORIGINAL, ...Object.keys(MuxConfig.schema.fields), "bedrockRuntime"])
]
export const TRACING_KEYS = ["enabled", "serviceName", "captureBodies", "captureModelSelection"] as const
export const REFUSAL_KEYS = ["enabled", "modelPath", "confidenceThreshold", "retryOnRefusal", "classifier"] as const
export const TIER_KEYS = ["enabled", "escalationTier"] as const
/** The per-call options of `processRequest`. */
export const CALL_KEYS = ["abortSignal", "label", "deadline", "tenant", "waitForRecovery", "waitForQuota"] as const

/** Where a known mistake belongs. */
const HINTS: Record<string, string> = {
  maxAttempts: "SDK retries go in clientConfig.maxAttempts (the mux's own retries are maxRetries)",
  region: "the Region goes in clientConfig.region",
  credentials: "credentials go in clientConfig.credentials"
}

const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]!
}

const suggestion = (key: string, allowed: ReadonlyArray<string>): string => {
  const hint = HINTS[key]
  if (hint !== undefined) return `; ${hint}`
  const lower = key.toLowerCase()
  const stem = allowed.find((a) => lower.length >= 4 && a.toLowerCase().startsWith(lower.slice(0, -1)))
  if (stem !== undefined) return `; did you mean \`${stem}\`?`
  let best: string | undefined
  let bestDistance = Infinity
  for (const a of allowed) {
    const d = distance(key, a)
    if (d < bestDistance) {
      best = a
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 4)) ? `; did you mean \`${best}\`?` : ""
}

/**
 * Every key of `value` not in `allowed`, as a problem at `path`. (The
 * library-wide `unknownKeyProblems(value, allowed, path)` takes over here
 * once it exists.)
 */
export const unknownKeys = (value: unknown, allowed: ReadonlyArray<string>, path: string): Array<Problem> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return []
  return Object.keys(value).filter((k) => !allowed.includes(k)).map((k) => ({
    path: path === "" ? k : `${path}.${k}`,
    message: `unknown ${path === "" ? "option" : "key"}${suggestion(k, allowed)}; allowed: ${allowed.join(", ")}`
  }))
}

const objectProblem = (value: unknown, path: string): Array<Problem> =>
  value === undefined || (typeof value === "object" && value !== null && !Array.isArray(value))
    ? []
    : [{ path, message: `expected an object, got ${Array.isArray(value) ? "an array" : typeof value}` }]

const booleanProblem = (value: unknown, path: string): Array<Problem> =>
  value === undefined || typeof value === "boolean" ? [] : [{ path, message: `expected true or false, got ${String(value)}` }]

const stringProblem = (value: unknown, path: string, expected: string): Array<Problem> =>
  value === undefined || (typeof value === "string" && value !== "") ? [] : [{ path, message: `expected ${expected}` }]

/** A nested option object: its type, its keys, then `checks` on its fields. */
const nested = (
  o: Record<string, unknown>,
  key: string,
  keys: ReadonlyArray<string>,
  checks: (value: Record<string, unknown>) => Array<Problem>
): Array<Problem> => {
  const value = o[key]
  const problems = objectProblem(value, key)
  if (problems.length > 0 || value === undefined) return problems
  return [...unknownKeys(value, keys, key), ...checks(value as Record<string, unknown>)]
}

/** The facade-only options' problems (the rest is checked by `MuxConfig.decode`). */
export const optionProblems = (options: unknown): Array<Problem> => {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return [{ path: "(options)", message: "expected an object of options" }]
  }
  const o = options as Record<string, unknown>
  return [
    ...unknownKeys(o, OPTION_KEYS, ""),
    ...objectProblem(o["clientConfig"], "clientConfig"),
    ...nested(o, "tracing", TRACING_KEYS, (t) => [
      ...booleanProblem(t["enabled"], "tracing.enabled"),
      ...booleanProblem(t["captureBodies"], "tracing.captureBodies"),
      ...booleanProblem(t["captureModelSelection"], "tracing.captureModelSelection"),
      ...stringProblem(t["serviceName"], "tracing.serviceName", "a non-empty string")
    ]),
    ...nested(o, "refusalDetection", REFUSAL_KEYS, (r) => {
      const th = r["confidenceThreshold"]
      return [
        ...booleanProblem(r["enabled"], "refusalDetection.enabled"),
        ...booleanProblem(r["retryOnRefusal"], "refusalDetection.retryOnRefusal"),
        ...stringProblem(r["modelPath"], "refusalDetection.modelPath", "the path of an .onnx file"),
        ...(th === undefined || (typeof th === "number" && th >= 0 && th <= 1)
          ? []
          : [{ path: "refusalDetection.confidenceThreshold", message: `expected a number in [0, 1], got ${String(th)}` }])
      ]
    }),
    ...nested(o, "tierEscalation", TIER_KEYS, (t) => [
      ...booleanProblem(t["enabled"], "tierEscalation.enabled"),
      ...(t["enabled"] === true && t["escalationTier"] !== "priority" && t["escalationTier"] !== "reserved"
        ? [{ path: "tierEscalation.escalationTier", message: `expected "priority" or "reserved", got ${String(t["escalationTier"])}` }]
        : [])
    ])
  ]
}

/** The per-call options' problems. */
export const callOptionProblems = (options: unknown): Array<string> => {
  if (options === undefined) return []
  if (typeof options !== "object" || options === null) return ["options: expected an object"]
  const problems = unknownKeys(options, CALL_KEYS, "").map((p) => `${p.path}: ${p.message}`)
  const signal = (options as { abortSignal?: unknown }).abortSignal
  if (signal !== undefined && !(signal instanceof AbortSignal)) problems.push("abortSignal: expected an AbortSignal")
  return problems
}

const millis = (input: unknown): number | undefined => {
  if (typeof input !== "number" && typeof input !== "string") return undefined
  const d = Duration.fromInput(input as Duration.Input)
  return d._tag === "Some" ? Duration.toMillis(d.value) : undefined
}

/**
 * The `MuxConfig` input of `createMultiplexer(models, options)`.
 *
 * - `tierEscalation` sets `escalate` on every model that has none.
 * - `tracing.captureBodies` (with tracing on) sets `captureBodies`.
 * - With a timeout set (`defaultTimeoutMs`, `timeout`, or a model's) and no
 *   `deadline`, the deadline is the longest timeout × the attempts: the
 *   longest the original could take, so `defaultTimeoutMs: 120000` is valid.
 */
export const toMuxInput = (
  models: ReadonlyArray<ModelConfiguration>,
  options: Record<string, unknown>
): Record<string, unknown> => {
  const { clientConfig: _c, tracing, refusalDetection: _r, tierEscalation, bedrockRuntime: _b, models: _m, ...rest } = options
  const tier = tierEscalation as { readonly enabled?: boolean; readonly escalationTier?: string } | undefined
  const escalate = tier?.enabled === true ? tier.escalationTier : undefined
  const pool = escalate === undefined ? models : models.map((m) => (m.escalate === undefined ? { ...m, escalate } : m))
  const t = tracing as { readonly enabled?: boolean; readonly captureBodies?: boolean } | undefined
  const out: Record<string, unknown> = { ...rest, models: pool }
  if (rest["captureBodies"] === undefined && t?.enabled === true && t.captureBodies === true) out["captureBodies"] = true
  if (rest["deadline"] === undefined) {
    const timeouts = [rest["timeout"], rest["defaultTimeoutMs"], ...models.map((m) => (typeof m === "object" && m !== null ? m.timeout : undefined))]
      .map(millis)
      .filter((ms): ms is number => ms !== undefined && Number.isFinite(ms))
    if (timeouts.length > 0) {
      const attempts = typeof rest["attempts"] === "number"
        ? rest["attempts"]
        : typeof rest["maxRetries"] === "number"
        ? rest["maxRetries"] + 1
        : 4
      const derived = Math.max(...timeouts) * Math.max(1, attempts)
      if (Number.isFinite(derived) && derived > 0) out["deadline"] = derived
    }
  }
  return out
}
