/** Helpers shared by the mux test files: run on virtual time, read outcomes. */
import { assert } from "@effect/vitest"
import { Clock, type Duration, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { MuxResponse } from "../../src/BedrockMux.ts"
import { MuxError } from "../../src/MuxError.ts"

/** The response (or error) and the virtual time it arrived at. */
export const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.exit(self), (exit) => Effect.map(Clock.currentTimeMillis, (at) => ({ exit, at })))

/** Forks `self`, lets virtual time run (every due sleep fires, in order), and joins. */
export const runFor = <A, E, R>(self: Effect.Effect<A, E, R>, advance: Duration.Input = "10 minutes") =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(self)
    yield* TestClock.adjust(advance)
    return yield* Fiber.join(fiber)
  })

/** The value of a success (fails the test otherwise). */
export const success = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isFailure(exit)) assert.fail(`expected a success, got ${String(exit.cause)}`)
  return (exit as Exit.Success<A, E>).value
}

/** The one typed MuxError of a failure (fails the test on a success, a defect or an interruption). */
export const muxError = <A>(exit: Exit.Exit<A, MuxError>): MuxError => {
  if (Exit.isSuccess(exit)) assert.fail(`expected a MuxError, got a success from ${(exit.value as MuxResponse).routing?.modelId}`)
  const reasons = (exit as Exit.Failure<A, MuxError>).cause.reasons
  assert.strictEqual(reasons.length, 1, String((exit as Exit.Failure<A, MuxError>).cause))
  const r = reasons[0]!
  if (r._tag !== "Fail") assert.fail(`expected a typed failure, got ${r._tag}`)
  assert.instanceOf(r.error, MuxError)
  return r.error
}
