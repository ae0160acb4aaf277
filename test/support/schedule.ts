/** Helpers shared by the test files that compare retry schedules: their delays, step by step, under a seed. */
import { Duration, Effect, Random, Schedule } from "effect"
import * as BedrockError from "../../src/BedrockError.ts"

/** A 503: an error without a retry-after. */
export const unavailable = BedrockError.make(new BedrockError.ServiceUnavailable(), "unavailable")

/** A throttle whose retry-after is `ms`. */
export const throttled = (ms: number) =>
  BedrockError.make(new BedrockError.Throttled({ kind: "requests", retryAfter: Duration.millis(ms) }), "slow down")

/**
 * The delays (ms) a schedule gives, one step per input, time moving on by
 * each delay, under `seed` (jitter draws from `Random`); "done" where it
 * stops, and nothing after.
 */
export const delaysOf = (
  schedule: Schedule.Schedule<unknown, BedrockError.BedrockError>,
  inputs: ReadonlyArray<BedrockError.BedrockError>,
  seed = "delays"
) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    const out: Array<number | "done"> = []
    let now = 0
    for (const input of inputs) {
      const r = yield* Effect.result(step(now, input))
      if (r._tag === "Failure") {
        out.push("done")
        break
      }
      const d = Duration.toMillis(r.success[1])
      out.push(d)
      now += d
    }
    return out
  }).pipe(Random.withSeed(seed))
