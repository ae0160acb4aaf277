/**
 * Evidence for the team, not part of `npm run bench`: how much of a call is the SDK's `NodeHttpHandler`? A
 * minimal keep-alive HTTP/1.1 handler (no per-request timers, no socket-usage check, no body-writing Promise)
 * against `defaultRequestHandler()`, both behind the real SDK client over loopback to the child-process fake,
 * interleaved: `node bench/lean-handler.ts`. Not a transport to ship: it has no https, no request body stream,
 * no timeouts; see the closing note of issue 11.
 */
import { BedrockRuntimeClient, ConverseCommand } from "@aws-sdk/client-bedrock-runtime"
import * as http from "node:http"
import { defaultRequestHandler } from "../src/BedrockRuntime.ts"
import { compare, credentials, interleave, messages, startServer } from "./sdk-harness.ts"
class LeanHandler {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
  handle(request: any, { abortSignal }: { abortSignal?: AbortSignal } = {}): Promise<{ response: unknown }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: request.hostname, port: request.port, method: request.method, path: request.path, headers: request.headers, agent: this.agent }, (res) => {
        const headers: Record<string, string> = {}
        for (const k in res.headers) { const v = res.headers[k]; headers[k] = Array.isArray(v) ? v.join(",") : (v ?? "") }
        // the shape smithy's HttpResponse has (it is checked by shape, not by class)
        resolve({ response: { statusCode: res.statusCode ?? -1, reason: res.statusMessage, headers, body: res } })
      })
      req.on("error", reject)
      if (abortSignal !== undefined) {
        const onAbort = () => { req.destroy(); reject(Object.assign(new Error("Request aborted"), { name: "AbortError" })) }
        abortSignal.addEventListener("abort", onAbort, { once: true })
        req.once("close", () => abortSignal.removeEventListener("abort", onAbort))
      }
      req.end(request.body)
    })
  }
  updateHttpClientConfig() {}
  httpHandlerConfigs() { return {} }
  destroy() { this.agent.destroy() }
}
const server = await startServer()
const base = { region: "us-east-1", endpoint: server.h1, credentials, maxAttempts: 1 }
const sdk = new BedrockRuntimeClient({ ...base, requestHandler: defaultRequestHandler() })
const lean = new BedrockRuntimeClient({ ...base, requestHandler: new LeanHandler() as never })
const input = { modelId: "bench-a", messages }
const r = await interleave({
  sdk: () => sdk.send(new ConverseCommand(input), { abortSignal: new AbortController().signal }),
  lean: () => lean.send(new ConverseCommand(input), { abortSignal: new AbortController().signal })
}, { rounds: 1500, block: 4, warmup: 100 })
const c = compare(r["lean"]!, r["sdk"]!)
console.log(`lean vs NodeHttpHandler: ${c.addedUs.toFixed(1)} µs, CPU ${c.addedCpuUs.toFixed(1)} µs; p50 ${c.p50us.toFixed(0)} vs ${compare(r["sdk"]!, r["sdk"]!).p50us.toFixed(0)} µs`)
process.exit(0)
