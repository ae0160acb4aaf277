// The real AWS SDK against FakeBedrock over loopback HTTP: every error kind,
// in-stream exceptions, stream and Converse faults, aborts, HTTP/2, quotas.
import {
  AccessDeniedException,
  BedrockRuntimeClient,
  InvokeModelCommand,
  type ConverseStreamOutput,
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
import { NodeHttp2Handler } from "@smithy/node-http-handler"
import { assert, describe, it } from "@effect/vitest"
import * as net from "node:net"
import { Cause, Duration, Effect, type Exit, Fiber, Layer, Schedule, Stream } from "effect"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux } from "../src/BedrockMux.ts"
import { BedrockRuntime, make as makeRuntime } from "../src/BedrockRuntime.ts"
import { MuxError } from "../src/MuxError.ts"
import * as SimulatorScript from "../src/SimulatorScript.ts"
import { type ErrorName, type ScriptInput, statusOf, type StreamErrorName } from "../src/SimulatorScript.ts"
import { FakeBedrock } from "../src/testing/index.ts"

const messages = [{ role: "user" as const, content: [{ text: "Hello there, model" }] }]
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const converse = (modelId: string) => Effect.flatMap(BedrockRuntime, (rt) => rt.converse({ modelId, messages }))
const converseStream = (modelId: string) =>
  Stream.unwrap(Effect.map(BedrockRuntime, (rt) => rt.converseStream({ modelId, messages })))

const eventName = (ev: ConverseStreamOutput): string => Object.keys(ev)[0]!

/** Runs a stream to its end, recording the event names; returns them with the exit. */
const collect = <E, R>(stream: Stream.Stream<ConverseStreamOutput, E, R>) =>
  Effect.gen(function*() {
    const events: Array<string> = []
    const exit = yield* stream.pipe(
      Stream.runForEach((ev) => Effect.sync(() => events.push(eventName(ev)))),
      Effect.exit
    )
    return { events, exit }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  assert.isTrue(exit._tag === "Failure", "expected a failure")
  const cause = (exit as { readonly cause: Cause.Cause<E> }).cause
  const error = Cause.findErrorOption(cause)
  assert.isTrue(error._tag === "Some", `expected a typed failure, got ${Cause.pretty(cause)}`)
  return (error as { readonly value: E }).value
}

const fakeService = FakeBedrock.FakeBedrock

/** Our BedrockRuntime over the plain SDK client, default transport (HTTP/2, maxAttempts 3). */
const layerDefaultClient = (script: ScriptInput) =>
  Layer.unwrap(Effect.map(fakeService, (fake) =>
    Layer.effect(
      BedrockRuntime,
      Effect.map(
        Effect.acquireRelease(
          Effect.sync(() =>
            new BedrockRuntimeClient({
              region: "us-east-1",
              endpoint: fake.url,
              credentials: { accessKeyId: "fake", secretAccessKey: "fake" }
            })
          ),
          (client) => Effect.sync(() => client.destroy())
        ),
        (client) => {
          // the point of these tests: the SDK's own default transport is HTTP/2
          assert.instanceOf(client.config.requestHandler, NodeHttp2Handler)
          return makeRuntime(client)
        }
      )
    ))).pipe(Layer.provideMerge(FakeBedrock.layer(script)))

// --- 1. every HTTP error kind -----------------------------------------------------------------

interface ErrorCase {
  readonly model: string
  readonly error: ErrorName
  readonly message?: string
  readonly retryAfter?: number
  readonly originalStatusCode?: number
  readonly sdkClass: new(...args: Array<any>) => Error
  readonly reason: BedrockError.Reason
}

const errorCases: ReadonlyArray<ErrorCase> = [
  {
    model: "throttle-requests",
    error: "ThrottlingException",
    message: "Too many requests, please wait before trying again.",
    retryAfter: 3000,
    sdkClass: ThrottlingException,
    reason: new BedrockError.Throttled({ kind: "requests", retryAfter: Duration.seconds(3) })
  },
  {
    model: "throttle-tokens",
    error: "ThrottlingException",
    message: "Too many tokens, please wait before trying again.",
    retryAfter: 1500, // sent as whole seconds, rounded up
    sdkClass: ThrottlingException,
    reason: new BedrockError.Throttled({ kind: "tokens", retryAfter: Duration.seconds(2) })
  },
  {
    model: "throttle-daily",
    error: "ThrottlingException",
    message: "Too many tokens per day, please wait before trying again.",
    sdkClass: ThrottlingException,
    reason: new BedrockError.Throttled({ kind: "daily" })
  },
  {
    model: "unavailable",
    error: "ServiceUnavailableException",
    sdkClass: ServiceUnavailableException,
    reason: new BedrockError.ServiceUnavailable()
  },
  {
    model: "internal",
    error: "InternalServerException",
    sdkClass: InternalServerException,
    reason: new BedrockError.InternalServer()
  },
  {
    model: "not-ready",
    error: "ModelNotReadyException",
    sdkClass: ModelNotReadyException,
    reason: new BedrockError.ModelNotReady()
  },
  {
    model: "model-timeout",
    error: "ModelTimeoutException",
    sdkClass: ModelTimeoutException,
    reason: new BedrockError.ModelTimeout()
  },
  {
    model: "model-error",
    error: "ModelErrorException",
    originalStatusCode: 503,
    sdkClass: ModelErrorException,
    reason: new BedrockError.ModelError({ originalStatusCode: 503 })
  },
  {
    model: "context-window",
    error: "ValidationException",
    message: "Input is too long for requested model.",
    sdkClass: ValidationException,
    reason: new BedrockError.Validation({ kind: "context-window" })
  },
  {
    model: "validation",
    error: "ValidationException",
    sdkClass: ValidationException,
    reason: new BedrockError.Validation({ kind: "other" })
  },
  {
    model: "access-denied",
    error: "AccessDeniedException",
    sdkClass: AccessDeniedException,
    reason: new BedrockError.AccessDenied()
  },
  {
    model: "not-found",
    error: "ResourceNotFoundException",
    sdkClass: ResourceNotFoundException,
    reason: new BedrockError.ResourceNotFound()
  },
  {
    model: "quota-exceeded",
    error: "ServiceQuotaExceededException",
    sdkClass: ServiceQuotaExceededException,
    reason: new BedrockError.ServiceQuotaExceeded()
  }
]

const errorScript: ScriptInput = {
  models: Object.fromEntries(errorCases.map((c) => [c.model, {
    faults: [{
      do: {
        kind: "error" as const,
        error: c.error,
        ...(c.message !== undefined ? { message: c.message } : {}),
        ...(c.retryAfter !== undefined ? { retryAfter: c.retryAfter } : {}),
        ...(c.originalStatusCode !== undefined ? { originalStatusCode: c.originalStatusCode } : {})
      }
    }]
  }]))
}

describe("FakeBedrock + real SDK: HTTP errors", () => {
  it("covers every exception the simulator can answer with", () => {
    assert.deepStrictEqual(
      [...new Set(errorCases.map((c) => c.error))].sort(),
      [...Object.keys(statusOf)].sort()
    )
  })

  it.live.each(errorCases)("converse: $model ($error)", (c) =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const err = yield* converse(c.model).pipe(Effect.flip)
      assert.strictEqual(err._tag, "BedrockError")
      assert.deepStrictEqual(err.reason, c.reason)
      assert.instanceOf(err.cause, c.sdkClass)
      assert.strictEqual((err.cause as Error).name, c.error)
      assert.strictEqual(err.httpStatusCode, statusOf[c.error])
      assert.match(err.requestId ?? "", UUID)
      assert.strictEqual(err.modelId, c.model)
      if (c.originalStatusCode !== undefined) {
        assert.strictEqual((err.cause as { originalStatusCode?: number }).originalStatusCode, c.originalStatusCode)
      }
      // SDK retries are off in our layer: one call, one request
      assert.deepStrictEqual(
        fake.attempts().map((a) => [a.modelId, a.operation, a.outcome]),
        [[c.model, "converse", c.error]]
      )
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(errorScript))))

  it.live("converseStream: an HTTP error before the stream is the same error", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* collect(converseStream("throttle-requests"))
      assert.deepStrictEqual(events, [])
      const err = failureOf(exit)
      assert.deepStrictEqual(
        err.reason,
        new BedrockError.Throttled({ kind: "requests", retryAfter: Duration.seconds(3) })
      )
      assert.instanceOf(err.cause, ThrottlingException)
      assert.strictEqual(err.httpStatusCode, 429)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(errorScript))))
})

// --- 2. in-stream exceptions ------------------------------------------------------------------

const streamErrorCases: ReadonlyArray<{
  readonly error: StreamErrorName
  readonly originalStatusCode?: number
  readonly sdkClass: new(...args: Array<any>) => Error
  readonly reason: BedrockError.Reason
}> = [
  { error: "throttlingException", sdkClass: ThrottlingException, reason: new BedrockError.Throttled({ kind: "requests" }) },
  {
    error: "modelStreamErrorException",
    originalStatusCode: 500,
    sdkClass: ModelStreamErrorException,
    reason: new BedrockError.ModelStreamError({ originalStatusCode: 500 })
  },
  { error: "internalServerException", sdkClass: InternalServerException, reason: new BedrockError.InternalServer() },
  {
    error: "serviceUnavailableException",
    sdkClass: ServiceUnavailableException,
    reason: new BedrockError.ServiceUnavailable()
  },
  { error: "validationException", sdkClass: ValidationException, reason: new BedrockError.Validation({ kind: "other" }) }
]

const streamErrorScript = (afterTokens: number): ScriptInput => ({
  models: Object.fromEntries(streamErrorCases.map((c) => [c.error, {
    answer: "one two three four",
    faults: [{
      do: {
        kind: "streamError" as const,
        afterTokens,
        error: c.error,
        ...(c.originalStatusCode !== undefined ? { originalStatusCode: c.originalStatusCode } : {})
      }
    }]
  }]))
})

describe("FakeBedrock + real SDK: in-stream exceptions", () => {
  it.live.each(streamErrorCases)("$error after 1 token fails the stream, never as data", (c) =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const { events, exit } = yield* collect(converseStream(c.error))
      assert.deepStrictEqual(events, ["messageStart", "contentBlockDelta"])
      const err = failureOf(exit)
      assert.deepStrictEqual(err.reason, c.reason)
      assert.instanceOf(err.cause, c.sdkClass)
      // the exception came inside a 200 response: no HTTP status of its own
      assert.strictEqual(err.httpStatusCode, undefined)
      if (c.originalStatusCode !== undefined) {
        assert.strictEqual((err.cause as { originalStatusCode?: number }).originalStatusCode, c.originalStatusCode)
      }
      const [attempt] = fake.attempts()
      assert.strictEqual(fake.attempts().length, 1)
      assert.strictEqual(attempt!.outcome, c.error)
      assert.strictEqual(attempt!.outputTokens, 1)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamErrorScript(1)))))

  it.live.each(streamErrorCases)("$error as the very first frame is thrown by send()", (c) =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const { events, exit } = yield* collect(converseStream(c.error))
      assert.deepStrictEqual(events, [])
      const err = failureOf(exit)
      assert.deepStrictEqual(err.reason, c.reason)
      assert.instanceOf(err.cause, c.sdkClass)
      // thrown by send() while deserializing a 200 response, so $metadata has its status
      assert.strictEqual(err.httpStatusCode, 200)
      assert.deepStrictEqual(fake.attempts().map((a) => [a.outcome, a.outputTokens]), [[c.error, 0]])
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamErrorScript(0)))))
})

// --- 3. stream faults -------------------------------------------------------------------------

const streamFaultScript: ScriptInput = {
  models: {
    cut: { answer: "a b c d e", faults: [{ do: { kind: "cut", afterTokens: 2 } }] },
    stall: { answer: "a b c d e", faults: [{ do: { kind: "stall", afterTokens: 1 } }] },
    malformed: { answer: "a b c d e", faults: [{ do: { kind: "malformed", afterTokens: 2 } }] },
    empty: { answer: "a b c d e", faults: [{ do: { kind: "emptyOutput" } }] },
    "no-metadata": { answer: "a b c", faults: [{ do: { kind: "noMetadata" } }] },
    ok: { answer: "a b c", firstToken: 10, tokensPerSecond: 500 }
  }
}

describe("FakeBedrock + real SDK: stream faults", () => {
  it.live("a clean stream delivers every event in order, with usage", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const events = yield* Stream.runCollect(converseStream("ok"))
      assert.deepStrictEqual(events.map(eventName), [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata"
      ])
      assert.deepStrictEqual(
        events.flatMap((e) => e.contentBlockDelta?.delta?.text ?? []).join(""),
        "a b c"
      )
      const metadata = events[6]!.metadata!
      const attempt = fake.attempts()[0]!
      assert.deepStrictEqual(metadata.usage, {
        inputTokens: attempt.inputTokens,
        outputTokens: 3,
        totalTokens: attempt.inputTokens + 3
      })
      assert.deepStrictEqual(events[5]!.messageStop, { stopReason: "end_turn" })
      assert.strictEqual(attempt.outcome, "success")
      assert.isAtLeast(attempt.end! - attempt.start, 10)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamFaultScript))))

  it.live("cut after 2 tokens fails with a network error after the response", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* collect(converseStream("cut"))
      assert.deepStrictEqual(events, ["messageStart", "contentBlockDelta", "contentBlockDelta"])
      const err = failureOf(exit)
      assert.deepStrictEqual(err.reason, new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }))
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamFaultScript))))

  it.live("stall: a client timeout closes the connection the server holds open", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const events: Array<string> = []
      const err = yield* converseStream("stall").pipe(
        Stream.runForEach((ev) => Effect.sync(() => events.push(eventName(ev)))),
        // long enough for the first delta to arrive on a loaded machine; the stall is forever
        Effect.timeout("600 millis"),
        Effect.flip
      )
      assert.isTrue(Cause.isTimeoutError(err))
      assert.deepStrictEqual(events, ["messageStart", "contentBlockDelta"])
      assert.isTrue(yield* Effect.promise(() => fake.waitForIdle(5_000)))
      assert.deepStrictEqual(fake.attempts().map((a) => [a.outcome, a.outputTokens]), [["interrupted", 1]])
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamFaultScript))))

  it.live("half a frame is Incomplete(malformed-frame)", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* collect(converseStream("malformed"))
      assert.deepStrictEqual(events, ["messageStart", "contentBlockDelta", "contentBlockDelta"])
      assert.deepStrictEqual(failureOf(exit).reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamFaultScript))))

  it.live("messageStart then a clean end is Incomplete(no-message-stop)", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const { events, exit } = yield* collect(converseStream("empty"))
      assert.deepStrictEqual(events, ["messageStart"])
      assert.deepStrictEqual(failureOf(exit).reason, new BedrockError.Incomplete({ detail: "no-message-stop" }))
      assert.strictEqual(fake.attempts()[0]!.outcome, "emptyOutput")
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamFaultScript))))

  it.live("a stream without metadata still succeeds", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* collect(converseStream("no-metadata"))
      assert.strictEqual(exit._tag, "Success")
      assert.deepStrictEqual(events, [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop"
      ])
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(streamFaultScript))))
})

// --- 4. Converse faults -----------------------------------------------------------------------

const converseFaultScript: ScriptInput = {
  models: {
    hang: { faults: [{ do: { kind: "hang" } }] },
    cut: { faults: [{ do: { kind: "cut", afterTokens: 1 } }] },
    malformed: { faults: [{ do: { kind: "malformed", afterTokens: 1 } }] },
    empty: { faults: [{ do: { kind: "emptyOutput" } }] },
    ok: { answer: "Hello there friend", latency: 10 }
  }
}

describe("FakeBedrock + real SDK: Converse faults", () => {
  it.live("success: text, stop reason, usage, latency", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const out = yield* converse("ok")
      assert.deepStrictEqual(out.output?.message, { role: "assistant", content: [{ text: "Hello there friend" }] })
      assert.strictEqual(out.stopReason, "end_turn")
      const attempt = fake.attempts()[0]!
      assert.deepStrictEqual(out.usage, {
        inputTokens: attempt.inputTokens,
        outputTokens: 3,
        totalTokens: attempt.inputTokens + 3
      })
      assert.isAtLeast(out.metrics!.latencyMs!, 10)
      assert.strictEqual(out.$metadata.httpStatusCode, 200)
      assert.match(out.$metadata.requestId ?? "", UUID)
      assert.deepStrictEqual([attempt.outcome, attempt.outputTokens], ["success", 3])
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(converseFaultScript))))

  it.live("hang: Effect.timeout aborts the request and the server sees it", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const fiber = yield* converse("hang").pipe(Effect.timeout("1 second"), Effect.flip, Effect.forkChild)
      // the call reaches the server well inside the timeout (on the real clock: it is real I/O)
      yield* Effect.sync(() => fake.attempts().length).pipe(
        Effect.repeat({ until: (n) => n > 0, schedule: Schedule.spaced("5 millis") }),
        Effect.timeout("900 millis")
      )
      assert.strictEqual(fake.inFlight(), 1)
      assert.strictEqual(fake.attempts()[0]!.outcome, "hang")
      assert.isTrue(Cause.isTimeoutError(yield* Fiber.join(fiber)))
      assert.isTrue(yield* Effect.promise(() => fake.waitForIdle(5_000)))
      assert.strictEqual(fake.inFlight(), 0)
      assert.strictEqual(fake.attempts()[0]!.outcome, "interrupted")
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(converseFaultScript))))

  it.live("cut mid-body is Network(after-response)", () =>
    Effect.gen(function*() {
      const err = yield* converse("cut").pipe(Effect.flip)
      assert.deepStrictEqual(err.reason, new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }))
      assert.strictEqual(err.httpStatusCode, 200)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(converseFaultScript))))

  it.live("truncated JSON is Incomplete(malformed-body)", () =>
    Effect.gen(function*() {
      const err = yield* converse("malformed").pipe(Effect.flip)
      assert.deepStrictEqual(err.reason, new BedrockError.Incomplete({ detail: "malformed-body" }))
      assert.strictEqual(err.httpStatusCode, 200)
      assert.strictEqual((err.cause as Error).name, "SyntaxError")
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(converseFaultScript))))

  it.live("an empty 200 is Incomplete(missing-output)", () =>
    Effect.gen(function*() {
      const err = yield* converse("empty").pipe(Effect.flip)
      assert.deepStrictEqual(err.reason, new BedrockError.Incomplete({ detail: "missing-output" }))
      assert.strictEqual(err.httpStatusCode, 200)
      assert.match(err.requestId ?? "", UUID)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(converseFaultScript))))
})

// --- 5. interruption aborts the HTTP request --------------------------------------------------

const abortScript: ScriptInput = {
  models: {
    slow: { latency: 5000 },
    // 4 tokens/s: the whole answer takes 2.5 s
    trickle: { answer: "one two three four five six seven eight nine ten", firstToken: 0, tokensPerSecond: 4 }
  }
}

describe("FakeBedrock + real SDK: abort on interruption", () => {
  it.live("an interrupted converse closes the request on the server", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      // long enough for the request to reach the server on a loaded machine; the answer is 5 s away
      const err = yield* converse("slow").pipe(Effect.timeout("300 millis"), Effect.flip)
      assert.isTrue(Cause.isTimeoutError(err))
      assert.isTrue(yield* Effect.promise(() => fake.waitForIdle(5_000)))
      const attempt = fake.attempts()[0]!
      assert.strictEqual(attempt.outcome, "interrupted")
      assert.isBelow(attempt.end! - attempt.start, 3_000)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(abortScript))))

  it.live("a consumer that takes 2 events closes the stream before the server finished", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const events = yield* converseStream("trickle").pipe(Stream.take(2), Stream.runCollect)
      assert.deepStrictEqual(events.map(eventName), ["messageStart", "contentBlockDelta"])
      assert.isTrue(yield* Effect.promise(() => fake.waitForIdle(5_000)))
      const attempt = fake.attempts()[0]!
      assert.strictEqual(attempt.outcome, "interrupted")
      assert.isBelow(attempt.outputTokens, 10)
      assert.isBelow(attempt.end! - attempt.start, 2_000)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(abortScript))))
})

// --- 6. the SDK's default HTTP/2 transport ----------------------------------------------------

const h2Script: ScriptInput = {
  models: {
    ok: { answer: "Hi from h2", latency: 5 },
    bad: { faults: [{ do: { kind: "error", error: "ValidationException" } }] },
    cut: { answer: "a b c d", faults: [{ do: { kind: "cut", afterTokens: 2 } }] }
  }
}

describe("FakeBedrock + the SDK's default HTTP/2 client", () => {
  it.live("success, an error and a stream over h2c; a connection per call", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const out = yield* converse("ok")
      assert.strictEqual(out.output?.message?.content?.[0]?.text, "Hi from h2")

      const err = yield* converse("bad").pipe(Effect.flip)
      assert.deepStrictEqual(err.reason, new BedrockError.Validation({ kind: "other" }))
      assert.instanceOf(err.cause, ValidationException)
      assert.strictEqual(err.httpStatusCode, 400)

      const events = yield* Stream.runCollect(converseStream("ok"))
      assert.deepStrictEqual(events.map(eventName), [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata"
      ])
      assert.deepStrictEqual(fake.attempts().map((a) => a.outcome), ["success", "ValidationException", "success"])
      // the default handler (disableConcurrentStreams) opens a session per call
      assert.strictEqual(fake.connections(), 3)
    }).pipe(Effect.provide(layerDefaultClient(h2Script))))

  it.live("a cut stream over h2 is an RST_STREAM: a network error, not a silent end", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* collect(converseStream("cut"))
      assert.deepStrictEqual(events, ["messageStart", "contentBlockDelta", "contentBlockDelta"])
      assert.deepStrictEqual(
        failureOf(exit).reason,
        new BedrockError.Network({ phase: "after-response", code: "ERR_HTTP2_STREAM_ERROR" })
      )
    }).pipe(Effect.provide(layerDefaultClient(h2Script))))

  it.live("our layer keeps one HTTP/1.1 connection alive across calls", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      yield* converse("ok")
      yield* converse("ok")
      yield* converse("bad").pipe(Effect.flip)
      assert.strictEqual(fake.attempts().length, 3)
      assert.strictEqual(fake.connections(), 1)
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(h2Script))))
})

// --- 7. quotas --------------------------------------------------------------------------------

describe("FakeBedrock + real SDK: quotas", () => {
  it.live("rpm 2: the third call in the minute is throttled as too many requests", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      yield* converse("amazon.nova-lite-v1:0")
      yield* converse("amazon.nova-lite-v1:0")
      const err = yield* converse("amazon.nova-lite-v1:0").pipe(Effect.flip)
      assert.deepStrictEqual(err.reason, new BedrockError.Throttled({ kind: "requests" }))
      assert.instanceOf(err.cause, ThrottlingException)
      assert.include(err.message, "Too many requests")
      assert.strictEqual(err.httpStatusCode, 429)
      assert.deepStrictEqual(
        fake.attempts().map((a) => [a.modelId, a.outcome]),
        [
          ["amazon.nova-lite-v1:0", "success"],
          ["amazon.nova-lite-v1:0", "success"],
          ["amazon.nova-lite-v1:0", "ThrottlingException"]
        ]
      )
    }).pipe(Effect.provide(FakeBedrock.layerRuntime({ models: { "amazon.nova-lite-v1:0": { rpm: 2 } } }))))
})

// --- the server itself ------------------------------------------------------------------------

describe("FakeBedrock server", () => {
  it.live("decodes percent-encoded model ids (ARNs, inference profiles)", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0"
      yield* converse(arn)
      const err = yield* converse("unknown.model-v1:0").pipe(Effect.flip)
      assert.deepStrictEqual(err.reason, new BedrockError.ResourceNotFound())
      assert.deepStrictEqual(
        fake.attempts().map((a) => [a.modelId, a.outcome]),
        [[arn, "success"], ["unknown.model-v1:0", "ResourceNotFoundException"]]
      )
    }).pipe(Effect.provide(FakeBedrock.layerRuntime({
      models: { "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0": {} }
    }))))

  it.live("InvokeModel: a Titan-shaped embedding, the same for the same text; faults and quotas as for Converse", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new BedrockRuntimeClient({ region: "us-east-1", endpoint: fake.url, credentials: { accessKeyId: "fake", secretAccessKey: "fake" }, maxAttempts: 1 })),
        (c) => Effect.sync(() => c.destroy())
      )
      const invoke = (modelId: string, body: string) =>
        Effect.tryPromise({ try: () => client.send(new InvokeModelCommand({ modelId, contentType: "application/json", body })), catch: (e) => e as Error }).pipe(
          Effect.map((out) => JSON.parse(new TextDecoder().decode(out.body)) as { readonly embedding: ReadonlyArray<number>; readonly inputTextTokenCount: number })
        )
      const a = yield* invoke("embed", JSON.stringify({ inputText: "hello world" }))
      assert.strictEqual(a.embedding.length, 8)
      for (const x of a.embedding) assert.isTrue(x >= -1 && x <= 1)
      assert.deepStrictEqual(yield* invoke("embed", JSON.stringify({ inputText: "hello world" })), a)
      assert.notDeepEqual((yield* invoke("embed", JSON.stringify({ inputText: "another text" }))).embedding, a.embedding)
      // the script's faults, and its rpm (3): the fourth call in the minute is throttled
      assert.instanceOf(yield* Effect.flip(invoke("embed", JSON.stringify({ inputText: "x" }))), ThrottlingException)
      assert.instanceOf(yield* Effect.flip(invoke("down", JSON.stringify({ inputText: "x" }))), ServiceUnavailableException)
      // a body without inputText is malformed input
      assert.instanceOf(yield* Effect.flip(invoke("down", JSON.stringify({ prompt: "x" }))), ValidationException)
      assert.deepStrictEqual(fake.attempts().map((a) => [a.operation, a.modelId, a.outcome, a.outputTokens]), [
        ["invokeModel", "embed", "success", 0],
        ["invokeModel", "embed", "success", 0],
        ["invokeModel", "embed", "success", 0],
        ["invokeModel", "embed", "ThrottlingException", 0],
        ["invokeModel", "down", "ServiceUnavailableException", 0]
      ])
      assert.strictEqual(fake.attempts()[0]!.inputTokens, a.inputTextTokenCount)
    }).pipe(Effect.scoped, Effect.provide(FakeBedrock.layer({
      models: { embed: { rpm: 3 }, down: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] } }
    }))))

  it.live("a seed reproduces probabilistic faults; reset restarts counts and the PRNG", () =>
    Effect.gen(function*() {
      const script: ScriptInput = {
        seed: "repro",
        models: { m: { faults: [{ when: { probability: 0.5 }, do: { kind: "error", error: "InternalServerException" } }] } }
      }
      const run = (fake: FakeBedrock.FakeBedrockServer) =>
        Effect.gen(function*() {
          const client = new BedrockRuntimeClient({
            region: "us-east-1",
            endpoint: fake.url,
            credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
            maxAttempts: 1
          })
          const rt = makeRuntime(client)
          for (let i = 0; i < 12; i++) yield* Effect.exit(rt.converse({ modelId: "m", messages }))
          client.destroy()
          return fake.attempts().map((a) => a.outcome)
        })
      const a = yield* Effect.promise(() => FakeBedrock.start(script))
      const b = yield* Effect.promise(() => FakeBedrock.start(script))
      const first = yield* run(a)
      assert.deepStrictEqual(yield* run(b), first)
      // both outcomes occur: the probability is really drawn
      assert.includeMembers(first, ["success", "InternalServerException"])
      a.reset()
      assert.deepStrictEqual(a.attempts(), [])
      assert.strictEqual(a.connections(), 0)
      assert.deepStrictEqual(yield* run(a), first)
      yield* Effect.promise(() => Promise.all([a.close(), b.close()]))
    }))

  it.live("accepts a decoded script; rejects a bad one with every problem", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.promise(() =>
        FakeBedrock.start(SimulatorScript.decodeSync({ models: { m: { latency: "30 millis", answer: "decoded" } } }))
      )
      const client = new BedrockRuntimeClient({
        region: "us-east-1",
        endpoint: fake.url,
        credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
        maxAttempts: 1
      })
      const out = yield* makeRuntime(client).converse({ modelId: "m", messages })
      client.destroy()
      assert.strictEqual(out.output?.message?.content?.[0]?.text, "decoded")
      const attempt = fake.attempts()[0]!
      assert.isAtLeast(attempt.end! - attempt.start, 30)
      yield* Effect.promise(() => fake.close())

      const bad = yield* Effect.promise(() =>
        FakeBedrock.start({ models: { m: { latency: "soon", rpm: 0 } } } as never).then(
          () => undefined,
          (e: unknown) => e
        )
      )
      assert.instanceOf(bad, SimulatorScript.ScriptError)
      assert.deepStrictEqual(
        (bad as SimulatorScript.ScriptError).problems.map((p) => p.path).sort(),
        ["models.m.latency", "models.m.rpm"]
      )
    }))

  it.live("a request split across packets is still sniffed right (HTTP/1.1 starting with 'P')", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const body = JSON.stringify({ messages })
      const response = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          const socket = net.connect(fake.port, "127.0.0.1")
          let text = ""
          socket.setEncoding("utf8")
          socket.on("data", (d: string) => {
            text += d
            if (text.includes("\r\n\r\n") && text.endsWith("}")) {
              socket.destroy()
              resolve(text)
            }
          })
          socket.on("error", reject)
          // "P" is also the first byte of the HTTP/2 preface: the fake must wait for more
          socket.write("P")
          setTimeout(() =>
            socket.write(
              `OST /model/m/converse HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${
                Buffer.byteLength(body)
              }\r\n\r\n${body}`
            ), 20)
        })
      )
      assert.match(response, /^HTTP\/1\.1 200 OK\r\n/)
      assert.include(response, "\"text\":\"split\"")
      assert.deepStrictEqual(fake.attempts().map((a) => [a.modelId, a.outcome]), [["m", "success"]])
    }).pipe(Effect.provide(FakeBedrock.layer({ models: { m: { answer: "split" } } }))))

  it.live("the layer closes the server when its scope ends", () =>
    Effect.gen(function*() {
      // Effect.provide builds the layer for this effect only, then closes it
      const url = yield* Effect.map(fakeService, (f) => f.url).pipe(Effect.provide(FakeBedrock.layer({ models: {} })))
      const client = new BedrockRuntimeClient({
        region: "us-east-1",
        endpoint: url,
        credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
        maxAttempts: 1
      })
      const err = yield* makeRuntime(client).converse({ modelId: "m", messages }).pipe(Effect.flip)
      client.destroy()
      assert.strictEqual(err.reason._tag, "Network")
      assert.strictEqual((err.reason as BedrockError.Network).phase, "before-response")
    }))
})

describe("BedrockRuntime (the SDK's service): an event stream that throws instead of returning its Promise", () => {
  /**
   * The real client, a middleware of the caller's (as a plugin would add one) answering every call with an
   * event stream whose iterator, or whose next(), throws: what the SDK's own iteration code could do.
   */
  const client = (how: "iterator" | "next") => {
    const c = new BedrockRuntimeClient({ region: "us-east-1", credentials: { accessKeyId: "fake", secretAccessKey: "fake" }, maxAttempts: 1 })
    const boom = new Error(`boom from ${how}`)
    const stream = how === "iterator"
      ? { [Symbol.asyncIterator]: () => { throw boom } }
      : { [Symbol.asyncIterator]: () => ({ next: () => { throw boom } }) }
    c.middlewareStack.add(() => async () => ({ output: { stream, $metadata: {} }, response: {} }), { step: "initialize" })
    return c
  }

  for (const how of ["iterator", "next"] as const) {
    it.live(`converseStream: a throw from the stream's ${how} fails the stream with a BedrockError (not a defect, not a hang)`, () =>
      Effect.gen(function*() {
        const c = client(how)
        const exit = yield* Stream.runDrain(makeRuntime(c).converseStream({ modelId: "m", messages: [] })).pipe(
          Effect.timeout("5 seconds"),
          Effect.exit,
          Effect.ensuring(Effect.sync(() => c.destroy()))
        )
        assert.isTrue(exit._tag === "Failure")
        const error = Cause.findErrorOption((exit as Exit.Failure<void, unknown>).cause)
        assert.isTrue(error._tag === "Some" && error.value instanceof BedrockError.BedrockError, `${how}: ${Cause.pretty((exit as Exit.Failure<void, unknown>).cause)}`)
      }))
  }

  it.live("mux.converseStream: a throw from next() after content is StreamInterrupted (not a defect, not a hang)", () =>
    Effect.gen(function*() {
      const c = new BedrockRuntimeClient({ region: "us-east-1", credentials: { accessKeyId: "fake", secretAccessKey: "fake" }, maxAttempts: 1 })
      const events: Array<ConverseStreamOutput> = [{ messageStart: { role: "assistant" } }, { contentBlockDelta: { contentBlockIndex: 0, delta: { text: "a" } } }]
      const stream = {
        [Symbol.asyncIterator]: () => {
          let i = 0
          return {
            next: () => {
              if (i < events.length) return Promise.resolve({ done: false as const, value: events[i++]! })
              throw new Error("boom from next")
            }
          }
        }
      }
      c.middlewareStack.add(() => async () => ({ output: { stream, $metadata: {} }, response: {} }), { step: "initialize" })
      const seen: Array<string> = []
      const exit = yield* Effect.gen(function*() {
        const mux = yield* BedrockMux
        return yield* mux.converseStream({ messages: [{ role: "user", content: [{ text: "hi" }] }] }).pipe(
          Stream.runForEach((ev) => Effect.sync(() => void seen.push(Object.keys(ev)[0]!)))
        )
      }).pipe(
        Effect.provide(BedrockMux.layer({ models: [{ modelId: "m" }] }).pipe(Layer.provide(Layer.succeed(BedrockRuntime, makeRuntime(c))))),
        Effect.timeout("5 seconds"),
        Effect.exit,
        Effect.ensuring(Effect.sync(() => c.destroy()))
      )
      assert.deepStrictEqual(seen, ["messageStart", "contentBlockDelta"])
      assert.isTrue(exit._tag === "Failure")
      const error = Cause.findErrorOption((exit as Exit.Failure<void, unknown>).cause)
      assert.isTrue(error._tag === "Some" && error.value instanceof MuxError && error.value.reason._tag === "StreamInterrupted", Cause.pretty((exit as Exit.Failure<void, unknown>).cause))
    }))
})
