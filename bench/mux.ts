/**
 * Mux overhead on the zero-latency simulator: added latency per call of
 * `mux.converse` over `BedrockRuntime.converse`, throughput at concurrency
 * 1000, and heap after one million requests versus after ten thousand.
 */
import { Effect, Layer } from "effect"
import { BedrockMux } from "../src/BedrockMux.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import { concat, quantile } from "./stats.ts"

const request = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 16 } }


const layers = () => {
  const sim = BedrockSimulator.layer({ models: { a: {}, b: {} } }, { logLimit: 0 })
  return BedrockMux.layer({ models: [{ modelId: "a", weight: 3 }, { modelId: "b", weight: 1 }] }).pipe(
    Layer.provideMerge(sim)
  )
}

const gc = () => (globalThis as { gc?: () => void }).gc?.()
const heapMB = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed / 1024 / 1024
}

export const run = (options: { readonly calls: number; readonly heapRequests: number }) =>
  Effect.gen(function*() {
    const runtime = yield* BedrockRuntime
    const mux = yield* BedrockMux
    const direct = Effect.asVoid(runtime.converse({ ...request, modelId: "a" }))
    const routed = Effect.asVoid(mux.converse(request))

    const timeEach = (eff: Effect.Effect<void, unknown>, n: number) =>
      Effect.gen(function*() {
        const out = new Float64Array(n)
        for (let i = 0; i < n; i++) {
          const t0 = performance.now()
          yield* eff
          out[i] = (performance.now() - t0) * 1000
        }
        return out
      })
    // warm up both paths, then interleave rounds so drift hits both alike
    yield* timeEach(direct, 20_000)
    yield* timeEach(routed, 20_000)
    const d: Array<Float64Array> = []
    const m: Array<Float64Array> = []
    for (let r = 0; r < 5; r++) {
      d.push(yield* timeEach(direct, options.calls / 5))
      m.push(yield* timeEach(routed, options.calls / 5))
    }
    const dd = concat(d)
    const mm = concat(m)
    const latency = {
      directP50us: quantile(dd, 0.5),
      directP99us: quantile(dd, 0.99),
      muxP50us: quantile(mm, 0.5),
      muxP99us: quantile(mm, 0.99),
      addedP50us: quantile(mm, 0.5) - quantile(dd, 0.5),
      addedP99us: quantile(mm, 0.99) - quantile(dd, 0.99)
    }

    // throughput at concurrency 1000
    const total = 200_000
    const t0 = performance.now()
    yield* Effect.forEach(Array.from({ length: total }), () => routed, { concurrency: 1000, discard: true })
    const seconds = (performance.now() - t0) / 1000
    const throughput = { concurrency: 1000, requests: total, seconds, requestsPerSecond: total / seconds }

    // heap: after 10k vs after 1M (bounded stats: nothing grows per request)
    const batch = (n: number) => Effect.forEach(Array.from({ length: n }), () => routed, { concurrency: 100, discard: true })
    yield* batch(10_000)
    const after10k = heapMB()
    let done = 10_000
    while (done < options.heapRequests) {
      const n = Math.min(100_000, options.heapRequests - done)
      yield* batch(n)
      done += n
    }
    const after1M = heapMB()
    const heap = { requests: done, after10kMB: after10k, afterMB: after1M, growthMB: after1M - after10k, gcExposed: typeof (globalThis as { gc?: unknown }).gc === "function" }
    return { latency, throughput, heap }
  }).pipe(Effect.provide(layers()))
