/**
 * Run-time checks of a request and its per-call options, for callers the
 * type checker does not reach (JavaScript, `any`, JSON from elsewhere).
 * `BedrockMux.converse` / `converseStream` fail with `MuxError` reason
 * `InvalidRequest` listing every problem these return, before any attempt.
 *
 * Each problem reads `path: what is wrong`: an unknown option key gets the
 * closest known one ("labl: unknown key; did you mean `label`?"), a value of
 * the wrong type or out of range says what is allowed and what was given.
 * Paths of options are relative to the options object (`hedge.after`); those
 * of the request name its field (`messages`).
 *
 * Gotchas:
 * - Only the options are checked for unknown keys. The request is the SDK's
 *   `ConverseCommandInput`, whose fields grow with the SDK.
 * - A new option must be added to `converseOptionKeys` / `streamOptionKeys`,
 *   or every call that sets it fails.
 */
import { Duration } from "effect"
import { isRecord, shown, unknownKeyProblems } from "./schema.ts"

/** The keys `converse` options may have. */
export const converseOptionKeys = ["label", "deadline", "tenant", "waitForRecovery", "waitForQuota"] as const
/** The keys `converseStream` options may have: those of `converse` and the streaming ones. */
export const streamOptionKeys = [...converseOptionKeys, "firstTokenTimeout", "stallTimeout", "onInterrupt", "hedge"] as const
/** The keys of `converseStream`'s `hedge` option when it is an object. */
export const hedgeOptionKeys = ["after", "budget"] as const

const FORMS = "milliseconds as a number, a Duration, or a string like \"30 seconds\" or \"500 millis\""

/** `undefined` when `value` is a duration above 0, else the problem. */
const positiveDuration = (path: string, value: unknown, orP95 = false): string | undefined => {
  // fromInput never throws (None for anything it cannot read); NaN would read as 0
  const parsed = typeof value === "number" && Number.isNaN(value) ? undefined : Duration.fromInput(value as Duration.Input)
  const d = parsed !== undefined && parsed._tag === "Some" ? parsed.value : undefined
  const expected = `expected a positive duration${orP95 ? " or \"p95\"" : ""}`
  if (d === undefined) return `${path}: ${expected} (${FORMS}), got ${shown(value)}`
  return Duration.toMillis(d) > 0 ? undefined : `${path}: ${expected}, got ${shown(value)}`
}

const optionProblems = (options: unknown, keys: ReadonlyArray<string>): Array<string> => {
  if (options === undefined) return []
  if (!isRecord(options)) return [`options: expected an object, got ${shown(options)}`]
  const problems = unknownKeyProblems(options, keys, "").map((p) => `${p.path}: ${p.message}`)
  const ofType = (key: string, type: "string" | "boolean") => {
    const v = options[key]
    if (v !== undefined && typeof v !== type) problems.push(`${key}: expected a ${type}, got ${shown(v)}`)
  }
  ofType("label", "string")
  ofType("tenant", "string")
  ofType("waitForRecovery", "boolean")
  ofType("waitForQuota", "boolean")
  if (options.deadline !== undefined) {
    const p = positiveDuration("deadline", options.deadline)
    if (p !== undefined) problems.push(p)
  }
  return problems
}

const requestShapeProblems = (request: unknown): Array<string> => {
  if (!isRecord(request)) return [`the request must be an object, got ${shown(request)}`]
  const problems: Array<string> = []
  if ("modelId" in request && request.modelId !== undefined) {
    problems.push("modelId: the mux chooses the model; leave modelId out (use a route label to steer)")
  }
  if (!Array.isArray(request.messages) || request.messages.length === 0) {
    problems.push("messages: expected a non-empty array of messages")
  }
  return problems
}

/**
 * Every problem of a `converse` call: the request's shape, then its options
 * (unknown keys, types, ranges). Empty when the call may go ahead. Pure.
 *
 * @example
 * ```ts
 * converseProblems({ messages: [] }, { labl: "x" })
 * // ["messages: expected a non-empty array of messages", "labl: unknown key; did you mean `label`?"]
 * ```
 */
export const converseProblems = (request: unknown, options: unknown): ReadonlyArray<string> =>
  plainRequest(request) && plainOptions(options, false) ? NONE : fullConverseProblems(request, options)

/** `converseProblems` without the shortcut for the common call (the tests hold the two to agree). */
export const fullConverseProblems = (request: unknown, options: unknown): ReadonlyArray<string> => [
  ...requestShapeProblems(request),
  ...optionProblems(options, converseOptionKeys)
]

const NONE: ReadonlyArray<string> = []

/**
 * The common call is checked without building anything (measured: the full check was a tenth of the mux's
 * own CPU per call, scratch/mab.ts); anything it does not clear goes through the full check, which says why.
 * A plain object (not an array) with messages and no modelId:
 */
const plainRequest = (request: unknown): boolean => {
  if (typeof request !== "object" || request === null || Array.isArray(request)) return false
  const r = request as { readonly modelId?: unknown; readonly messages?: unknown }
  return r.modelId === undefined && Array.isArray(r.messages) && r.messages.length > 0
}

/**
 * Options with nothing to report: none, or a plain object (its prototype `Object.prototype` or none, so no
 * inherited getter) whose every key is known and whose values, read as the mux reads them (so a non-enumerable
 * one counts too), are of the right type; durations and streaming options go the long way.
 */
const plainOptions = (options: unknown, streaming: boolean): boolean => {
  if (options === undefined) return true
  if (typeof options !== "object" || options === null || Array.isArray(options)) return false
  try {
    const proto = Object.getPrototypeOf(options)
    if (proto !== Object.prototype && proto !== null) return false
    const o = options as Record<string, unknown>
    // the keys the full check reads, and only those (a getter that throws goes the long way, as it did before)
    if (o.label !== undefined && typeof o.label !== "string") return false
    if (o.tenant !== undefined && typeof o.tenant !== "string") return false
    if (o.waitForRecovery !== undefined && typeof o.waitForRecovery !== "boolean") return false
    if (o.waitForQuota !== undefined && typeof o.waitForQuota !== "boolean") return false
    if (o.deadline !== undefined) return false
    if (streaming && (o.firstTokenTimeout !== undefined || o.stallTimeout !== undefined || o.onInterrupt !== undefined || o.hedge !== undefined)) {
      return false
    }
    for (const key in o) if (!(streaming ? streamKeys : converseKeys).has(key)) return false
    return true
  } catch {
    return false
  }
}
const converseKeys: ReadonlySet<string> = new Set(converseOptionKeys)
const streamKeys: ReadonlySet<string> = new Set(streamOptionKeys)

/**
 * Every problem of a `converseStream` call: those of `converse`, and the
 * streaming options (`firstTokenTimeout`, `stallTimeout`, `onInterrupt`,
 * `hedge`). Pure.
 *
 * @example
 * ```ts
 * streamProblems({ messages: [{ role: "user", content: [{ text: "hi" }] }] }, { stallTimeout: 0 })
 * // ["stallTimeout: expected a positive duration, got 0"]
 * ```
 */
export const streamProblems = (request: unknown, options: unknown): ReadonlyArray<string> =>
  plainRequest(request) && plainOptions(options, true) ? NONE : fullStreamProblems(request, options)

/** `streamProblems` without the shortcut for the common call. */
export const fullStreamProblems = (request: unknown, options: unknown): ReadonlyArray<string> => {
  const problems = [...requestShapeProblems(request), ...optionProblems(options, streamOptionKeys)]
  if (!isRecord(options)) return problems
  for (const key of ["firstTokenTimeout", "stallTimeout"] as const) {
    if (options[key] === undefined) continue
    const p = positiveDuration(key, options[key])
    if (p !== undefined) problems.push(p)
  }
  const onInterrupt = options.onInterrupt
  if (onInterrupt !== undefined && onInterrupt !== "fail" && onInterrupt !== "restart") {
    problems.push(`onInterrupt: expected "fail" or "restart", got ${shown(onInterrupt)}`)
  }
  const h = options.hedge
  if (isRecord(h)) {
    problems.push(...unknownKeyProblems(h, hedgeOptionKeys, "hedge").map((p) => `${p.path}: ${p.message}`))
    if (h.after !== undefined && h.after !== "p95") {
      const p = positiveDuration("hedge.after", h.after, true)
      if (p !== undefined) problems.push(p)
    }
    if (h.budget !== undefined && !(typeof h.budget === "number" && h.budget >= 0 && h.budget <= 1)) {
      problems.push(`hedge.budget: expected a share in [0, 1], got ${shown(h.budget)}`)
    }
  } else if (h !== undefined && typeof h !== "boolean") {
    problems.push(`hedge: expected true, false or { after, budget }, got ${shown(h)}`)
  }
  return problems
}
