/**
 * `npm run bench -- cold`: why the mux's own cost on the real SDK path is
 * several times what the simulator shows. The same code costs more CPU when
 * it runs right after the event loop sat idle waiting for I/O (caches and
 * branch predictors cold, the core possibly clocked down) than when it runs
 * back to back. A real call always waits for the network between the mux's
 * work before the send and its work after the answer; the zero-latency
 * simulator never does.
 *
 * Rows, interleaved in rounds (order rotated), CPU per call from
 * `process.cpuUsage`, on a Bedrock runtime whose `sendConverse` answers at
 * once, in two modes:
 * - `hot`: the answer comes on the next `setImmediate` (no idle time);
 * - `idle`: the answer comes after a 1 ms timer (the loop sleeps, as on I/O).
 *
 * The rows: `callback` (`Effect.runPromiseWith(context)` of an `Effect.callback`
 * around the send, the floor of any Effect wrapper that can abort), and
 * `mux.converse` (events, metrics at their defaults; no tracer). The mux's
 * added CPU per call is `mux − callback` in each mode; their ratio is how
 * much dearer the same work is after idle time.
 *
 * A fixed piece of plain JavaScript (200 small objects) is timed the same two
 * ways, as the machine's own figure for that ratio.
 */
import type { ConverseCommandOutput } from "@aws-sdk/client-bedrock-runtime"
import { Context, Effect, Layer, ManagedRuntime, Stream } from "effect"
import { performance } from "node:perf_hooks"
import { BedrockMux, BedrockRuntime } from "../src/index.ts"
import { quantile } from "./stats.ts"

export interface Options {
  readonly quick: boolean
}

const output: ConverseCommandOutput = {
  output: { message: { role: "assistant", content: [{ text: "hi" }] } },
  stopReason: "end_turn",
  usage: { inputTokens: 3, outputTokens: 1, totalTokens: 4 },
  metrics: { latencyMs: 1 },
  $metadata: { httpStatusCode: 200 }
}
const messages = [{ role: "user" as const, content: [{ text: "hello" }] }]

type Mode = "hot" | "idle"
const answer = (mode: Mode) => <A>(a: A): Promise<A> =>
  new Promise<A>((resolve) => (mode === "hot" ? setImmediate(() => resolve(a)) : setTimeout(() => resolve(a), 1)))

const median = (xs: ReadonlyArray<number>) => quantile(Float64Array.from(xs), 0.5)

/** The machine's own hot/idle ratio: the same plain JavaScript, timed after a setImmediate and after a 1 ms timer. */
const plainWork = async (rounds: number) => {
  const work = () => {
    const o: Array<{ a: number; b: string }> = []
    for (let i = 0; i < 200; i++) o.push({ a: i, b: String(i) })
    return o.length
  }
  const timed = async (mode: Mode) => {
    const xs: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      await answer(mode)(undefined)
      const t0 = performance.now()
      work()
      xs.push((performance.now() - t0) * 1000)
    }
    return median(xs)
  }
  await timed("hot")
  return { hotUs: await timed("hot"), idleUs: await timed("idle") }
}

export const run = async (options: Options) => {
  const n = options.quick ? 200 : 500
  const rounds = options.quick ? 15 : 40
  const modes: ReadonlyArray<Mode> = ["hot", "idle"]
  const rows: Record<string, () => Promise<unknown>> = {}
  const runtimes: Array<ManagedRuntime.ManagedRuntime<unknown, unknown>> = []
  for (const mode of modes) {
    const reply = answer(mode)
    const service = BedrockRuntime.of({
      converse: () => Effect.promise(() => reply(output)),
      converseStream: () => Stream.die("not used"),
      sendConverse: () => reply(output)
    })
    const rt = ManagedRuntime.make(
      BedrockMux.layer({ models: [{ modelId: "bench-a", weight: 3 }, { modelId: "bench-b", weight: 1 }] }).pipe(
        Layer.provideMerge(Layer.succeed(BedrockRuntime, service))
      )
    )
    runtimes.push(rt as ManagedRuntime.ManagedRuntime<unknown, unknown>)
    const context = await rt.context()
    const mux = Context.get(context, BedrockMux)
    const runWith = Effect.runPromiseWith(context)
    rows[`callback/${mode}`] = () =>
      runWith(Effect.callback<ConverseCommandOutput>((resume) => {
        const controller = new AbortController()
        reply(output).then((out) => resume(Effect.succeed(out)))
        return Effect.sync(() => controller.abort())
      }))
    rows[`mux/${mode}`] = () => runWith(mux.converse({ messages }))
  }
  try {
    const cpu: Record<string, Array<number>> = Object.fromEntries(Object.keys(rows).map((k) => [k, []]))
    // the code optimised first (measured: the mux's CPU per call settles after ~10k calls), on the hot rows: the
    // same code serves both modes
    for (const k of Object.keys(rows).filter((k) => k.endsWith("/hot"))) for (let j = 0; j < 20_000; j++) await rows[k]!()
    const warmup = 3
    // one mode at a time (a hot block right after an idle one would start cold), its rows interleaved
    for (const mode of modes) {
      const keys = Object.keys(rows).filter((k) => k.endsWith(`/${mode}`))
      for (let r = 0; r < rounds + warmup; r++) {
        for (let i = 0; i < keys.length; i++) {
          const k = keys[(i + r) % keys.length]!
          const c0 = process.cpuUsage()
          for (let j = 0; j < n; j++) await rows[k]!()
          const c = process.cpuUsage(c0)
          if (r >= warmup) cpu[k]!.push((c.user + c.system) / n)
        }
      }
    }
    const of = (k: string) => median(cpu[k]!)
    const byMode = Object.fromEntries(modes.map((m) => [m, {
      callbackCpuUs: of(`callback/${m}`),
      muxCpuUs: of(`mux/${m}`),
      muxAddedCpuUs: of(`mux/${m}`) - of(`callback/${m}`)
    }])) as Record<Mode, { callbackCpuUs: number; muxCpuUs: number; muxAddedCpuUs: number }>
    const plain = await plainWork(options.quick ? 500 : 2000)
    return {
      setup: { callsPerBlock: n, rounds, runtime: "BedrockRuntime.of({ sendConverse }) answering at once: on setImmediate (hot) or after a 1 ms timer (idle)" },
      ...byMode,
      idleOverHot: byMode.idle.muxAddedCpuUs / byMode.hot.muxAddedCpuUs,
      plainWork: { ...plain, idleOverHot: plain.idleUs / plain.hotUs }
    }
  } finally {
    for (const rt of runtimes) await rt.dispose()
  }
}
