/**
 * The demo's streaming scenarios: a primary that is slow to its first token,
 * one that stalls, one that cuts its streams. Each runs the same requests
 * through `BedrockMux.converseStream` under a few settings and reports, per
 * setting, how many answers came back complete, how many were cut (never
 * as a success), and the time to rescue: from the request's start to the end
 * of the complete answer, for the requests the primary failed (requests
 * sent straight to the fallback once the primary's breaker opened are not
 * counted: they needed no rescue).
 */
import { Clock, Effect, Layer, Stream } from "effect"
import { BedrockMux, type StreamOptions } from "../BedrockMux.ts"
import type * as MuxConfig from "../MuxConfig.ts"
import * as MuxStream from "../MuxStream.ts"
import type * as SimulatorScript from "../SimulatorScript.ts"
import { percentile, progress, request, type Scenario, sim, type Table, virtual } from "./scenarioKit.ts"

const PRIMARY_ANSWER = "Circuit breakers stop calls to a failing dependency so it can recover while callers fail over fast."
const FALLBACK_ANSWER = "A circuit breaker counts failures and, past a threshold, short-circuits calls until a probe succeeds."

type ModelInput = SimulatorScript.ScriptInput["models"][string]

const pool: MuxConfig.Input = {
  models: [
    { modelId: "primary", weight: 100 },
    { modelId: "fallback", weight: 100, isFallback: true }
  ],
  deadline: "60 seconds"
}

const fallback: ModelInput = {
  latency: 300,
  firstToken: 300,
  tokensPerSecond: 40,
  answer: FALLBACK_ANSWER
}

interface Outcome {
  readonly complete: boolean
  readonly text: string
  readonly modelId: string | undefined
  readonly interrupted: boolean
  readonly resets: number
  /** the first model tried failed (before or after content): this request needed rescuing */
  readonly rescued: boolean
  readonly ms: number
  readonly ttftMs: number | undefined
}

/** Runs `n` streaming requests (5 at a time) and reads each one's outcome. */
const run = (n: number, options: StreamOptions) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const tick = yield* progress(n)
    return yield* Effect.forEach(
      Array.from({ length: n }),
      () =>
        Effect.gen(function*() {
          const t0 = yield* Clock.currentTimeMillis
          let ttft: number | undefined
          const answer = yield* MuxStream.collect(
            mux.converseStream(request, options).pipe(
              Stream.tap((ev) =>
                ev.contentBlockDelta !== undefined && ttft === undefined
                  ? Effect.map(Clock.currentTimeMillis, (t) => {
                    ttft = t - t0
                  })
                  : Effect.void
              )
            )
          ).pipe(Effect.result)
          const ms = (yield* Clock.currentTimeMillis) - t0
          return answer._tag === "Success"
            ? {
              complete: true,
              text: answer.success.text,
              modelId: answer.success.routing?.modelId,
              interrupted: false,
              resets: answer.success.resets,
              rescued: answer.success.resets > 0 || (answer.success.routing?.attempts ?? []).some((a) => a.outcome !== "success"),
              ms,
              ttftMs: ttft
            } satisfies Outcome
            : {
              complete: false,
              text: "",
              modelId: undefined,
              interrupted: answer.failure.reason._tag === "StreamInterrupted",
              resets: 0,
              rescued: false,
              ms,
              ttftMs: ttft
            } satisfies Outcome
        }).pipe(Effect.tap(tick)),
      { concurrency: 5 }
    )
  })

interface Setting {
  readonly name: string
  readonly options: StreamOptions
  /** what this setting must achieve */
  readonly expect: (outcomes: ReadonlyArray<Outcome>) => boolean
}

const answers = [PRIMARY_ANSWER, FALLBACK_ANSWER]
/** No success ever carries a truncated or spliced answer. */
const neverCut = (o: Outcome) => !o.complete || answers.includes(o.text)

const scenario = (options: {
  readonly title: string
  readonly expectation: string
  readonly primary: ModelInput
  readonly settings: ReadonlyArray<Setting>
  readonly config?: Partial<MuxConfig.Input>
}): Scenario =>
  Effect.gen(function*() {
    const n = 20
    const rows: Array<ReadonlyArray<string | number>> = []
    let ok = true
    let rescue = 0
    for (const setting of options.settings) {
      const layer = BedrockMux.layer({ ...pool, ...options.config } as MuxConfig.Input).pipe(
        Layer.provide(sim({ models: { primary: options.primary, fallback } }))
      )
      const outcomes = yield* virtual(run(n, setting.options).pipe(Effect.provide(layer)))
      const rescued = outcomes.filter((o) => o.complete && o.rescued)
      const good = setting.expect(outcomes) && outcomes.every(neverCut)
      ok &&= good
      const p50 = Math.round(percentile(rescued.map((o) => o.ms), 0.5))
      rescue = Math.max(rescue, p50)
      rows.push([
        setting.name,
        n,
        outcomes.filter((o) => o.complete).length,
        outcomes.filter((o) => !neverCut(o)).length,
        outcomes.filter((o) => o.interrupted).length,
        outcomes.reduce((s, o) => s + o.resets, 0),
        rescued.length === 0 ? "-" : p50,
        rescued.length === 0 ? "-" : Math.round(percentile(rescued.map((o) => o.ttftMs ?? 0), 0.5)),
        good ? "yes" : "NO"
      ])
    }
    return {
      title: options.title,
      expectation: options.expectation,
      columns: ["setting", "requests", "complete", "cut as success", "interrupted", "resets", "rescue p50 ms", "first content p50 ms", "as expected"],
      rows,
      summary: { settings: options.settings.length, worstRescueP50Ms: rescue },
      ok
    } satisfies Table
  })

const all = (f: (o: Outcome) => boolean) => (os: ReadonlyArray<Outcome>) => os.every(f)

export const streamingScenarios: Record<string, Scenario> = {
  "stream-slow-first-token": scenario({
    title: "Streaming: the primary takes 30 s to its first token",
    expectation: "every answer completes from the fallback; rescue ≈ first-token limit + fallback time, or ≈ hedge delay + fallback time",
    primary: { firstToken: "30 seconds", latency: "30 seconds", answer: PRIMARY_ANSWER },
    settings: [
      {
        name: "first-token limit 2 s",
        options: { firstTokenTimeout: "2 seconds" },
        expect: all((o) => o.complete && o.modelId === "fallback" && o.ms < 2_000 + 3_000)
      },
      {
        name: "hedge after 500 ms",
        options: { firstTokenTimeout: "10 seconds", hedge: { after: "500 millis", budget: 1 } },
        expect: all((o) => o.complete && o.modelId === "fallback" && o.ms < 500 + 3_000)
      }
    ]
  }),
  "stream-stall": scenario({
    title: "Streaming: the primary stalls (before its first token on odd calls, after 5 tokens on even ones)",
    expectation: "stalls before content fail over unseen; stalls after content end typed (fail) or restart after a reset (restart); none is a success",
    primary: {
      answer: PRIMARY_ANSWER,
      tokensPerSecond: 40,
      faults: [
        { when: { calls: Array.from({ length: 20 }, (_, i) => 2 * i + 1) }, do: { kind: "stall", afterTokens: 0 } },
        { when: { calls: Array.from({ length: 20 }, (_, i) => 2 * i + 2) }, do: { kind: "stall", afterTokens: 5 } }
      ]
    },
    config: { breaker: { failures: 1000 } },
    settings: [
      {
        name: "stall 2 s, fail",
        options: { stallTimeout: "2 seconds", firstTokenTimeout: "2 seconds" },
        expect: (os) => os.every((o) => o.complete || o.interrupted) && os.some((o) => o.complete) && os.some((o) => o.interrupted)
      },
      {
        name: "stall 2 s, restart",
        options: { stallTimeout: "2 seconds", firstTokenTimeout: "2 seconds", onInterrupt: "restart" },
        expect: (os) => os.every((o) => o.complete) && os.some((o) => o.resets > 0)
      }
    ]
  }),
  "stream-cut": scenario({
    title: "Streaming: the primary's connection is cut (after 0 tokens on odd calls, after 8 on even ones)",
    expectation: "cuts before content fail over unseen; cuts after content never end as a success",
    primary: {
      answer: PRIMARY_ANSWER,
      tokensPerSecond: 40,
      faults: [
        { when: { calls: Array.from({ length: 20 }, (_, i) => 2 * i + 1) }, do: { kind: "cut", afterTokens: 0 } },
        { when: { calls: Array.from({ length: 20 }, (_, i) => 2 * i + 2) }, do: { kind: "cut", afterTokens: 8 } }
      ]
    },
    config: { breaker: { failures: 1000 } },
    settings: [
      {
        name: "fail",
        options: {},
        expect: (os) => os.every((o) => o.complete || o.interrupted) && os.some((o) => o.interrupted)
      },
      {
        name: "restart",
        options: { onInterrupt: "restart" },
        expect: all((o) => o.complete)
      }
    ]
  })
}
