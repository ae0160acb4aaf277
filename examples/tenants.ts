/**
 * Per-tenant quotas: `tenants` gives each tenant its own RPM/TPM over a sliding
 * minute, checked before routing. A tenant over its quota fails at once with
 * `MuxError` reason `QuotaExceeded { tenant, kind, retryAfterMs }`, or, with
 * `waitForQuota: true`, waits for room inside the request's deadline. Tenants
 * have separate buckets: A's burst does not touch B. Runs on virtual time.
 *
 * Run: node examples/tenants.ts
 */
import { Clock, Console, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { BedrockMux, BedrockSimulator, type ConverseOptions } from "../src/index.ts"

const MuxLive = BedrockMux.layer({
  models: [{ modelId: "amazon.nova-lite-v1:0" }],
  tenants: { A: { rpm: 2 }, B: { rpm: 10, tpm: 100_000 } },
  defaultTenant: { rpm: 60 }
}).pipe(Layer.provide(BedrockSimulator.layer({ models: { "amazon.nova-lite-v1:0": {} } })))

export const program = Effect.gen(function*() {
  const mux = yield* BedrockMux
  const ask = (options: ConverseOptions) =>
    mux.converse({ messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 256 } }, options)

  yield* ask({ tenant: "A" })
  yield* ask({ tenant: "A" })
  // the third request of A in the minute: rejected before any call to Bedrock
  const rejected = yield* Effect.flip(ask({ tenant: "A" }))
  const quota = rejected.reason._tag === "QuotaExceeded" ? rejected.reason : undefined
  yield* Console.log(`A, 3rd request: ${rejected.reason._tag}: ${rejected.message}`)

  // B is not affected by A's burst
  for (let i = 0; i < 5; i++) yield* ask({ tenant: "B" })
  yield* Console.log("B: 5 requests answered")

  // with waitForQuota, A waits for its window to slide (60 s) if that fits in the deadline
  const fiber = yield* Effect.forkChild(
    Effect.andThen(ask({ tenant: "A", waitForQuota: true, deadline: "90 seconds" }), Clock.currentTimeMillis)
  )
  yield* TestClock.adjust("2 minutes")
  const waitedMs = yield* Fiber.join(fiber) // answered at this virtual time (the clock started at 0)
  yield* Console.log(`A with waitForQuota: answered after ${waitedMs} ms`)
  return { rejected: quota, waitedMs }
}).pipe(Effect.provide(MuxLive), Effect.provide(TestClock.layer()))

if (import.meta.main) Effect.runPromise(program)
