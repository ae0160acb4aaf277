/**
 * Transport: the real `@aws-sdk/client-bedrock-runtime` over loopback to
 * `FakeBedrock` (zero latency, one model), for three request handlers:
 *
 * - the SDK's default (`NodeHttp2Handler` with `disableConcurrentStreams: true`:
 *   a new connection and h2 session per call),
 * - ours (`clientConfig(...)`, i.e. what `BedrockRuntime.layer` builds: a
 *   keep-alive HTTP/1.1 `NodeHttpHandler`),
 * - HTTP/2 multiplexed (`NodeHttp2Handler({ disableConcurrentStreams: false })`).
 *
 * Per handler: 200 warm-up calls, `calls` sequential Converse calls, `calls`
 * calls with 64 in flight, the connections the fake accepted, and a streaming
 * check: one ConverseStream must succeed, and a stream the server cuts after
 * two deltas must FAIL, both at the SDK level (the raw `for await`) and
 * through our `BedrockRuntime` service (which adds `requireMessageStop`).
 *
 * The fake runs in this process: client and server share one event loop, so
 * absolute figures are lower than against a separate server; compare ratios.
 */
import {
  BedrockRuntimeClient,
  type BedrockRuntimeClientConfig,
  ConverseCommand,
  ConverseStreamCommand
} from "@aws-sdk/client-bedrock-runtime"
import { NodeHttp2Handler } from "@smithy/node-http-handler"
import { Effect, Exit, Stream } from "effect"
import * as os from "node:os"
import { performance } from "node:perf_hooks"
import { clientConfig, make as makeRuntime } from "../src/BedrockRuntime.ts"
import * as FakeBedrock from "../src/testing/FakeBedrock.ts"
import { quantile } from "./stats.ts"

const MODEL = "bench-model"
const CUT_MODEL = "cut-model"
const WARMUP = 200
const CONCURRENCY = 64
const messages = [{ role: "user" as const, content: [{ text: "Hello there, model" }] }]
const credentials = { accessKeyId: "fake", secretAccessKey: "fake" }

/** The streaming check of one handler. */
export interface Streaming {
  /** A full ConverseStream ended with messageStop and metadata. */
  readonly fullStreamOk: boolean
  /** The raw SDK iteration over a cut stream threw (rather than ending silently). */
  readonly sdkCutFails: boolean
  /** What the SDK iteration did on the cut: the error it threw, or "ended silently". */
  readonly sdkCutOutcome: string
  /** Events the SDK delivered from the cut stream before it failed or ended. */
  readonly sdkCutEvents: ReadonlyArray<string>
  /** Our `BedrockRuntime.converseStream` over this client failed the cut stream. */
  readonly serviceCutFails: boolean
  /** The reason our service reported for the cut. */
  readonly serviceCutReason: string
  /**
   * The server's TCP connection destroyed after two deltas (a connection
   * reset, not a stream reset): did the raw SDK iteration throw?
   */
  readonly sdkResetFails: boolean
  readonly sdkResetOutcome: string
  readonly sdkResetEvents: ReadonlyArray<string>
  /** The same reset through our `BedrockRuntime.converseStream`. */
  readonly serviceResetFails: boolean
  readonly serviceResetReason: string
}

/** One handler's figures. */
export interface ModeResult {
  readonly mode: string
  readonly seqPerSecond: number
  readonly seqP50ms: number
  readonly seqP99ms: number
  readonly seqMeanMs: number
  readonly c64PerSecond: number
  readonly c64P50ms: number
  readonly c64P99ms: number
  /** TCP connections the fake accepted over warm-up + sequential + concurrent calls. */
  readonly connections: number
  readonly connectionsWarmup: number
  readonly connectionsSeq: number
  readonly connectionsC64: number
  /** At the SDK level: a full stream succeeds, and a cut stream (stream reset) and a connection reset both throw. */
  readonly streamingCorrect: boolean
  readonly streaming: Streaming
}

interface Mode {
  readonly key: "sdk-default-h2" | "ours-h1" | "h2-mux"
  readonly mode: string
  readonly config: (endpoint: string) => BedrockRuntimeClientConfig
}

const base = (endpoint: string): BedrockRuntimeClientConfig => ({ region: "us-east-1", endpoint, credentials })

const MODES: ReadonlyArray<Mode> = [
  {
    key: "sdk-default-h2",
    mode: "sdk default (HTTP/2, connection per call)",
    config: (endpoint) => ({ ...base(endpoint), maxAttempts: 1 })
  },
  {
    key: "ours-h1",
    mode: "ours: keep-alive HTTP/1.1 (defaultRequestHandler)",
    config: (endpoint) => clientConfig(base(endpoint))
  },
  {
    key: "h2-mux",
    mode: "HTTP/2 multiplexed (NodeHttp2Handler disableConcurrentStreams:false)",
    config: (endpoint) => ({
      ...base(endpoint),
      maxAttempts: 1,
      requestHandler: new NodeHttp2Handler({ disableConcurrentStreams: false })
    })
  }
]

const mean = (xs: Float64Array): number => xs.reduce((a, b) => a + b, 0) / xs.length

const gc = () => (globalThis as { gc?: () => void }).gc?.()

const converseOnce = async (client: BedrockRuntimeClient): Promise<void> => {
  const out = await client.send(new ConverseCommand({ modelId: MODEL, messages }))
  if (out.output?.message === undefined) throw new Error("Converse returned no output.message")
}

/** `n` calls, `concurrency` in flight; returns each call's latency (ms) and the wall time (ms). */
const runCalls = async (
  client: BedrockRuntimeClient,
  n: number,
  concurrency: number
): Promise<{ readonly latencies: Float64Array; readonly wallMs: number }> => {
  const latencies = new Float64Array(n)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= n) return
      const t0 = performance.now()
      await converseOnce(client)
      latencies[i] = performance.now() - t0
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return { latencies, wallMs: performance.now() - t0 }
}

const describeError = (e: unknown): string => {
  if (typeof e !== "object" || e === null) return String(e)
  const err = e as { name?: unknown; code?: unknown; message?: unknown }
  return [err.name, err.code, err.message].filter((x) => typeof x === "string" && x !== "").join(" ")
}

/** Reads a whole ConverseStream with the raw SDK, returning the event names and how it ended. */
const sdkStream = async (
  client: BedrockRuntimeClient,
  modelId: string
): Promise<{ readonly events: Array<string>; readonly error: unknown; readonly threw: boolean }> => {
  const events: Array<string> = []
  try {
    const res = await client.send(new ConverseStreamCommand({ modelId, messages }))
    for await (const ev of res.stream ?? []) {
      events.push(eventName(ev))
    }
    return { events, error: undefined, threw: false }
  } catch (error) {
    return { events, error, threw: true }
  }
}

const STALL_MODEL = "stall-model"
const STREAM_SCRIPT = {
  models: {
    [MODEL]: { answer: "one two three four five" },
    [CUT_MODEL]: { answer: "one two three four five", faults: [{ do: { kind: "cut" as const, afterTokens: 2 } }] },
    [STALL_MODEL]: { answer: "one two three four five", faults: [{ do: { kind: "stall" as const, afterTokens: 2 } }] }
  }
}

const eventName = (ev: object): string =>
  Object.keys(ev).find((k) => (ev as Record<string, unknown>)[k] !== undefined) ?? "?"

/** "succeeded", a BedrockError's reason with its fields, another error's tag, or "defect". */
const reasonString = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "succeeded"
  const error = Exit.findErrorOption(exit)
  if (error._tag === "None") return "defect or interruption"
  const e = error.value as { readonly _tag?: string; readonly reason?: { readonly _tag: string } }
  if (e.reason === undefined) return String(e._tag ?? e)
  const { _tag, ...fields } = e.reason
  return `${_tag} ${JSON.stringify(fields)}`
}

/**
 * A connection reset mid-stream: the fake stalls after two deltas and, once
 * the client has both, the fake is closed (every socket destroyed). A fresh
 * fake and client per check, since closing is final. Gives up after 5 s.
 */
const checkReset = async (
  mode: Mode
): Promise<Pick<Streaming, "sdkResetFails" | "sdkResetOutcome" | "sdkResetEvents" | "serviceResetFails" | "serviceResetReason">> => {
  const withFake = async <A>(f: (client: BedrockRuntimeClient, fake: FakeBedrock.FakeBedrockServer) => Promise<A>) => {
    const fake = await FakeBedrock.start(STREAM_SCRIPT)
    const client = new BedrockRuntimeClient(mode.config(fake.url))
    try {
      return await f(client, fake)
    } finally {
      client.destroy()
      await fake.close()
    }
  }
  const sdk = await withFake(async (client, fake) => {
    const events: Array<string> = []
    const controller = new AbortController()
    const guard = setTimeout(() => controller.abort(), 5_000)
    try {
      const res = await client.send(new ConverseStreamCommand({ modelId: STALL_MODEL, messages }), {
        abortSignal: controller.signal
      })
      for await (const ev of res.stream ?? []) {
        events.push(eventName(ev))
        if (events.filter((e) => e === "contentBlockDelta").length === 2) void fake.close()
      }
      return { events, outcome: controller.signal.aborted ? "hung (aborted after 5 s)" : "ended silently", threw: false }
    } catch (error) {
      return { events, outcome: controller.signal.aborted ? "hung (aborted after 5 s)" : describeError(error), threw: !controller.signal.aborted }
    } finally {
      clearTimeout(guard)
    }
  })
  const service = await withFake(async (client, fake) => {
    let deltas = 0
    const exit = await Effect.runPromise(
      makeRuntime(client).converseStream({ modelId: STALL_MODEL, messages }).pipe(
        Stream.tap((ev) =>
          Effect.sync(() => {
            if (ev.contentBlockDelta !== undefined && ++deltas === 2) void fake.close()
          })
        ),
        Stream.runDrain,
        Effect.timeout("5 seconds"),
        Effect.exit
      )
    )
    const reason = reasonString(exit)
    // a timeout means the stream neither failed nor ended: not a correct failure
    return { fails: Exit.isFailure(exit) && reason !== "TimeoutError" && !reason.startsWith("defect"), reason }
  })
  return {
    sdkResetFails: sdk.threw,
    sdkResetOutcome: sdk.outcome,
    sdkResetEvents: sdk.events,
    serviceResetFails: service.fails,
    serviceResetReason: service.reason
  }
}

const checkStreaming = async (client: BedrockRuntimeClient, mode: Mode): Promise<Streaming> => {
  const full = await sdkStream(client, MODEL)
  const fullStreamOk = !full.threw && full.events.includes("messageStop") && full.events.includes("metadata")
  const cut = await sdkStream(client, CUT_MODEL)
  const service = makeRuntime(client)
  const exit = await Effect.runPromise(
    Effect.exit(Stream.runDrain(service.converseStream({ modelId: CUT_MODEL, messages })))
  )
  const serviceCutReason = reasonString(exit)
  const reset = await checkReset(mode)
  return {
    fullStreamOk,
    sdkCutFails: cut.threw,
    sdkCutOutcome: cut.threw ? describeError(cut.error) : "ended silently",
    sdkCutEvents: cut.events,
    serviceCutFails: Exit.isFailure(exit),
    serviceCutReason,
    ...reset
  }
}

const runMode = async (mode: Mode, calls: number): Promise<ModeResult> => {
  gc()
  const fake = await FakeBedrock.start({ models: { [MODEL]: { answer: "Hello from the fake." } } })
  const client = new BedrockRuntimeClient(mode.config(fake.url))
  try {
    await runCalls(client, WARMUP, 1)
    const afterWarmup = fake.connections()
    const seq = await runCalls(client, calls, 1)
    const afterSeq = fake.connections()
    const c64 = await runCalls(client, calls, CONCURRENCY)
    const afterC64 = fake.connections()
    const failed = fake.attempts().filter((a) => a.outcome !== "success").length
    if (failed > 0) throw new Error(`${mode.mode}: ${failed} calls did not succeed`)
    // the streaming check swaps in a script with a cut stream (this resets counts, so it comes last)
    fake.reset(STREAM_SCRIPT)
    const streaming = await checkStreaming(client, mode)
    return {
      mode: mode.mode,
      seqPerSecond: calls / (seq.wallMs / 1000),
      seqP50ms: quantile(seq.latencies, 0.5),
      seqP99ms: quantile(seq.latencies, 0.99),
      seqMeanMs: mean(seq.latencies),
      c64PerSecond: calls / (c64.wallMs / 1000),
      c64P50ms: quantile(c64.latencies, 0.5),
      c64P99ms: quantile(c64.latencies, 0.99),
      connections: afterC64,
      connectionsWarmup: afterWarmup,
      connectionsSeq: afterSeq - afterWarmup,
      connectionsC64: afterC64 - afterSeq,
      streamingCorrect: streaming.fullStreamOk && streaming.sdkCutFails && streaming.sdkResetFails,
      streaming
    }
  } finally {
    client.destroy()
    await fake.close()
  }
}

const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`

const conclude = (results: ReadonlyArray<ModeResult>): string => {
  const byMode = (i: number) => results[i]!
  const dflt = byMode(0)
  const ours = byMode(1)
  const mux = byMode(2)
  const fastestSeq = [...results].sort((a, b) => b.seqPerSecond - a.seqPerSecond)[0]!
  const fastestC64 = [...results].sort((a, b) => b.c64PerSecond - a.c64PerSecond)[0]!
  const silentReset = results.filter((r) => !r.streaming.sdkResetFails).map((r) => `"${r.mode}"`)
  const silentCut = results.filter((r) => !r.streaming.sdkCutFails).map((r) => `"${r.mode}"`)
  const serviceOk = results.every((r) => r.streaming.fullStreamOk && r.streaming.serviceCutFails && r.streaming.serviceResetFails)
  const silentNote = (what: string, modes: ReadonlyArray<string>) =>
    modes.length > 0 ? `${what} ends SILENTLY at the SDK level on ${modes.join(" and ")}.` : `${what} throws at the SDK level on every handler.`
  return [
    `Fastest sequentially: "${fastestSeq.mode}"; fastest at 64 in flight: "${fastestC64.mode}".`,
    `Ours (keep-alive HTTP/1.1) against the SDK default: ${x(ours.seqPerSecond, dflt.seqPerSecond)} the sequential throughput`,
    `(p50 ${ours.seqP50ms.toFixed(2)} vs ${dflt.seqP50ms.toFixed(2)} ms) and ${x(ours.c64PerSecond, dflt.c64PerSecond)} at c64,`,
    `with ${ours.connections} connection(s) opened against ${dflt.connections} (one per call).`,
    `HTTP/2 multiplexed: ${x(mux.seqPerSecond, dflt.seqPerSecond)} / ${x(mux.c64PerSecond, dflt.c64PerSecond)} the default's`,
    `sequential / c64 throughput on ${mux.connections} connection(s).`,
    `Streaming: a full ConverseStream succeeds on every handler.`,
    ours.streaming.sdkCutFails && ours.streaming.sdkResetFails
      ? `On ours, streaming is correct: a stream cut after 2 deltas FAILS at the SDK level (${ours.streaming.sdkCutOutcome}),`
        + ` and so does a connection reset mid-stream (${ours.streaming.sdkResetOutcome}).`
      : `WARNING: on ours a broken stream did not fail at the SDK level (cut: ${ours.streaming.sdkCutOutcome}; reset: ${ours.streaming.sdkResetOutcome}).`,
    `On HTTP/2 the fake's cut is a stream reset (RST_STREAM), which the SDK throws (${dflt.streaming.sdkCutOutcome});`,
    silentNote("a connection reset mid-stream", silentReset),
    silentCut.length > 0 ? silentNote("The cut", silentCut) : "",
    serviceOk
      ? `Our BedrockRuntime.converseStream fails every broken stream anyway, on every handler: its check for messageStop turns the silent end into`
        + ` ${dflt.streaming.serviceResetReason} on the default, and ours reports ${ours.streaming.serviceResetReason}.`
      : `WARNING: our BedrockRuntime.converseStream did not fail every broken stream on every handler.`,
    `The fake ran in the same process as the client (one event loop, ${os.cpus().length} CPUs), so absolute`,
    `figures are lower than against a separate server or real Bedrock; compare the ratios.`
  ].filter((line) => line !== "").join(" ")
}

/**
 * Runs the transport suite: `calls` sequential and `calls` concurrent
 * Converse calls per handler, plus the streaming check.
 */
export const run = async (options: { readonly calls: number }): Promise<object> => {
  const modes: Array<ModeResult> = []
  for (const mode of MODES) {
    process.stderr.write(`  transport: ${mode.mode}...\n`)
    modes.push(await runMode(mode, options.calls))
  }
  return { calls: options.calls, warmup: WARMUP, concurrency: CONCURRENCY, modes, conclusion: conclude(modes) }
}
