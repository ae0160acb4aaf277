/**
 * Streaming overhead on the zero-latency simulator: the time to first
 * content event of `mux.converseStream` over `BedrockRuntime.converseStream`
 * (wall time from subscribing to the first `contentBlockDelta`), the time to
 * the end of the stream, and streams per second at concurrency 500.
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { Effect, Layer, Stream } from "effect"
import { BedrockMux } from "../src/BedrockMux.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import { concat, quantile } from "./stats.ts"

const request = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 16 } }


const layers = () => {
  const sim = BedrockSimulator.layer({ models: { a: { answer: "one two three four five six seven eight" }, b: {} } }, { logLimit: 0 })
  return BedrockMux.layer({ models: [{ modelId: "a", weight: 3 }, { modelId: "b", weight: 1 }] }).pipe(Layer.provideMerge(sim))
}

/** Wall µs to the first content event and to the end of one stream. */
const measure = <E>(stream: Stream.Stream<unknown, E>) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    let first = -1
    yield* Stream.runForEach(stream, (ev) => {
      if (first < 0 && (ev as ConverseStreamOutput).contentBlockDelta !== undefined) first = performance.now()
      return Effect.void
    })
    const end = performance.now()
    return [(first - t0) * 1000, (end - t0) * 1000] as const
  })

export const run = (options: { readonly streams: number }) =>
  Effect.gen(function*() {
    const runtime = yield* BedrockRuntime
    const mux = yield* BedrockMux
    const direct = () => runtime.converseStream({ ...request, modelId: "a" })
    const routed = () => mux.converseStream(request)

    const timeEach = <E>(make: () => Stream.Stream<unknown, E>, n: number) =>
      Effect.gen(function*() {
        const ttft = new Float64Array(n)
        const total = new Float64Array(n)
        for (let i = 0; i < n; i++) {
          const [f, t] = yield* measure(make())
          ttft[i] = f
          total[i] = t
        }
        return { ttft, total }
      })
    // warm up both paths, then interleave rounds so drift hits both alike
    yield* timeEach(direct, 5_000)
    yield* timeEach(routed, 5_000)
    const d = { ttft: [] as Array<Float64Array>, total: [] as Array<Float64Array> }
    const m = { ttft: [] as Array<Float64Array>, total: [] as Array<Float64Array> }
    for (let r = 0; r < 5; r++) {
      const a = yield* timeEach(direct, options.streams / 5)
      const b = yield* timeEach(routed, options.streams / 5)
      d.ttft.push(a.ttft)
      d.total.push(a.total)
      m.ttft.push(b.ttft)
      m.total.push(b.total)
    }
    const [dt, mt, dT, mT] = [concat(d.ttft), concat(m.ttft), concat(d.total), concat(m.total)]
    const firstToken = {
      directP50us: quantile(dt, 0.5),
      directP99us: quantile(dt, 0.99),
      muxP50us: quantile(mt, 0.5),
      muxP99us: quantile(mt, 0.99),
      addedP50us: quantile(mt, 0.5) - quantile(dt, 0.5),
      addedP99us: quantile(mt, 0.99) - quantile(dt, 0.99)
    }
    const wholeStream = {
      directP50us: quantile(dT, 0.5),
      muxP50us: quantile(mT, 0.5),
      addedP50us: quantile(mT, 0.5) - quantile(dT, 0.5),
      addedP99us: quantile(mT, 0.99) - quantile(dT, 0.99)
    }
    const total = options.streams
    const t0 = performance.now()
    yield* Effect.forEach(Array.from({ length: total }), () => Stream.runDrain(routed()), { concurrency: 500, discard: true })
    const seconds = (performance.now() - t0) / 1000
    return {
      streams: options.streams,
      eventsPerStream: 8 + 5,
      firstToken,
      wholeStream,
      throughput: { concurrency: 500, streams: total, seconds, streamsPerSecond: total / seconds }
    }
  }).pipe(Effect.provide(layers()))
