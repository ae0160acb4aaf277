/**
 * `npm run bench [suite...] [--quick]`: speed and memory figures, written to
 * bench/results/<suite>.json and summarised in bench/results/README.md.
 * Suites: mux (overhead, throughput, heap), stream (added time to first
 * token), admission (quota store), transport (SDK over loopback,
 * HTTP/1.1 keep-alive vs the SDK's default HTTP/2), sdk (the mux's own cost on
 * the real SDK path against issue 11's goals; bench/sdk.ts), cold (the mux's
 * CPU per call back to back and after the loop sat idle, as on real I/O;
 * bench/cold.ts).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Mux from "./mux.ts"
import { renderMarkdown } from "./report.ts"

const quick = process.argv.includes("--quick")
const only = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const dir = path.join(import.meta.dirname, "results")
fs.mkdirSync(dir, { recursive: true })

const suites: Record<string, () => Promise<object>> = {
  mux: () => Effect.runPromise(Mux.run({ calls: quick ? 20_000 : 200_000, heapRequests: quick ? 100_000 : 1_000_000 }))
}
try {
  const stream = await import("./stream.ts")
  suites["stream"] = () => Effect.runPromise(stream.run({ streams: quick ? 10_000 : 50_000 }))
} catch (e) {
  console.error("stream suite unavailable:", e)
}
try {
  const admission = await import("./admission.ts")
  suites["admission"] = () => admission.run({ requests: quick ? 20_000 : 100_000 })
} catch (e) {
  console.error("admission suite unavailable:", e)
}
try {
  const sdk = await import("./sdk.ts")
  // its first-calls phase means a fresh process only when no other suite ran before it in this one
  suites["sdk"] = () => sdk.run({ quick, freshProcess: ran === 0 })
} catch (e) {
  console.error("sdk suite unavailable:", e)
}
try {
  const cold = await import("./cold.ts")
  suites["cold"] = () => cold.run({ quick })
} catch (e) {
  console.error("cold suite unavailable:", e)
}
try {
  const transport = await import("./transport.ts")
  suites["transport"] = () => transport.run({ calls: quick ? 500 : 3_000 })
} catch {
  // the transport suite needs the loopback fake (src/testing)
}

let ran = 0
for (const [name, suite] of Object.entries(suites)) {
  if (only.length > 0 && !only.includes(name)) continue
  process.stderr.write(`bench ${name}...\n`)
  const result = {
    node: process.version,
    cpus: os.cpus().length,
    date: new Date().toISOString(),
    quick,
    ...(await suite())
  }
  ran += 1
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(result, null, 2) + "\n")
  console.log(name, JSON.stringify(result, null, 2))
}
fs.writeFileSync(path.join(dir, "README.md"), renderMarkdown(dir))
