// BedrockMux.converseStream end to end: the real AWS SDK over loopback HTTP
// against FakeBedrock, on both transports (our keep-alive HTTP/1.1 handler and
// the SDK's default HTTP/2 one). Each test checks what the caller received and
// what the server saw: which calls were made, and that every call the mux gave
// up on was closed by the client (`"interrupted"`), with nothing left in flight.
// Real time: the limits are hundreds of milliseconds. Upper bounds on elapsed time are generous
// (a loaded machine must pass) and still tell the failure apart: a model they must not wait for
// is scripted to take far longer than the bound.
const SLACK_MS = 2_000
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime"
import { NodeHttp2Handler } from "@smithy/node-http-handler"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Stream } from "effect"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux, type MuxStreamRequest, type StreamOptions } from "../src/BedrockMux.ts"
import { BedrockRuntime, make as makeRuntime } from "../src/BedrockRuntime.ts"
import type * as MuxConfig from "../src/MuxConfig.ts"
import { MuxError, StreamInterrupted } from "../src/MuxError.ts"
import * as MuxStream from "../src/MuxStream.ts"
import type { ScriptInput } from "../src/SimulatorScript.ts"
import { FakeBedrock } from "../src/testing/index.ts"

// --- wiring -----------------------------------------------------------------------------------

type Transport = "http1" | "http2"
const transports: ReadonlyArray<Transport> = ["http1", "http2"]

const request: MuxStreamRequest = { messages: [{ role: "user", content: [{ text: "Hello there, model" }] }] }

/** Two models: the primary (tier 0) and its fallback (tier 1). */
const pool: MuxConfig.Input = {
  models: [{ modelId: "primary" }, { modelId: "fallback", isFallback: true }]
}

// distinct words per model: any delta tells which model wrote it
const PRIMARY = "p1 p2 p3 p4 p5 p6"
const FALLBACK = "f1 f2 f3"

/** The SDK's own default client (HTTP/2, one session per call), SDK retries off: the mux owns retries. */
const layerH2Runtime = Layer.unwrap(Effect.map(FakeBedrock.FakeBedrock, (fake) =>
  Layer.effect(
    BedrockRuntime,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() =>
          new BedrockRuntimeClient({
            region: "us-east-1",
            endpoint: fake.url,
            credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
            maxAttempts: 1
          })
        ),
        (client) => Effect.sync(() => client.destroy())
      ),
      (client) => {
        assert.instanceOf(client.config.requestHandler, NodeHttp2Handler)
        return makeRuntime(client)
      }
    )
  )))

/** The mux over a fake running `script`; the fake is exposed to the test. */
const muxOver = (transport: Transport, script: ScriptInput, config: MuxConfig.Input = pool) =>
  BedrockMux.layer(config).pipe(
    Layer.provideMerge(
      transport === "http1"
        ? FakeBedrock.layerRuntime(script)
        : layerH2Runtime.pipe(Layer.provideMerge(FakeBedrock.layer(script)))
    )
  )

const fakeService = FakeBedrock.FakeBedrock

/** Runs the mux's stream to its end, keeping every event and the time it took. */
const drain = (options: StreamOptions = {}, take?: number) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const events: Array<MuxStream.Event> = []
    const started = performance.now()
    const stream = mux.converseStream(request, options)
    const exit = yield* (take === undefined ? stream : Stream.take(stream, take)).pipe(
      Stream.runForEach((ev) => Effect.sync(() => events.push(ev))),
      Effect.exit
    )
    return { events, exit, elapsed: performance.now() - started }
  })

const deltas = (events: ReadonlyArray<MuxStream.Event>): Array<string> =>
  events.flatMap((ev) => ev.contentBlockDelta?.delta?.text ?? [])

/** The text after the last reset, as `MuxStream.collect` would return it. */
const answerText = (events: ReadonlyArray<MuxStream.Event>): string => {
  const i = events.findLastIndex(MuxStream.isReset)
  return deltas(events.slice(i + 1)).join("")
}

const routingOf = (events: ReadonlyArray<MuxStream.Event>): MuxStream.StreamRouting => {
  const last = events[events.length - 1]
  assert.isTrue(last !== undefined && MuxStream.isRouting(last), "the last event is { routing }")
  // and it is the only one
  assert.strictEqual(events.filter(MuxStream.isRouting).length, 1)
  return (last as MuxStream.RoutingEvent).routing
}

/** Fails the test unless the stream succeeded. */
const succeeded = (exit: Exit.Exit<void, MuxError>): void => {
  if (Exit.isFailure(exit)) assert.fail(`expected a success, got ${Cause.pretty(exit.cause)}`)
}

/** The one typed MuxError of a failed stream. */
const muxErrorOf = (exit: Exit.Exit<void, MuxError>): MuxError => {
  assert.isTrue(Exit.isFailure(exit), "expected the stream to fail")
  const cause = (exit as Exit.Failure<void, MuxError>).cause
  const error = Cause.findErrorOption(cause)
  assert.isTrue(error._tag === "Some", `expected a typed failure, got ${Cause.pretty(cause)}`)
  const e = (error as { readonly value: MuxError }).value
  assert.instanceOf(e, MuxError)
  return e
}

const interruptedReason = (exit: Exit.Exit<void, MuxError>): StreamInterrupted => {
  const e = muxErrorOf(exit)
  assert.instanceOf(e.reason, StreamInterrupted, `expected StreamInterrupted, got ${e.reason._tag}: ${e.message}`)
  return e.reason as StreamInterrupted
}

/**
 * Never two models' tokens without a reset between them: after a reset a new
 * answer may begin; otherwise every delta comes from the same model.
 */
const assertNoSplice = (events: ReadonlyArray<MuxStream.Event>): void => {
  let model: string | undefined
  for (const ev of events) {
    if (MuxStream.isReset(ev)) model = undefined
    const text = ev.contentBlockDelta?.delta?.text
    if (text === undefined) continue
    const from = text.trim()[0]!
    if (model !== undefined) assert.strictEqual(from, model, "tokens of two models spliced without a reset")
    model = from
  }
}

/** The server has nothing in flight: every call it was still serving was closed by the client. */
const settled = Effect.gen(function*() {
  const fake = yield* fakeService
  assert.isTrue(yield* Effect.promise(() => fake.waitForIdle(5_000)), "a request was left in flight")
  assert.strictEqual(fake.inFlight(), 0)
  return fake.attempts()
})

const outcomes = (attempts: ReadonlyArray<FakeBedrock.Attempt>) => attempts.map((a) => [a.modelId, a.outcome])

const routed = (routing: MuxStream.StreamRouting) =>
  routing.attempts.map((a) => [a.modelId, a.outcome, a.reason, a.decision])

/** The estimate the mux makes of delivered text: one token per four characters. */
const estimatedOutput = (text: string) => Math.ceil(text.length / 4)

// --- the cases, on each transport ---------------------------------------------------------------

describe.each(transports)("converseStream over FakeBedrock (%s)", (transport) => {
  const fallback = { answer: FALLBACK, firstToken: 20 }

  // 1. cuts ---------------------------------------------------------------------------------------

  it.live("a cut before the first token fails over: the fallback's whole answer", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* drain()
      succeeded(exit)
      assert.strictEqual(answerText(events), FALLBACK)
      assert.deepStrictEqual(deltas(events), ["f1", " f2", " f3"])
      assert.isFalse(events.some(MuxStream.isReset), "a failover before content is invisible")
      const routing = routingOf(events)
      assert.strictEqual(routing.modelId, "fallback")
      assert.isTrue(routing.fallbackUsed)
      assert.strictEqual(routing.restarts, 0)
      assert.strictEqual(routing.attempts.length, 2)
      const [first, second] = routing.attempts
      // a reset after the response head: HTTP/1.1 says ECONNRESET, HTTP/2 RST_STREAM (or, silently, no messageStop)
      assert.deepStrictEqual([first!.modelId, first!.outcome, first!.decision], ["primary", "failure", "failover"])
      assert.include(["Network", "Incomplete"], first!.reason)
      assert.deepStrictEqual([second!.modelId, second!.outcome], ["fallback", "success"])
      const seen = yield* settled
      assert.deepStrictEqual(
        seen.map((a) => [a.modelId, a.outcome, a.outputTokens]),
        [["primary", "cut", 0], ["fallback", "success", 3]]
      )
    }).pipe(Effect.provide(muxOver(transport, {
      models: { primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "cut", afterTokens: 0 } }] }, fallback }
    }))))

  const cutAfter2: ScriptInput = {
    models: { primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "cut", afterTokens: 2 } }] }, fallback }
  }

  it.live("a cut after 2 delivered tokens is StreamInterrupted with the partial usage, never a failover", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* drain()
      assert.deepStrictEqual(deltas(events), ["p1", " p2"])
      assert.isFalse(events.some(MuxStream.isRouting))
      const e = muxErrorOf(exit)
      const r = interruptedReason(exit)
      assert.strictEqual(r.modelId, "primary")
      assert.strictEqual(r.delivered, 2)
      assert.include(["Network", "Incomplete"], r.error.reason._tag)
      assert.strictEqual(e.last, r.error)
      assert.isTrue(r.partial.estimated)
      assert.strictEqual(r.partial.outputTokens, estimatedOutput("p1 p2"))
      assert.isAbove(r.partial.inputTokens, 0)
      assert.strictEqual(r.partial.totalTokens, r.partial.inputTokens + r.partial.outputTokens)
      assert.deepStrictEqual(e.attempts.map((a) => [a.modelId, a.outcome, a.decision]), [["primary", "failure", "stop"]])
      const seen = yield* settled
      assert.deepStrictEqual(seen.map((a) => [a.modelId, a.outcome, a.outputTokens]), [["primary", "cut", 2]])
    }).pipe(Effect.provide(muxOver(transport, cutAfter2))))

  it.live("restart: a cut after 2 tokens is a reset, then the fallback's whole answer", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* drain({ onInterrupt: "restart" })
      succeeded(exit)
      assertNoSplice(events)
      assert.deepStrictEqual(deltas(events), ["p1", " p2", "f1", " f2", " f3"])
      const resets = events.filter(MuxStream.isReset)
      assert.strictEqual(resets.length, 1)
      const reset = resets[0]!.reset
      assert.strictEqual(reset.modelId, "primary")
      assert.strictEqual(reset.discarded, 2)
      assert.include(["Network", "Incomplete"], reset.reason)
      assert.strictEqual(reset.error.reason._tag, reset.reason)
      // the reset sits between the two answers
      const at = events.findIndex(MuxStream.isReset)
      assert.deepStrictEqual(deltas(events.slice(0, at)), ["p1", " p2"])
      assert.deepStrictEqual(answerText(events), FALLBACK)
      const answer = yield* MuxStream.collect(Stream.fromIterable(events))
      assert.deepStrictEqual([answer.text, answer.resets], [FALLBACK, 1])
      const routing = routingOf(events)
      assert.strictEqual(routing.modelId, "fallback")
      assert.strictEqual(routing.restarts, 1)
      assert.deepStrictEqual(
        routing.attempts.map((a) => [a.modelId, a.outcome, a.decision]),
        [["primary", "failure", "failover"], ["fallback", "success", undefined]]
      )
      const seen = yield* settled
      assert.deepStrictEqual(
        seen.map((a) => [a.modelId, a.outcome, a.outputTokens]),
        [["primary", "cut", 2], ["fallback", "success", 3]]
      )
    }).pipe(Effect.provide(muxOver(transport, cutAfter2))))

  // 2. stalls -------------------------------------------------------------------------------------

  it.live("a stall before content fails over at the first-token limit; the stalled request is aborted", () =>
    Effect.gen(function*() {
      const { events, exit, elapsed } = yield* drain({ firstTokenTimeout: 300 })
      succeeded(exit)
      assert.strictEqual(answerText(events), FALLBACK)
      assert.isFalse(events.some(MuxStream.isReset))
      const routing = routingOf(events)
      assert.strictEqual(routing.modelId, "fallback")
      assert.deepStrictEqual(routed(routing), [
        ["primary", "interrupted", "DeadlineExceeded", "failover"],
        ["fallback", "success", undefined, undefined]
      ])
      // the stall holds forever: anything finite is the limit at work
      assert.isAtLeast(elapsed, 290)
      assert.isBelow(elapsed, 300 + SLACK_MS)
      const seen = yield* settled
      // "interrupted": the client closed the stalled call, the server did not end it
      assert.deepStrictEqual(outcomes(seen), [["primary", "interrupted"], ["fallback", "success"]])
      const primary = seen[0]!
      assert.strictEqual(primary.outputTokens, 0)
      assert.isAtLeast(primary.end! - primary.start, 250)
      assert.isBelow(primary.end! - primary.start, 300 + SLACK_MS)
    }).pipe(Effect.provide(muxOver(transport, {
      models: { primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "stall", afterTokens: 0 } }] }, fallback }
    }))))

  it.live("a stall after content is StreamInterrupted(DeadlineExceeded stall); the upstream is aborted", () =>
    Effect.gen(function*() {
      const { events, exit, elapsed } = yield* drain({ stallTimeout: 200, firstTokenTimeout: 1000 })
      assert.deepStrictEqual(deltas(events), ["p1", " p2"])
      const r = interruptedReason(exit)
      assert.strictEqual(r.modelId, "primary")
      assert.strictEqual(r.delivered, 2)
      assert.deepStrictEqual(r.error.reason, new BedrockError.DeadlineExceeded({ scope: "stall", after: Duration.millis(200) }))
      assert.strictEqual(r.partial.outputTokens, estimatedOutput("p1 p2"))
      // the stall holds forever: anything finite is the limit at work
      assert.isAtLeast(elapsed, 190)
      assert.isBelow(elapsed, 200 + SLACK_MS)
      const seen = yield* settled
      assert.deepStrictEqual(seen.map((a) => [a.modelId, a.outcome, a.outputTokens]), [["primary", "interrupted", 2]])
    }).pipe(Effect.provide(muxOver(transport, {
      models: { primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "stall", afterTokens: 2 } }] }, fallback }
    }))))

  // 3. a slow first token -------------------------------------------------------------------------

  it.live("a first token slower than the limit fails over: about firstTokenTimeout + the fallback's time", () =>
    Effect.gen(function*() {
      const { events, exit, elapsed } = yield* drain({ firstTokenTimeout: 300 })
      succeeded(exit)
      assert.strictEqual(answerText(events), FALLBACK)
      const routing = routingOf(events)
      assert.deepStrictEqual(routed(routing), [
        ["primary", "interrupted", "DeadlineExceeded", "failover"],
        ["fallback", "success", undefined, undefined]
      ])
      // 300 ms limit + 20 ms to the fallback's first token, with room for a loaded machine
      assert.isAtLeast(elapsed, 300 + 20 - 10)
      assert.isBelow(elapsed, 300 + 20 + SLACK_MS)
      assert.isBelow(elapsed, 5_000, "the primary's answer (5 s away) was not awaited")
      assert.isAtLeast(routing.timeToFirstTokenMs, 15)
      const seen = yield* settled
      assert.deepStrictEqual(outcomes(seen), [["primary", "interrupted"], ["fallback", "success"]])
      assert.isBelow(seen[0]!.end! - seen[0]!.start, 300 + SLACK_MS)
    }).pipe(Effect.provide(muxOver(transport, {
      models: { primary: { answer: PRIMARY, firstToken: 5_000 }, fallback }
    }))))

  // 4. in-stream exceptions -----------------------------------------------------------------------

  it.live("an in-stream throttlingException before content fails over to the fallback's complete answer", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* drain()
      succeeded(exit)
      assert.strictEqual(answerText(events), FALLBACK)
      assert.isFalse(events.some(MuxStream.isReset))
      const routing = routingOf(events)
      assert.deepStrictEqual(routed(routing), [
        ["primary", "failure", "Throttled", "failover"],
        ["fallback", "success", undefined, undefined]
      ])
      const seen = yield* settled
      assert.deepStrictEqual(outcomes(seen), [["primary", "throttlingException"], ["fallback", "success"]])
    }).pipe(Effect.provide(muxOver(transport, {
      models: {
        primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "streamError", afterTokens: 0, error: "throttlingException" } }] },
        fallback
      }
    }))))

  it.live("an in-stream throttlingException after content is StreamInterrupted(Throttled)", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* drain()
      assert.deepStrictEqual(deltas(events), ["p1", " p2"])
      const r = interruptedReason(exit)
      assert.strictEqual(r.delivered, 2)
      assert.strictEqual(r.error.reason._tag, "Throttled")
      assert.strictEqual(r.error.modelId, "primary")
      const seen = yield* settled
      assert.deepStrictEqual(outcomes(seen), [["primary", "throttlingException"]])
    }).pipe(Effect.provide(muxOver(transport, {
      models: {
        primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "streamError", afterTokens: 2, error: "throttlingException" } }] },
        fallback
      }
    }))))

  // 5. malformed frames ---------------------------------------------------------------------------

  it.live("a malformed first frame fails over", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* drain()
      succeeded(exit)
      assert.strictEqual(answerText(events), FALLBACK)
      assert.isFalse(events.some(MuxStream.isReset))
      const routing = routingOf(events)
      assert.strictEqual(routing.modelId, "fallback")
      assert.deepStrictEqual(routed(routing), [
        ["primary", "failure", "Incomplete", "failover"],
        ["fallback", "success", undefined, undefined]
      ])
      const seen = yield* settled
      assert.deepStrictEqual(outcomes(seen), [["primary", "malformed"], ["fallback", "success"]])
    }).pipe(Effect.provide(muxOver(transport, {
      models: { primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "malformed", afterTokens: 0 } }] }, fallback }
    }))))

  it.live("a malformed frame after content is StreamInterrupted", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* drain()
      assert.deepStrictEqual(deltas(events), ["p1", " p2"])
      const r = interruptedReason(exit)
      assert.strictEqual(r.delivered, 2)
      assert.deepStrictEqual(r.error.reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
      const seen = yield* settled
      assert.deepStrictEqual(outcomes(seen), [["primary", "malformed"]])
    }).pipe(Effect.provide(muxOver(transport, {
      models: { primary: { answer: PRIMARY, firstToken: 10, faults: [{ do: { kind: "malformed", afterTokens: 2 } }] }, fallback }
    }))))

  it.live("the request deadline ends a flowing stream: StreamInterrupted(DeadlineExceeded request), upstream aborted", () =>
    Effect.gen(function*() {
      // 20 tokens/s (a gap of 50 ms) never trips the 2 s stall limit; the 600 ms deadline comes
      // first, long before the 1.5 s answer ends
      const { events, exit, elapsed } = yield* drain({ deadline: 600, stallTimeout: 2_000 })
      const r = interruptedReason(exit)
      assert.strictEqual(r.modelId, "primary")
      assert.strictEqual(r.error.reason._tag, "DeadlineExceeded")
      assert.strictEqual((r.error.reason as BedrockError.DeadlineExceeded).scope, "request")
      assert.strictEqual(r.delivered, deltas(events).length)
      assert.isAtLeast(r.delivered, 3)
      assert.isBelow(r.delivered, 30)
      assert.isAtLeast(elapsed, 590)
      assert.isBelow(elapsed, 600 + SLACK_MS)
      const seen = yield* settled
      assert.strictEqual(seen.length, 1)
      assert.deepStrictEqual([seen[0]!.modelId, seen[0]!.outcome], ["primary", "interrupted"])
      assert.isBelow(seen[0]!.outputTokens, 30)
    }).pipe(Effect.provide(muxOver(transport, {
      models: {
        primary: { answer: Array.from({ length: 30 }, (_, i) => `d${i + 1}`).join(" "), firstToken: 10, tokensPerSecond: 20 },
        fallback
      }
    }))))

  // 6. hedging ------------------------------------------------------------------------------------

  it.live("a hedge wins: the fallback answers well before the slow primary, whose request is aborted", () =>
    Effect.gen(function*() {
      const { events, exit, elapsed } = yield* drain({ hedge: { after: 100, budget: 1 } })
      succeeded(exit)
      assertNoSplice(events)
      assert.strictEqual(answerText(events), FALLBACK)
      assert.isFalse(events.some(MuxStream.isReset))
      const routing = routingOf(events)
      assert.strictEqual(routing.modelId, "fallback")
      assert.deepStrictEqual(
        routing.attempts.map((a) => [a.modelId, a.outcome, a.decision]),
        [["primary", "interrupted", "hedge-lost"], ["fallback", "success", undefined]]
      )
      // hedged at 100 ms, first token 20 ms later; the primary's would have come at 5 s
      assert.isAtLeast(elapsed, 100)
      assert.isBelow(elapsed, 120 + SLACK_MS)
      const seen = yield* settled
      assert.deepStrictEqual(outcomes(seen), [["primary", "interrupted"], ["fallback", "success"]])
      const primary = seen[0]!
      assert.strictEqual(primary.outputTokens, 0)
      assert.isBelow(primary.end! - primary.start, 120 + SLACK_MS, "the loser was aborted before its first token")
      // the fake's clock starts before the request does: the hedge reached it no earlier than `after`
      assert.isAtLeast(seen[1]!.start, 95, "the hedge started after `after`")
    }).pipe(Effect.provide(muxOver(transport, {
      models: { primary: { answer: PRIMARY, firstToken: 5_000 }, fallback }
    }))))

  // 7. a consumer that stops reading -----------------------------------------------------------------

  it.live("a consumer that takes 3 events aborts the upstream", () =>
    Effect.gen(function*() {
      const { events, exit, elapsed } = yield* drain({}, 3)
      succeeded(exit)
      assert.strictEqual(events.length, 3)
      assert.deepStrictEqual(events[0], { messageStart: { role: "assistant" } })
      assert.deepStrictEqual(deltas(events), ["w1", " w2"])
      // the second delta comes at 210 ms; the whole answer would take 6 s
      assert.isBelow(elapsed, 210 + SLACK_MS)
      const seen = yield* settled
      assert.strictEqual(seen.length, 1)
      const primary = seen[0]!
      assert.deepStrictEqual([primary.modelId, primary.outcome], ["primary", "interrupted"])
      assert.isBelow(primary.outputTokens, 20)
      assert.isBelow(primary.end! - primary.start, 210 + SLACK_MS, "the 6 s answer was cut short")
    }).pipe(Effect.provide(muxOver(transport, {
      models: {
        primary: {
          answer: Array.from({ length: 30 }, (_, i) => `w${i + 1}`).join(" "),
          firstToken: 10,
          tokensPerSecond: 5
        },
        fallback
      }
    }))))

  // 8. usage --------------------------------------------------------------------------------------

  it.live("a normal stream reports the model's usage; without metadata the usage is estimated", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService
      const normal = yield* drain()
      succeeded(normal.exit)
      const attempt = fake.attempts()[0]!
      assert.deepStrictEqual(routingOf(normal.events).usage, {
        inputTokens: attempt.inputTokens,
        outputTokens: 6,
        totalTokens: attempt.inputTokens + 6,
        estimated: false
      })
      assert.strictEqual(answerText(normal.events), PRIMARY)
      assert.isDefined(normal.events.find((ev) => ev.metadata !== undefined), "the metadata event is passed through")

      const bare = yield* drain()
      succeeded(bare.exit)
      assert.strictEqual(answerText(bare.events), PRIMARY)
      assert.isUndefined(bare.events.find((ev) => ev.metadata !== undefined))
      const usage = routingOf(bare.events).usage
      assert.isTrue(usage.estimated)
      assert.strictEqual(usage.outputTokens, estimatedOutput(PRIMARY))
      assert.isAbove(usage.inputTokens, 0)
      assert.strictEqual(usage.totalTokens, usage.inputTokens + usage.outputTokens)
      assert.deepStrictEqual(outcomes(yield* settled), [["primary", "success"], ["primary", "success"]])
    }).pipe(Effect.provide(muxOver(transport, {
      models: {
        // the first call is clean, the second sends no metadata
        primary: { answer: PRIMARY, firstToken: 10, faults: [{ when: { calls: 2 }, do: { kind: "noMetadata" } }] },
        fallback
      }
    }))))
})
