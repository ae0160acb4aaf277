/**
 * The pure half of the simulated Bedrock: given a model's script, its state
 * and the time, decide what one call does. `BedrockSimulator` runs a plan on
 * Effect's Clock; `FakeBedrock` runs the same plan over real HTTP. Keeping the
 * decision here is what makes the two agree.
 */
import type { ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import type { ErrorName, Latency, ModelScript, Script, StreamErrorName, When } from "../SimulatorScript.ts"
import { ms } from "../SimulatorScript.ts"
import { estimateInputTokens } from "./tokens.ts"
import { shapeNameOf } from "./exceptionName.ts"

/** What a stream does besides answering in full. */
export type StreamFault =
  | { readonly kind: "cut" | "stall"; readonly afterTokens: number }
  | { readonly kind: "malformed"; readonly afterTokens: number; readonly frame?: "truncated" | "checksum" }
  | {
    readonly kind: "streamError"
    readonly afterTokens: number
    readonly error: StreamErrorName
    readonly message: string
    readonly originalStatusCode?: number
  }
  | { readonly kind: "noMetadata" | "emptyOutput" }

/** What one call does. Times are milliseconds. */
export type Plan =
  | {
    readonly _tag: "Reject"
    readonly error: ErrorName
    readonly message: string
    readonly delayMs: number
    readonly retryAfterMs?: number
    readonly originalStatusCode?: number
  }
  | { readonly _tag: "Hang" }
  | {
    readonly _tag: "Answer"
    /** Converse: the whole response time. Stream: time to the first token. */
    readonly delayMs: number
    readonly interTokenMs: number
    readonly tokens: ReadonlyArray<string>
    readonly inputTokens: number
    readonly stopReason: "end_turn" | "max_tokens"
    readonly fault: StreamFault | undefined
    /** the quota reservation to settle when the call ends */
    readonly reservation: Reservation | undefined
  }

/** Tokens held in a model's sliding TPM window. */
export interface Reservation {
  readonly at: number
  tokens: number
}

/** Per-model mutable state: call count and the sliding one-minute quota window. */
export class ModelState {
  calls = 0
  /** requests admitted, by start time, within the last minute */
  readonly requests: Array<number> = []
  readonly tokens: Array<Reservation> = []
}

/** What a request asks of the model, as far as the simulation cares. */
export interface CallRequest {
  readonly stream: boolean
  /** the text of the last user message: what per-prompt answers match on */
  readonly prompt: string
  readonly inputTokens: number
  readonly maxTokens: number | undefined
}

export const WINDOW_MS = 60_000
/** The token reservation Bedrock makes when maxTokens is unset (the model maximum). */
export const DEFAULT_MAX_TOKENS = 4_096

export const DEFAULT_ANSWER = "This is a simulated answer. The quick brown fox jumps over the lazy dog."

/** The request's facts the simulation needs. */
export const callRequestOf = (
  input: Pick<ConverseCommandInput, "messages" | "system" | "inferenceConfig">,
  stream: boolean,
  script: ModelScript | undefined
): CallRequest => ({
  stream,
  prompt: promptOf(input.messages),
  inputTokens: script?.inputTokens ?? estimateInputTokens(input),
  maxTokens: input.inferenceConfig?.maxTokens
})

/** The text of the last user message (its text blocks, joined by newlines). */
export const promptOf = (messages: ConverseCommandInput["messages"]): string => {
  const last = (messages ?? []).findLast((m) => m.role === "user")
  return (last?.content ?? []).flatMap((b) => (typeof b.text === "string" ? [b.text] : [])).join("\n")
}

/** The scripted answer to `prompt`: the first per-prompt answer that matches, else the model's `answer`. */
export const answerOf = (script: ModelScript, prompt: string): string => {
  const trimmed = prompt.trim()
  const hit = script.answers?.find((a) =>
    (a.prompt === undefined || a.prompt.trim() === trimmed) && (a.includes === undefined || prompt.includes(a.includes))
  )
  return hit?.answer ?? script.answer ?? DEFAULT_ANSWER
}

/** Splits text into tokens on word boundaries, keeping the leading spaces. */
export const tokenize = (text: string): ReadonlyArray<string> => text.match(/\s*\S+/g) ?? []

/** The script for a model id, or undefined if the model is unknown and unknown models are rejected. */
export const modelScriptOf = (script: Script, modelId: string): ModelScript | undefined => {
  // own keys only: "toString", "constructor", ... are not scripted models
  const own = (id: string) => (Object.hasOwn(script.models, id) ? script.models[id] : undefined)
  return own(modelId) ?? (script.unknownModels === "default" ? own("*") ?? {} : own("*"))
}

/** Samples a latency. `rng` returns [0, 1). */
export const sample = (latency: Latency | undefined, rng: () => number): number => {
  if (latency === undefined) return 0
  if ("uniform" in latency) {
    const [a, b] = latency.uniform
    return ms(a) + (ms(b) - ms(a)) * rng()
  }
  if ("normal" in latency) {
    // Box-Muller; clamped at zero
    const u = Math.max(rng(), 1e-12)
    const v = rng()
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
    return Math.max(0, ms(latency.normal.mean) + z * ms(latency.normal.stddev))
  }
  return ms(latency)
}

const callMatches = (calls: NonNullable<When["calls"]>, n: number): boolean => {
  if (typeof calls === "number") return n === calls
  if (Array.isArray(calls)) return calls.includes(n)
  const range = calls as { readonly from: number; readonly to?: number }
  return n >= range.from && (range.to === undefined || n <= range.to)
}

/** Does a fault's `when` hold for call `n` at `now` (ms since start)? Draws from `rng` only for a probability. */
export const matches = (when: When | undefined, n: number, now: number, rng: () => number): boolean => {
  if (when === undefined) return true
  if (when.calls !== undefined && !callMatches(when.calls, n)) return false
  if (when.from !== undefined && now < ms(when.from)) return false
  if (when.to !== undefined && now >= ms(when.to)) return false
  if (when.probability !== undefined && !(rng() < when.probability)) return false
  return true
}

const prune = (state: ModelState, now: number): void => {
  while (state.requests.length > 0 && state.requests[0]! <= now - WINDOW_MS) state.requests.shift()
  while (state.tokens.length > 0 && state.tokens[0]!.at <= now - WINDOW_MS) state.tokens.shift()
}

/**
 * Admits a call against the model's RPM/TPM the way Bedrock does: a sliding
 * minute, TPM reserved as input + maxTokens at the start. Returns the
 * reservation, or the quota that is exhausted.
 */
export const admit = (
  script: ModelScript,
  state: ModelState,
  now: number,
  request: CallRequest
): { readonly ok: true; readonly reservation: Reservation | undefined } | { readonly ok: false; readonly kind: "requests" | "tokens"; readonly retryAfterMs: number } => {
  prune(state, now)
  if (script.rpm !== undefined && state.requests.length >= script.rpm) {
    return { ok: false, kind: "requests", retryAfterMs: state.requests[0]! + WINDOW_MS - now }
  }
  const reserve = request.inputTokens + (request.maxTokens ?? script.maxOutputTokens ?? DEFAULT_MAX_TOKENS)
  if (script.tpm !== undefined) {
    const used = state.tokens.reduce((n, r) => n + r.tokens, 0)
    if (used + reserve > script.tpm) {
      return { ok: false, kind: "tokens", retryAfterMs: (state.tokens[0]?.at ?? now) + WINDOW_MS - now }
    }
  }
  // only a limited quota needs the log (an unlimited one would grow with traffic)
  if (script.rpm !== undefined) state.requests.push(now)
  if (script.tpm === undefined) return { ok: true, reservation: undefined }
  const reservation: Reservation = { at: now, tokens: reserve }
  state.tokens.push(reservation)
  return { ok: true, reservation }
}

const THROTTLE_MESSAGE = {
  requests: "Too many requests, please wait before trying again.",
  tokens: "Too many tokens, please wait before trying again."
} as const

const DEFAULT_MESSAGE: Record<ErrorName, string> = {
  ThrottlingException: THROTTLE_MESSAGE.requests,
  ServiceUnavailableException: "Service unavailable. Please try again later.",
  InternalServerException: "The server encountered an internal error.",
  ModelNotReadyException: "Model is not ready to serve inference requests.",
  ModelTimeoutException: "Model has timed out in processing the request.",
  ModelErrorException: "The model returned an error.",
  ValidationException: "Malformed input request.",
  AccessDeniedException: "You don't have access to the model with the specified model ID.",
  ResourceNotFoundException: "The requested resource could not be found.",
  ServiceQuotaExceededException: "Your request exceeds the service quota."
}

/** The default message of an exception, as Bedrock words it. */
export const messageOf = (error: ErrorName | StreamErrorName): string => {
  const name = shapeNameOf(error) as ErrorName
  return DEFAULT_MESSAGE[name]
}

/**
 * Decides what call number `state.calls + 1` to a model does. Mutates
 * `state` (call count, quota window); draws from `rng` in a fixed order so a
 * seed reproduces a run.
 */
export const plan = (
  script: ModelScript | undefined,
  state: ModelState,
  now: number,
  rng: () => number,
  request: CallRequest
): Plan => {
  state.calls += 1
  if (script === undefined) {
    return { _tag: "Reject", error: "ResourceNotFoundException", message: messageOf("ResourceNotFoundException"), delayMs: 0 }
  }
  const n = state.calls
  const fault = script.faults?.find((f) => matches(f.when, n, now, rng))?.do
  let latency = script.latency
  let firstToken = script.firstToken ?? script.latency
  let streamFault: StreamFault | undefined
  if (fault !== undefined) {
    switch (fault.kind) {
      case "error":
        return {
          _tag: "Reject",
          error: fault.error,
          message: fault.message ?? messageOf(fault.error),
          delayMs: fault.after === undefined ? 0 : ms(fault.after),
          ...(fault.retryAfter !== undefined ? { retryAfterMs: ms(fault.retryAfter) } : {}),
          ...(fault.originalStatusCode !== undefined ? { originalStatusCode: fault.originalStatusCode } : {})
        }
      case "hang":
        return { _tag: "Hang" }
      case "slow":
        latency = fault.latency ?? latency
        firstToken = fault.firstToken ?? fault.latency ?? firstToken
        break
      case "streamError":
        streamFault = {
          kind: "streamError",
          afterTokens: fault.afterTokens,
          error: fault.error,
          message: fault.message ?? messageOf(fault.error),
          ...(fault.originalStatusCode !== undefined ? { originalStatusCode: fault.originalStatusCode } : {})
        }
        break
      case "noMetadata":
      case "emptyOutput":
        streamFault = { kind: fault.kind }
        break
      case "malformed":
        streamFault = { kind: "malformed", afterTokens: fault.afterTokens, ...(fault.frame !== undefined ? { frame: fault.frame } : {}) }
        break
      default:
        streamFault = { kind: fault.kind, afterTokens: fault.afterTokens }
    }
  }
  if (script.contextWindow !== undefined && request.inputTokens > script.contextWindow) {
    return { _tag: "Reject", error: "ValidationException", message: "Input is too long for requested model.", delayMs: 0 }
  }
  const admitted = admit(script, state, now, request)
  if (!admitted.ok) {
    return {
      _tag: "Reject",
      error: "ThrottlingException",
      message: THROTTLE_MESSAGE[admitted.kind],
      delayMs: 0
    }
  }
  const all = tokenize(answerOf(script, request.prompt))
  const max = request.maxTokens ?? script.maxOutputTokens
  const tokens = max !== undefined && all.length > max ? all.slice(0, max) : all
  return {
    _tag: "Answer",
    delayMs: sample(request.stream ? firstToken : latency, rng),
    interTokenMs: script.tokensPerSecond === undefined ? 0 : 1000 / script.tokensPerSecond,
    tokens,
    inputTokens: request.inputTokens,
    stopReason: tokens.length < all.length ? "max_tokens" : "end_turn",
    fault: streamFault,
    reservation: admitted.reservation
  }
}

/** Settles a TPM reservation to what the call really used. */
export const settle = (reservation: Reservation | undefined, used: number): void => {
  if (reservation !== undefined) reservation.tokens = used
}

/**
 * For Converse, the stream-shaped faults of a plan become what a non-stream
 * call sees: a stall hangs, a cut resets the connection mid-body, an
 * in-stream exception is an HTTP error of the same class.
 */
export const converseFaultOf = (
  fault: StreamFault | undefined
): "ok" | "hang" | "cut" | "malformed" | "emptyOutput" | { readonly error: ErrorName; readonly message: string; readonly originalStatusCode?: number } => {
  if (fault === undefined) return "ok"
  switch (fault.kind) {
    case "noMetadata":
      return "ok"
    case "stall":
      return "hang"
    case "cut":
    case "malformed":
    case "emptyOutput":
      return fault.kind
    case "streamError": {
      const name = shapeNameOf(fault.error) as ErrorName
      // modelStreamErrorException has no HTTP twin; Converse reports a ModelErrorException
      const error: ErrorName = name === ("ModelStreamErrorException" as string) ? "ModelErrorException" : name
      return {
        error,
        message: fault.message,
        ...(fault.originalStatusCode !== undefined ? { originalStatusCode: fault.originalStatusCode } : {})
      }
    }
  }
}

/** What the attempt log says about one call. */
export type Outcome =
  | "pending"
  | "success"
  | "interrupted"
  | "hang"
  | "cut"
  | "stall"
  | "malformed"
  | "emptyOutput"
  | ErrorName
  | StreamErrorName

/** One call as the provider saw it. Times are ms since the simulator (or server) started. */
export interface Attempt {
  readonly id: number
  readonly modelId: string
  /** `invokeModel`: the loopback fake's InvokeModel (an embedding), planned like Converse */
  readonly operation: "converse" | "converseStream" | "invokeModel"
  readonly start: number
  end: number | undefined
  outcome: Outcome
  readonly inputTokens: number
  /** output tokens sent to the client */
  outputTokens: number
  /** the service tier the request asked for (`serviceTier.type`), when it asked for one */
  readonly serviceTier?: string
}

/** The `serviceTier` field of an Attempt, from the request: absent when the request asked for none. */
export const serviceTierOf = (input: Pick<ConverseCommandInput, "serviceTier">): { readonly serviceTier?: string } => {
  const tier = input.serviceTier?.type
  return tier === undefined ? {} : { serviceTier: tier }
}
