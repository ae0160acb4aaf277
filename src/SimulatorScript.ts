/**
 * The script that drives both Bedrocks of this library: the in-memory
 * `BedrockSimulator` and the loopback `FakeBedrock` HTTP server. One script,
 * one behaviour: the same script gives the same outcomes on either (see the
 * agreement table in test/agreement.test.ts).
 *
 * A script is plain JSON, decoded with Schema; a malformed script fails with
 * every problem and its field path. Per model you script:
 * - `latency` (Converse response time; fixed, or `{ uniform: [min, max] }`,
 *   or `{ normal: { mean, stddev } }`), `firstToken` (stream time to first
 *   token, default: `latency`), `tokensPerSecond` for streams;
 * - `answer` text (split into tokens on word boundaries) and `inputTokens`
 *   (default: estimated from the request);
 * - `rpm` / `tpm` quotas, enforced the way Bedrock does over a sliding minute,
 *   with TPM reserved as input + maxTokens when the request starts;
 * - `faults`: the first fault whose `when` matches a call decides it. `when`
 *   may name calls (1-based, per model), a time window since start, and a
 *   probability (drawn from the seeded Random); all given conditions must hold.
 *
 * Durations are milliseconds or Effect duration strings ("2 seconds").
 *
 * @example
 * ```ts
 * import { SimulatorScript } from "effect-bedrock-mux"
 * const script = SimulatorScript.decodeSync({
 *   seed: "demo",
 *   models: {
 *     "primary": { latency: 200, rpm: 3, faults: [{ when: { from: "10 seconds", to: "70 seconds" }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
 *     "fallback": { latency: { uniform: [100, 300] } }
 *   }
 * })
 * ```
 * @since 0.1.0
 */
import { Duration, Effect, Schema } from "effect"
import { DurationInput, NonNegativeInt, PositiveInt, Positive, Probability, type Problem, problemsOf } from "./internal/schema.ts"

/** Exceptions the simulator can answer with (HTTP error responses). @since 0.1.0 */
export const ErrorNames = [
  "ThrottlingException",
  "ServiceUnavailableException",
  "InternalServerException",
  "ModelNotReadyException",
  "ModelTimeoutException",
  "ModelErrorException",
  "ValidationException",
  "AccessDeniedException",
  "ResourceNotFoundException",
  "ServiceQuotaExceededException"
] as const
/** @since 0.1.0 */
export type ErrorName = typeof ErrorNames[number]

/** Exceptions that Bedrock sends as events inside a 200 ConverseStream. @since 0.1.0 */
export const StreamErrorNames = [
  "throttlingException",
  "modelStreamErrorException",
  "internalServerException",
  "serviceUnavailableException",
  "validationException"
] as const
/** @since 0.1.0 */
export type StreamErrorName = typeof StreamErrorNames[number]

/** HTTP status Bedrock sends with each exception. @since 0.1.0 */
export const statusOf: Record<ErrorName, number> = {
  ThrottlingException: 429,
  ServiceUnavailableException: 503,
  InternalServerException: 500,
  ModelNotReadyException: 429,
  ModelTimeoutException: 408,
  ModelErrorException: 424,
  ValidationException: 400,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ServiceQuotaExceededException: 400
}

const Latency = Schema.Union([
  DurationInput,
  Schema.Struct({ uniform: Schema.Tuple([DurationInput, DurationInput]) }),
  Schema.Struct({ normal: Schema.Struct({ mean: DurationInput, stddev: DurationInput }) })
])
/** @since 0.1.0 */
export type Latency = typeof Latency.Type

const When = Schema.Struct({
  calls: Schema.optionalKey(
    Schema.Union([PositiveInt, Schema.Array(PositiveInt), Schema.Struct({ from: PositiveInt, to: Schema.optionalKey(PositiveInt) })])
  ),
  from: Schema.optionalKey(DurationInput),
  to: Schema.optionalKey(DurationInput),
  probability: Schema.optionalKey(Probability)
})
/** @since 0.1.0 */
export type When = typeof When.Type

const Action = Schema.Union([
  Schema.Struct({
    kind: Schema.Literal("error"),
    error: Schema.Literals(ErrorNames),
    message: Schema.optionalKey(Schema.String),
    retryAfter: Schema.optionalKey(DurationInput),
    originalStatusCode: Schema.optionalKey(Schema.Int),
    after: Schema.optionalKey(DurationInput)
  }),
  Schema.Struct({ kind: Schema.Literal("hang") }),
  Schema.Struct({ kind: Schema.Literal("cut"), afterTokens: NonNegativeInt }),
  Schema.Struct({ kind: Schema.Literal("stall"), afterTokens: NonNegativeInt }),
  Schema.Struct({
    kind: Schema.Literal("streamError"),
    afterTokens: NonNegativeInt,
    error: Schema.Literals(StreamErrorNames),
    message: Schema.optionalKey(Schema.String),
    originalStatusCode: Schema.optionalKey(Schema.Int)
  }),
  // frame: "truncated" (default) cuts a frame in half; "checksum" sends it whole with a corrupted CRC
  Schema.Struct({
    kind: Schema.Literal("malformed"),
    afterTokens: NonNegativeInt,
    frame: Schema.optionalKey(Schema.Literals(["truncated", "checksum"]))
  }),
  Schema.Struct({ kind: Schema.Literal("noMetadata") }),
  Schema.Struct({ kind: Schema.Literal("emptyOutput") }),
  Schema.Struct({
    kind: Schema.Literal("slow"),
    latency: Schema.optionalKey(Latency),
    firstToken: Schema.optionalKey(Latency)
  })
])
/** What a fault does to the call it matches. @since 0.1.0 */
export type Action = typeof Action.Type

const Fault = Schema.Struct({ when: Schema.optionalKey(When), do: Action })
/** @since 0.1.0 */
export type Fault = typeof Fault.Type

const ModelScript = Schema.Struct({
  latency: Schema.optionalKey(Latency),
  firstToken: Schema.optionalKey(Latency),
  tokensPerSecond: Schema.optionalKey(Positive),
  answer: Schema.optionalKey(Schema.String),
  inputTokens: Schema.optionalKey(NonNegativeInt),
  maxOutputTokens: Schema.optionalKey(PositiveInt),
  rpm: Schema.optionalKey(PositiveInt),
  tpm: Schema.optionalKey(PositiveInt),
  contextWindow: Schema.optionalKey(PositiveInt),
  faults: Schema.optionalKey(Schema.Array(Fault))
})
/** One model's script. @since 0.1.0 */
export type ModelScript = typeof ModelScript.Type

/** The whole script's schema (JSON in, decoded script out). @since 0.1.0 */
export const Script = Schema.Struct({
  seed: Schema.optionalKey(Schema.Union([Schema.String, Schema.Finite])),
  models: Schema.Record(Schema.String, ModelScript),
  unknownModels: Schema.optionalKey(Schema.Literals(["ResourceNotFoundException", "default"]))
})
/** A decoded script. @since 0.1.0 */
export type Script = typeof Script.Type
/** A script as written (JSON). @since 0.1.0 */
export type ScriptInput = typeof Script.Encoded

/**
 * A script that failed to decode, with every problem and its path.
 * @since 0.1.0
 */
export class ScriptError extends Schema.TaggedError<ScriptError>()("ScriptError", {
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `Invalid simulator script:\n${this.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`
  }
}

const decodeExit = Schema.decodeUnknownExit(Script)

/**
 * Decodes a script, reporting every problem.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SimulatorScript } from "effect-bedrock-mux"
 * SimulatorScript.decode({ models: { m: { latency: "1 second" } } }).pipe(Effect.runSync)
 * ```
 * @since 0.1.0
 */
export const decode = (input: unknown): Effect.Effect<Script, ScriptError> =>
  Effect.mapError(
    Schema.decodeUnknownEffect(Script)(input, { errors: "all" }),
    (e) => new ScriptError({ problems: problemsOf(e) as Array<Problem> })
  )

/**
 * Decodes a script or throws `ScriptError`.
 * @example
 * ```ts
 * import { SimulatorScript } from "effect-bedrock-mux"
 * const script = SimulatorScript.decodeSync({ models: { m: {} } })
 * ```
 * @since 0.1.0
 */
export const decodeSync = (input: unknown): Script => {
  const exit = decodeExit(input, { errors: "all" })
  if (exit._tag === "Success") return exit.value
  throw Effect.runSync(Effect.flip(decode(input)))
}

/** Milliseconds of a decoded duration. @internal */
export const ms = (d: Duration.Duration): number => Duration.toMillis(d)
