/**
 * A Policy composed in code: the JSON config decodes into a `Policy` value, and
 * `BedrockMux.layer(config, { policy })` transforms it with combinators.
 *
 * Here: AccessDenied fails over (a pool that spans accounts with different model
 * access) instead of failing fast; models are tried in declaration order; and the
 * last model left is retried with a jittered exponential backoff. The same
 * request under the default policy fails fast on the AccessDenied.
 * Runs on virtual time (TestClock), so the backoff waits take no real time.
 *
 * Run: node examples/custom-policy.ts
 */
import { Console, Effect, Fiber, Layer, pipe } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator, Policy, Selector } from "../src/index.ts"

const config = { models: [{ modelId: "account-a.model" }, { modelId: "account-b.model" }] }

const custom = (p: Policy.Policy): Policy.Policy =>
  pipe(
    p,
    Policy.mapClassification(Policy.override("AccessDenied", { failover: true })),
    Policy.withSelector(Selector.ordered),
    Policy.withBackoff(Policy.exponentialBackoff({ base: "250 millis", max: "2 seconds", times: 3 })),
    Policy.withAttempts(5)
  )

// a fresh simulated Bedrock per run: account A denies access, account B answers 503 twice, then answers
const run = (policy?: (p: Policy.Policy) => Policy.Policy) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const fiber = yield* Effect.forkChild(
      Effect.result(mux.converse({ messages: [{ role: "user", content: [{ text: "hi" }] }] }))
    )
    yield* TestClock.adjust("10 seconds") // lets the backoff sleeps fire
    const result = yield* Fiber.join(fiber)
    return result._tag === "Success"
      ? { answeredBy: result.success.routing.modelId, attempts: result.success.routing.attempts }
      : { failed: result.failure.reason._tag, attempts: result.failure.attempts }
  }).pipe(
    Effect.provide(BedrockMux.layer(config, policy === undefined ? {} : { policy }).pipe(Layer.provide(BedrockSimulator.layer({
      models: {
        "account-a.model": { faults: [{ do: { kind: "error", error: "AccessDeniedException" } }] },
        "account-b.model": { faults: [{ when: { calls: [1, 2] }, do: { kind: "error", error: "ServiceUnavailableException" } }] }
      }
    }))))
  )

export const program = Effect.gen(function*() {
  const byDefault = yield* run()
  const withCustom = yield* run(custom)
  const show = (a: { readonly modelId: string; readonly reason?: string; readonly decision?: string }) =>
    `${a.modelId} ${a.reason ?? "success"}${a.decision !== undefined ? ` → ${a.decision}` : ""}`
  yield* Console.log("default policy:", byDefault.attempts.map(show))
  yield* Console.log("custom policy: ", withCustom.attempts.map(show))
  return { byDefault, withCustom }
}).pipe(Effect.provide(TestClock.layer()))

if (import.meta.main) Effect.runPromise(program)
