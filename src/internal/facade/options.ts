/**
 * The facade's options: which keys exist, how their problems are reported,
 * and how they become a `MuxConfig` input. Pure.
 *
 * An option the facade does not know is a problem (with a suggestion), never
 * silently ignored: a typo like `isFallbak` would otherwise change routing
 * without a word. Unknown keys are found by the library-wide
 * `unknownKeyProblems`.
 *
 * The original's own failover example passes `maxAttempts: 1` at the top
 * level next to `clientConfig.maxAttempts: 1` (the original ignored it): here
 * it is the SDK's attempts per call, as in `clientConfig`, so that code runs
 * unchanged and the value means what its comment says; the two disagreeing is
 * a problem.
 */
import { type Problem, unknownKeyProblems } from "../schema.ts"
import * as MuxConfig from "../../MuxConfig.ts"
import type { ModelConfiguration } from "./model.ts"

/** The original's option keys. */
const ORIGINAL = ["models", "defaultTimeoutMs", "maxRetries", "maxAttempts", "clientConfig", "tracing", "refusalDetection", "tierEscalation"] as const
/** Every top-level key: the original's, our config's, and the facade's own. */
export const OPTION_KEYS: ReadonlyArray<string> = [
  ...new Set([...ORIGINAL, ...Object.keys(MuxConfig.schema.fields), "bedrockRuntime"])
]
export const TRACING_KEYS = ["enabled", "serviceName", "captureBodies", "captureModelSelection"] as const
export const REFUSAL_KEYS = ["enabled", "modelPath", "confidenceThreshold", "retryOnRefusal", "classifier"] as const
export const TIER_KEYS = ["enabled", "escalationTier"] as const
/** The per-call options of `processRequest`. */
export const CALL_KEYS = ["abortSignal", "label", "deadline", "tenant", "waitForRecovery", "waitForQuota"] as const

/** Where a known mistake belongs: said instead of a suggestion. */
const HINTS: Record<string, string> = {
  region: "unknown key; the Region goes in clientConfig.region",
  credentials: "unknown key; credentials go in clientConfig.credentials"
}

/** Every key of `value` not in `allowed`, as a problem at `path` (the library-wide check, with the facade's hints at the top). */
const unknownKeys = (value: unknown, allowed: ReadonlyArray<string>, path: string): Array<Problem> =>
  unknownKeyProblems(value, allowed, path).map((p) => {
    const hint = path === "" ? HINTS[p.path] : undefined
    return hint === undefined ? p : { path: p.path, message: hint }
  })

const objectProblem = (value: unknown, path: string): Array<Problem> =>
  value === undefined || (typeof value === "object" && value !== null && !Array.isArray(value))
    ? []
    : [{ path, message: `expected an object, got ${Array.isArray(value) ? "an array" : typeof value}` }]

const booleanProblem = (value: unknown, path: string): Array<Problem> =>
  value === undefined || typeof value === "boolean" ? [] : [{ path, message: `expected true or false, got ${String(value)}` }]

const stringProblem = (value: unknown, path: string, expected: string): Array<Problem> =>
  value === undefined || (typeof value === "string" && value !== "") ? [] : [{ path, message: `expected ${expected}` }]

const isClassifier = (u: unknown): boolean =>
  typeof u === "function" ||
  (typeof u === "object" && u !== null && typeof (u as { name?: unknown }).name === "string" &&
    (u as { name: string }).name !== "" && typeof (u as { score?: unknown }).score === "function")

/** `refusalDetection.classifier`: a function or a `Refusal.Classifier`, and not next to a `modelPath`. */
const classifierProblems = (r: Record<string, unknown>): Array<Problem> => {
  const c = r["classifier"]
  if (c === undefined) return []
  if (!isClassifier(c)) {
    return [{ path: "refusalDetection.classifier", message: "expected a function (text) => score in [0, 1], or a Refusal.Classifier { name, score }" }]
  }
  return r["modelPath"] === undefined
    ? []
    : [{ path: "refusalDetection.classifier", message: "give either classifier or modelPath, not both" }]
}

/** The top-level `maxAttempts` (the SDK's attempts per call): a positive integer, and the same as `clientConfig.maxAttempts` where both are given. */
const maxAttemptsProblems = (o: Record<string, unknown>): Array<Problem> => {
  const n = o["maxAttempts"]
  if (n === undefined) return []
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    return [{ path: "maxAttempts", message: `expected an integer >= 1 (the SDK's attempts per call, as clientConfig.maxAttempts), got ${String(n)}` }]
  }
  const c = o["clientConfig"]
  const inClient = typeof c === "object" && c !== null ? (c as { maxAttempts?: unknown }).maxAttempts : undefined
  return inClient === undefined || inClient === n
    ? []
    : [{ path: "maxAttempts", message: `${n} contradicts clientConfig.maxAttempts ${String(inClient)}: give the SDK's attempts per call once (the mux's own retries are maxRetries)` }]
}

/** `clientConfig` and `maxAttempts` configure the facade's own client: with a `bedrockRuntime` of the caller's there is none. */
const ownClientProblems = (o: Record<string, unknown>): Array<Problem> =>
  o["bedrockRuntime"] === undefined
    ? []
    : (["clientConfig", "maxAttempts"] as const).filter((k) => o[k] !== undefined).map((k) => ({
      path: k,
      message: "not used with bedrockRuntime (it configures the facade's own SDK client); configure the client behind your bedrockRuntime instead"
    }))

/**
 * The SDK client config of the facade's own client: `clientConfig`, with the
 * top-level `maxAttempts` where `clientConfig` has none.
 */
export const clientConfigOf = (options: Record<string, unknown>): Record<string, unknown> => {
  const c = (options["clientConfig"] as Record<string, unknown> | undefined) ?? {}
  const n = options["maxAttempts"]
  return n === undefined || c["maxAttempts"] !== undefined ? c : { ...c, maxAttempts: n }
}

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
    ...maxAttemptsProblems(o),
    ...ownClientProblems(o),
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
        ...classifierProblems(r),
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

/**
 * A model entry as the config reads it: `tierEscalation`'s tier when the
 * entry sets no `escalate` of its own.
 */
export const modelInput = <M extends ModelConfiguration>(model: M, escalate: "priority" | "reserved" | undefined): M =>
  escalate === undefined || typeof model !== "object" || model === null || model.escalate !== undefined ? model : { ...model, escalate }

/**
 * The `MuxConfig` input of `createMultiplexer(models, options)`.
 *
 * - `tierEscalation` sets `escalate` on every model that has none.
 * - `tracing.captureBodies` (with tracing on) sets `captureBodies`.
 *
 * The deadline is the config's own rule (`MuxConfig`): without a `deadline`,
 * 60 s or the longest timeout × the attempts, whichever is longer.
 */
export const toMuxInput = (
  models: ReadonlyArray<ModelConfiguration>,
  options: Record<string, unknown>
): Record<string, unknown> => {
  const { clientConfig: _c, maxAttempts: _a, tracing, refusalDetection: _r, tierEscalation, bedrockRuntime: _b, models: _m, ...given } = options
  // keys the facade does not know are its problems (with its hints), not the config's a second time
  const rest = Object.fromEntries(Object.entries(given).filter(([k]) => OPTION_KEYS.includes(k)))
  const tier = tierEscalation as { readonly enabled?: boolean; readonly escalationTier?: "priority" | "reserved" } | undefined
  const escalate = tier?.enabled === true ? tier.escalationTier : undefined
  const pool = models.map((m) => modelInput(m, escalate))
  const t = tracing as { readonly enabled?: boolean; readonly captureBodies?: boolean } | undefined
  const out: Record<string, unknown> = { ...rest, models: pool }
  if (rest["captureBodies"] === undefined && t?.enabled === true && t.captureBodies === true) out["captureBodies"] = true
  return out
}
