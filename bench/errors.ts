/**
 * `node bench/errors.ts`: what building an error costs (a failure is common
 * under throttling, and every failed attempt builds one). Prints ns per
 * construction, the median of 7 rounds of 200k constructions each.
 */
import { ThrottlingException } from "@aws-sdk/client-bedrock-runtime"
import type * as BedrockErrorModule from "../src/BedrockError.ts"
import type * as MuxErrorModule from "../src/MuxError.ts"

// `node bench/errors.ts [dir] [--no-stack] [--only=text]`: the modules under `dir` (default
// ../src), so a copy of older sources can be measured against the current
// ones; `--no-stack` leaves out the capture of a stack trace (most of an
// Error's cost), so what remains is the cost of building the value; `--only`
// runs the cases whose name contains `text`
const args = process.argv.slice(2)
if (args.includes("--no-stack")) Error.stackTraceLimit = 0
const dir = args.find((a) => !a.startsWith("--")) ?? new URL("../src/", import.meta.url).pathname
const BedrockError: typeof BedrockErrorModule = await import(`${dir}/BedrockError.ts`)
const MuxError: typeof MuxErrorModule = await import(`${dir}/MuxError.ts`)

const N = 200_000
const ROUNDS = 7

const sdkError = new ThrottlingException({ message: "Too many requests, please wait before trying again.", $metadata: { httpStatusCode: 429, requestId: "r-1" } })
const attempts: ReadonlyArray<MuxErrorModule.AttemptRecord> = [
  { modelId: "a", target: "a", outcome: "failure", reason: "Throttled", decision: "failover", httpStatusCode: 429, message: "ThrottlingException: Too many requests", durationMs: 3 },
  { modelId: "b", target: "b", outcome: "failure", reason: "ServiceUnavailable", decision: "failover", httpStatusCode: 503, message: "ServiceUnavailableException: down", durationMs: 4 }
]

const cases: Record<string, () => unknown> = {
  "new Throttled (a reason alone)": () => new BedrockError.Throttled({ kind: "requests" }),
  "new BedrockError (Throttled)": () =>
    new BedrockError.BedrockError({ reason: new BedrockError.Throttled({ kind: "requests" }), message: "throttled", modelId: "m" }),
  "BedrockError.make": () => BedrockError.make(new BedrockError.ServiceUnavailable(), "down", "m"),
  "fromSdkError (ThrottlingException)": () => BedrockError.fromSdkError(sdkError, "m"),
  "new MuxError (NoModelsAvailable, 2 attempts)": () =>
    new MuxError.MuxError({
      reason: new MuxError.NoModelsAvailable({
        models: [{ modelId: "a", target: "a", breaker: "open", excluded: "breaker", recoversAt: 1000 }, { modelId: "b", target: "b", breaker: "closed", excluded: "tried" }],
        earliestRecovery: 1000,
        retryAfterMs: 500
      }),
      message: "no model available",
      attempts,
      requestId: "q-1"
    })
}

let sink: unknown
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length)
for (const [name, f] of Object.entries(cases)) {
  if (only !== undefined && !name.includes(only)) continue
  for (let i = 0; i < N; i++) sink = f() // warm up
  const perOp: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < N; i++) sink = f()
    perOp.push(Number(process.hrtime.bigint() - t0) / N)
  }
  perOp.sort((a, b) => a - b)
  console.log(`${name}: ${perOp[ROUNDS >> 1]!.toFixed(0)} ns (min ${perOp[0]!.toFixed(0)}, max ${perOp[ROUNDS - 1]!.toFixed(0)})`)
}
void sink
