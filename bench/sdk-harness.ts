/**
 * What the `sdk` suite (and the profiling scripts beside it) share: the
 * child-process fake, the SDK clients pointed at it, and the interleaved
 * A/B measurement.
 *
 * Interleaving: every round runs each variant for one small block of
 * sequential calls, in an order that rotates from round to round, so drift
 * (other engineers' jobs on this 2-core box, GC, JIT) hits every variant
 * alike. A row's added latency is the median over all pairs of
 * (its i-th call in a round − the baseline's i-th call in the same round);
 * its added CPU is the median over rounds of (its block's CPU per call − the
 * baseline's), with CPU from `process.cpuUsage()` (user + system) around each
 * block.
 */
import { BedrockRuntimeClient, type BedrockRuntimeClientConfig } from "@aws-sdk/client-bedrock-runtime"
import { type ChildProcess, fork } from "node:child_process"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { defaultRequestHandler } from "../src/index.ts"
import { quantile } from "./stats.ts"

export const credentials = { accessKeyId: "fake", secretAccessKey: "fake" }
export const messages = [{ role: "user" as const, content: [{ text: "Hello there, model" }] }]

/** The fake in its child process. */
export interface Server {
  readonly h1: string
  readonly h2: string
  /** requests to a `hold…` model the fake is holding */
  readonly held: () => Promise<number>
  /** answers every held request */
  readonly release: () => Promise<number>
  readonly connections: () => Promise<{ readonly h1: number; readonly h2: number }>
  readonly close: () => void
}

export const startServer = async (): Promise<Server> => {
  const child: ChildProcess = fork(path.join(import.meta.dirname, "sdk-server.ts"), [], {
    // no --cpu-prof / --inspect of the parent in the child
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const next = <A>(key: string): Promise<A> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (key in m) {
          child.off("message", onMessage)
          child.off("exit", onExit)
          resolve(m[key] as A)
        }
      }
      const onExit = (code: number | null) => reject(new Error(`fake server exited (${code})`))
      child.on("message", onMessage)
      child.once("exit", onExit)
    })
  const ready = await next<{ h1: number; h2: number }>("ready")
  const ask = <A>(cmd: string, key: string) => {
    const p = next<A>(key)
    child.send({ cmd })
    return p
  }
  return {
    h1: `http://127.0.0.1:${ready.h1}`,
    h2: `http://127.0.0.1:${ready.h2}`,
    held: () => ask("held", "held"),
    release: () => ask("release", "released"),
    connections: () => ask("connections", "connections"),
    close: () => {
      child.disconnect()
      child.kill()
    }
  }
}

const base = (endpoint: string): BedrockRuntimeClientConfig => ({ region: "us-east-1", endpoint, credentials })

/** A client on our default transport (`defaultRequestHandler()`: keep-alive HTTP/1.1), SDK retries off. */
export const keepAliveClient = (server: Server): BedrockRuntimeClient =>
  new BedrockRuntimeClient({ ...base(server.h1), maxAttempts: 1, requestHandler: defaultRequestHandler() })

/** A default SDK client (its own HTTP/2 handler: a new connection per call), SDK retries off. */
export const defaultSdkClient = (server: Server): BedrockRuntimeClient =>
  new BedrockRuntimeClient({ ...base(server.h2), maxAttempts: 1 })

/**
 * One variant of an A/B run: one call, awaited. Its sample is the call's wall
 * time, unless it resolves to a number: then that number (µs) is the sample
 * (time to first token, measured inside the call).
 */
export type Call = () => Promise<unknown>

export interface Samples {
  /** µs per call, round-major: round r's calls are [r·block, (r+1)·block) */
  readonly latency: Float64Array
  /** CPU µs per call of each round's block */
  readonly cpu: Float64Array
}

const cpuNow = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/**
 * Runs `rounds` rounds; in each, every variant runs `block` sequential calls,
 * in an order rotated by one each round. `warmup` rounds run first and are
 * dropped.
 */
export const interleave = async (
  variants: Readonly<Record<string, Call>>,
  options: { readonly rounds: number; readonly block: number; readonly warmup: number; readonly onRound?: (r: number) => void }
): Promise<Record<string, Samples>> => {
  const names = Object.keys(variants)
  const out: Record<string, { latency: Float64Array; cpu: Float64Array }> = {}
  for (const n of names) out[n] = { latency: new Float64Array(options.rounds * options.block), cpu: new Float64Array(options.rounds) }
  for (let r = -options.warmup; r < options.rounds; r++) {
    const shift = ((r % names.length) + names.length) % names.length
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + shift) % names.length]!
      const call = variants[name]!
      const s = out[name]!
      const c0 = cpuNow()
      for (let i = 0; i < options.block; i++) {
        const t0 = performance.now()
        const v = await call()
        const t1 = performance.now()
        if (r >= 0) s.latency[r * options.block + i] = typeof v === "number" ? v : (t1 - t0) * 1000
      }
      if (r >= 0) s.cpu[r] = (cpuNow() - c0) / options.block
    }
    if (r >= 0) options.onRound?.(r)
  }
  return out
}

const median = (xs: ArrayLike<number>) => quantile(xs, 0.5)

/** One row against the baseline. */
export interface Row {
  readonly p50us: number
  readonly p99us: number
  /** median over rounds of the block's CPU µs per call */
  readonly cpuUs: number
  /** pairwise median of (row − baseline) latency, µs */
  readonly addedUs: number
  /** median over rounds of (row − baseline) CPU per call, µs */
  readonly addedCpuUs: number
  /** `addedUs` over the first and the second half of the rounds: how stable the figure is */
  readonly addedUsHalves: readonly [number, number]
}

export const compare = (row: Samples, baseline: Samples): Row => {
  const d = new Float64Array(row.latency.length)
  for (let i = 0; i < d.length; i++) d[i] = row.latency[i]! - baseline.latency[i]!
  const c = new Float64Array(row.cpu.length)
  for (let i = 0; i < c.length; i++) c[i] = row.cpu[i]! - baseline.cpu[i]!
  const h = Math.floor(d.length / 2)
  return {
    p50us: median(row.latency),
    p99us: quantile(row.latency, 0.99),
    cpuUs: median(row.cpu),
    addedUs: median(d),
    addedCpuUs: median(c),
    addedUsHalves: [median(d.subarray(0, h)), median(d.subarray(h))]
  }
}

/** Wall time of `n` calls with `concurrency` in flight, in calls per second. */
export const throughput = async (call: Call, n: number, concurrency: number): Promise<number> => {
  let next = 0
  const worker = async () => {
    while (next++ < n) await call()
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  return n / ((performance.now() - t0) / 1000)
}

export const gc = () => (globalThis as { gc?: () => void }).gc?.()
export const heapBytes = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
