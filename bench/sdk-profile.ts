/**
 * A CPU-profiling driver for the `sdk` suite's paths: `n` sequential calls of
 * one path over the real SDK to the child-process fake, after a warm-up.
 * Run it under the profiler and read the profile with bench/cpuprofile.ts:
 *
 *   node --cpu-prof --cpu-prof-interval 50 --cpu-prof-dir scratch/prof bench/sdk-profile.ts mux 10000
 *   node bench/cpuprofile.ts scratch/prof/<file>.cpuprofile
 *
 * Paths: `abort` (client.send with an abortSignal), `mux` (mux.converse, events,
 * metrics and spans at their defaults), `mux-notrace` (TracerEnabled false),
 * `runtime` (BedrockRuntime.converse through a pre-built context), `facade`
 * (createMultiplexer().processRequest), `stream` (mux.converseStream, drained),
 * `stream-runtime` (BedrockRuntime.converseStream, drained), `stream-direct`
 * (the SDK's own ConverseStream, drained).
 * `SRC=<dir>` runs against a modified copy of src/ (experiments).
 */
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime"
import { Context, Effect, Layer, ManagedRuntime, References, Stream } from "effect"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { keepAliveClient, messages, startServer } from "./sdk-harness.ts"

const src = path.resolve(process.env["SRC"] ?? path.join(import.meta.dirname, "../src"))
// the public entry point only, so the driver survives a rewrite of the core
const { BedrockMux, BedrockRuntime, createMultiplexer } = await import(path.join(src, "index.ts")) as typeof import("../src/index.ts")

const mode = process.argv[2] ?? "mux"
const n = Number(process.argv[3] ?? 10_000)
const server = await startServer()
const client = keepAliveClient(server)
const models = [{ modelId: "bench-a", weight: 3 }, { modelId: "bench-b", weight: 1 }]
const rt = ManagedRuntime.make(BedrockMux.layer({ models }).pipe(Layer.provideMerge(BedrockRuntime.layerClient(client))))
const ctx = await rt.context()
const mux = Context.get(ctx, BedrockMux)
const bedrock = Context.get(ctx, BedrockRuntime)
const run = Effect.runPromiseWith(ctx)
const runNoTrace = Effect.runPromiseWith(Context.add(ctx, References.TracerEnabled, false))
const facade = createMultiplexer(models.map((m) => ({ ...m, isFallback: false })), { bedrockRuntime: BedrockRuntime.layerClient(client) })
const request = { messages }

const calls: Record<string, () => Promise<unknown>> = {
  abort: () => client.send(new ConverseCommand({ ...request, modelId: "bench-a" }), { abortSignal: new AbortController().signal }),
  runtime: () => run(bedrock.converse({ ...request, modelId: "bench-a" })),
  mux: () => run(mux.converse(request)),
  "mux-notrace": () => runNoTrace(mux.converse(request)),
  facade: () => facade.processRequest(request),
  stream: () => run(Stream.runDrain(mux.converseStream(request))),
  "stream-runtime": () => run(Stream.runDrain(bedrock.converseStream({ ...request, modelId: "bench-a" }))),
  "stream-direct": async () => {
    const res = await client.send(new ConverseStreamCommand({ ...request, modelId: "bench-a" }), { abortSignal: new AbortController().signal })
    for await (const _ of res.stream ?? []) {
      // drain
    }
  }
}
const call = calls[mode]
if (call === undefined) throw new Error(`unknown path ${mode}; one of ${Object.keys(calls).join(", ")}`)
for (let i = 0; i < 2_000; i++) await call()
const c0 = process.cpuUsage()
const t0 = performance.now()
for (let i = 0; i < n; i++) await call()
const wall = (performance.now() - t0) * 1000 / n
const cpu = process.cpuUsage(c0)
console.error(`${mode}: ${n} calls, ${wall.toFixed(1)} µs wall/call, ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU/call`)
client.destroy()
await facade.destroy()
await rt.dispose()
server.close()
