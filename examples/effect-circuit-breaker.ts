/**
 * The breaker replaced by effect's own `CircuitBreaker` (effect/persistence),
 * and a guard of your own: a maintenance window that keeps a model out.
 *
 * Both are `Guard`s, the same kind of value as the built-in breaker, throttle
 * cooldown and quota: a `view` of every target before selection (can it take
 * a request, and when will it) and an `admit` per attempt that returns a
 * permit, released exactly once when the attempt ends.
 * - `Guard.fromCircuitBreaker(breaker)` runs each admitted attempt inside
 *   `breaker.execute` (one circuit per target): an open circuit keeps the
 *   model out, half-open lets one probe through, and a failure counts when
 *   the policy's decision for it says `breaker: true`.
 * - `maintenance` is `Guard.make` with a `view` and nothing to admit.
 *
 * The policy is the JSON config's, with its own breaker swapped for effect's
 * and the maintenance window added (`Policy.withGuards`). `selection:
 * "ordered"` makes the order predictable. On the simulator (virtual time):
 * "primary" answers 503 until 25 s; "secondary" is in maintenance until 30 s.
 * - 0 s: two requests fail on primary and go to the fallback (secondary is
 *   in maintenance); the circuit opens after two consecutive failures;
 * - 1 s: primary is skipped without a call;
 * - 12 s: the circuit is half-open: the probe fails (still down), and it
 *   reopens for 20 s (the `openDuration` schedule's second delay);
 * - 31 s: primary is still open; the maintenance is over, so secondary answers;
 * - 35 s: the probe on primary succeeds and the circuit closes.
 *
 * Run: node examples/effect-circuit-breaker.ts
 */
import { Console, Effect, Layer, Schedule } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator, Guard, Policy } from "../src/index.ts"

/** Keeps `modelId` out from `from` to `to` (epoch ms of the mux's Clock). */
export const maintenance = (modelId: string, from: number, to: number) =>
  Guard.make({
    name: "maintenance",
    view: (targets, _request, now) =>
      Effect.succeed(targets.map((t) =>
        t.model.modelId === modelId && now >= from && now < to
          ? { admits: false, weight: 0, why: "maintenance", recoversAt: to }
          : Guard.open
      )),
    admit: () => Effect.succeed(Guard.noPermit)
  })

const config = {
  models: [{ modelId: "primary" }, { modelId: "secondary" }, { modelId: "fallback", isFallback: true }],
  selection: "ordered" as const
}

/** The config's policy with effect's breaker first, then the maintenance window, then the other built-ins. */
const MuxLive = Layer.unwrap(Effect.map(CircuitBreaker.CircuitBreaker, (breaker) =>
  BedrockMux.layer(config, {
    policy: (p) =>
      Policy.withGuards([
        Guard.fromCircuitBreaker(breaker),
        maintenance("secondary", 0, 30_000),
        ...p.guards.filter((g) => g.name !== "breaker")
      ])(p)
  }))).pipe(
    Layer.provideMerge(CircuitBreaker.layer({
      tripPolicy: CircuitBreaker.consecutive(2),
      // the n-th consecutive opening lasts the n-th delay: 10 s, 20 s, 40 s, ...
      openDuration: Schedule.exponential("10 seconds")
    })),
    Layer.provide(CircuitBreaker.layerStoreMemory()),
    Layer.provideMerge(BedrockSimulator.layer({
      models: {
        primary: { faults: [{ when: { to: "25 seconds" }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
        secondary: {},
        fallback: {}
      }
    }))
  )

export const program = Effect.gen(function*() {
  const mux = yield* BedrockMux
  const breaker = yield* CircuitBreaker.CircuitBreaker
  const log: Array<{ readonly at: number; readonly answeredBy: string; readonly tried: ReadonlyArray<string>; readonly circuit: string }> = []
  for (const at of [0, 0, 1_000, 12_000, 31_000, 35_000]) {
    yield* TestClock.setTime(at)
    const res = yield* mux.converse({ messages: [{ role: "user", content: [{ text: "status?" }] }] })
    const circuit = (yield* breaker.state("primary"))._tag
    const entry = { at, answeredBy: res.routing.modelId, tried: res.routing.attempts.map((a) => `${a.modelId}:${a.reason ?? a.outcome}`), circuit }
    log.push(entry)
    yield* Console.log(`${String(at / 1000).padStart(2)} s: ${entry.answeredBy.padEnd(9)} tried ${entry.tried.join(", ")}; primary's circuit ${circuit}`)
  }
  const health = yield* mux.health
  return { log, unavailable: Object.fromEntries(health.models.map((m) => [m.modelId, m.unavailable ?? "available"])) }
}).pipe(Effect.provide(MuxLive), Effect.provide(TestClock.layer()))

if (import.meta.main) Effect.runPromise(program)
