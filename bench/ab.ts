/**
 * A/B/C… of copies of `src/` on the real SDK path, for trying a change to the
 * core before it lands: `node bench/ab.ts <dir> <dir> [...]`, each dir a copy
 * of src/ (for instance `cp -r src /tmp/a`, edit the copy, then
 * `node bench/ab.ts src /tmp/a`). Every copy builds its own mux over one
 * keep-alive client to the child-process fake (bench/sdk-server.ts);
 * interleaved rounds of 4 sequential `mux.converse` calls per row, order
 * rotated, against `client.send` with an `abortSignal`. Prints each copy's
 * added latency and CPU per call, and each one's difference from the first.
 * `ROUNDS=1500` (default 1000). Run-to-run noise is about ±3 µs at 1,500
 * rounds; swap the order to check a small difference. `MODE=facade` measures
 * `createMultiplexer().processRequest` instead; `MODE=stream` the time to the
 * first content event of `mux.converseStream` against the SDK's own stream. More copies in one
 * process cost each of them more (less of each stays in the caches): compare
 * rows of one run only. `MODE=both` gives each copy two rows, `mux.converse` and
 * the facade, in one process, as the sdk suite runs them (code the two share
 * sees both callers).
 */
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime"
import { Context, Effect, Layer, ManagedRuntime, Stream } from "effect"
import * as path from "node:path"
import type * as Index from "../src/index.ts"
import { compare, interleave, keepAliveClient, messages, startServer } from "./sdk-harness.ts"

const dirs = process.argv.slice(2)
if (dirs.length === 0) throw new Error("usage: node bench/ab.ts <src copy> [<src copy> ...]")
const server = await startServer()
const client = keepAliveClient(server)
const runtimes: Array<ManagedRuntime.ManagedRuntime<unknown, unknown>> = []
const mode = process.env["MODE"] ?? "converse"
if (!["converse", "facade", "stream", "both"].includes(mode)) throw new Error(`MODE: converse, facade, stream or both, not ${mode}`)
const models = [{ modelId: "bench-a", weight: 3 }, { modelId: "bench-b", weight: 1 }]
const facades: Array<{ destroy: () => Promise<void> }> = []
const FACADE = " (facade)"
const make = async (row: string) => {
  const dir = row.endsWith(FACADE) ? row.slice(0, -FACADE.length) : row
  const { BedrockMux, BedrockRuntime, createMultiplexer } = await import(path.resolve(dir, "index.ts")) as typeof Index
  if (mode === "facade" || row.endsWith(FACADE)) {
    const facade = createMultiplexer(models.map((m) => ({ ...m, isFallback: false })), { bedrockRuntime: BedrockRuntime.layerClient(client) })
    facades.push(facade)
    return () => facade.processRequest({ messages })
  }
  const rt = ManagedRuntime.make(BedrockMux.layer({ models }).pipe(Layer.provideMerge(BedrockRuntime.layerClient(client))))
  runtimes.push(rt as ManagedRuntime.ManagedRuntime<unknown, unknown>)
  const context = await rt.context()
  const mux = Context.get(context, BedrockMux)
  const run = Effect.runPromiseWith(context)
  if (mode === "converse" || mode === "both") return () => run(mux.converse({ messages }))
  // the time to the first content event (the stream read to its end), as the sdk suite measures it
  return async () => {
    const t0 = performance.now()
    let first = -1
    await run(Stream.runForEach(mux.converseStream({ messages }), (ev) => {
      if (first < 0 && "contentBlockDelta" in ev && ev.contentBlockDelta !== undefined) first = performance.now()
      return Effect.void
    }))
    if (first < 0) throw new Error("the stream had no content event")
    return (first - t0) * 1000
  }
}
const input = { modelId: "bench-a", messages }
const rows: Record<string, () => Promise<unknown>> = {
  floor: mode === "stream"
    ? async () => {
      const t0 = performance.now()
      const res = await client.send(new ConverseStreamCommand(input), { abortSignal: new AbortController().signal })
      let first = -1
      for await (const ev of res.stream ?? []) if (first < 0 && ev.contentBlockDelta !== undefined) first = performance.now()
      if (first < 0) throw new Error("the stream had no content event")
      return (first - t0) * 1000
    }
    : () => client.send(new ConverseCommand(input), { abortSignal: new AbortController().signal })
}
// MODE=both: each copy's facade is a row of its own, named after the copy
const names = mode === "both" ? dirs.flatMap((d) => [d, d + FACADE]) : dirs
for (const d of names) rows[d] = await make(d)
const res = await interleave(rows, { rounds: Number(process.env["ROUNDS"] ?? 1000), block: 4, warmup: Number(process.env["WARMUP"] ?? 1000) })
for (const d of names) {
  const first = d.endsWith(FACADE) ? dirs[0]! + FACADE : dirs[0]!
  const a = compare(res[d]!, res["floor"]!)
  const b = compare(res[d]!, res[first]!)
  console.log(`${d}: +${a.addedUs.toFixed(1)} µs, CPU +${a.addedCpuUs.toFixed(1)} µs${d === first ? "" : `; vs ${first}: ${b.addedUs.toFixed(1)} µs, CPU ${b.addedCpuUs.toFixed(1)} µs`}`)
}
client.destroy()
server.close()
for (const rt of runtimes) await rt.dispose()
for (const f of facades) await f.destroy()
