// The simulator/fake agreement table: one table of scripted scenarios, each
// run through the in-memory BedrockSimulator (under TestClock) and through
// FakeBedrock with the real AWS SDK over loopback HTTP (our default
// keep-alive HTTP/1.1 transport, live clock). Every outcome is normalised to
// what a caller can observe (ok, or the BedrockError reason tag with its
// fields and httpStatusCode; the stream events delivered; the text, stop
// reason and usage) plus what the provider logged (outcome, tokens), and the
// two must be equal.
//
// Known intended differences, left out of the comparison: the wall-clock
// `metrics.latencyMs`, and hang/stall (interim outcomes; covered elsewhere).
import type { ConverseCommandInput, ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import type { Attempt } from "../src/internal/simulation.ts"
import { ErrorNames, type ScriptInput, StreamErrorNames } from "../src/SimulatorScript.ts"
import { FakeBedrock } from "../src/testing/index.ts"

// --- the table ----------------------------------------------------------------------------------

type Operation = "converse" | "converseStream"

interface Scenario {
  readonly name: string
  readonly script: ScriptInput
  /** the model called; default "m" */
  readonly modelId?: string
  /** calls made one after another; every one is compared. Default 1. */
  readonly calls?: number
  readonly request?: Partial<ConverseCommandInput>
}

/** Tiny but non-zero waits, so pacing runs on both (TestClock in one, real timers in the other). */
const base = {
  answer: "one two three four five",
  latency: 3,
  firstToken: 2,
  tokensPerSecond: 1000
} as const satisfies ScriptInput["models"][string]

const model = (extra: Record<string, unknown> = {}): ScriptInput => ({ models: { m: { ...base, ...extra } } })
const fault = (action: Record<string, unknown>): ScriptInput => model({ faults: [{ do: action }] })

const scenarios: ReadonlyArray<Scenario> = [
  { name: "success", script: model() },
  { name: "success, estimated input tokens, maxTokens truncation", script: model(), request: { inferenceConfig: { maxTokens: 3 } } },
  ...ErrorNames.map((error): Scenario => ({ name: `HTTP error ${error}`, script: fault({ kind: "error", error }) })),
  {
    name: "ThrottlingException with retryAfter and a token message",
    script: fault({
      kind: "error",
      error: "ThrottlingException",
      message: "Too many tokens, please wait before trying again.",
      retryAfter: "2 seconds",
      after: 4
    })
  },
  {
    name: "ModelErrorException with originalStatusCode",
    script: fault({ kind: "error", error: "ModelErrorException", originalStatusCode: 400 })
  },
  { name: "throttling via rpm (2nd call in the minute)", script: model({ rpm: 1 }), calls: 2 },
  { name: "throttling via tpm (reservation too big)", script: model({ tpm: 100, inputTokens: 50, maxOutputTokens: 60 }) },
  ...StreamErrorNames.flatMap((error): ReadonlyArray<Scenario> => [
    { name: `in-stream ${error} after 1 token`, script: fault({ kind: "streamError", error, afterTokens: 1 }) },
    { name: `in-stream ${error} at 0 tokens`, script: fault({ kind: "streamError", error, afterTokens: 0 }) }
  ]),
  {
    name: "in-stream modelStreamErrorException with originalStatusCode after 2",
    script: fault({ kind: "streamError", error: "modelStreamErrorException", afterTokens: 2, originalStatusCode: 500 })
  },
  { name: "cut after 2 tokens", script: fault({ kind: "cut", afterTokens: 2 }) },
  { name: "cut at 0 tokens", script: fault({ kind: "cut", afterTokens: 0 }) },
  { name: "malformed after 1 token", script: fault({ kind: "malformed", afterTokens: 1 }) },
  { name: "malformed at 0 tokens", script: fault({ kind: "malformed", afterTokens: 0 }) },
  { name: "bad-CRC frame after 1 token", script: fault({ kind: "malformed", afterTokens: 1, frame: "checksum" }) },
  { name: "bad-CRC frame at 0 tokens", script: fault({ kind: "malformed", afterTokens: 0, frame: "checksum" }) },
  { name: "emptyOutput", script: fault({ kind: "emptyOutput" }) },
  { name: "noMetadata", script: fault({ kind: "noMetadata" }) },
  { name: "context-window validation", script: model({ contextWindow: 50, inputTokens: 100 }) },
  { name: "unknown model", script: model(), modelId: "no-such-model" },
  {
    name: "faults by call number: 1st throttled, 2nd cut, 3rd fine",
    script: model({
      faults: [
        { when: { calls: 1 }, do: { kind: "error", error: "ThrottlingException" } },
        { when: { calls: 2 }, do: { kind: "cut", afterTokens: 1 } }
      ]
    }),
    calls: 3
  }
]

// --- normalisation ------------------------------------------------------------------------------

interface Observed {
  readonly ok: boolean
  readonly reasonTag?: string
  /** the reason's fields, durations in ms */
  readonly reason?: Record<string, unknown>
  readonly httpStatusCode?: number
  readonly events: ReadonlyArray<string>
  readonly text: string
  readonly stopReason?: string
  readonly usage?: unknown
}

const eventName = (ev: ConverseStreamOutput): string =>
  Object.entries(ev).find(([, v]) => v !== undefined)?.[0] ?? "?"

const failureOf = (exit: Exit.Exit<unknown, BedrockError.BedrockError>): Pick<Observed, "ok" | "reasonTag" | "reason" | "httpStatusCode"> => {
  if (Exit.isSuccess(exit)) return { ok: true }
  const error = Exit.findErrorOption(exit)
  if (Option.isNone(error)) return { ok: false, reasonTag: `defect: ${Cause.pretty(exit.cause)}` }
  const { _tag, ...fields } = error.value.reason as unknown as Record<string, unknown> & { readonly _tag: string }
  const reason: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) reason[k] = Duration.isDuration(v) ? Duration.toMillis(v) : v
  return {
    ok: false,
    reasonTag: _tag,
    reason,
    ...(error.value.httpStatusCode !== undefined ? { httpStatusCode: error.value.httpStatusCode } : {})
  }
}

const inputOf = (s: Scenario): ConverseCommandInput => ({
  modelId: s.modelId ?? "m",
  messages: [{ role: "user", content: [{ text: "Hello there, how are you today?" }] }],
  ...s.request
})

/** One call through whatever `BedrockRuntime` is provided, normalised. */
const observe = (s: Scenario, operation: Operation) =>
  Effect.gen(function*() {
    const rt = yield* BedrockRuntime
    if (operation === "converse") {
      const exit = yield* Effect.exit(rt.converse(inputOf(s)))
      const out = Exit.isSuccess(exit) ? exit.value : undefined
      return {
        ...failureOf(exit),
        events: [],
        text: out?.output?.message?.content?.map((c) => c.text ?? "").join("") ?? "",
        ...(out?.stopReason !== undefined ? { stopReason: out.stopReason } : {}),
        ...(out?.usage !== undefined ? { usage: out.usage } : {})
      } satisfies Observed
    }
    const events: Array<string> = []
    let text = ""
    let stopReason: string | undefined
    let usage: unknown
    const exit = yield* rt.converseStream(inputOf(s)).pipe(
      Stream.runForEach((ev) =>
        Effect.sync(() => {
          events.push(eventName(ev))
          text += ev.contentBlockDelta?.delta?.text ?? ""
          if (ev.messageStop?.stopReason !== undefined) stopReason = ev.messageStop.stopReason
          if (ev.metadata?.usage !== undefined) usage = ev.metadata.usage
        })
      ),
      Effect.exit
    )
    return {
      ...failureOf(exit),
      events,
      text,
      ...(stopReason !== undefined ? { stopReason } : {}),
      ...(usage !== undefined ? { usage } : {})
    } satisfies Observed
  })

const observeAll = (s: Scenario, operation: Operation) =>
  Effect.forEach(Array.from({ length: s.calls ?? 1 }), () => observe(s, operation))

/** What the provider logged, without times (wall clock on the fake, TestClock in the simulator). */
const logOf = (attempts: ReadonlyArray<Attempt>) =>
  attempts.map((a) => ({
    modelId: a.modelId,
    operation: a.operation,
    outcome: a.outcome,
    inputTokens: a.inputTokens,
    outputTokens: a.outputTokens,
    ended: a.end !== undefined
  }))

// --- the two runs -------------------------------------------------------------------------------

/** Through the in-memory simulator, under a TestClock moved far past every wait. */
const viaSimulator = (s: Scenario, operation: Operation) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(observeAll(s, operation))
    yield* TestClock.adjust("1 minute")
    const outcomes = yield* Fiber.join(fiber)
    const log = logOf(yield* BedrockSimulator.attempts)
    return { outcomes, log }
  }).pipe(Effect.provide(BedrockSimulator.layer(s.script)), Effect.provide(TestClock.layer()))

/** Through the real SDK client to the loopback fake, on real timers. */
const viaFake = (s: Scenario, operation: Operation) =>
  Effect.gen(function*() {
    const outcomes = yield* observeAll(s, operation)
    const fake = yield* FakeBedrock.FakeBedrock
    const idle = yield* Effect.promise(() => fake.waitForIdle(5_000))
    assert.isTrue(idle, "the fake finished every call")
    return { outcomes, log: logOf(fake.attempts()) }
  }).pipe(Effect.provide(FakeBedrock.layerRuntime(s.script)))

describe("simulator and fake agree", () => {
  for (const s of scenarios) {
    for (const operation of ["converse", "converseStream"] as const) {
      it.live(`${s.name}: ${operation}`, () =>
        Effect.gen(function*() {
          const sim = yield* viaSimulator(s, operation)
          const fake = yield* viaFake(s, operation)
          assert.deepStrictEqual(fake.outcomes, sim.outcomes, "what the caller observed")
          assert.deepStrictEqual(fake.log, sim.log, "what the provider logged")
        }))
    }
  }

  it("the table covers every HTTP error, every in-stream exception at 1 and 0 tokens, and the stream faults", () => {
    const names = scenarios.map((s) => s.name)
    for (const e of ErrorNames) assert.include(names, `HTTP error ${e}`)
    for (const e of StreamErrorNames) {
      assert.include(names, `in-stream ${e} after 1 token`)
      assert.include(names, `in-stream ${e} at 0 tokens`)
    }
    assert.isAtLeast(scenarios.length, 20)
  })
})

// --- sanity: the normalisation sees what matters ---------------------------------------------

describe("normalisation", () => {
  it.effect("a success stream and a cut stream normalise differently (the comparison has teeth)", () =>
    Effect.gen(function*() {
      const ok = yield* viaSimulator(scenarios[0]!, "converseStream")
      const cut = yield* viaSimulator(scenarios.find((s) => s.name === "cut after 2 tokens")!, "converseStream")
      const delta = "contentBlockDelta"
      assert.deepStrictEqual(ok.outcomes[0], {
        ok: true,
        events: ["messageStart", delta, delta, delta, delta, delta, "contentBlockStop", "messageStop", "metadata"],
        text: "one two three four five",
        stopReason: "end_turn",
        usage: { inputTokens: ok.log[0]!.inputTokens, outputTokens: 5, totalTokens: ok.log[0]!.inputTokens + 5 }
      })
      assert.deepStrictEqual(cut.outcomes[0], {
        ok: false,
        reasonTag: "Network",
        reason: { phase: "after-response", code: "ECONNRESET" },
        events: ["messageStart", "contentBlockDelta", "contentBlockDelta"],
        text: "one two"
      })
    }))
})
