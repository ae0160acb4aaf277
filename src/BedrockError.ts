/**
 * The one error every Bedrock call in this library fails with, and the
 * taxonomy that classifies what went wrong.
 *
 * A `BedrockError` has a `reason`: a tagged union with one member per Bedrock
 * Runtime exception and transport fault (plus `DeadlineExceeded`, which is
 * ours, `Incomplete`, for failures the AWS SDK lets through as successes,
 * `Local`, for a request that failed in this process before it was sent, and
 * `Refused`, for a successful response a refusal classifier rejected).
 * Every reason carries, as plain data, the default routing decision for it:
 * retry the same model or not, fail over or not, count toward the model's
 * circuit breaker or not. Routing policies read `decisionOf(reason)` and may
 * override it per reason.
 *
 * How it classifies:
 * - by the SDK error's `name` first (the SDK picks the class from the
 *   `x-amzn-errortype` header, never from the status), then by HTTP status,
 *   then by Node/HTTP2 error codes for transport faults;
 * - throttles are sub-classified from the message ("Too many requests" →
 *   `requests`, "Too many tokens per day" → `daily`, "Too many tokens" →
 *   `tokens`) and carry `retryAfter` when the response had `retry-after` or
 *   `x-amz-retry-after`;
 * - a `ValidationException` whose message says the input is too long is
 *   `Validation` with `kind: "context-window"`;
 * - a failure of this process before the request was sent is `Local`, by
 *   kind: credentials that cannot be loaded (`CredentialsProviderError` and
 *   the SDK's other provider errors, "Resolved credential object is not
 *   valid"), no Region, an invalid endpoint (`ERR_INVALID_URL`, an
 *   unsupported protocol), a request the SDK cannot serialize (a circular
 *   structure, a missing `modelId`), or `other`: any error that never reached
 *   the SDK's retry step (it has no `$metadata`, so it was never sent);
 * - an event-stream frame that fails its CRC ("The message checksum … did
 *   not match …") or is cut short is `Incomplete` (`malformed-frame`).
 *
 * Gotchas:
 * - `cause` is the original SDK error, so `instanceof ThrottlingException`
 *   still works; `requestId` and `httpStatusCode` are lifted from its
 *   `$metadata`. In-stream exception events after the first frame have no
 *   `httpStatusCode`; one sent as the very first frame is thrown by `send()`
 *   with status 200.
 * - Throttles do not count toward the breaker: quota is not health.
 * - Validation and access errors fail fast by default (the request, not the
 *   model, is at fault); override the decision to fail over on AccessDenied
 *   when your pool spans accounts with different model access.
 * - `Local` failures fail fast, never count toward a breaker and never fail
 *   over: every model would fail the same way, and the models are not at
 *   fault. The message says what went wrong; `cause` is the SDK's error.
 *
 * As data: every reason is a `Schema.TaggedClass` and `BedrockError` a
 * `Schema.TaggedError`, so an error round-trips through Schema
 * (`Schema.encodeSync(BedrockError)` → plain data → `Schema.decodeUnknownSync(BedrockError)`
 * → the same classes) and works with effect's reason helpers
 * (`Effect.catchReason("BedrockError", "Throttled", ...)`). The encoded form
 * holds durations as milliseconds and `cause` as `{ name, message }`; an
 * absent option is an absent key. `JSON.stringify` writes NaN and ±Infinity
 * as `null`: go through `Schema.toCodecJson(BedrockError)` when they may occur.
 *
 * @since 0.1.0
 */
import { Duration, Option, Schema } from "effect"
import { shapeNameOf } from "./internal/exceptionName.ts"

/**
 * What a router should do with a failed attempt, by default.
 *
 * - `retrySame`: how many more times the same model may be tried within one
 *   request for this reason (0: never).
 * - `failover`: whether another model may be tried.
 * - `breaker`: whether the failure counts toward the model's circuit breaker.
 * - `largerContextOnly`: fail over only to a model with a larger context window.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * const d = BedrockError.decisionOf(new BedrockError.Throttled({ kind: "requests" }))
 * // { retrySame: 0, failover: true, breaker: false, largerContextOnly: false }
 * ```
 * @since 0.1.0
 */
export interface Decision {
  readonly retrySame: number
  readonly failover: boolean
  readonly breaker: boolean
  readonly largerContextOnly: boolean
}

const ThrottleKinds = Schema.Literals(["requests", "tokens", "daily", "unknown"])
/** @since 0.1.0 */
export type ThrottleKind = typeof ThrottleKinds.Type

// Options are `Schema.optional`, not `optionalKey`: a caller compiled without
// exactOptionalPropertyTypes may pass `retryAfter: undefined`, which the
// former Data classes took and `optionalKey` would reject with a throw. An
// absent option stays an absent key; an undefined one is left out of JSON.
//
// A `Duration` field is encoded as milliseconds: plain data that any JSON
// reader understands (`retryAfter: 2000`), and what every duration of this
// library is made of.
const Millis = Schema.DurationFromMillis

/**
 * Bedrock throttled the call (HTTP 429 or an in-stream `throttlingException`).
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.Throttled({ kind: "tokens", retryAfter: Duration.seconds(2) })
 * ```
 * @since 0.1.0
 */
export class Throttled extends Schema.TaggedClass<Throttled>()("Throttled", {
  kind: ThrottleKinds,
  retryAfter: Schema.optional(Millis)
}) {}
/**
 * HTTP 503 / `serviceUnavailableException`.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.ServiceUnavailable()
 * ```
 * @since 0.1.0
 */
export class ServiceUnavailable extends Schema.TaggedClass<ServiceUnavailable>()("ServiceUnavailable", {}) {}
/**
 * HTTP 500 / `internalServerException`.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.InternalServer()
 * ```
 * @since 0.1.0
 */
export class InternalServer extends Schema.TaggedClass<InternalServer>()("InternalServer", {}) {}
/**
 * The model is loading (429 with the retryable trait).
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.ModelNotReady()
 * ```
 * @since 0.1.0
 */
export class ModelNotReady extends Schema.TaggedClass<ModelNotReady>()("ModelNotReady", {}) {}
/**
 * HTTP 408: the model took too long.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.ModelTimeout()
 * ```
 * @since 0.1.0
 */
export class ModelTimeout extends Schema.TaggedClass<ModelTimeout>()("ModelTimeout", {}) {}
/**
 * HTTP 424: the model container failed; 4xx originals are the request's fault.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.ModelError({ originalStatusCode: 400 })
 * ```
 * @since 0.1.0
 */
export class ModelError extends Schema.TaggedClass<ModelError>()("ModelError", {
  originalStatusCode: Schema.optional(Schema.Number)
}) {}
/**
 * An in-stream `modelStreamErrorException`.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.ModelStreamError({ originalStatusCode: 500 })
 * ```
 * @since 0.1.0
 */
export class ModelStreamError extends Schema.TaggedClass<ModelStreamError>()("ModelStreamError", {
  originalStatusCode: Schema.optional(Schema.Number)
}) {}
/**
 * HTTP 400 `ValidationException`; `context-window` when the input is too long.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.Validation({ kind: "context-window" })
 * ```
 * @since 0.1.0
 */
export class Validation extends Schema.TaggedClass<Validation>()("Validation", {
  kind: Schema.Literals(["context-window", "other"])
}) {}
/**
 * HTTP 403.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.AccessDenied()
 * ```
 * @since 0.1.0
 */
export class AccessDenied extends Schema.TaggedClass<AccessDenied>()("AccessDenied", {}) {}
/**
 * HTTP 404: model or profile not available here.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.ResourceNotFound()
 * ```
 * @since 0.1.0
 */
export class ResourceNotFound extends Schema.TaggedClass<ResourceNotFound>()("ResourceNotFound", {}) {}
/**
 * `ServiceQuotaExceededException` (HTTP 400, but it is quota, not validation).
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.ServiceQuotaExceeded()
 * ```
 * @since 0.1.0
 */
export class ServiceQuotaExceeded extends Schema.TaggedClass<ServiceQuotaExceeded>()("ServiceQuotaExceeded", {}) {}
/**
 * A transport fault: connection refused/reset, socket timeout, HTTP/2 session error.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.Network({ phase: "before-response", code: "ECONNRESET" })
 * ```
 * @since 0.1.0
 */
export class Network extends Schema.TaggedClass<Network>()("Network", {
  phase: Schema.Literals(["before-response", "after-response"]),
  code: Schema.optional(Schema.String)
}) {}
/**
 * One of our deadlines expired; the in-flight request was aborted.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.DeadlineExceeded({ scope: "attempt", after: Duration.seconds(30) })
 * ```
 * @since 0.1.0
 */
export class DeadlineExceeded extends Schema.TaggedClass<DeadlineExceeded>()("DeadlineExceeded", {
  scope: Schema.Literals(["attempt", "request", "first-token", "stall"]),
  after: Millis
}) {}
/**
 * The SDK returned a "success" that is not one: a Converse response without
 * `output.message`, a stream that ended before `messageStop`, a malformed
 * event frame or an unparseable body.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.Incomplete({ detail: "no-message-stop" })
 * ```
 * @since 0.1.0
 */
export class Incomplete extends Schema.TaggedClass<Incomplete>()("Incomplete", {
  detail: Schema.Literals(["missing-output", "no-message-stop", "malformed-frame", "malformed-body"])
}) {}
/**
 * A successful response that a refusal classifier judged a refusal (the
 * model declined to answer); `score` is the classifier's confidence, in
 * [0, 1]. Never produced by `fromSdkError`: the router's refusal detection
 * makes it.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.Refused({ score: 0.9, classifier: "keywords" })
 * ```
 * @since 0.1.0
 */
export class Refused extends Schema.TaggedClass<Refused>()("Refused", {
  // no range check: a classifier's score is reported as it came, never a reason to throw
  score: Schema.Number,
  classifier: Schema.String
}) {}
const LocalKinds = Schema.Literals(["credentials", "region", "endpoint", "serialization", "other"])
/** What a `Local` failure was about. @since 0.1.0 */
export type LocalKind = typeof LocalKinds.Type
/**
 * The request failed in this process before it was sent: credentials that
 * cannot be loaded, no Region, an invalid endpoint, a request the SDK cannot
 * serialize. No model is at fault and every model would fail alike.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.Local({ kind: "credentials" })
 * ```
 * @since 0.1.0
 */
export class Local extends Schema.TaggedClass<Local>()("Local", {
  kind: LocalKinds
}) {}
/**
 * Anything else (an unknown exception name, a non-JSON error body).
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * new BedrockError.Unknown({ name: "SomethingNewException" })
 * ```
 * @since 0.1.0
 */
export class Unknown extends Schema.TaggedClass<Unknown>()("Unknown", {
  name: Schema.optional(Schema.String)
}) {}

/**
 * Every reason, as a Schema: the tagged union of the classes above. Decode an
 * encoded reason with it; an unknown `_tag` fails to decode with a
 * `SchemaError`. `Reason.cases`, `Reason.guards` and `Reason.match` are the
 * union's helpers (`Schema.toTaggedUnion`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { BedrockError } from "effect-bedrock-mux"
 * const encoded = Schema.encodeSync(BedrockError.Reason)(new BedrockError.Throttled({ kind: "requests" }))
 * // { _tag: "Throttled", kind: "requests" }
 * Schema.decodeUnknownSync(BedrockError.Reason)(encoded) // Throttled { kind: "requests" }
 * ```
 * @since 0.1.0
 */
export const Reason = Schema.Union([
  Throttled,
  ServiceUnavailable,
  InternalServer,
  ModelNotReady,
  ModelTimeout,
  ModelError,
  ModelStreamError,
  Validation,
  AccessDenied,
  ResourceNotFound,
  ServiceQuotaExceeded,
  Network,
  DeadlineExceeded,
  Incomplete,
  Refused,
  Local,
  Unknown
]).pipe(Schema.toTaggedUnion("_tag"))

/** @since 0.1.0 */
export type Reason = typeof Reason.Type

/** @since 0.1.0 */
export type ReasonTag = Reason["_tag"]

/** Every reason tag, in a stable order (docs, config keys, metrics). @since 0.1.0 */
export const reasonTags: ReadonlyArray<ReasonTag> = [
  "Throttled",
  "ServiceUnavailable",
  "InternalServer",
  "ModelNotReady",
  "ModelTimeout",
  "ModelError",
  "ModelStreamError",
  "Validation",
  "AccessDenied",
  "ResourceNotFound",
  "ServiceQuotaExceeded",
  "Network",
  "DeadlineExceeded",
  "Incomplete",
  "Refused",
  "Local",
  "Unknown"
]

const decision = (
  retrySame: number,
  failover: boolean,
  breaker: boolean,
  largerContextOnly = false
): Decision => ({ retrySame, failover, breaker, largerContextOnly })

const FAIL_FAST = decision(0, false, false)
const FAIL_OVER = decision(0, true, true)

/**
 * The default decision for a reason (see the table in docs/concepts.md and
 * ../shared/bedrock/ERRORS.md). Pure.
 *
 * @example
 * ```ts
 * import { BedrockError } from "effect-bedrock-mux"
 * BedrockError.decisionOf(new BedrockError.InternalServer()).retrySame // 1
 * ```
 * @since 0.1.0
 */
export const decisionOf = (reason: Reason): Decision => {
  switch (reason._tag) {
    case "Throttled":
      // quota, not health: move on at once and keep the breaker out of it
      return decision(0, true, false)
    case "ServiceUnavailable":
    case "ModelTimeout":
    case "ModelStreamError":
    case "Incomplete":
    case "Unknown":
      return FAIL_OVER
    case "InternalServer":
      return decision(1, true, true)
    case "ModelNotReady":
      // a cold model: worth a retry, not an outage
      return decision(2, true, false)
    case "ModelError":
      return reason.originalStatusCode !== undefined && reason.originalStatusCode >= 400 &&
          reason.originalStatusCode < 500 && reason.originalStatusCode !== 429
        ? FAIL_FAST
        : FAIL_OVER
    case "Validation":
      return reason.kind === "context-window" ? decision(0, true, false, true) : FAIL_FAST
    case "AccessDenied":
      return FAIL_FAST
    case "ResourceNotFound":
    case "ServiceQuotaExceeded":
      // a target-specific configuration/quota fault: another model may serve
      return decision(0, true, false)
    case "Network":
      return reason.phase === "before-response" ? decision(1, true, true) : FAIL_OVER
    case "DeadlineExceeded":
      return reason.scope === "request" ? FAIL_FAST : FAIL_OVER
    case "Refused":
      // another model may answer; a refusal says nothing about the model's health
      return decision(0, true, false)
    case "Local":
      // not the model's fault, and every model would fail the same way
      return FAIL_FAST
  }
}

/**
 * The error of every `BedrockRuntime` call. A Schema error: it encodes to
 * plain data and decodes back into a `BedrockError` with the same reason
 * class.
 *
 * Constructing one checks its fields against the schema. Effect 4.1 has no
 * public option to skip that where the library builds the value itself:
 * `disableChecks` skips refinements only (these fields have none), and the
 * trusted path of `Schema.Class` is internal. Measured with
 * `node bench/errors.ts` against the former `Data.TaggedError` version
 * (medians of 5 interleaved runs on a busy 2-core box): a reason alone
 * 0.1 → 0.65 µs; `new BedrockError(...)` 8.9 → 11.3 µs; `fromSdkError`
 * 12.7 → 13.2 µs. Most of an Error's cost is its stack trace (without it:
 * 1.5 → 2.3 µs and 2.3 → 3.7 µs). A throttle's round trip takes
 * milliseconds, so the added cost is well under 1 % of it.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { BedrockError, BedrockRuntime } from "effect-bedrock-mux"
 *
 * const call = Effect.flatMap(BedrockRuntime, (rt) => rt.converse({ modelId: "m", messages: [] }))
 * call.pipe(Effect.catchReason("BedrockError", "Throttled", (r) => Effect.succeed(r.kind)))
 *
 * const error = BedrockError.make(new BedrockError.ServiceUnavailable(), "down", "m")
 * const json = JSON.stringify(Schema.encodeSync(BedrockError.BedrockError)(error))
 * Schema.decodeUnknownSync(BedrockError.BedrockError)(JSON.parse(json)).reason._tag // "ServiceUnavailable"
 * ```
 * @since 0.1.0
 */
export class BedrockError extends Schema.TaggedError<BedrockError>()("BedrockError", {
  reason: Reason,
  message: Schema.String,
  modelId: Schema.optional(Schema.String),
  requestId: Schema.optional(Schema.String),
  httpStatusCode: Schema.optional(Schema.Number),
  // The SDK's error, kept as it was thrown in memory (so `instanceof
  // ThrottlingException` works). `Schema.Defect` is effect's own schema for
  // such a value: it encodes an Error as JSON `{ name, message }` (and its
  // own `cause`), and decodes that back into a plain `Error`. The SDK's class,
  // `$metadata` and `$response` do not cross the boundary: an HTTP response is
  // not data, and what is worth keeping of it (`requestId`, `httpStatusCode`)
  // is lifted into fields of its own above. `Undefined` comes first so that
  // `cause: undefined` stays undefined (Defect alone would encode it as null).
  cause: Schema.optionalKey(Schema.Union([Schema.Undefined, Schema.Defect()]))
}) {
  /** The default decision for this error's reason. */
  get decision(): Decision {
    return decisionOf(this.reason)
  }
}

/**
 * Is `u` a `BedrockError`?
 * @since 0.1.0
 */
export const isBedrockError = (u: unknown): u is BedrockError =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "BedrockError"

/**
 * Builds a `BedrockError` for a reason of our own (no SDK error behind it).
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { BedrockError } from "effect-bedrock-mux"
 * BedrockError.make(new BedrockError.DeadlineExceeded({ scope: "attempt", after: Duration.seconds(30) }), "attempt timed out")
 * ```
 * @since 0.1.0
 */
export const make = (reason: Reason, message: string, modelId?: string): BedrockError =>
  new BedrockError(modelId === undefined ? { reason, message } : { reason, message, modelId })

/**
 * The error of a deadline of ours that expired (the in-flight request was
 * aborted): an attempt timeout, the request deadline, a stream's first-token
 * or stall limit.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { BedrockError } from "effect-bedrock-mux"
 * BedrockError.deadline("attempt", Duration.seconds(30), "amazon.nova-lite-v1:0").reason._tag // "DeadlineExceeded"
 * ```
 * @since 0.1.0
 */
export const deadline = (scope: DeadlineExceeded["scope"], after: Duration.Duration, modelId?: string): BedrockError => {
  const ms = Duration.toMillis(after)
  return make(
    new DeadlineExceeded({ scope, after }),
    scope === "first-token"
      ? `no content within the first-token limit of ${ms} ms; the stream was aborted`
      : scope === "stall"
      ? `no event for ${ms} ms (stall limit); the stream was aborted`
      : `${scope === "attempt" ? "attempt timeout" : "request deadline"} of ${ms} ms expired; the request was aborted`,
    modelId
  )
}

// --- classification of what the SDK throws -------------------------------------------------

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET"
])

/** The SDK's event-stream decoder on a bad prelude or message CRC. */
const BAD_CHECKSUM = /checksum .*(did|does) not match|checksum mismatch/i

const CREDENTIAL_ERRORS = new Set(["CredentialsProviderError", "ProviderError", "TokenProviderError"])
const ENDPOINT_CODES = new Set(["ERR_INVALID_URL", "ERR_INVALID_PROTOCOL", "ERR_HTTP2_UNSUPPORTED_PROTOCOL", "ERR_UNSUPPORTED_PROTOCOL"])

/**
 * What a failure before the request was sent is about, or undefined when it
 * does not look local. Only for errors with no HTTP status, before any response.
 */
const localKindOf = (
  e: SdkLike,
  name: string,
  message: string,
  code: string | undefined,
  isError: boolean
): LocalKind | undefined => {
  if (CREDENTIAL_ERRORS.has(name) || /credential/i.test(message)) return "credentials"
  if (/\bregion\b/i.test(message)) return "region"
  if ((code !== undefined && ENDPOINT_CODES.has(code)) || /\bendpoint\b|invalid url/i.test(message)) return "endpoint"
  if (
    name === "RangeError" || /serializ|circular structure|HTTP label|maximum call stack|BigInt/i.test(message)
  ) return "serialization"
  // the SDK's retry step stamps `$metadata` on everything that passed it: without it, nothing was sent.
  // An abort is ours (an interrupted attempt), not a local fault.
  if (e.$metadata === undefined && e.$response === undefined && isError && name !== "AbortError") return "other"
  return undefined
}

const LOCAL_WHAT: Record<LocalKind, string> = {
  credentials: "AWS credentials could not be loaded",
  region: "no valid AWS Region is configured",
  endpoint: "the endpoint is invalid",
  serialization: "the SDK could not serialize the request",
  other: "the request failed in this process"
}

const CONTEXT_WINDOW =
  /too long|too many input tokens|context (window|length)|maximum context|input length|prompt is too long|exceeds? the (maximum|max)/i

/** Sub-kind of a throttle from Bedrock's message. Pure. @since 0.1.0 */
export const throttleKindOf = (message: string): ThrottleKind => {
  const m = message.toLowerCase()
  if (m.includes("per day") || m.includes("daily")) return "daily"
  if (m.includes("too many tokens")) return "tokens"
  if (m.includes("too many requests")) return "requests"
  return "unknown"
}

/** Parses `retry-after` (seconds or HTTP date is not supported: seconds only) / `x-amz-retry-after` (ms). Pure. */
export const retryAfterOf = (headers: Record<string, string | undefined> | undefined): Option.Option<Duration.Duration> => {
  if (typeof headers !== "object" || headers === null) return Option.none()
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== "string") continue
    const key = k.toLowerCase()
    if (key === "x-amz-retry-after") {
      const ms = Number(v)
      if (Number.isFinite(ms) && ms >= 0) return Option.some(Duration.millis(ms))
    } else if (key === "retry-after") {
      const s = Number(v)
      if (Number.isFinite(s) && s >= 0) return Option.some(Duration.seconds(s))
    }
  }
  return Option.none()
}

interface SdkLike {
  readonly name?: unknown
  readonly message?: unknown
  readonly code?: unknown
  readonly cause?: unknown
  readonly originalStatusCode?: unknown
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string }
  readonly $response?: { readonly statusCode?: number; readonly headers?: Record<string, string | undefined> }
}

const codeOf = (e: SdkLike, depth = 0): string | undefined => {
  if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return e.code
  if (depth < 4 && typeof e.cause === "object" && e.cause !== null) return codeOf(e.cause as SdkLike, depth + 1)
  return typeof e.code === "string" ? e.code : undefined
}

const byStatus = (status: number): Reason | undefined => {
  if (status === 429) return new Throttled({ kind: "unknown" })
  if (status === 503 || status === 502 || status === 504) return new ServiceUnavailable()
  if (status >= 500) return new InternalServer()
  if (status === 408) return new ModelTimeout()
  if (status === 403) return new AccessDenied()
  if (status === 404) return new ResourceNotFound()
  return undefined
}

/**
 * Classifies anything the AWS SDK throws (an HTTP error, an in-stream
 * exception event, a transport fault). `phase` says whether the response
 * had started when it happened: a stream's iterator errors are always
 * `after-response`. Pure.
 *
 * @example
 * ```ts
 * import { ThrottlingException } from "@aws-sdk/client-bedrock-runtime"
 * import { BedrockError } from "effect-bedrock-mux"
 * const err = BedrockError.fromSdkError(new ThrottlingException({ message: "Too many tokens, please wait before trying again.", $metadata: {} }), "m")
 * err.reason // Throttled { kind: "tokens" }
 * ```
 * @since 0.1.0
 */
export const fromSdkError = (
  u: unknown,
  modelId?: string,
  phase: "before-response" | "after-response" = "before-response"
): BedrockError => {
  if (u instanceof BedrockError) return u
  const e: SdkLike = typeof u === "object" && u !== null ? (u as SdkLike) : { message: safeString(u) }
  const name = typeof e.name === "string" ? e.name : "Error"
  const message = typeof e.message === "string" ? e.message : safeString(u)
  const rawStatus: unknown = e.$metadata?.httpStatusCode ?? e.$response?.statusCode
  const status = typeof rawStatus === "number" ? rawStatus : undefined
  const requestId: unknown = e.$metadata?.requestId
  const reason = reasonOf(e, name, message, status, phase, u instanceof Error)
  return new BedrockError({
    reason,
    message: reason._tag === "Local"
      ? `${LOCAL_WHAT[reason.kind]}; the request was not sent (${name}: ${message})`
      : `${name}: ${message}`,
    ...(modelId !== undefined ? { modelId } : {}),
    ...(typeof requestId === "string" ? { requestId } : {}),
    ...(status !== undefined ? { httpStatusCode: status } : {}),
    cause: u
  })
}

/** `String(u)`, except for values that cannot be converted (null-prototype objects, a non-callable `toString`). */
const safeString = (u: unknown): string => {
  try {
    return String(u)
  } catch {
    return Object.prototype.toString.call(u)
  }
}

const reasonOf = (
  e: SdkLike,
  name: string,
  message: string,
  status: number | undefined,
  phase: "before-response" | "after-response",
  isError: boolean
): Reason => {
  const originalStatusCode = typeof e.originalStatusCode === "number" ? { originalStatusCode: e.originalStatusCode } : {}
  // In-stream exception events arrive with the lowerCamel member name when
  // the frame carries the shape name; normalise both.
  switch (shapeNameOf(name)) {
    case "ThrottlingException": {
      const retryAfter = retryAfterOf(e.$response?.headers)
      return new Throttled({
        kind: throttleKindOf(message),
        ...(Option.isSome(retryAfter) ? { retryAfter: retryAfter.value } : {})
      })
    }
    case "ServiceUnavailableException":
      return new ServiceUnavailable()
    case "InternalServerException":
      return new InternalServer()
    case "ModelNotReadyException":
      return new ModelNotReady()
    case "ModelTimeoutException":
      return new ModelTimeout()
    case "ModelErrorException":
      return new ModelError(originalStatusCode)
    case "ModelStreamErrorException":
      return new ModelStreamError(originalStatusCode)
    case "ValidationException":
      return new Validation({ kind: CONTEXT_WINDOW.test(message) ? "context-window" : "other" })
    case "ConflictException":
      // async-invoke only; a request problem, never the model's
      return new Validation({ kind: "other" })
    case "AccessDeniedException":
      return new AccessDenied()
    case "ResourceNotFoundException":
      return new ResourceNotFound()
    case "ServiceQuotaExceededException":
      return new ServiceQuotaExceeded()
  }
  if (message.includes("Truncated event message") || BAD_CHECKSUM.test(message)) {
    return new Incomplete({ detail: "malformed-frame" })
  }
  const code = codeOf(e)
  if (code !== undefined && NETWORK_CODES.has(code)) {
    // h1 reports a reset after the head as "aborted"; before it as "socket hang up"/"read ECONNRESET"
    const after = phase === "after-response" || message.startsWith("aborted") || (status !== undefined && status < 300)
    return new Network({ phase: after ? "after-response" : "before-response", code })
  }
  if (name === "TimeoutError" || name === "RequestTimeout" || name === "RequestTimeoutException") {
    return new Network({ phase, code: code ?? name })
  }
  if (name === "SyntaxError" || message.startsWith("Deserialization error")) {
    if (status !== undefined && status >= 300) return byStatus(status) ?? new Unknown({ name })
    return new Incomplete({ detail: "malformed-body" })
  }
  if (status === undefined && phase === "before-response") {
    const kind = localKindOf(e, name, message, code, isError)
    if (kind !== undefined) return new Local({ kind })
  }
  // an auth failure Bedrock answered (expired or unknown credentials, a bad signature): access, not an outage
  if (status === 403) return new AccessDenied()
  if (status !== undefined && (name === "Unknown" || name === "BedrockRuntimeServiceException" || status >= 500)) {
    return byStatus(status) ?? new Unknown({ name })
  }
  return new Unknown({ name })
}
