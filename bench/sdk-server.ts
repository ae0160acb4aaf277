/**
 * The `sdk` suite's fake Bedrock: a minimal raw `node:http` / `node:http2`
 * server that answers Converse and ConverseStream AT ONCE with precomputed
 * bytes (no planner, no timers), run in a CHILD PROCESS (`fork`) so that its
 * CPU time never shows up in the client's `process.cpuUsage()` and its work
 * does not share the client's event loop.
 *
 * It speaks what the real SDK sends: `POST /model/{id}/converse` (JSON) and
 * `POST /model/{id}/converse-stream` (`application/vnd.amazon.eventstream`
 * frames encoded with the SDK's own codec: messageStart, five deltas,
 * contentBlockStop, messageStop, metadata), on an HTTP/1.1 port (our
 * keep-alive transport) and an HTTP/2 cleartext port (the SDK's default
 * transport, prior knowledge).
 *
 * A model id starting with `hold` is answered only on the parent's
 * `{ cmd: "release" }`: that is how the suite holds N requests in flight to
 * measure memory per in-flight request. `{ cmd: "held" }` replies with the
 * number of requests being held.
 *
 * Protocol (IPC, JSON): the child sends `{ ready: { h1, h2 } }` once both
 * ports listen; `{ cmd: "held" }` → `{ held: n }`; `{ cmd: "release" }` →
 * `{ released: n }`; `{ cmd: "connections" }` → `{ connections: { h1, h2 } }`.
 */
import { EventStreamCodec } from "@smithy/eventstream-codec"
import { fromUtf8, toUtf8 } from "@smithy/util-utf8"
import * as http from "node:http"
import * as http2 from "node:http2"
import type * as net from "node:net"

const codec = new EventStreamCodec(toUtf8, fromUtf8)
const str = (value: string) => ({ type: "string" as const, value })
const frame = (eventType: string, payload: unknown): Uint8Array =>
  codec.encode({
    headers: { ":event-type": str(eventType), ":content-type": str("application/json"), ":message-type": str("event") },
    body: fromUtf8(JSON.stringify(payload))
  })

const TOKENS = ["Hello", " from", " the", " fake", "."]
const converseBody = Buffer.from(JSON.stringify({
  output: { message: { role: "assistant", content: [{ text: TOKENS.join("") }] } },
  stopReason: "end_turn",
  usage: { inputTokens: 12, outputTokens: TOKENS.length, totalTokens: 12 + TOKENS.length },
  metrics: { latencyMs: 0 }
}))
const streamBody = Buffer.concat([
  frame("messageStart", { role: "assistant" }),
  ...TOKENS.map((text) => frame("contentBlockDelta", { contentBlockIndex: 0, delta: { text } })),
  frame("contentBlockStop", { contentBlockIndex: 0 }),
  frame("messageStop", { stopReason: "end_turn" }),
  frame("metadata", { usage: { inputTokens: 12, outputTokens: TOKENS.length, totalTokens: 12 + TOKENS.length }, metrics: { latencyMs: 0 } })
])
const jsonHeaders = { "content-type": "application/json", "content-length": converseBody.length, "x-amzn-requestid": "00000000-0000-0000-0000-000000000000" }
const streamHeaders = { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "00000000-0000-0000-0000-000000000000" }

interface Res {
  writeHead(status: number, headers: http.OutgoingHttpHeaders): unknown
  end(chunk: Uint8Array): unknown
}
const answer = (stream: boolean, res: Res) => {
  if (stream) {
    res.writeHead(200, streamHeaders)
    res.end(streamBody)
  } else {
    res.writeHead(200, jsonHeaders)
    res.end(converseBody)
  }
}

let held: Array<() => void> = []
const onRequest = (req: http.IncomingMessage | http2.Http2ServerRequest, res: Res): void => {
  const url = req.url ?? ""
  const stream = url.endsWith("/converse-stream")
  // the body is read (keep-alive needs it consumed) and ignored
  req.on("data", () => {})
  req.on("end", () => {
    if (url.startsWith("/model/hold")) held.push(() => answer(stream, res))
    else answer(stream, res)
  })
}

let h1Connections = 0
let h2Connections = 0
const h1 = http.createServer({ keepAliveTimeout: 600_000 }, (req, res) => onRequest(req, res))
h1.on("connection", (s: net.Socket) => {
  h1Connections += 1
  s.setNoDelay(true)
})
const h2 = http2.createServer((req, res) => onRequest(req, res))
h2.on("connection", () => {
  h2Connections += 1
})
h2.on("sessionError", () => {})

const listen = (server: http.Server | http2.Http2Server) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)))

const send = (m: object) => process.send?.(m)
process.on("message", (m: { readonly cmd?: string }) => {
  switch (m.cmd) {
    case "held":
      return send({ held: held.length })
    case "release": {
      const n = held.length
      const all = held
      held = []
      for (const f of all) f()
      return send({ released: n })
    }
    case "connections":
      return send({ connections: { h1: h1Connections, h2: h2Connections } })
  }
})
// the parent going away ends the child
process.on("disconnect", () => process.exit(0))

const [p1, p2] = await Promise.all([listen(h1), listen(h2)])
send({ ready: { h1: p1, h2: p2 } })
