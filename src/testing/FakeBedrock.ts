/**
 * `FakeBedrock`: a real HTTP server on 127.0.0.1 that speaks the Bedrock
 * Runtime wire protocol, driven by a `SimulatorScript`. Point the real
 * `@aws-sdk/client-bedrock-runtime` at its `url` and every byte goes through
 * the SDK's own serializers, signers, parsers and transport, so tests see what
 * production sees: the exception classes, `$metadata`, event-stream framing,
 * aborts and resets.
 *
 * How it behaves:
 * - Routes `POST /model/{modelId}/converse` (JSON) and
 *   `POST /model/{modelId}/converse-stream` (`application/vnd.amazon.eventstream`
 *   frames). The model id is percent-decoded from the path, the way the SDK
 *   encodes it (`amazon.nova-lite-v1%3A0`).
 * - Also `POST /model/{modelId}/invoke` (InvokeModel) for embeddings: a body
 *   `{ "inputText": "..." }` (the Titan Text Embeddings shape) is answered
 *   with `{ "embedding": [8 numbers], "inputTextTokenCount" }`, the same
 *   text and model giving the same vector. It is planned and faulted like a
 *   Converse call (latency, errors, hang, quotas, `cut`); its attempts read
 *   `operation: "invokeModel"`. The in-memory simulator has no InvokeModel.
 * - Each call is decided by the same pure planner as the in-memory
 *   `BedrockSimulator` (per-model call counts, faults, RPM/TPM over a sliding
 *   minute, a PRNG seeded from `script.seed`), then executed with real timers.
 *   Time is milliseconds since `start` (or the last `reset`).
 * - HTTP/1.1 and HTTP/2 cleartext ("prior knowledge", the SDK's default
 *   transport for Bedrock) are served on the same port: the first bytes of
 *   each connection decide.
 * - Errors look like AWS's: the status of the exception, `x-amzn-errortype`,
 *   `x-amzn-requestid`, a `{"message"}` body and `retry-after` (seconds) when
 *   the script gives one. In-stream exceptions are `:message-type: exception`
 *   frames with the lowerCamel name, as Bedrock sends them.
 * - Every call is recorded as an `Attempt`, with the `serviceTier` it asked
 *   for (if any). A call whose client closed the connection or stream before
 *   the server finished is `"interrupted"`: that is how a test proves an
 *   abort reached the wire. `waitForIdle` waits for the server to see it.
 *
 * Gotchas:
 * - Stream faults fire right after the `afterTokens`-th delta (capped at the
 *   answer's length). With `afterTokens: 0` the fault comes before
 *   `messageStart`, so
 *   an exception is the first frame and the SDK throws it from `send()`
 *   (with `$metadata.httpStatusCode` 200, and retried if the SDK's retries
 *   are on), exactly as it does against Bedrock.
 * - Converse has no stream, so stream faults change shape there (see
 *   `converseFaultOf`): a stall hangs, an in-stream exception is the HTTP
 *   error of the same class (`modelStreamErrorException` becomes
 *   `ModelErrorException`), `cut` sends the head and half the body.
 * - A `stall` (or a Converse `hang`) keeps the connection open forever: give
 *   the client a timeout. Its outcome reads `"stall"`/`"hang"` until the client
 *   gives up, then `"interrupted"`.
 * - `cut` destroys the TCP connection on HTTP/1.1 (the SDK throws
 *   `ECONNRESET` "aborted") but resets only the stream on HTTP/2 (`RST_STREAM`,
 *   thrown as `ERR_HTTP2_STREAM_ERROR`): everything written before the cut is
 *   delivered first. A cut before the first frame makes `send()` throw.
 * - The SDK's default HTTP/2 handler opens a new connection per call; our
 *   `BedrockRuntime.layer` keeps HTTP/1.1 connections alive. `connections()`
 *   shows the difference.
 * - The server does not check signatures; any static credentials work. Its
 *   `Date` header is Node's current one: a stale `Date` on an error would
 *   make the SDK "correct" its clock and retry any error.
 * - Close it (`close()`, or let the layer's scope end): a hanging call would
 *   otherwise keep its socket, and the process, alive.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockRuntime } from "effect-bedrock-mux"
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 *
 * const program = Effect.gen(function*() {
 *   const bedrock = yield* BedrockRuntime
 *   const out = yield* bedrock.converse({ modelId: "m", messages: [{ role: "user", content: [{ text: "hi" }] }] })
 *   const fake = yield* FakeBedrock.FakeBedrock
 *   return [out.output?.message?.content?.[0]?.text, fake.attempts().length]
 * })
 * program.pipe(Effect.provide(FakeBedrock.layerRuntime({ models: { m: { answer: "Hello there", latency: 20 } } })))
 * ```
 * @since 0.1.0
 */
import type { BedrockRuntimeClientConfig, ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import { EventStreamCodec } from "@smithy/eventstream-codec"
import { fromUtf8, toUtf8 } from "@smithy/util-utf8"
import { Context, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import * as http from "node:http"
import * as http2 from "node:http2"
import * as net from "node:net"
import { performance } from "node:perf_hooks"
import { BedrockRuntime } from "../BedrockRuntime.ts"
import {
  type Attempt,
  callRequestOf,
  converseFaultOf,
  ModelState,
  modelScriptOf,
  type Outcome,
  plan,
  type Plan,
  serviceTierOf,
  settle
} from "../internal/simulation.ts"
import * as SimulatorScript from "../SimulatorScript.ts"

/**
 * One call as the server saw it (`attempts()`), and how it ended. The same
 * types as the in-memory simulator's log, so the two can be compared.
 *
 * @example
 * ```ts
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 * const interrupted = (fake: FakeBedrock.FakeBedrockServer): ReadonlyArray<FakeBedrock.Attempt> =>
 *   fake.attempts().filter((a) => a.outcome === "interrupted")
 * ```
 * @since 0.1.0
 */
export type { Attempt, Outcome } from "../internal/simulation.ts"

/**
 * A running fake. Every method is synchronous except `waitForIdle` and
 * `close`.
 *
 * @example
 * ```ts
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 * const fake: FakeBedrock.FakeBedrockServer = await FakeBedrock.start({ models: { m: {} } })
 * console.log(fake.url, fake.attempts(), fake.connections())
 * await fake.close()
 * ```
 * @since 0.1.0
 */
export interface FakeBedrockServer {
  /** `http://127.0.0.1:<port>`: the SDK's `endpoint`. */
  readonly url: string
  readonly port: number
  /**
   * Every call since start (or the last `reset`), in arrival order. The
   * objects are live (an in-flight call's outcome changes): read, don't keep.
   */
  readonly attempts: () => ReadonlyArray<Attempt>
  /** Calls the server has neither finished nor seen the client abandon. */
  readonly inFlight: () => number
  /**
   * Resolves `true` once nothing is in flight, or `false` after `timeoutMs`
   * (default 1000). Use it to prove an abort reached the server.
   */
  readonly waitForIdle: (timeoutMs?: number) => Promise<boolean>
  /** TCP connections accepted since start (or the last `reset`). */
  readonly connections: () => number
  /**
   * Forgets attempts, call counts, quotas and connection counts, reseeds the
   * PRNG and restarts the clock; swaps in `script` when given. Calls in flight
   * keep running under the old state.
   */
  readonly reset: (script?: SimulatorScript.Script | SimulatorScript.ScriptInput) => void
  /** Stops listening and destroys every open connection. */
  readonly close: () => Promise<void>
}

/**
 * Options of `start` and `layer`.
 *
 * @example
 * ```ts
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 * const fake = await FakeBedrock.start({ models: { m: {} } }, { port: 8787 })
 * ```
 * @since 0.1.0
 */
export interface Options {
  /** Port on 127.0.0.1; default 0 (an ephemeral port). */
  readonly port?: number
}

/**
 * Starts a fake on 127.0.0.1. The script is decoded with
 * `SimulatorScript.decodeSync` unless it is already decoded; a bad script
 * rejects with `ScriptError`.
 *
 * @example
 * ```ts
 * import { BedrockRuntimeClient, ConverseCommand } from "@aws-sdk/client-bedrock-runtime"
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 *
 * const fake = await FakeBedrock.start({ models: { m: { answer: "hi" } } })
 * const client = new BedrockRuntimeClient({
 *   region: "us-east-1",
 *   endpoint: fake.url,
 *   credentials: { accessKeyId: "fake", secretAccessKey: "fake" }
 * })
 * await client.send(new ConverseCommand({ modelId: "m", messages: [{ role: "user", content: [{ text: "hey" }] }] }))
 * client.destroy()
 * await fake.close()
 * ```
 * @since 0.1.0
 */
export const start = async (
  script: SimulatorScript.Script | SimulatorScript.ScriptInput,
  options: Options = {}
): Promise<FakeBedrockServer> => {
  const server = new Server(scriptOf(script))
  await server.listen(options.port ?? 0)
  return server.api()
}

/**
 * The fake as an Effect service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 * const attemptCount = Effect.map(FakeBedrock.FakeBedrock, (fake) => fake.attempts().length)
 * ```
 * @since 0.1.0
 */
export class FakeBedrock extends Context.Service<FakeBedrock, FakeBedrockServer>()(
  "effect-bedrock-mux/testing/FakeBedrock"
) {}

/**
 * A fake that lives as long as the layer: started when the layer is built,
 * closed when its scope ends. A bad script or a port in use is a defect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 * const url = Effect.map(FakeBedrock.FakeBedrock, (fake) => fake.url)
 * url.pipe(Effect.provide(FakeBedrock.layer({ models: { m: {} } })))
 * ```
 * @since 0.1.0
 */
export const layer = (
  script: SimulatorScript.Script | SimulatorScript.ScriptInput,
  options: Options = {}
): Layer.Layer<FakeBedrock> =>
  Layer.effect(
    FakeBedrock,
    Effect.acquireRelease(
      Effect.promise(() => start(script, options)),
      (server) => Effect.promise(() => server.close())
    )
  )

/**
 * A fake plus a `BedrockRuntime` pointed at it (our default keep-alive
 * HTTP/1.1 transport, SDK retries off, dummy credentials). `clientConfig`
 * overrides any of it, e.g. `{ requestHandler: new NodeHttp2Handler() }`.
 * The client is destroyed before the server closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockRuntime } from "effect-bedrock-mux"
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 *
 * const call = Effect.flatMap(BedrockRuntime, (rt) =>
 *   rt.converse({ modelId: "m", messages: [{ role: "user", content: [{ text: "hi" }] }] }))
 * call.pipe(Effect.provide(FakeBedrock.layerRuntime({ models: { m: { faults: [{ do: { kind: "error", error: "ThrottlingException" } }] } } })))
 * ```
 * @since 0.1.0
 */
export const layerRuntime = (
  script: SimulatorScript.Script | SimulatorScript.ScriptInput,
  clientConfig: BedrockRuntimeClientConfig = {},
  options: Options = {}
): Layer.Layer<FakeBedrock | BedrockRuntime> =>
  Layer.unwrap(
    Effect.map(FakeBedrock, (fake) =>
      BedrockRuntime.layer({
        region: "us-east-1",
        endpoint: fake.url,
        credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
        ...clientConfig
      }))
  ).pipe(Layer.provideMerge(layer(script, options)))

// --- internals -----------------------------------------------------------------------------

const scriptOf = (script: SimulatorScript.Script | SimulatorScript.ScriptInput): SimulatorScript.Script =>
  SimulatorScript.isScript(script) ? script : SimulatorScript.decodeSync(script)

/** FNV-1a: a seed of any shape to 32 bits. */
const hash32 = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * mulberry32: tiny, fast, good enough for fault probabilities and latency
 * draws. The fake runs on real timers outside any Effect runtime, so it
 * cannot use Effect's `Random`.
 */
const prng = (seed: string | number | undefined): () => number => {
  let a = hash32(String(seed ?? "effect-bedrock-mux"))
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const codec = new EventStreamCodec(toUtf8, fromUtf8)
const str = (value: string) => ({ type: "string" as const, value })

const eventFrame = (eventType: string, payload: unknown): Uint8Array =>
  codec.encode({
    headers: {
      ":event-type": str(eventType),
      ":content-type": str("application/json"),
      ":message-type": str("event")
    },
    body: fromUtf8(JSON.stringify(payload))
  })

// The SDK resolves exception frames by the lowerCamel union member name;
// the shape name would surface as a plain Error (WIRE.md 4.2).
const exceptionFrame = (exceptionType: string, payload: unknown): Uint8Array =>
  codec.encode({
    headers: {
      ":exception-type": str(exceptionType),
      ":content-type": str("application/json"),
      ":message-type": str("exception")
    },
    body: fromUtf8(JSON.stringify(payload))
  })

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
const ROUTE = /^\/model\/(.+)\/(converse|converse-stream|invoke)$/

/** The subset of `ServerResponse` / `Http2ServerResponse` the fake uses. */
interface Response {
  writeHead(status: number, headers: http.OutgoingHttpHeaders): unknown
  /** present on both at runtime; @types/node omits it on Http2ServerResponse */
  flushHeaders?(): void
  write(chunk: Uint8Array | string, callback?: (error?: Error | null) => void): boolean
  end(chunk?: Uint8Array | string): unknown
  on(event: "close", listener: () => void): unknown
}

interface Request {
  readonly method?: string | undefined
  readonly url?: string | undefined
  on(event: "data", listener: (chunk: Buffer) => void): unknown
  on(event: "end", listener: () => void): unknown
}

/** Simulation state; `reset` swaps it whole, so in-flight calls keep their own. */
interface Generation {
  readonly script: SimulatorScript.Script
  readonly states: Map<string, ModelState>
  readonly rng: () => number
  readonly epoch: number
  readonly attempts: Array<Attempt>
  nextId: number
  connections: number
}

const generation = (script: SimulatorScript.Script): Generation => ({
  script,
  states: new Map(),
  rng: prng(script.seed),
  epoch: performance.now(),
  attempts: [],
  nextId: 0,
  connections: 0
})

/** One request/response: its timers and whether it is over. */
interface Exchange {
  done: boolean
  readonly timers: Set<NodeJS.Timeout>
}

class Server {
  private gen: Generation
  private readonly live = new Set<Exchange>()
  private readonly sockets = new Set<net.Socket>()
  private idleWaiters: Array<() => void> = []
  private readonly tcp: net.Server
  private readonly h1: http.Server
  private readonly h2: http2.Http2Server
  private port = 0

  constructor(script: SimulatorScript.Script) {
    this.gen = generation(script)
    // keep-alive longer than any test: a client reusing a socket the server
    // just timed out would see a spurious ECONNRESET
    this.h1 = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) =>
      this.onRequest(req, res, () => req.socket.destroy()))
    this.h2 = http2.createServer((req, res) =>
      this.onRequest(req, res, () => res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR)))
    this.h2.on("sessionError", () => {})
    this.tcp = net.createServer((socket) => this.onConnection(socket))
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.tcp.once("error", reject)
      this.tcp.listen(port, "127.0.0.1", () => {
        this.tcp.off("error", reject)
        this.port = (this.tcp.address() as net.AddressInfo).port
        resolve()
      })
    })
  }

  api(): FakeBedrockServer {
    return {
      url: `http://127.0.0.1:${this.port}`,
      port: this.port,
      attempts: () => this.gen.attempts.slice(),
      inFlight: () => this.live.size,
      waitForIdle: (timeoutMs = 1000) => this.waitForIdle(timeoutMs),
      connections: () => this.gen.connections,
      reset: (script) => {
        this.gen = generation(script === undefined ? this.gen.script : scriptOf(script))
      },
      close: () => this.close()
    }
  }

  private now(gen: Generation): number {
    return performance.now() - gen.epoch
  }

  /** Sniffs the first bytes: the HTTP/2 preface goes to the h2 server, anything else to HTTP/1.1. */
  private onConnection(socket: net.Socket): void {
    this.gen.connections += 1
    this.sockets.add(socket)
    socket.on("close", () => this.sockets.delete(socket))
    socket.on("error", () => {}) // resets are part of the game; the exchange sees them as "close"
    socket.setNoDelay(true)
    let head = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk])
      const n = Math.min(head.length, PREFACE.length)
      // wait until the bytes either differ from the preface or complete it
      if (head.length < PREFACE.length && head.subarray(0, n).equals(PREFACE.subarray(0, n))) return
      socket.off("data", onData)
      // Put the bytes back and hand the paused socket over. The h2 session
      // drains the buffered bytes itself and then reads the handle directly,
      // so resuming would let the JS stream swallow the preface; the h1
      // server reads through the JS stream and needs it flowing again.
      socket.pause()
      socket.unshift(head)
      if (head.subarray(0, PREFACE.length).equals(PREFACE)) {
        this.h2.emit("connection", socket)
      } else {
        this.h1.emit("connection", socket)
        socket.resume()
      }
    }
    socket.on("data", onData)
  }

  private onRequest(req: Request, res: Response, cut: () => void): void {
    const gen = this.gen
    const ex: Exchange = { done: false, timers: new Set() }
    this.live.add(ex)
    let onClientClose: (() => void) | undefined
    res.on("close", () => {
      if (ex.done) return
      onClientClose?.()
      this.finish(ex)
    })
    const chunks: Array<Buffer> = []
    req.on("data", (c) => chunks.push(c))
    req.on("end", () => {
      if (ex.done) return
      const path = (req.url ?? "").split("?")[0]!
      const route = req.method === "POST" ? ROUTE.exec(path) : null
      if (route === null) {
        this.sendError(res, 404, "UnknownOperationException", `No route for ${req.method} ${path}`)
        return this.finish(ex)
      }
      let modelId: string
      let body: Pick<ConverseCommandInput, "messages" | "system" | "inferenceConfig" | "serviceTier">
      const invoke = route[2] === "invoke"
      try {
        modelId = decodeURIComponent(route[1]!)
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
        if (typeof body !== "object" || body === null) throw new Error("body is not an object")
        if (invoke) body = invokeBody(body)
      } catch {
        this.sendError(res, 400, "ValidationException", "Malformed input request.")
        return this.finish(ex)
      }
      const stream = route[2] === "converse-stream"
      const modelScript = modelScriptOf(gen.script, modelId)
      const state = gen.states.get(modelId) ?? new ModelState()
      gen.states.set(modelId, state)
      const start = this.now(gen)
      const request = callRequestOf(body, stream, modelScript)
      const p = plan(modelScript, state, start, gen.rng, request)
      const attempt: Attempt = {
        id: ++gen.nextId,
        modelId,
        operation: stream ? "converseStream" : invoke ? "invokeModel" : "converse",
        start,
        end: undefined,
        outcome: "pending",
        inputTokens: request.inputTokens,
        outputTokens: 0,
        ...serviceTierOf(body)
      }
      gen.attempts.push(attempt)
      const reservation = p._tag === "Answer" ? p.reservation : undefined
      // TPM settles the way BedrockSimulator settles it, so the two agree:
      // to what was used when the server answers; an abandoned call keeps
      // its whole reservation.
      const end = (outcome: Outcome, used = attempt.inputTokens + attempt.outputTokens) => {
        if (ex.done) return
        attempt.outcome = outcome
        attempt.end = this.now(gen)
        settle(reservation, used)
        this.finish(ex)
      }
      onClientClose = () => {
        attempt.outcome = "interrupted"
        attempt.end = this.now(gen)
      }
      const run = new Run(ex, res, cut, attempt, end, () => this.now(gen) - start)
      if (stream) run.stream(p)
      else if (invoke) run.converse(p, (answer) => embeddingBody(modelId, body, answer.inputTokens))
      else run.converse(p)
    })
  }

  private sendError(res: Response, status: number, name: string, message: string): void {
    const body = JSON.stringify({ message })
    res.writeHead(status, errorHeaders(name, body))
    res.end(body)
  }

  private finish(ex: Exchange): void {
    ex.done = true
    for (const t of ex.timers) clearTimeout(t)
    ex.timers.clear()
    this.live.delete(ex)
    if (this.live.size === 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
  }

  private waitForIdle(timeoutMs: number): Promise<boolean> {
    if (this.live.size === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== waiter)
        resolve(false)
      }, timeoutMs)
      const waiter = () => {
        clearTimeout(timer)
        resolve(true)
      }
      this.idleWaiters.push(waiter)
    })
  }

  private close(): Promise<void> {
    return new Promise((resolve) => {
      this.tcp.close(() => resolve())
      for (const ex of this.live) {
        for (const t of ex.timers) clearTimeout(t)
      }
      for (const socket of this.sockets) socket.destroy()
    })
  }
}

/** An InvokeModel body (`{ inputText }`) as the planner's request: one user message of that text. */
const invokeBody = (raw: object): Pick<ConverseCommandInput, "messages"> => {
  const text = (raw as { readonly inputText?: unknown }).inputText
  if (typeof text !== "string") throw new Error("no inputText")
  return { messages: [{ role: "user", content: [{ text }] }] }
}

/** A Titan-shaped embedding: 8 numbers from the model and the text (the same pair, the same vector). */
const embeddingBody = (modelId: string, body: Pick<ConverseCommandInput, "messages">, inputTokens: number): string => {
  const text = body.messages?.[0]?.content?.[0]?.text ?? ""
  const next = prng(`${modelId}\u0000${text}`)
  const embedding = Array.from({ length: 8 }, () => Math.round((next() * 2 - 1) * 1e6) / 1e6)
  return JSON.stringify({ embedding, inputTextTokenCount: inputTokens })
}

const errorHeaders = (name: string, body: string): http.OutgoingHttpHeaders => ({
  "content-type": "application/json",
  "content-length": Buffer.byteLength(body),
  "x-amzn-requestid": randomUUID(),
  "x-amzn-errortype": `${name}:http://internal.amazon.com/coral/com.amazon.bedrock/`
})

/** Executes one plan on one response. */
class Run {
  private readonly ex: Exchange
  private readonly res: Response
  private readonly cut: () => void
  private readonly attempt: Attempt
  private readonly end: (outcome: Outcome, used?: number) => void
  private readonly elapsed: () => number

  constructor(
    ex: Exchange,
    res: Response,
    cut: () => void,
    attempt: Attempt,
    end: (outcome: Outcome, used?: number) => void,
    elapsed: () => number
  ) {
    this.ex = ex
    this.res = res
    this.cut = cut
    this.attempt = attempt
    this.end = end
    this.elapsed = elapsed
  }

  private unflushed = 0
  private onFlushed: (() => void) | undefined

  /** Writes, counting the bytes not yet handed to the socket (see `cutWhenFlushed`). */
  private write(chunk: Uint8Array | string): void {
    this.unflushed += 1
    this.res.write(chunk, () => {
      this.unflushed -= 1
      if (this.unflushed === 0 && this.onFlushed !== undefined) {
        const f = this.onFlushed
        this.onFlushed = undefined
        f()
      }
    })
  }

  /**
   * Cuts once everything written so far is on the wire. Node corks a
   * response's writes until the next tick and HTTP/2 queues DATA frames, so
   * a cut in the same tick would drop the tokens the script says were sent.
   */
  private cutWhenFlushed(): void {
    if (this.unflushed === 0) this.cut()
    else this.onFlushed = this.cut
  }

  /**
   * `f` after `ms`, never sooner by `performance.now()` (the clock the attempt log reads): a Node timer can fire
   * up to a millisecond early by that clock (the loop's cached time), so an early one is armed again for the rest.
   */
  private after(ms: number, f: () => void, due = performance.now() + ms): void {
    if (this.ex.done) return
    const t = setTimeout(() => {
      this.ex.timers.delete(t)
      if (this.ex.done) return
      const left = due - performance.now()
      if (left > 0) this.after(left, f, due)
      else f()
    }, ms)
    this.ex.timers.add(t)
  }

  private reject(p: Extract<Plan, { _tag: "Reject" }>): void {
    this.after(p.delayMs, () => this.sendError(p.error, p.message, p.originalStatusCode, p.retryAfterMs))
  }

  private sendError(
    name: SimulatorScript.ErrorName,
    message: string,
    originalStatusCode: number | undefined,
    retryAfterMs: number | undefined,
    used?: number
  ): void {
    const body = JSON.stringify(originalStatusCode === undefined ? { message } : { message, originalStatusCode })
    const headers = errorHeaders(name, body)
    // Retry-After is whole seconds; round up so a client never comes back early
    if (retryAfterMs !== undefined) headers["retry-after"] = String(Math.ceil(retryAfterMs / 1000))
    this.res.writeHead(SimulatorScript.statusOf[name], headers)
    this.res.end(body)
    this.end(name, used)
  }

  /** A Converse answer, or with `answer` another body for the same plan (InvokeModel's embedding). */
  converse(p: Plan, answer?: (plan: Extract<Plan, { _tag: "Answer" }>) => string): void {
    switch (p._tag) {
      case "Reject":
        return this.reject(p)
      case "Hang":
        this.attempt.outcome = "hang"
        return
      case "Answer":
        break
    }
    const fault = converseFaultOf(p.fault)
    if (fault === "hang") {
      this.attempt.outcome = "hang"
      return
    }
    this.after(p.delayMs, () => {
      // the model generated the whole answer, whatever the wire then did to it (an embedding has no output tokens)
      const outputTokens = answer !== undefined ? 0 : p.tokens.length
      const used = p.inputTokens + outputTokens
      if (typeof fault === "object") {
        return this.sendError(fault.error, fault.message, fault.originalStatusCode, undefined, used)
      }
      const body = fault === "emptyOutput" ? "{}" : answer !== undefined ? answer(p) : JSON.stringify({
        output: { message: { role: "assistant", content: [{ text: p.tokens.join("") }] } },
        stopReason: p.stopReason,
        usage: { inputTokens: p.inputTokens, outputTokens, totalTokens: p.inputTokens + outputTokens },
        metrics: { latencyMs: Math.round(this.elapsed()) }
      })
      const half = body.slice(0, Math.floor(body.length / 2))
      const sent = fault === "malformed" ? half : body
      this.res.writeHead(200, {
        "content-type": "application/json",
        // a cut promises the whole body and delivers half; malformed is complete but truncated JSON
        "content-length": Buffer.byteLength(fault === "cut" ? body : sent),
        "x-amzn-requestid": randomUUID()
      })
      if (fault === "cut") {
        this.end("cut", used)
        this.write(half)
        return this.cutWhenFlushed()
      }
      this.res.end(sent)
      if (fault === "ok") this.attempt.outputTokens = outputTokens
      this.end(fault === "ok" ? "success" : fault, used)
    })
  }

  stream(p: Plan): void {
    switch (p._tag) {
      case "Reject":
        return this.reject(p)
      case "Hang":
        this.attempt.outcome = "hang"
        return
      case "Answer":
        break
    }
    const res = this.res
    const fault = p.fault
    // The head goes out at once; the SDK's send() still waits for the first frame.
    res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": randomUUID() })
    res.flushHeaders?.()
    // as in BedrockSimulator: a fault after more tokens than the answer has comes after the last one
    const limit = fault !== undefined && "afterTokens" in fault
      ? Math.min(fault.afterTokens, p.tokens.length)
      : Number.POSITIVE_INFINITY
    let sent = 0

    const onFault = (): void => {
      switch (fault?.kind) {
        case "cut":
          this.end("cut")
          return this.cutWhenFlushed()
        case "stall":
          this.attempt.outcome = "stall"
          return
        case "streamError": {
          const payload = fault.originalStatusCode === undefined
            ? { message: fault.message }
            : { message: fault.message, originalStatusCode: fault.originalStatusCode }
          res.end(exceptionFrame(fault.error, payload))
          return this.end(fault.error)
        }
        case "malformed": {
          const frame = eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: p.tokens[sent] ?? "" } })
          if (fault.frame === "checksum") {
            // the whole frame, its trailing message CRC flipped: the SDK's decoder rejects it
            const bad = Uint8Array.from(frame)
            bad[bad.length - 1] ^= 0xff
            res.end(bad)
          } else res.end(frame.subarray(0, Math.floor(frame.length / 2)))
          return this.end("malformed")
        }
      }
    }

    const finish = (): void => {
      const usage = { inputTokens: p.inputTokens, outputTokens: sent, totalTokens: p.inputTokens + sent }
      this.write(eventFrame("contentBlockStop", { contentBlockIndex: 0 }))
      this.write(eventFrame("messageStop", { stopReason: p.stopReason }))
      if (fault?.kind !== "noMetadata") {
        this.write(eventFrame("metadata", { usage, metrics: { latencyMs: Math.round(this.elapsed()) } }))
      }
      res.end()
      this.end("success")
    }

    const next = (): void => {
      // send every delta that is due now; wait only when tokens are paced.
      // A fault or the end follows its last delta at once.
      for (;;) {
        this.write(eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: p.tokens[sent] } }))
        sent += 1
        this.attempt.outputTokens = sent
        if (sent === limit) return onFault()
        if (sent === p.tokens.length) return finish()
        if (p.interTokenMs > 0) return this.after(p.interTokenMs, next)
      }
    }

    this.after(p.delayMs, () => {
      if (fault?.kind === "emptyOutput") {
        res.end(eventFrame("messageStart", { role: "assistant" }))
        return this.end("emptyOutput")
      }
      if (limit === 0) return onFault()
      this.write(eventFrame("messageStart", { role: "assistant" }))
      if (p.tokens.length === 0) return finish()
      next()
    })
  }
}
