/** Renders bench/results/*.json as the markdown summary in bench/results/README.md. */
import * as fs from "node:fs"
import * as path from "node:path"

const read = (dir: string, name: string): Record<string, any> | undefined => {
  const file = path.join(dir, `${name}.json`)
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : undefined
}
const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : String(n))

export const renderMarkdown = (dir: string): string => {
  const out: Array<string> = ["# Benchmark results", "", "Written by `npm run bench`; the JSON files beside this one hold every figure.", ""]
  const mux = read(dir, "mux")
  if (mux !== undefined) {
    out.push(
      `## Mux overhead (zero-latency simulator; ${mux.node}, ${mux.cpus} CPUs, ${mux.date}${mux.quick ? ", --quick" : ""})`,
      "",
      "| figure | value | goal |",
      "|---|---|---|",
      `| BedrockRuntime.converse p50 / p99 | ${f(mux.latency.directP50us)} / ${f(mux.latency.directP99us)} µs | |`,
      `| mux.converse p50 / p99 | ${f(mux.latency.muxP50us)} / ${f(mux.latency.muxP99us)} µs | |`,
      `| **added by the mux, p50 / p99** | **${f(mux.latency.addedP50us)} / ${f(mux.latency.addedP99us)} µs** | ≤ 15 µs at p50 |`,
      `| throughput at concurrency ${mux.throughput.concurrency} | ${f(mux.throughput.requestsPerSecond, 0)} req/s (${mux.throughput.requests} requests) | |`,
      `| heap after 10k / after ${mux.heap.requests} requests | ${f(mux.heap.after10kMB)} / ${f(mux.heap.afterMB)} MB | |`,
      `| **heap growth** | **${f(mux.heap.growthMB, 2)} MB** | < 5 MB |`,
      ""
    )
  }
  const st = read(dir, "stream")
  if (st !== undefined) {
    out.push(
      `## Streaming overhead (zero-latency simulator, ${st.eventsPerStream} events per stream; ${st.node}, ${st.cpus} CPUs, ${st.date}${st.quick ? ", --quick" : ""})`,
      "",
      "| figure | direct (BedrockRuntime.converseStream) | mux.converseStream | added p50 / p99 |",
      "|---|---|---|---|",
      `| time to first content event | ${f(st.firstToken.directP50us)} µs | ${f(st.firstToken.muxP50us)} µs | **${f(st.firstToken.addedP50us)} / ${f(st.firstToken.addedP99us)} µs** |`,
      `| time to the end of the stream | ${f(st.wholeStream.directP50us)} µs | ${f(st.wholeStream.muxP50us)} µs | ${f(st.wholeStream.addedP50us)} / ${f(st.wholeStream.addedP99us)} µs |`,
      `| streams per second at concurrency ${st.throughput.concurrency} | | ${f(st.throughput.streamsPerSecond, 0)} | |`,
      "",
      "The added time to first token is the mux's work before the first content event reaches the caller: routing, the",
      "breaker permit, the attempt's scope and first-token timer, its span and events. Against a real first token",
      "(hundreds of milliseconds) it is below 0.1 %.",
      ""
    )
  }
  const a = read(dir, "admission")
  if (a !== undefined) {
    const row = (name: string, r: Record<string, number> | undefined) =>
      r === undefined ? "" : `| ${name} | ${f(r.p50us)} / ${f(r.p99us)} µs | ${f(r.perCallCpuUs, 2)} µs |`
    out.push(
      `## Admission cost at concurrency ${a.concurrency} (zero-latency simulator; ${a.node}, ${a.cpus} CPUs, ${a.date}${a.quick ? ", --quick" : ""})`,
      "",
      "| mux | call p50 / p99 (200 in flight) | wall time per call |",
      "|---|---|---|",
      row("no quotas, memory store", a.withoutLimits),
      row("rpm/tpm quotas, memory store", a.memoryStore),
      ...(typeof a.redis === "string" ? [] : [row("no quotas, Redis store (breakers, cooldowns)", a.redisStoreBreakersOnly), row("rpm/tpm quotas, Redis store", a.redisStore)]),
      "",
      `Added by admission: memory store ${f(a.memoryAddedPerCallUs, 2)} µs wall time per call (p50 at 200 in flight moves ${f(a.memoryAddedP50us)} µs);` +
        (typeof a.redis === "string"
          ? ` Redis: ${a.redis}.`
          : ` Redis store ${f(a.redisAddedP50us)} µs at p50 (a Redis PING round trip is ${f(a.redisPingP50us)} µs at p50).`),
      ""
    )
  }
  const t = read(dir, "transport")
  if (t !== undefined) {
    out.push(
      `## Transport: the real SDK over loopback to the fake (${t.node}, ${t.cpus} CPUs, ${t.date}${t.quick ? ", --quick" : ""})`,
      "",
      "| handler | sequential calls/s | seq p50 / p99 ms | c64 calls/s | c64 p50 / p99 ms | connections opened |",
      "|---|---|---|---|---|---|"
    )
    for (const m of t.modes as Array<Record<string, any>>) {
      out.push(`| ${m.mode} | ${f(m.seqPerSecond, 0)} | ${f(m.seqP50ms, 2)} / ${f(m.seqP99ms, 2)} | ${f(m.c64PerSecond, 0)} | ${f(m.c64P50ms, 2)} / ${f(m.c64P99ms, 2)} | ${m.connections} |`)
    }
    out.push("", t.conclusion ?? "", "")
  }
  return out.join("\n")
}
