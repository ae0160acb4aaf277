/**
 * `BedrockSimulator`: an in-memory Bedrock that provides `BedrockRuntime`,
 * scripted per model (see `SimulatorScript`). It is the embedded default of
 * the demo and the way to test an app that calls Bedrock without a network.
 *
 * How it behaves:
 * - Every wait (latency, time to first token, tokens per second, fault
 *   windows, the RPM/TPM sliding minute) reads Effect's `Clock`, so under
 *   `TestClock` a one-minute quota scenario runs in milliseconds.
 * - Randomness (latency distributions, fault probabilities) comes from a
 *   `Random` seeded with the script's `seed`; without one, from the ambient
 *   `Random` (so `Random.withSeed` works). Same seed, same attempt log.
 * - Errors are the real SDK exception classes run through the same
 *   classification as the live client, so `BedrockError`s look exactly as
 *   they would from Bedrock, `cause instanceof ThrottlingException` included.
 * - Streams behave like the live client over HTTP/1.1: a cut fails with a
 *   reset, an in-stream exception fails the stream, an early end fails with
 *   `Incomplete("no-message-stop")`.
 * - Every call is recorded (model, operation, start, end, outcome, tokens):
 *   read it with `BedrockSimulator.attempts`.
 *
 * Gotchas:
 * - Time zero is when the layer was built: fault windows (`from`/`to`) count
 *   from there.
 * - The attempt log keeps the newest `logLimit` calls (default 100 000).
 * - An interrupted call is logged `interrupted`, whatever its plan was.
 *
 * @since 0.1.0
 */
import {
  type ConverseCommandInput,
  type ConverseCommandOutput,
  type ConverseStreamOutput,
  AccessDeniedException,
  InternalServerException,
  ModelErrorException,
  ModelNotReadyException,
  ModelStreamErrorException,
  ModelTimeoutException,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
  ServiceUnavailableException,
  ThrottlingException,
  ValidationException
} from "@aws-sdk/client-bedrock-runtime"
import { Clock, Context, Effect, Layer, Random, Stream } from "effect"
import * as BedrockError from "./BedrockError.ts"
import { BedrockRuntime, requireMessageStop } from "./BedrockRuntime.ts"
import * as SimulatorScript from "./SimulatorScript.ts"
import {
  type Attempt,
  callRequestOf,
  converseFaultOf,
  ModelState,
  modelScriptOf,
  type Outcome,
  type Plan,
  plan,
  serviceTierOf,
  settle
} from "./internal/simulation.ts"
import { shapeNameOf } from "./internal/exceptionName.ts"
import * as Incomplete from "./internal/incomplete.ts"

export type { Attempt, Outcome } from "./internal/simulation.ts"

/**
 * The simulator's own service: its attempt log and script.
 * @since 0.1.0
 */
export interface Service {
  /** Every call the simulated provider saw, oldest first. */
  readonly attempts: Effect.Effect<ReadonlyArray<Attempt>>
  /** Forgets the attempt log (quota windows and call counts are kept). */
  readonly clearAttempts: Effect.Effect<void>
  /** The decoded script. */
  readonly script: SimulatorScript.Script
}

/** @since 0.1.0 */
export interface Options {
  /** How many attempts the log keeps (newest). Default 100 000; 0 keeps none. */
  readonly logLimit?: number
}

/**
 * The in-memory Bedrock.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockRuntime, BedrockSimulator } from "effect-bedrock-mux"
 *
 * const program = Effect.gen(function*() {
 *   const bedrock = yield* BedrockRuntime
 *   yield* bedrock.converse({ modelId: "m", messages: [{ role: "user", content: [{ text: "hi" }] }] })
 *   return yield* BedrockSimulator.attempts
 * })
 * program.pipe(Effect.provide(BedrockSimulator.layer({ models: { m: { latency: 100 } } })))
 * ```
 * @since 0.1.0
 */
export class BedrockSimulator extends Context.Service<BedrockSimulator, Service>()("effect-bedrock-mux/BedrockSimulator") {
  /**
   * Provides `BedrockRuntime` (simulated) and `BedrockSimulator` from a
   * script as written (decoded here; a malformed script fails the layer with
   * every problem) or an already decoded one (`SimulatorScript.decode`),
   * used as it is.
   */
  static readonly layer = (
    script: SimulatorScript.ScriptInput | SimulatorScript.Script,
    options: Options = {}
  ): Layer.Layer<BedrockSimulator | BedrockRuntime, SimulatorScript.ScriptError> =>
    Layer.effectContext(Effect.gen(function*() {
      const decoded = SimulatorScript.isScript(script) ? script : yield* SimulatorScript.decode(script)
      const sim = yield* make(decoded, options)
      return Context.make(BedrockSimulator, sim.simulator).pipe(Context.add(BedrockRuntime, sim.runtime))
    }))

  /** The attempt log of the simulator in context. */
  static readonly attempts: Effect.Effect<ReadonlyArray<Attempt>, never, BedrockSimulator> = Effect.gen(function*() {
    return yield* (yield* BedrockSimulator).attempts
  })
}

/**
 * Builds a simulator: its runtime service and its own service, without
 * layers (for users who need several simulated Regions in one map).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockSimulator, SimulatorScript } from "effect-bedrock-mux"
 * // (internal) BedrockSimulator.layer is the public way in
 * const layer = BedrockSimulator.layer(SimulatorScript.decodeSync({ models: { m: {} } }))
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(script: SimulatorScript.Script, options: Options = {}) {
  const logLimit = options.logLimit ?? 100_000
  const start = yield* Clock.currentTimeMillis
  const currentRandom = Effect.gen(function*() {
    return yield* Random.Random
  })
  const rng = yield* (script.seed === undefined ? currentRandom : currentRandom.pipe(Random.withSeed(script.seed)))
  const next = () => rng.nextDoubleUnsafe()
  const states = new Map<string, ModelState>()
  const log: Array<Attempt> = []
  let ids = 0

  const stateOf = (modelId: string): ModelState => {
    let s = states.get(modelId)
    if (s === undefined) {
      s = new ModelState()
      states.set(modelId, s)
    }
    return s
  }

  const begin = (
    input: Pick<ConverseCommandInput, "modelId" | "messages" | "system" | "inferenceConfig" | "serviceTier">,
    operation: Attempt["operation"]
  ) =>
    Effect.map(Clock.currentTimeMillis, (t) => {
      const modelId = input.modelId ?? ""
      const now = t - start
      const modelScript = modelScriptOf(script, modelId)
      const request = callRequestOf(input, operation === "converseStream", modelScript)
      const p = plan(modelScript, stateOf(modelId), now, next, request)
      const attempt: Attempt = {
        id: ++ids,
        modelId,
        operation,
        start: now,
        end: undefined,
        outcome: "pending",
        inputTokens: request.inputTokens,
        outputTokens: 0,
        ...serviceTierOf(input)
      }
      if (logLimit > 0) {
        log.push(attempt)
        if (log.length > logLimit) log.splice(0, log.length - logLimit)
      }
      return { modelId, plan: p, attempt }
    })

  const finish = (attempt: Attempt, outcome: Outcome) =>
    Effect.map(Clock.currentTimeMillis, (t) => {
      if (attempt.end === undefined) {
        attempt.end = t - start
        attempt.outcome = outcome
      }
    })

  const sleep = (ms: number) => (ms > 0 ? Effect.sleep(ms) : Effect.void)

  const converse = (input: ConverseCommandInput): Effect.Effect<ConverseCommandOutput, BedrockError.BedrockError> =>
    Effect.flatMap(begin(input, "converse"), ({ attempt, modelId, plan: p }) => {
      const run: Effect.Effect<ConverseCommandOutput, BedrockError.BedrockError> = (() => {
        switch (p._tag) {
          case "Reject":
            return sleep(p.delayMs).pipe(
              Effect.andThen(finish(attempt, p.error)),
              Effect.andThen(Effect.fail(BedrockError.fromSdkError(sdkError(p, attempt.id), modelId)))
            )
          case "Hang":
            return Effect.never
          case "Answer": {
            const f = converseFaultOf(p.fault)
            const text = p.tokens.join("")
            const outputTokens = p.tokens.length
            const body = sleep(p.delayMs).pipe(Effect.andThen(Effect.sync(() => settle(p.reservation, p.inputTokens + outputTokens))))
            if (f === "hang") return Effect.never
            if (f === "ok") {
              return body.pipe(
                Effect.andThen(Effect.sync(() => (attempt.outputTokens = outputTokens))),
                Effect.andThen(finish(attempt, "success")),
                Effect.as<ConverseCommandOutput>({
                  $metadata: { httpStatusCode: 200, requestId: `sim-${attempt.id}`, attempts: 1, totalRetryDelay: 0 },
                  output: { message: { role: "assistant", content: [{ text }] } },
                  stopReason: p.stopReason,
                  usage: { inputTokens: p.inputTokens, outputTokens, totalTokens: p.inputTokens + outputTokens },
                  metrics: { latencyMs: Math.round(p.delayMs) }
                })
              )
            }
            const error = typeof f === "object"
              ? sdkError({ error: f.error, message: f.message, ...(f.originalStatusCode !== undefined ? { originalStatusCode: f.originalStatusCode } : {}) }, attempt.id)
              : f === "cut"
              ? onResponse(resetError(), attempt.id)
              : f === "malformed"
              ? syntaxError(attempt.id)
              : undefined
            const outcome: Outcome = typeof f === "object" ? f.error : f
            return body.pipe(
              Effect.andThen(finish(attempt, outcome)),
              Effect.andThen(
                error !== undefined
                  ? Effect.fail(BedrockError.fromSdkError(error, modelId))
                  : Effect.fail(Incomplete.missingOutput(modelId, { requestId: `sim-${attempt.id}`, httpStatusCode: 200 }))
              )
            )
          }
        }
      })()
      return Effect.onInterrupt(run, () => finish(attempt, "interrupted"))
    })

  const converseStream = (input: ConverseCommandInput): Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError> =>
    Stream.unwrap(Effect.map(begin(input, "converseStream"), ({ attempt, modelId, plan: p }) => {
      const events = streamOf(p, attempt, modelId, sleep, (o) => finish(attempt, o))
      return requireMessageStop(events, modelId).pipe(
        // whatever ended the stream before the plan did (take, interrupt) is an interruption
        Stream.onExit(() => finish(attempt, "interrupted"))
      )
    }))

  const runtime = BedrockRuntime.of({ converse, converseStream })
  const simulator = BedrockSimulator.of({
    attempts: Effect.sync(() => log.slice()),
    clearAttempts: Effect.sync(() => {
      log.length = 0
    }),
    script
  })
  return { runtime, simulator }
})

/**
 * The events of a planned stream, with the waits between them; ends,
 * fails or stalls as the plan's fault says.
 */
const streamOf = (
  p: Plan,
  attempt: Attempt,
  modelId: string,
  sleep: (ms: number) => Effect.Effect<void>,
  finish: (outcome: Outcome) => Effect.Effect<void>
): Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError> => {
  if (p._tag === "Hang") return Stream.never
  if (p._tag === "Reject") {
    return Stream.fromEffect(
      sleep(p.delayMs).pipe(
        Effect.andThen(finish(p.error)),
        Effect.andThen(Effect.fail(BedrockError.fromSdkError(sdkError(p, attempt.id), modelId)))
      )
    )
  }
  const fault = p.fault
  const limit = fault !== undefined && "afterTokens" in fault ? Math.min(fault.afterTokens, p.tokens.length) : p.tokens.length
  type Step = { readonly wait: number; readonly event: ConverseStreamOutput; readonly token?: true }
  // A fault at token 0 comes as the very first frame, before messageStart, as the fake sends it
  // (the SDK's send() then throws it); every other answer opens with messageStart.
  const faultFirst = limit === 0 && fault !== undefined && "afterTokens" in fault
  const steps: Array<Step> = faultFirst ? [] : [{ wait: p.delayMs, event: { messageStart: { role: "assistant" } } }]
  if (fault?.kind !== "emptyOutput") {
    for (let i = 0; i < limit; i++) {
      steps.push({
        wait: i === 0 ? 0 : p.interTokenMs,
        event: { contentBlockDelta: { contentBlockIndex: 0, delta: { text: p.tokens[i]! } } },
        token: true
      })
    }
  }
  const complete = fault === undefined || fault.kind === "noMetadata"
  if (complete) {
    const outputTokens = p.tokens.length
    steps.push({ wait: 0, event: { contentBlockStop: { contentBlockIndex: 0 } } })
    steps.push({ wait: 0, event: { messageStop: { stopReason: p.stopReason } } })
    if (fault === undefined) {
      steps.push({
        wait: 0,
        event: {
          metadata: {
            usage: { inputTokens: p.inputTokens, outputTokens, totalTokens: p.inputTokens + outputTokens },
            metrics: { latencyMs: Math.round(p.delayMs + p.interTokenMs * Math.max(0, outputTokens - 1)) }
          }
        }
      })
    }
  }
  const body = Stream.fromIterable(steps).pipe(
    Stream.mapEffect((step) =>
      Effect.as(
        step.token
          ? Effect.andThen(sleep(step.wait), Effect.sync(() => (attempt.outputTokens += 1)))
          : sleep(step.wait),
        step.event
      )
    )
  )
  const settleNow = Effect.andThen(
    faultFirst ? sleep(p.delayMs) : Effect.void,
    Effect.sync(() => settle(p.reservation, p.inputTokens + attempt.outputTokens))
  )
  if (complete) {
    return Stream.concat(body, Stream.fromEffectDrain(Effect.andThen(settleNow, finish("success"))))
  }
  // a fault in place of the first frame is thrown by the SDK's send(), with the response's status 200
  const first = (error: Error): Error => (faultFirst ? onResponse(error, attempt.id) : error)
  const ending: Effect.Effect<never, BedrockError.BedrockError> | Effect.Effect<void> = (() => {
    switch (fault.kind) {
      case "stall":
        return Effect.never
      case "emptyOutput":
        return finish("emptyOutput")
      case "cut":
        return Effect.andThen(finish("cut"), Effect.fail(BedrockError.fromSdkError(first(resetError()), modelId, "after-response")))
      case "malformed":
        return Effect.andThen(
          finish("malformed"),
          Effect.fail(BedrockError.fromSdkError(first(frameError(fault.frame)), modelId, "after-response"))
        )
      case "streamError":
        return Effect.andThen(
          finish(fault.error),
          Effect.fail(BedrockError.fromSdkError(
            first(streamSdkError(fault.error, fault.message, fault.originalStatusCode)),
            modelId,
            "after-response"
          ))
        )
    }
  })()
  return Stream.concat(body, Stream.fromEffectDrain(Effect.andThen(settleNow, ending)))
}

const CLASSES = {
  ThrottlingException,
  ServiceUnavailableException,
  InternalServerException,
  ModelNotReadyException,
  ModelTimeoutException,
  ModelErrorException,
  ValidationException,
  AccessDeniedException,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
  ModelStreamErrorException
} as const

/** The SDK exception Bedrock's HTTP error response would produce. */
const sdkError = (
  p: { readonly error: SimulatorScript.ErrorName; readonly message: string; readonly retryAfterMs?: number; readonly originalStatusCode?: number },
  id: number
): Error => {
  const status = SimulatorScript.statusOf[p.error]
  const Ctor = CLASSES[p.error] as unknown as new(opts: object) => Error
  const err = new Ctor({
    message: p.message,
    $metadata: { httpStatusCode: status, requestId: `sim-${id}`, attempts: 1, totalRetryDelay: 0 },
    ...(p.originalStatusCode !== undefined ? { originalStatusCode: p.originalStatusCode } : {})
  })
  if (p.retryAfterMs !== undefined) {
    // the SDK keeps the raw response on a hidden field; classification reads its headers
    Object.defineProperty(err, "$response", {
      value: { statusCode: status, headers: { "retry-after": String(p.retryAfterMs / 1000) } },
      enumerable: false
    })
  }
  return err
}

/** The SDK exception an in-stream exception event produces (no HTTP status). */
const streamSdkError = (name: SimulatorScript.StreamErrorName, message: string, originalStatusCode?: number): Error => {
  const Ctor = CLASSES[shapeNameOf(name)] as unknown as new(opts: object) => Error
  return new Ctor({
    message,
    $metadata: {},
    ...(originalStatusCode !== undefined ? { originalStatusCode } : {})
  })
}

/** What the SDK's event-stream decoder throws on a cut frame, or on a frame whose CRC does not match. */
const frameError = (frame: "truncated" | "checksum" | undefined): Error =>
  frame === "checksum"
    ? new Error("The message checksum (2921508420) did not match the expected value of 2921508555")
    : new Error("Truncated event message received.")

/** What the SDK's HTTP/1.1 handler throws on a connection reset mid-response. */
const resetError = (): Error => Object.assign(new Error("aborted"), { code: "ECONNRESET" })

/**
 * The error as the SDK throws it once the response head (200) is in: from
 * `send()`, for a cut Converse body or a fault in place of a stream's first frame.
 */
const onResponse = (error: Error, id: number): Error =>
  Object.assign(error, { $metadata: { httpStatusCode: 200, requestId: `sim-${id}`, attempts: 1, totalRetryDelay: 0 } })

/** What the SDK throws for a 200 with a truncated JSON body. */
const syntaxError = (id: number): Error =>
  Object.assign(new SyntaxError("Unexpected end of JSON input"), {
    $metadata: { httpStatusCode: 200, requestId: `sim-${id}` }
  })
