import {
  type ConverseCommandInput,
  type ConverseStreamOutput,
  ResourceNotFoundException,
  ThrottlingException
} from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Option, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockRuntime, requireMessageStop } from "../src/BedrockRuntime.ts"
import { type Attempt, BedrockSimulator, type Options } from "../src/BedrockSimulator.ts"
import * as SimulatorScript from "../src/SimulatorScript.ts"

// --- helpers ------------------------------------------------------------------------------------

const inputOf = (modelId: string, extra: Partial<ConverseCommandInput> = {}): ConverseCommandInput => ({
  modelId,
  messages: [{ role: "user", content: [{ text: "hello there" }] }],
  ...extra
})

const converse = (modelId: string, extra: Partial<ConverseCommandInput> = {}) =>
  Effect.gen(function*() {
    const rt = yield* BedrockRuntime
    return yield* rt.converse(inputOf(modelId, extra))
  })

const converseStream = (modelId: string, extra: Partial<ConverseCommandInput> = {}) =>
  Stream.unwrap(Effect.gen(function*() {
    const rt = yield* BedrockRuntime
    return rt.converseStream(inputOf(modelId, extra))
  }))

const withSim = (script: SimulatorScript.ScriptInput, options?: Options) =>
  Effect.provide(BedrockSimulator.layer(script, options))

const attempts = BedrockSimulator.attempts

interface Seen {
  readonly at: number
  readonly event: ConverseStreamOutput
}

/** Forks a full read of a stream, recording each event with the (test) time it arrived. */
const record = <E, R>(stream: Stream.Stream<ConverseStreamOutput, E, R>) =>
  Effect.gen(function*() {
    const seen: Array<Seen> = []
    const fiber = yield* stream.pipe(
      Stream.runForEach((event) => Effect.map(Clock.currentTimeMillis, (at) => void seen.push({ at, event }))),
      Effect.exit,
      Effect.forkChild
    )
    return { seen, fiber }
  })

/** The member name of a ConverseStream event ("messageStart", "contentBlockDelta", ...). */
const kindOf = (event: ConverseStreamOutput): string => {
  const keys = Object.entries(event).filter(([, v]) => v !== undefined).map(([k]) => k)
  assert.strictEqual(keys.length, 1, `one member per event: ${keys.join(",")}`)
  return keys[0]!
}
const kinds = (seen: ReadonlyArray<Seen>) => seen.map((s) => kindOf(s.event))
const textOf = (seen: ReadonlyArray<Seen>) => seen.map((s) => s.event.contentBlockDelta?.delta?.text ?? "").join("")

const errorOf = <A>(exit: Exit.Exit<A, BedrockError.BedrockError>): BedrockError.BedrockError => {
  assert.isTrue(Exit.isFailure(exit), "expected the call to fail")
  const error = Exit.findErrorOption(exit)
  assert.isTrue(Option.isSome(error), "expected a typed failure")
  return (error as Option.Some<BedrockError.BedrockError>).value
}

const isRunning = (fiber: Fiber.Fiber<unknown, unknown>) => fiber.pollUnsafe() === undefined

const lastAttempt = Effect.map(attempts, (log) => {
  assert.isAbove(log.length, 0)
  return log[log.length - 1]!
})

const ANSWER = "one two three four five"

// --- latency ------------------------------------------------------------------------------------

describe("latency", () => {
  it.effect("fixed: Converse completes exactly at the latency, not before", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust(499)
      assert.isTrue(isRunning(fiber))
      assert.strictEqual((yield* lastAttempt).outcome, "pending")
      yield* TestClock.adjust(1)
      assert.isFalse(isRunning(fiber))
      const out = yield* Fiber.join(fiber)
      assert.strictEqual(out.output?.message?.content?.[0]?.text, ANSWER)
      assert.strictEqual(out.stopReason, "end_turn")
      assert.deepStrictEqual(out.usage, { inputTokens: 12, outputTokens: 5, totalTokens: 17 })
      assert.strictEqual(out.metrics?.latencyMs, 500)
      assert.strictEqual(out.$metadata.httpStatusCode, 200)
      const a = yield* lastAttempt
      assert.deepStrictEqual(a, {
        id: 1,
        modelId: "m",
        operation: "converse",
        start: 0,
        end: 500,
        outcome: "success",
        inputTokens: 12,
        outputTokens: 5
      })
    }).pipe(withSim({ models: { m: { latency: 500, answer: ANSWER, inputTokens: 12 } } })))

  it.effect("a duration string works as a latency", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust("1999 millis")
      assert.isTrue(isRunning(fiber))
      yield* TestClock.adjust("1 millis")
      assert.isFalse(isRunning(fiber))
    }).pipe(withSim({ models: { m: { latency: "2 seconds" } } })))

  it.effect("uniform: every call completes inside [min, max], at spread-out times", () =>
    Effect.gen(function*() {
      const fibers = yield* Effect.forEach(Array.from({ length: 40 }), () => converse("m").pipe(Effect.forkChild))
      yield* TestClock.adjust(99)
      assert.isTrue(fibers.every(isRunning))
      yield* TestClock.adjust(201)
      assert.isTrue(fibers.every((f) => !isRunning(f)))
      const ends = (yield* attempts).map((a) => a.end!)
      assert.strictEqual(ends.length, 40)
      for (const end of ends) {
        assert.isAtLeast(end, 100)
        assert.isAtMost(end, 300)
      }
      assert.isAbove(new Set(ends).size, 30)
      const mean = ends.reduce((a, b) => a + b, 0) / ends.length
      assert.isAbove(mean, 160)
      assert.isBelow(mean, 240)
    }).pipe(withSim({ seed: "uniform", models: { m: { latency: { uniform: [100, 300] } } } })))

  it.effect("normal: mean and spread follow the script, never negative", () =>
    Effect.gen(function*() {
      yield* Effect.forEach(Array.from({ length: 400 }), () => converse("m").pipe(Effect.forkChild))
      yield* TestClock.adjust("10 seconds")
      const ends = (yield* attempts).map((a) => a.end!)
      assert.strictEqual(ends.length, 400)
      const mean = ends.reduce((a, b) => a + b, 0) / ends.length
      const sd = Math.sqrt(ends.reduce((a, b) => a + (b - mean) ** 2, 0) / ends.length)
      assert.isAbove(mean, 980)
      assert.isBelow(mean, 1020)
      assert.isAbove(sd, 80)
      assert.isBelow(sd, 120)
      assert.isTrue(ends.every((e) => e >= 0))
    }).pipe(withSim({ seed: 7, models: { m: { latency: { normal: { mean: "1 second", stddev: 100 } } } } })))

  it.effect("normal: clamped at zero", () =>
    Effect.gen(function*() {
      yield* Effect.forEach(Array.from({ length: 100 }), () => converse("m").pipe(Effect.forkChild))
      yield* TestClock.adjust("10 seconds")
      const ends = (yield* attempts).map((a) => a.end!)
      assert.isTrue(ends.every((e) => e >= 0))
      assert.isTrue(ends.some((e) => e === 0))
    }).pipe(withSim({ seed: 1, models: { m: { latency: { normal: { mean: 10, stddev: 1000 } } } } })))
})

// --- streams ------------------------------------------------------------------------------------

describe("stream timing", () => {
  it.effect("first token at firstToken, then one delta per 1000/tokensPerSecond ms; full event sequence", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust(299)
      assert.strictEqual(seen.length, 0)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(kinds(seen), ["messageStart", "contentBlockDelta"])
      yield* TestClock.adjust(249)
      assert.strictEqual(seen.length, 2)
      yield* TestClock.adjust(1)
      assert.strictEqual(seen.length, 3)
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(fiber)))
      assert.deepStrictEqual(kinds(seen), [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata"
      ])
      assert.deepStrictEqual(seen.map((s) => s.at), [300, 300, 550, 800, 1050, 1300, 1300, 1300, 1300])
      assert.strictEqual(textOf(seen), ANSWER)
      assert.deepStrictEqual(seen[0]!.event.messageStart, { role: "assistant" })
      assert.deepStrictEqual(seen[7]!.event.messageStop, { stopReason: "end_turn" })
      assert.deepStrictEqual(seen[8]!.event.metadata?.usage, { inputTokens: 8, outputTokens: 5, totalTokens: 13 })
      assert.strictEqual(seen[8]!.event.metadata?.metrics?.latencyMs, 1300)
      const a = yield* lastAttempt
      assert.strictEqual(a.operation, "converseStream")
      assert.strictEqual(a.outcome, "success")
      assert.strictEqual(a.end, 1300)
      assert.strictEqual(a.outputTokens, 5)
    }).pipe(withSim({ models: { m: { latency: 5000, firstToken: 300, tokensPerSecond: 4, answer: ANSWER, inputTokens: 8 } } })))

  it.effect("without firstToken the stream starts at the latency; without tokensPerSecond all deltas arrive at once", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust(399)
      assert.strictEqual(seen.length, 0)
      yield* TestClock.adjust(1)
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(fiber)))
      assert.strictEqual(seen.length, 9)
      assert.isTrue(seen.every((s) => s.at === 400))
    }).pipe(withSim({ models: { m: { latency: 400, answer: ANSWER } } })))
})

describe("requireMessageStop", () => {
  it.effect("fails a stream that ends before messageStop with Incomplete(no-message-stop)", () =>
    Effect.gen(function*() {
      const cut = yield* Effect.flip(Stream.runCollect(requireMessageStop(
        Stream.make<Array<ConverseStreamOutput>>({ messageStart: { role: "assistant" } }, {
          contentBlockDelta: { contentBlockIndex: 0, delta: { text: "hi" } }
        }),
        "m"
      )))
      assert.deepStrictEqual(cut.reason, new BedrockError.Incomplete({ detail: "no-message-stop" }))
      assert.strictEqual(cut.modelId, "m")
      const complete = yield* Stream.runCollect(requireMessageStop(
        Stream.make<Array<ConverseStreamOutput>>({ messageStart: { role: "assistant" } }, { messageStop: { stopReason: "end_turn" } })
      ))
      assert.strictEqual(complete.length, 2)
    }))
})

describe("maxTokens", () => {
  it.effect("Converse: truncates to maxTokens with stopReason max_tokens", () =>
    Effect.gen(function*() {
      const out = yield* converse("m", { inferenceConfig: { maxTokens: 3 } })
      assert.strictEqual(out.output?.message?.content?.[0]?.text, "one two three")
      assert.strictEqual(out.stopReason, "max_tokens")
      assert.strictEqual(out.usage?.outputTokens, 3)
      const exact = yield* converse("m", { inferenceConfig: { maxTokens: 5 } })
      assert.strictEqual(exact.stopReason, "end_turn")
      assert.strictEqual(exact.usage?.outputTokens, 5)
    }).pipe(withSim({ models: { m: { answer: ANSWER } } })))

  it.effect("ConverseStream: maxTokens deltas, then messageStop max_tokens", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m", { inferenceConfig: { maxTokens: 2 } }))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(fiber)))
      assert.strictEqual(textOf(seen), "one two")
      const stop = seen.find((s) => s.event.messageStop !== undefined)
      assert.strictEqual(stop?.event.messageStop?.stopReason, "max_tokens")
      assert.strictEqual(seen.at(-1)?.event.metadata?.usage?.outputTokens, 2)
    }).pipe(withSim({ models: { m: { answer: ANSWER, tokensPerSecond: 100 } } })))

  it.effect("the script's maxOutputTokens applies when the request sets none", () =>
    Effect.gen(function*() {
      const out = yield* converse("m")
      assert.strictEqual(out.output?.message?.content?.[0]?.text, "one")
      assert.strictEqual(out.stopReason, "max_tokens")
    }).pipe(withSim({ models: { m: { answer: ANSWER, maxOutputTokens: 1 } } })))
})

// --- quotas -------------------------------------------------------------------------------------

const isThrottle = (kind: BedrockError.ThrottleKind) => (exit: Exit.Exit<unknown, BedrockError.BedrockError>) =>
  Exit.isFailure(exit) && (() => {
    const e = errorOf(exit)
    return e.reason._tag === "Throttled" && e.reason.kind === kind
  })()

describe("RPM", () => {
  it.effect("rpm 3: of 10 concurrent calls 3 are admitted, 7 throttled (requests); a minute later 3 more", () =>
    Effect.gen(function*() {
      const batch = Effect.forEach(Array.from({ length: 10 }), () => Effect.exit(converse("m")), { concurrency: "unbounded" })
      const first = yield* batch.pipe(Effect.forkChild)
      yield* TestClock.adjust(100)
      const exits = yield* Fiber.join(first)
      assert.strictEqual(exits.filter(Exit.isSuccess).length, 3)
      assert.strictEqual(exits.filter(isThrottle("requests")).length, 7)
      const throttled = errorOf(exits.find(Exit.isFailure)!)
      assert.instanceOf(throttled.cause, ThrottlingException)
      assert.strictEqual(throttled.httpStatusCode, 429)
      assert.strictEqual(throttled.modelId, "m")
      assert.include(throttled.message, "Too many requests, please wait before trying again.")
      const log = yield* attempts
      assert.strictEqual(log.filter((a) => a.outcome === "success").length, 3)
      assert.strictEqual(log.filter((a) => a.outcome === "ThrottlingException").length, 7)
      // throttles answer at once
      assert.isTrue(log.filter((a) => a.outcome === "ThrottlingException").every((a) => a.end === 0))

      // still inside the minute: everything is throttled
      yield* TestClock.adjust("59 seconds")
      assert.isTrue(isThrottle("requests")(yield* Effect.exit(converse("m"))))

      yield* TestClock.adjust("1 minute")
      const second = yield* batch.pipe(Effect.forkChild)
      yield* TestClock.adjust(100)
      const again = yield* Fiber.join(second)
      assert.strictEqual(again.filter(Exit.isSuccess).length, 3)
      assert.strictEqual(again.filter(isThrottle("requests")).length, 7)
    }).pipe(withSim({ models: { m: { latency: 100, rpm: 3 } } })))

  it.effect("the minute slides: a request leaves the window exactly 60 s after it started", () =>
    Effect.gen(function*() {
      const ok = (exit: Exit.Exit<unknown, unknown>) => Exit.isSuccess(exit)
      assert.isTrue(ok(yield* Effect.exit(converse("m")))) // t = 0
      yield* TestClock.adjust("30 seconds")
      assert.isTrue(ok(yield* Effect.exit(converse("m")))) // t = 30 s
      assert.isTrue(isThrottle("requests")(yield* Effect.exit(converse("m"))))
      yield* TestClock.adjust(29_999) // t = 59.999 s
      assert.isTrue(isThrottle("requests")(yield* Effect.exit(converse("m"))))
      yield* TestClock.adjust(1) // t = 60 s: the first request has left
      assert.isTrue(ok(yield* Effect.exit(converse("m"))))
      // a fixed window would admit another one here; the sliding minute still holds t = 30 s
      assert.isTrue(isThrottle("requests")(yield* Effect.exit(converse("m"))))
      yield* TestClock.adjust("30 seconds") // t = 90 s: t = 30 s has left
      assert.isTrue(ok(yield* Effect.exit(converse("m"))))
    }).pipe(withSim({ models: { m: { rpm: 2 } } })))

  it.effect("quotas are per model", () =>
    Effect.gen(function*() {
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("a"))))
      assert.isTrue(isThrottle("requests")(yield* Effect.exit(converse("a"))))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("b"))))
    }).pipe(withSim({ models: { a: { rpm: 1 }, b: { rpm: 1 } } })))
})

describe("TPM", () => {
  it.effect("reserves input + maxTokens at the start; settling releases the unused part within the minute", () =>
    Effect.gen(function*() {
      const call = (maxTokens: number) => Effect.exit(converse("m", { inferenceConfig: { maxTokens } })).pipe(Effect.forkChild)
      // t = 0: A reserves 10 + 50 = 60 of 100
      const a = yield* call(50)
      // B would use only 10 + 3 = 13 tokens, but reserves 60: 120 > 100
      const b = yield* call(50)
      // C reserves 10 + 30 = 40: exactly 100
      const c = yield* call(30)
      yield* TestClock.adjust(0)
      assert.isTrue(isThrottle("tokens")(yield* Fiber.join(b)))
      assert.include(errorOf(yield* Fiber.join(b)).message, "Too many tokens, please wait before trying again.")
      assert.isTrue(isRunning(a) && isRunning(c))
      // nothing fits until A and C settle
      assert.isTrue(isThrottle("tokens")(yield* Effect.exit(converse("m", { inferenceConfig: { maxTokens: 1 } }))))
      yield* TestClock.adjust(1000)
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(a)))
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(c)))
      // t = 1 s: A and C settled to 13 each (26); D reserves 60 → 86, admitted only thanks to the settle
      const d = yield* call(50)
      // E reserves 10 + 20 = 30 → 116: throttled
      const e = yield* call(20)
      yield* TestClock.adjust(0)
      assert.isTrue(isThrottle("tokens")(yield* Fiber.join(e)))
      yield* TestClock.adjust(1000)
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(d)))
      // t = 2 s: A, C, D hold 39; F reserves 10 + 51 = 61 → 100
      const f = yield* call(51)
      yield* TestClock.adjust(1000)
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(f)))
      // the minute since A and C has passed at t = 60 s: their 26 tokens leave, D's and F's 26 stay
      yield* TestClock.setTime(60_000)
      const g = yield* call(64) // 26 + 74 = 100
      yield* TestClock.adjust(1000)
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(g)))
      const outcomes = (yield* attempts).map((x) => x.outcome)
      assert.deepStrictEqual(outcomes, [
        "success",
        "ThrottlingException",
        "success",
        "ThrottlingException",
        "success",
        "ThrottlingException",
        "success",
        "success"
      ])
    }).pipe(withSim({ models: { m: { tpm: 100, inputTokens: 10, answer: "a b c", latency: 1000 } } })))

  it.effect("without maxTokens the reservation is the script's maxOutputTokens", () =>
    Effect.gen(function*() {
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("m")))) // reserves 10 + 40, settles 11
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("m")))) // 11 + 50 = 61
      assert.isTrue(isThrottle("tokens")(yield* Effect.exit(converse("m")))) // 22 + 50 > 70
    }).pipe(withSim({ models: { m: { tpm: 70, inputTokens: 10, maxOutputTokens: 40, answer: "a" } } })))

  it.effect("a stream settles to the tokens it delivered", () =>
    Effect.gen(function*() {
      const { fiber } = yield* record(converseStream("m", { inferenceConfig: { maxTokens: 80 } }))
      yield* TestClock.adjust(0)
      // in flight: 10 + 80 reserved of 100
      assert.isTrue(isThrottle("tokens")(yield* Effect.exit(converse("m", { inferenceConfig: { maxTokens: 11 } }))))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(fiber)))
      // settled to 10 + 5
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("m", { inferenceConfig: { maxTokens: 75 } }))))
    }).pipe(withSim({ models: { m: { tpm: 100, inputTokens: 10, answer: ANSWER, latency: 0, tokensPerSecond: 10 } } })))

  it.effect("a TPM throttle does not use up an RPM slot", () =>
    Effect.gen(function*() {
      assert.isTrue(isThrottle("tokens")(yield* Effect.exit(converse("m", { inferenceConfig: { maxTokens: 1000 } }))))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("m", { inferenceConfig: { maxTokens: 10 } }))))
    }).pipe(withSim({ models: { m: { rpm: 1, tpm: 100, inputTokens: 10 } } })))

  it.effect("contextWindow: a too-long input is a context-window ValidationException", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(converse("m"))
      assert.deepStrictEqual(e.reason, new BedrockError.Validation({ kind: "context-window" }))
      assert.strictEqual(e.httpStatusCode, 400)
      assert.strictEqual((yield* lastAttempt).outcome, "ValidationException")
    }).pipe(withSim({ models: { m: { contextWindow: 5 } } })))
})

// --- faults -------------------------------------------------------------------------------------

const faultScript = (fault: unknown, extra: object = {}): SimulatorScript.ScriptInput =>
  ({ models: { m: { latency: 200, firstToken: 100, tokensPerSecond: 10, answer: ANSWER, faults: [{ do: fault }], ...extra } } }) as
    SimulatorScript.ScriptInput

const expectedReason: Record<SimulatorScript.ErrorName, BedrockError.ReasonTag> = {
  ThrottlingException: "Throttled",
  ServiceUnavailableException: "ServiceUnavailable",
  InternalServerException: "InternalServer",
  ModelNotReadyException: "ModelNotReady",
  ModelTimeoutException: "ModelTimeout",
  ModelErrorException: "ModelError",
  ValidationException: "Validation",
  AccessDeniedException: "AccessDenied",
  ResourceNotFoundException: "ResourceNotFound",
  ServiceQuotaExceededException: "ServiceQuotaExceeded"
}

describe("fault: error", () => {
  for (const operation of ["converse", "converseStream"] as const) {
    const run = operation === "converse"
      ? Effect.gen(function*() {
        const fiber = yield* Effect.exit(Effect.asVoid(converse("m"))).pipe(Effect.forkChild)
        return { fiber, seen: [] as Array<Seen> }
      })
      : record(converseStream("m"))

    it.effect(`${operation}: a throttle with retryAfter, answered after \`after\``, () =>
      Effect.gen(function*() {
        const { fiber, seen } = yield* run
        yield* TestClock.adjust(149)
        assert.isTrue(isRunning(fiber))
        yield* TestClock.adjust(1)
        const e = errorOf(yield* Fiber.join(fiber))
        assert.strictEqual(seen.length, 0)
        assert.deepStrictEqual(e.reason, new BedrockError.Throttled({ kind: "tokens", retryAfter: Duration.millis(2500) }))
        assert.strictEqual(e.httpStatusCode, 429)
        assert.strictEqual(e.requestId, "sim-1")
        assert.instanceOf(e.cause, ThrottlingException)
        const a = yield* lastAttempt
        assert.strictEqual(a.outcome, "ThrottlingException")
        assert.strictEqual(a.operation, operation)
        assert.strictEqual(a.end, 150)
      }).pipe(withSim(faultScript({
        kind: "error",
        error: "ThrottlingException",
        message: "Too many tokens, please wait before trying again.",
        retryAfter: "2.5 seconds",
        after: 150
      }))))

    it.effect(`${operation}: every scripted exception, classified as Bedrock's would be`, () =>
      Effect.gen(function*() {
        for (const name of SimulatorScript.ErrorNames) {
          const e = yield* Effect.gen(function*() {
            const { fiber } = yield* run
            yield* TestClock.adjust(0)
            return errorOf(yield* Fiber.join(fiber))
          }).pipe(withSim(faultScript({ kind: "error", error: name, originalStatusCode: 503 })))
          assert.strictEqual(e.reason._tag, expectedReason[name], name)
          assert.strictEqual(e.httpStatusCode, SimulatorScript.statusOf[name], name)
          assert.strictEqual((e.cause as Error).name, name)
          if (name === "ModelErrorException") assert.deepStrictEqual(e.reason, new BedrockError.ModelError({ originalStatusCode: 503 }))
          if (name === "ThrottlingException") assert.deepStrictEqual(e.reason, new BedrockError.Throttled({ kind: "requests" }))
        }
      }))
  }

  it.effect("requestId names the attempt that failed, also when calls overlap", () =>
    Effect.gen(function*() {
      const first = yield* Effect.flip(converse("slow")).pipe(Effect.forkChild)
      yield* TestClock.adjust(0)
      yield* Effect.forEach(Array.from({ length: 3 }), () => Effect.exit(converse("fast")))
      yield* TestClock.adjust(1000)
      const e = yield* Fiber.join(first)
      assert.strictEqual(e.requestId, "sim-1")
      assert.strictEqual((yield* attempts).length, 4)
    }).pipe(withSim({
      models: {
        slow: { faults: [{ do: { kind: "error", error: "InternalServerException", after: 1000 } }] },
        fast: {}
      }
    })))
})

describe("fault: hang", () => {
  it.effect("converse never completes until interrupted; logged interrupted", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust("1 hour")
      assert.isTrue(isRunning(fiber))
      assert.strictEqual((yield* lastAttempt).outcome, "pending")
      yield* Fiber.interrupt(fiber)
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "interrupted")
      assert.strictEqual(a.end, 3_600_000)
      assert.strictEqual(a.outputTokens, 0)
    }).pipe(withSim(faultScript({ kind: "hang" }))))

  it.effect("converseStream sends nothing until interrupted; logged interrupted", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust("1 hour")
      assert.isTrue(isRunning(fiber))
      assert.strictEqual(seen.length, 0)
      yield* Fiber.interrupt(fiber)
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "interrupted")
      assert.strictEqual(a.end, 3_600_000)
    }).pipe(withSim(faultScript({ kind: "hang" }))))

  it.effect("Effect.timeout on a hung call: TimeoutError, attempt interrupted", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.timeout("5 seconds"), Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("5 seconds")
      const e = yield* Fiber.join(fiber)
      assert.strictEqual(e._tag, "TimeoutError")
      assert.strictEqual((yield* lastAttempt).outcome, "interrupted")
      assert.strictEqual((yield* lastAttempt).end, 5000)
    }).pipe(withSim(faultScript({ kind: "hang" }))))
})

describe("fault: cut", () => {
  it.effect("converseStream: k deltas, then a reset after the response began", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust("10 seconds")
      const e = errorOf(yield* Fiber.join(fiber))
      assert.deepStrictEqual(kinds(seen), ["messageStart", "contentBlockDelta", "contentBlockDelta"])
      assert.strictEqual(textOf(seen), "one two")
      assert.deepStrictEqual(e.reason, new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }))
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "cut")
      assert.strictEqual(a.outputTokens, 2)
      assert.strictEqual(a.end, 200)
    }).pipe(withSim(faultScript({ kind: "cut", afterTokens: 2 }))))

  it.effect("converseStream: afterTokens 0 fails at the first-token time, before any event", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust(99)
      assert.isTrue(isRunning(fiber))
      yield* TestClock.adjust(1)
      assert.isFalse(isRunning(fiber))
      assert.strictEqual(errorOf(yield* Fiber.join(fiber)).reason._tag, "Network")
      assert.deepStrictEqual(kinds(seen), [])
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "cut")
      assert.strictEqual(a.end, 100)
    }).pipe(withSim(faultScript({ kind: "cut", afterTokens: 0 }))))

  it.effect("converse: the body is cut (Network, after-response) at the latency", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.exit(converse("m")).pipe(Effect.forkChild)
      yield* TestClock.adjust(199)
      assert.isTrue(isRunning(fiber))
      yield* TestClock.adjust(1)
      const e = errorOf(yield* Fiber.join(fiber))
      assert.deepStrictEqual(e.reason, new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }))
      assert.strictEqual((yield* lastAttempt).outcome, "cut")
    }).pipe(withSim(faultScript({ kind: "cut", afterTokens: 2 }))))
})

describe("fault: stall", () => {
  it.effect("converseStream: k deltas, then no event ever; interrupt → interrupted", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust("1 hour")
      assert.isTrue(isRunning(fiber))
      assert.deepStrictEqual(kinds(seen), ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta"])
      assert.deepStrictEqual(seen.map((s) => s.at), [100, 100, 200, 300])
      assert.strictEqual((yield* lastAttempt).outcome, "pending")
      yield* Fiber.interrupt(fiber)
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "interrupted")
      assert.strictEqual(a.outputTokens, 3)
    }).pipe(withSim(faultScript({ kind: "stall", afterTokens: 3 }))))

  it.effect("converse: a stall hangs the call", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust("1 hour")
      assert.isTrue(isRunning(fiber))
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* lastAttempt).outcome, "interrupted")
    }).pipe(withSim(faultScript({ kind: "stall", afterTokens: 3 }))))
})

describe("fault: streamError", () => {
  const expected: Record<SimulatorScript.StreamErrorName, { stream: BedrockError.Reason; converse: BedrockError.Reason }> = {
    throttlingException: {
      stream: new BedrockError.Throttled({ kind: "requests" }),
      converse: new BedrockError.Throttled({ kind: "requests" })
    },
    modelStreamErrorException: {
      stream: new BedrockError.ModelStreamError({ originalStatusCode: 500 }),
      converse: new BedrockError.ModelError({ originalStatusCode: 500 })
    },
    internalServerException: { stream: new BedrockError.InternalServer(), converse: new BedrockError.InternalServer() },
    serviceUnavailableException: { stream: new BedrockError.ServiceUnavailable(), converse: new BedrockError.ServiceUnavailable() },
    validationException: { stream: new BedrockError.Validation({ kind: "other" }), converse: new BedrockError.Validation({ kind: "other" }) }
  }

  for (const name of SimulatorScript.StreamErrorNames) {
    const fault = { kind: "streamError", afterTokens: 2, error: name, originalStatusCode: 500 }

    it.effect(`converseStream: ${name} fails the stream after k deltas, never as data`, () =>
      Effect.gen(function*() {
        const { fiber, seen } = yield* record(converseStream("m"))
        yield* TestClock.adjust("10 seconds")
        const e = errorOf(yield* Fiber.join(fiber))
        assert.deepStrictEqual(kinds(seen), ["messageStart", "contentBlockDelta", "contentBlockDelta"])
        assert.deepStrictEqual(e.reason, expected[name].stream)
        assert.isUndefined(e.httpStatusCode)
        assert.strictEqual((e.cause as Error).name.toLowerCase(), name.toLowerCase())
        const a = yield* lastAttempt
        assert.strictEqual(a.outcome, name)
        assert.strictEqual(a.outputTokens, 2)
        assert.strictEqual(a.end, 200)
      }).pipe(withSim(faultScript(fault))))

    it.effect(`converse: ${name} becomes the HTTP error of the same class`, () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.exit(converse("m")).pipe(Effect.forkChild)
        yield* TestClock.adjust(200)
        const e = errorOf(yield* Fiber.join(fiber))
        assert.deepStrictEqual(e.reason, expected[name].converse)
        assert.isDefined(e.httpStatusCode)
        const upper = name === "modelStreamErrorException" ? "ModelErrorException" : name.charAt(0).toUpperCase() + name.slice(1)
        assert.strictEqual((yield* lastAttempt).outcome, upper as Attempt["outcome"])
      }).pipe(withSim(faultScript(fault))))
  }

  it.effect("a scripted message reaches the classification (in-stream TPM throttle)", () =>
    Effect.gen(function*() {
      const { fiber } = yield* record(converseStream("m"))
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(errorOf(yield* Fiber.join(fiber)).reason, new BedrockError.Throttled({ kind: "tokens" }))
    }).pipe(withSim(faultScript({
      kind: "streamError",
      afterTokens: 0,
      error: "throttlingException",
      message: "Too many tokens, please wait before trying again."
    }))))
})

describe("fault: malformed, noMetadata, emptyOutput, slow", () => {
  it.effect("malformed: converseStream fails Incomplete(malformed-frame) after k deltas", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust("10 seconds")
      const e = errorOf(yield* Fiber.join(fiber))
      assert.deepStrictEqual(e.reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
      assert.strictEqual(textOf(seen), "one")
      assert.strictEqual((yield* lastAttempt).outcome, "malformed")
    }).pipe(withSim(faultScript({ kind: "malformed", afterTokens: 1 }))))

  it.effect("malformed: converse fails Incomplete(malformed-body) on a 200", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(converse("m")).pipe(Effect.forkChild)
      yield* TestClock.adjust(200)
      const err = yield* Fiber.join(e)
      assert.deepStrictEqual(err.reason, new BedrockError.Incomplete({ detail: "malformed-body" }))
      assert.strictEqual(err.httpStatusCode, 200)
      assert.strictEqual((yield* lastAttempt).outcome, "malformed")
    }).pipe(withSim(faultScript({ kind: "malformed", afterTokens: 1 }))))

  it.effect("noMetadata: the stream succeeds and ends after messageStop", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(fiber)))
      assert.strictEqual(kindOf(seen.at(-1)!.event), "messageStop")
      assert.isFalse(kinds(seen).includes("metadata"))
      assert.strictEqual(textOf(seen), ANSWER)
      assert.strictEqual((yield* lastAttempt).outcome, "success")
    }).pipe(withSim(faultScript({ kind: "noMetadata" }))))

  it.effect("noMetadata: converse is unaffected", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust(200)
      const out = yield* Fiber.join(fiber)
      assert.strictEqual(out.output?.message?.content?.[0]?.text, ANSWER)
    }).pipe(withSim(faultScript({ kind: "noMetadata" }))))

  it.effect("emptyOutput: the stream ends after messageStart and fails Incomplete(no-message-stop)", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust("10 seconds")
      const e = errorOf(yield* Fiber.join(fiber))
      assert.deepStrictEqual(e.reason, new BedrockError.Incomplete({ detail: "no-message-stop" }))
      assert.deepStrictEqual(kinds(seen), ["messageStart"])
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "emptyOutput")
      assert.strictEqual(a.outputTokens, 0)
    }).pipe(withSim(faultScript({ kind: "emptyOutput" }))))

  it.effect("emptyOutput: converse fails Incomplete(missing-output)", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.flip(converse("m")).pipe(Effect.forkChild)
      yield* TestClock.adjust(200)
      const e = yield* Fiber.join(fiber)
      assert.deepStrictEqual(e.reason, new BedrockError.Incomplete({ detail: "missing-output" }))
      assert.strictEqual(e.modelId, "m")
      assert.strictEqual((yield* lastAttempt).outcome, "emptyOutput")
    }).pipe(withSim(faultScript({ kind: "emptyOutput" }))))

  it.effect("slow: converse takes the fault's latency", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust(4999)
      assert.isTrue(isRunning(fiber))
      yield* TestClock.adjust(1)
      assert.isFalse(isRunning(fiber))
      assert.strictEqual((yield* lastAttempt).end, 5000)
    }).pipe(withSim(faultScript({ kind: "slow", latency: "5 seconds" }))))

  it.effect("slow: the stream's first token comes at the fault's latency, or its firstToken", () =>
    Effect.gen(function*() {
      const a = yield* record(converseStream("m"))
      yield* TestClock.adjust("1 minute")
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(a.fiber)))
      assert.strictEqual(a.seen[0]!.at, 5000)
    }).pipe(withSim(faultScript({ kind: "slow", latency: "5 seconds" }))))

  it.effect("slow: firstToken only", () =>
    Effect.gen(function*() {
      const s = yield* record(converseStream("m"))
      const c = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(s.seen[0]!.at, 3000)
      assert.isFalse(isRunning(c))
      const log = yield* attempts
      assert.strictEqual(log[1]!.end, 200)
    }).pipe(withSim(faultScript({ kind: "slow", firstToken: 3000 }))))
})

// --- when ---------------------------------------------------------------------------------------

const failing = (when: object): SimulatorScript.ScriptInput =>
  ({ models: { m: { faults: [{ when, do: { kind: "error", error: "InternalServerException" } }] }, other: {} } }) as
    SimulatorScript.ScriptInput

/** Runs n sequential Converse calls and reports which (1-based) failed. */
const failedCalls = (n: number, modelId = "m") =>
  Effect.gen(function*() {
    const failed: Array<number> = []
    for (let i = 1; i <= n; i++) {
      const exit = yield* Effect.exit(converse(modelId))
      if (Exit.isFailure(exit)) {
        assert.strictEqual(errorOf(exit).reason._tag, "InternalServer")
        failed.push(i)
      }
    }
    return failed
  })

describe("when", () => {
  it.effect("calls: a number", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failedCalls(5), [2])
    }).pipe(withSim(failing({ calls: 2 }))))

  it.effect("calls: an array", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failedCalls(6), [1, 3, 6])
    }).pipe(withSim(failing({ calls: [1, 3, 6] }))))

  it.effect("calls: a closed range and an open one", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failedCalls(6), [2, 3, 4])
    }).pipe(withSim(failing({ calls: { from: 2, to: 4 } }))))

  it.effect("calls: an open range", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failedCalls(6), [4, 5, 6])
    }).pipe(withSim(failing({ calls: { from: 4 } }))))

  it.effect("calls count per model, streams and Converse together", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failedCalls(3, "other"), [])
      const stream = yield* Effect.exit(Stream.runDrain(converseStream("m")))
      assert.isTrue(Exit.isSuccess(stream)) // call 1 of m
      assert.deepStrictEqual(yield* failedCalls(2), [1]) // call 2 of m
    }).pipe(withSim(failing({ calls: 2 }))))

  it.effect("from/to: a window counted from when the layer was built, [from, to)", () =>
    Effect.gen(function*() {
      // the layer is built an hour into the test: the window is 1h+10s .. 1h+20s of TestClock time
      yield* TestClock.adjust("1 hour")
      yield* Effect.gen(function*() {
        const at = (ms: number) =>
          Effect.gen(function*() {
            yield* TestClock.setTime(3_600_000 + ms)
            return Exit.isSuccess(yield* Effect.exit(converse("m")))
          })
        assert.isTrue(yield* at(0))
        assert.isTrue(yield* at(9_999))
        assert.isFalse(yield* at(10_000))
        assert.isFalse(yield* at(19_999))
        assert.isTrue(yield* at(20_000))
        assert.isTrue(yield* at(120_000))
        assert.deepStrictEqual((yield* attempts).map((a) => a.start), [0, 9_999, 10_000, 19_999, 20_000, 120_000])
      }).pipe(withSim(failing({ from: "10 seconds", to: "20 seconds" })))
    }))

  it.effect("from only / to only", () =>
    Effect.gen(function*() {
      const fromOnly = Effect.gen(function*() {
        const before = yield* Effect.exit(converse("m"))
        yield* TestClock.adjust(5000)
        const after = yield* Effect.exit(converse("m"))
        return [Exit.isSuccess(before), Exit.isSuccess(after)]
      })
      assert.deepStrictEqual(yield* fromOnly.pipe(withSim(failing({ from: 5000 }))), [true, false])
      assert.deepStrictEqual(yield* fromOnly.pipe(withSim(failing({ to: 5000 }))), [false, true])
    }))

  it.effect("all conditions must hold: calls and a time window", () =>
    Effect.gen(function*() {
      const first = yield* failedCalls(3) // calls 1..3 at t = 0: outside the window
      yield* TestClock.adjust("1 minute")
      const second = yield* failedCalls(3) // calls 4..6 inside the window: only even calls fail
      assert.deepStrictEqual(first, [])
      assert.deepStrictEqual(second, [1, 3])
    }).pipe(withSim(failing({ calls: [2, 4, 6], from: "1 minute" }))))

  it.effect("the first matching fault decides", () =>
    Effect.gen(function*() {
      const outcomes: Array<string> = []
      for (let i = 0; i < 3; i++) {
        const exit = yield* Effect.exit(converse("m"))
        outcomes.push(Exit.isSuccess(exit) ? "ok" : errorOf(exit).reason._tag)
      }
      assert.deepStrictEqual(outcomes, ["AccessDenied", "InternalServer", "ok"])
    }).pipe(withSim({
      models: {
        m: {
          faults: [
            { when: { calls: 1 }, do: { kind: "error", error: "AccessDeniedException" } },
            { when: { calls: [1, 2] }, do: { kind: "error", error: "InternalServerException" } }
          ]
        }
      }
    })))

  it.effect("probability: about p of the calls fail, reproducibly with the seed", () =>
    Effect.gen(function*() {
      const pattern = (seed: string) => failedCalls(1000).pipe(withSim({ ...failing({ probability: 0.3 }), seed }))
      const a = yield* pattern("p-1")
      const b = yield* pattern("p-1")
      const c = yield* pattern("p-2")
      assert.isAbove(a.length, 240)
      assert.isBelow(a.length, 360)
      assert.deepStrictEqual(a, b)
      assert.notDeepEqual(a, c)
    }))

  it.effect("probability 0 never fires, 1 always does", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failedCalls(50).pipe(withSim(failing({ probability: 0 }))), [])
      assert.strictEqual((yield* failedCalls(50).pipe(withSim(failing({ probability: 1 })))).length, 50)
    }))

  it.effect("without a script seed, Random.withSeed around the layer makes it reproducible", () =>
    Effect.gen(function*() {
      const pattern = (seed: string) =>
        failedCalls(200).pipe(withSim(failing({ probability: 0.5 })), Random.withSeed(seed))
      assert.deepStrictEqual(yield* pattern("x"), yield* pattern("x"))
      assert.notDeepEqual(yield* pattern("x"), yield* pattern("y"))
    }))
})

// --- determinism ----------------------------------------------------------------------------------

describe("determinism", () => {
  const workloadScript = (seed: string | undefined): SimulatorScript.ScriptInput => ({
    ...(seed !== undefined ? { seed } : {}),
    models: {
      a: {
        latency: { uniform: [50, 500] },
        firstToken: { normal: { mean: 100, stddev: 30 } },
        tokensPerSecond: 20,
        rpm: 40,
        faults: [
          { when: { probability: 0.15 }, do: { kind: "error", error: "ServiceUnavailableException" } },
          { when: { probability: 0.1 }, do: { kind: "cut", afterTokens: 2 } },
          { when: { probability: 0.1 }, do: { kind: "slow", latency: { uniform: [1000, 2000] } } }
        ]
      },
      b: { latency: { uniform: [10, 90] }, faults: [{ when: { probability: 0.5, from: 1000 }, do: { kind: "streamError", afterTokens: 1, error: "internalServerException" } }] }
    }
  })

  const workload = Effect.gen(function*() {
    const calls = Array.from({ length: 60 }, (_, i) =>
      Effect.gen(function*() {
        yield* Effect.sleep(i * 37)
        const modelId = i % 3 === 0 ? "b" : "a"
        return i % 2 === 0 ? yield* Effect.exit(converse(modelId)) : yield* Effect.exit(Stream.runDrain(converseStream(modelId)))
      }))
    const fiber = yield* Effect.all(calls, { concurrency: "unbounded" }).pipe(Effect.forkChild)
    yield* TestClock.adjust("5 minutes")
    yield* Fiber.join(fiber)
    return yield* attempts
  })

  // each run on a fresh TestClock, so that times relative to the layer are computed from the same origin
  const run = (seed: string) => workload.pipe(withSim(workloadScript(seed)), Effect.provide(TestClock.layer()))

  it.effect("the same seed gives the identical attempt log; another seed a different one", () =>
    Effect.gen(function*() {
      const first = yield* run("s1")
      const second = yield* run("s1")
      const other = yield* run("s2")
      assert.strictEqual(first.length, 60)
      assert.deepStrictEqual(second, first)
      assert.notDeepEqual(other, first)
      // the workload exercises what it claims to
      const outcomes = new Set(first.map((a) => a.outcome))
      assert.isTrue(outcomes.has("success"))
      assert.isTrue(outcomes.has("ServiceUnavailableException"))
      assert.isFalse(outcomes.has("pending"))
    }))

  it.effect("a one-minute quota scenario under TestClock runs in (real) milliseconds", () =>
    Effect.gen(function*() {
      const wallStart = Date.now()
      // 2 calls a second for 5 minutes against rpm 60
      const calls = Array.from({ length: 600 }, (_, i) =>
        Effect.andThen(Effect.sleep(i * 500), Effect.exit(converse("m"))))
      const fiber = yield* Effect.all(calls, { concurrency: "unbounded" }).pipe(Effect.forkChild)
      yield* TestClock.adjust("6 minutes")
      const exits = yield* Fiber.join(fiber)
      const admitted = exits.map(Exit.isSuccess)
      assert.strictEqual(admitted.filter(Boolean).length, 300)
      // each minute: the first 30 s admitted (60 calls), the next 30 s throttled
      assert.isTrue(admitted.slice(0, 60).every(Boolean))
      assert.isTrue(admitted.slice(60, 120).every((x) => !x))
      assert.isTrue(admitted.slice(120, 180).every(Boolean))
      // 6 virtual minutes: real sleeps would take that long; a loaded machine takes well under a minute
      assert.isBelow(Date.now() - wallStart, 60_000)
    }).pipe(withSim({ models: { m: { rpm: 60, latency: 100 } } })))
})

// --- consumers that stop early ------------------------------------------------------------------

describe("early stop", () => {
  it.effect("Stream.take(2) on a slow stream: logged interrupted with what it delivered, not consumed further", () =>
    Effect.gen(function*() {
      const fiber = yield* converseStream("m").pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      yield* TestClock.adjust(100)
      const events = yield* Fiber.join(fiber)
      assert.deepStrictEqual(events.map(kindOf), ["messageStart", "contentBlockDelta"])
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "interrupted")
      assert.strictEqual(a.outputTokens, 1)
      assert.strictEqual(a.end, 100)
      yield* TestClock.adjust("1 minute")
      const after = yield* lastAttempt
      assert.strictEqual(after.outputTokens, 1)
      assert.strictEqual(after.outcome, "interrupted")
      assert.strictEqual(after.end, 100)
    }).pipe(withSim({ models: { m: { firstToken: 100, tokensPerSecond: 1, answer: ANSWER } } })))

  it.effect("Stream.take(3): two deltas delivered", () =>
    Effect.gen(function*() {
      const fiber = yield* converseStream("m").pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* TestClock.adjust(1100)
      assert.strictEqual((yield* Fiber.join(fiber)).length, 3)
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "interrupted")
      assert.strictEqual(a.outputTokens, 2)
      assert.strictEqual(a.end, 1100)
    }).pipe(withSim({ models: { m: { firstToken: 100, tokensPerSecond: 1, answer: ANSWER } } })))

  it.effect("interrupting a stream mid-way logs interrupted with the tokens delivered so far", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* record(converseStream("m"))
      yield* TestClock.adjust(2500)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(textOf(seen), "one two three")
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "interrupted")
      assert.strictEqual(a.outputTokens, 3)
      assert.strictEqual(a.end, 2500)
    }).pipe(withSim({ models: { m: { firstToken: 100, tokensPerSecond: 1, answer: ANSWER } } })))

  it.effect("interrupting a Converse call during its latency logs interrupted", () =>
    Effect.gen(function*() {
      const fiber = yield* converse("m").pipe(Effect.forkChild)
      yield* TestClock.adjust(300)
      yield* Fiber.interrupt(fiber)
      const a = yield* lastAttempt
      assert.strictEqual(a.outcome, "interrupted")
      assert.strictEqual(a.end, 300)
      assert.strictEqual(a.outputTokens, 0)
      yield* TestClock.adjust(1000)
      assert.strictEqual((yield* lastAttempt).outcome, "interrupted")
    }).pipe(withSim({ models: { m: { latency: 1000 } } })))
})

// --- models -------------------------------------------------------------------------------------

describe("unknown models", () => {
  it.effect("an unknown model is ResourceNotFound, for Converse and ConverseStream", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(converse("nope"))
      assert.deepStrictEqual(e.reason, new BedrockError.ResourceNotFound())
      assert.strictEqual(e.httpStatusCode, 404)
      assert.strictEqual(e.modelId, "nope")
      assert.instanceOf(e.cause, ResourceNotFoundException)
      const s = yield* Effect.flip(Stream.runDrain(converseStream("nope")))
      assert.deepStrictEqual(s.reason, new BedrockError.ResourceNotFound())
      const log = yield* attempts
      assert.deepStrictEqual(log.map((a) => [a.modelId, a.operation, a.outcome]), [
        ["nope", "converse", "ResourceNotFoundException"],
        ["nope", "converseStream", "ResourceNotFoundException"]
      ])
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("known"))))
    }).pipe(withSim({ models: { known: {} } })))

  it.effect("model ids that are Object.prototype members are unknown too", () =>
    Effect.gen(function*() {
      for (const id of ["toString", "constructor", "hasOwnProperty", "__proto__"]) {
        const e = yield* Effect.flip(converse(id))
        assert.strictEqual(e.reason._tag, "ResourceNotFound", id)
      }
    }).pipe(withSim({ models: { known: {} } })))

  it.effect("\"*\" scripts every model without a script of its own", () =>
    Effect.gen(function*() {
      const star = yield* converse("anything")
      assert.strictEqual(star.output?.message?.content?.[0]?.text, "star")
      const own = yield* converse("own")
      assert.strictEqual(own.output?.message?.content?.[0]?.text, "own")
      const events = yield* Stream.runCollect(converseStream("else"))
      assert.strictEqual(events.map((e) => e.contentBlockDelta?.delta?.text ?? "").join(""), "star")
    }).pipe(withSim({ models: { "*": { answer: "star" }, own: { answer: "own" } } })))

  it.effect("\"*\" quotas and call counts are kept per model id", () =>
    Effect.gen(function*() {
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("x"))))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(converse("y"))))
      assert.isTrue(isThrottle("requests")(yield* Effect.exit(converse("x"))))
    }).pipe(withSim({ models: { "*": { rpm: 1 } } })))

  it.effect("unknownModels \"default\": unknown models answer with the default script", () =>
    Effect.gen(function*() {
      const out = yield* converse("whatever")
      assert.strictEqual(out.output?.message?.content?.[0]?.text, "This is a simulated answer. The quick brown fox jumps over the lazy dog.")
      assert.strictEqual((yield* lastAttempt).outcome, "success")
    }).pipe(withSim({ models: {}, unknownModels: "default" })))
})

describe("attempt log", () => {
  it.effect("logLimit keeps the newest calls", () =>
    Effect.gen(function*() {
      yield* Effect.forEach(Array.from({ length: 5 }), () => converse("m"))
      const log = yield* attempts
      assert.deepStrictEqual(log.map((a) => a.id), [3, 4, 5])
    }).pipe(withSim({ models: { m: {} } }, { logLimit: 3 })))

  it.effect("logLimit 0 keeps none", () =>
    Effect.gen(function*() {
      yield* Effect.forEach(Array.from({ length: 5 }), () => converse("m"))
      assert.strictEqual((yield* attempts).length, 0)
    }).pipe(withSim({ models: { m: {} } }, { logLimit: 0 })))

  it.effect("clearAttempts forgets the log but not call counts or quota", () =>
    Effect.gen(function*() {
      const sim = yield* BedrockSimulator
      yield* converse("m")
      yield* sim.clearAttempts
      assert.strictEqual((yield* attempts).length, 0)
      const e = yield* Effect.flip(converse("m")) // call 2: the scripted fault
      assert.strictEqual(e.reason._tag, "InternalServer")
      assert.deepStrictEqual((yield* attempts).map((a) => a.id), [2])
      assert.strictEqual(sim.script.models["m"]!.rpm, 10)
    }).pipe(withSim({ models: { m: { rpm: 10, faults: [{ when: { calls: 2 }, do: { kind: "error", error: "InternalServerException" } }] } } })))

  it.effect("a malformed script fails the layer with ScriptError", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(converse("m").pipe(withSim({ models: { m: { rpm: 0 } } } as unknown as SimulatorScript.ScriptInput)))
      assert.strictEqual(e._tag, "ScriptError")
      assert.deepStrictEqual((e as SimulatorScript.ScriptError).problems.map((p) => p.path), ["models.m.rpm"])
    }))
})

// --- property: one outcome per call, RPM never exceeded ------------------------------------------

describe("property", () => {
  const STREAM_REASON: Record<SimulatorScript.StreamErrorName, BedrockError.ReasonTag> = {
    throttlingException: "Throttled",
    modelStreamErrorException: "ModelStreamError",
    internalServerException: "InternalServer",
    serviceUnavailableException: "ServiceUnavailable",
    validationException: "Validation"
  }

  const int = (min: number, max: number) => fc.integer({ min, max })
  const latencyArb = fc.oneof(
    int(0, 3000),
    fc.constantFrom("250 millis", "1 second"),
    fc.record({ uniform: fc.tuple(int(0, 2000), int(0, 2000)) }),
    fc.record({ normal: fc.record({ mean: int(0, 2000), stddev: int(0, 1000) }) })
  )
  const whenArb = fc.record({
    calls: fc.oneof(
      int(1, 12),
      fc.uniqueArray(int(1, 12), { minLength: 1, maxLength: 4 }),
      fc.record({ from: int(1, 12), to: int(1, 12) }, { requiredKeys: ["from"] })
    ),
    from: int(0, 120_000),
    to: int(0, 180_000),
    probability: fc.double({ min: 0, max: 1, noNaN: true })
  }, { requiredKeys: [] })
  const actionArb = fc.oneof(
    fc.record({
      kind: fc.constant("error"),
      error: fc.constantFrom(...SimulatorScript.ErrorNames),
      message: fc.constant("scripted"),
      after: int(0, 5000),
      retryAfter: int(0, 10_000)
    }, { requiredKeys: ["kind", "error", "message"] }),
    fc.constant({ kind: "hang" }),
    fc.record({ kind: fc.constantFrom("cut", "stall", "malformed"), afterTokens: int(0, 8) }),
    fc.record({
      kind: fc.constant("streamError"),
      afterTokens: int(0, 8),
      error: fc.constantFrom(...SimulatorScript.StreamErrorNames),
      message: fc.constant("in-stream"),
      originalStatusCode: fc.constantFrom(400, 429, 500, 503)
    }, { requiredKeys: ["kind", "afterTokens", "error", "message"] }),
    fc.constant({ kind: "noMetadata" }),
    fc.constant({ kind: "emptyOutput" }),
    fc.record({ kind: fc.constant("slow"), latency: latencyArb, firstToken: latencyArb }, { requiredKeys: ["kind"] })
  )
  const scriptArb = fc.record({
    seed: fc.oneof(fc.string(), fc.integer()),
    models: fc.record({
      m: fc.record({
        latency: latencyArb,
        firstToken: latencyArb,
        tokensPerSecond: fc.double({ min: 0.5, max: 50, noNaN: true }),
        answer: fc.array(fc.constantFrom("alpha", "beta", "gamma", "delta"), { minLength: 1, maxLength: 10 }).map((w) => w.join(" ")),
        rpm: int(1, 5),
        tpm: int(20, 400),
        faults: fc.array(fc.record({ when: whenArb, do: actionArb }, { requiredKeys: ["do"] }), { maxLength: 4 })
      }, { requiredKeys: ["rpm"] })
    })
  })
  interface Call {
    readonly gap: number
    readonly op: "converse" | "stream"
    readonly maxTokens: number | undefined
    readonly cancelAfter: number | undefined
  }
  const callsArb: fc.Arbitrary<Array<Call>> = fc.array(
    fc.record({
      gap: int(1, 25_000),
      op: fc.constantFrom("converse" as const, "stream" as const),
      maxTokens: fc.option(int(1, 40), { nil: undefined }),
      cancelAfter: fc.option(int(0, 8000), { nil: undefined })
    }),
    { minLength: 1, maxLength: 20 }
  )

  interface CallResult {
    sawMessageStart: boolean
    /** undefined: still running when everything was interrupted; None: cancelled by its own timeout */
    result: Option.Option<Exit.Exit<void, BedrockError.BedrockError>> | undefined
  }

  const runScenario = (script: SimulatorScript.ScriptInput, calls: ReadonlyArray<Call>) =>
    Effect.gen(function*() {
      const results: Array<CallResult> = calls.map(() => ({ sawMessageStart: false, result: undefined }))
      const fibers: Array<Fiber.Fiber<unknown>> = []
      const starts: Array<number> = []
      let t = 0
      for (const [i, c] of calls.entries()) {
        t += c.gap
        starts.push(t)
        const extra = c.maxTokens === undefined ? {} : { inferenceConfig: { maxTokens: c.maxTokens } }
        const call: Effect.Effect<void, BedrockError.BedrockError, BedrockRuntime> = c.op === "converse"
          ? Effect.asVoid(converse("m", extra))
          : Stream.runForEach(converseStream("m", extra), (ev) =>
            Effect.sync(() => {
              if (ev.messageStart !== undefined) results[i]!.sawMessageStart = true
            }))
        const bounded = c.cancelAfter === undefined
          ? Effect.map(Effect.exit(call), Option.some)
          : Effect.timeoutOption(Effect.exit(call), c.cancelAfter)
        fibers.push(
          yield* Effect.sleep(t).pipe(
            Effect.andThen(bounded),
            Effect.tap((r) => Effect.sync(() => (results[i]!.result = r))),
            Effect.forkChild
          )
        )
      }
      yield* TestClock.adjust(t + 3_600_000)
      yield* Fiber.interruptAll(fibers)
      return { log: yield* attempts, results, starts }
    }).pipe(withSim(script), Effect.provide(TestClock.layer()))

  it("any script and seed: every call ends in exactly one outcome; admitted calls per sliding minute never exceed rpm", async () => {
    let throttledSeen = 0
    let maybeSeen = 0
    await fc.assert(
      fc.asyncProperty(scriptArb, callsArb, async (script, calls) => {
        const { log, results, starts } = await Effect.runPromise(runScenario(script as SimulatorScript.ScriptInput, calls))
        const rpm = script.models.m.rpm
        // one attempt per call, in call order
        assert.strictEqual(log.length, calls.length)
        const admitted: Array<"yes" | "no" | "maybe"> = []
        for (const [i, a] of log.entries()) {
          const { result, sawMessageStart } = results[i]!
          assert.strictEqual(a.id, i + 1)
          assert.strictEqual(a.operation, calls[i]!.op === "converse" ? "converse" : "converseStream")
          assert.strictEqual(a.start, starts[i])
          assert.notStrictEqual(a.outcome, "pending")
          assert.isDefined(a.end)
          assert.isAtLeast(a.end!, a.start)
          // the log agrees with what the caller saw
          if (result === undefined || Option.isNone(result)) {
            assert.strictEqual(a.outcome, "interrupted", `call ${i + 1} was interrupted`)
          } else if (Exit.isSuccess(result.value)) {
            assert.strictEqual(a.outcome, "success")
          } else {
            const e = errorOf(result.value)
            assert.include(BedrockError.reasonTags, e.reason._tag)
            const o = a.outcome
            if ((SimulatorScript.ErrorNames as ReadonlyArray<string>).includes(o)) {
              assert.strictEqual(e.reason._tag, expectedReason[o as SimulatorScript.ErrorName])
            } else if ((SimulatorScript.StreamErrorNames as ReadonlyArray<string>).includes(o)) {
              assert.strictEqual(e.reason._tag, STREAM_REASON[o as SimulatorScript.StreamErrorName])
            } else if (o === "cut") {
              assert.deepStrictEqual(e.reason, new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }))
            } else {
              assert.include(["malformed", "emptyOutput"], o)
              assert.strictEqual(e.reason._tag, "Incomplete")
            }
          }
          // was it admitted against the quota?
          const message = result !== undefined && Option.isSome(result) && Exit.isFailure(result.value) ? errorOf(result.value).message : ""
          if (a.outcome === "interrupted") {
            admitted.push(a.outputTokens > 0 || sawMessageStart ? "yes" : "maybe")
          } else if (a.outcome === "success" || !(SimulatorScript.ErrorNames as ReadonlyArray<string>).includes(a.outcome)) {
            admitted.push("yes")
          } else if (message.includes("in-stream")) {
            admitted.push("yes") // a Converse call that failed with a scripted in-stream error was admitted
          } else {
            assert.isTrue(message.includes("scripted") || message.includes("Too many"), message)
            admitted.push("no")
          }
        }
        const inWindow = (end: number, inclusive: boolean, which: ReadonlyArray<string>) =>
          log.filter((b, j) =>
            which.includes(admitted[j]!) && b.start > end - 60_000 && (inclusive ? b.start <= end : b.start < end)
          ).length
        for (const [i, a] of log.entries()) {
          if (admitted[i] === "yes") {
            assert.isAtMost(inWindow(a.start, true, ["yes"]), rpm, `admitted in the minute before ${a.start}`)
          }
          const quota = result(i)
          if (quota === "requests") {
            throttledSeen++
            // throttled for requests: the minute really was full
            assert.isAtLeast(inWindow(a.start, false, ["yes", "maybe"]), rpm, `RPM throttle at ${a.start}`)
          }
          if (admitted[i] === "maybe") maybeSeen++
        }
        function result(i: number): "requests" | "other" {
          const r = results[i]!.result
          if (r === undefined || Option.isNone(r) || Exit.isSuccess(r.value)) return "other"
          return errorOf(r.value).message.includes("Too many requests") ? "requests" : "other"
        }
      }),
      { numRuns: 250, seed: 424242 }
    )
    // the generator reaches the interesting cases
    assert.isAbove(throttledSeen, 20)
    assert.isAbove(maybeSeen, 0)
  })
})
