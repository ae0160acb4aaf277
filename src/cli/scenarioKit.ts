/**
 * What the demo scenarios share: the result `Table`, the request they send,
 * `percentile`, `virtual` (run on TestClock), `sim` (a seeded simulator) and
 * `Progress` (how a scenario reports `done/total` while it runs).
 */
import { Context, Duration, Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import type { MuxRequest } from "../BedrockMux.ts"
import { BedrockSimulator } from "../BedrockSimulator.ts"
import type * as SimulatorScript from "../SimulatorScript.ts"

/** A scenario's result: what the CLI prints as a table (or JSON). */
export interface Table {
  readonly title: string
  readonly expectation: string
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string | number>>
  readonly summary: Record<string, string | number | boolean>
  /** did the scenario meet its expectation */
  readonly ok: boolean
  /** lines printed under the table (a report, a config) */
  readonly details?: ReadonlyArray<string>
}

/** A scenario: an effect producing its table. */
export type Scenario = Effect.Effect<Table, unknown>

export const request: MuxRequest = {
  messages: [{ role: "user", content: [{ text: "Explain circuit breakers in one paragraph." }] }],
  inferenceConfig: { maxTokens: 256 }
}

export const percentile = (xs: ReadonlyArray<number>, q: number): number => {
  if (xs.length === 0) return 0
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

/** Runs `effect` on virtual time: forks it and moves the clock until it is done. */
export const virtual = <A, E>(effect: Effect.Effect<A, E>, horizon: Duration.Input = "1 hour"): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    yield* TestClock.adjust(horizon)
    return yield* Fiber.join(fiber)
  }).pipe(Effect.provide(TestClock.layer()), Random.withSeed("demo"))

/** The simulator with the demo's seed. */
export const sim = (script: SimulatorScript.ScriptInput) => BedrockSimulator.layer({ seed: "demo", ...script })

/**
 * Where a running scenario reports its progress: `report(done, total)` after
 * each request. The default does nothing; the CLI provides one that draws
 * a progress line.
 */
export interface ProgressReporter {
  readonly report: (done: number, total: number) => Effect.Effect<void>
}

export const Progress = Context.Reference<ProgressReporter>("effect-bedrock-mux/cli/Progress", {
  defaultValue: () => ({ report: () => Effect.void })
})

/**
 * A counter of `total` requests: reports `0/total` now and returns the effect
 * to run after each request (it reports `done/total`).
 *
 * @example
 * ```ts
 * const tick = yield* progress(10)
 * yield* Effect.forEach(jobs, (job) => job.pipe(Effect.tap(tick)))
 * ```
 */
export const progress = (total: number): Effect.Effect<Effect.Effect<void>> =>
  Effect.gen(function*() {
    const reporter = yield* Progress
    let done = 0
    yield* reporter.report(0, total)
    return Effect.suspend(() => reporter.report(++done, total))
  })
