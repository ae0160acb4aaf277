/**
 * How far the mux's stream is from the least any stream of its shape can add:
 * `node bench/stream-floor.ts` (not part of `npm run bench`; ROUNDS=800).
 *
 * Interleaved in one process, over the real SDK and the child-process fake
 * (bench/sdk-harness.ts), each row's time to its first `contentBlockDelta`
 * against the SDK's own iterator:
 * - `BedrockRuntime.converseStream`: an Effect stream over the SDK's
 *   iterator, a callback per pull (the sdk suite's Effect-stream floor);
 * - `minimal`: the mux's shape with no routing: one channel whose first pull
 *   is one callback that sends and reads the iterator to the first content
 *   event (as the mux's raw attempt does), then a callback per event;
 * - `mux.converseStream` at defaults.
 * The gap between `minimal` and the mux is what the mux's own code costs
 * before the first token: routing, deadlines, bookkeeping.
 */
import { type ConverseStreamOutput, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime"
import { Cause, Channel, Context, Effect, Layer, ManagedRuntime, type Pull, Stream } from "effect"
import { performance } from "node:perf_hooks"
import { BedrockMux, BedrockRuntime } from "../src/index.ts"
import { compare, interleave, keepAliveClient, messages, startServer } from "./sdk-harness.ts"

const server = await startServer()
const client = keepAliveClient(server)
const models = [{ modelId: "bench-a", weight: 3 }, { modelId: "bench-b", weight: 1 }]
const runtime = ManagedRuntime.make(BedrockMux.layer({ models }).pipe(Layer.provideMerge(BedrockRuntime.layerClient(client))))
const context = await runtime.context()
const mux = Context.get(context, BedrockMux)
const bedrock = Context.get(context, BedrockRuntime)
const run = Effect.runPromiseWith(context)
const input = { modelId: "bench-a", messages }
const isContent = (ev: ConverseStreamOutput) => ev.contentBlockDelta !== undefined || ev.contentBlockStart !== undefined || ev.messageStop !== undefined

/** The mux's stream shape without routing. */
const minimal = (): Stream.Stream<ConverseStreamOutput, Error> =>
  Stream.fromChannel(Channel.fromTransform(() =>
    Effect.sync(() => {
      let events: AsyncIterator<ConverseStreamOutput> | undefined
      const first = Effect.callback<ReadonlyArray<ConverseStreamOutput>, Error>((resume) => {
        const controller = new AbortController()
        const open = async () => {
          const res = await client.send(new ConverseStreamCommand(input), { abortSignal: controller.signal })
          const it = res.stream![Symbol.asyncIterator]()
          events = it
          const head: Array<ConverseStreamOutput> = []
          while (true) {
            const r = await it.next()
            if (r.done === true) throw new Error("the stream ended before its first content event")
            head.push(r.value)
            if (isContent(r.value)) return head
          }
        }
        open().then((head) => resume(Effect.succeed(head)), (e) => resume(Effect.fail(e as Error)))
      })
      const rest = Effect.callback<ReadonlyArray<ConverseStreamOutput>, Error | Cause.Done>((resume) => {
        events!.next().then((r) => resume(r.done === true ? Cause.done() : Effect.succeed([r.value])), (e) => resume(Effect.fail(e as Error)))
      })
      return Effect.suspend(() => (events === undefined ? first : rest)) as unknown as Pull.Pull<readonly [ConverseStreamOutput, ...Array<ConverseStreamOutput>], Error>
    })
  ))

const firstToken = <E>(stream: Stream.Stream<ConverseStreamOutput | object, E>) => async () => {
  const t0 = performance.now()
  let first = -1
  await run(Stream.runForEach(stream, (ev) => {
    if (first < 0 && "contentBlockDelta" in ev && ev.contentBlockDelta !== undefined) first = performance.now()
    return Effect.void
  }))
  return (first - t0) * 1000
}

const rounds = Number(process.env["ROUNDS"] ?? 800)
const rows = await interleave({
  direct: async () => {
    const t0 = performance.now()
    const res = await client.send(new ConverseStreamCommand(input), { abortSignal: new AbortController().signal })
    let first = -1
    for await (const ev of res.stream ?? []) if (first < 0 && ev.contentBlockDelta !== undefined) first = performance.now()
    return (first - t0) * 1000
  },
  runtime: () => firstToken(bedrock.converseStream(input))(),
  minimal: () => firstToken(minimal())(),
  mux: () => firstToken(mux.converseStream({ messages }))()
}, { rounds, block: 4, warmup: 800 })
const line = (name: string, row: string, base: string) => {
  const c = compare(rows[row]!, rows[base]!)
  console.log(`${name}: ${c.addedUs >= 0 ? "+" : ""}${c.addedUs.toFixed(1)} µs to the first token, CPU ${c.addedCpuUs >= 0 ? "+" : ""}${c.addedCpuUs.toFixed(1)} µs a stream`)
}
console.log(`${rounds} rounds × 4 streams a row, interleaved; against the SDK's own iterator:`)
line("BedrockRuntime.converseStream", "runtime", "direct")
line("minimal (the mux's shape, no routing)", "minimal", "direct")
line("mux.converseStream", "mux", "direct")
line("mux.converseStream over minimal", "mux", "minimal")
await runtime.dispose()
server.close()
process.exit(0)
