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
      "The added time to first token is the mux's work before the first content event reaches the caller: routing (the",
      "guards' views and permits, the pick), the attempt's scope and first-token deadline, and the caller's stream. On the",
      "simulator the attempt is an Effect stream (a fiber under the deadline heap); on the real SDK it is the SDK's own",
      "iterator (the sdk suite below). Against a real first token (hundreds of milliseconds) it is below 0.1 %.",
      ""
    )
  }
  const a = read(dir, "admission")
  if (a !== undefined) {
    const row = (name: string, r: Record<string, number> | undefined) =>
      r === undefined ? "" : `| ${name} | ${f(r.p50us)} / ${f(r.p99us)} µs | ${f(r.perCallUs, 2)} µs |`
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
  const sdk = read(dir, "sdk")
  if (sdk !== undefined) out.push(...renderSdk(sdk))
  const cold = read(dir, "cold")
  if (cold !== undefined) {
    out.push(
      "",
      `## The same work, back to back and after idle time (cold suite; ${cold.node}, ${cold.cpus} CPUs, ${cold.date}${cold.quick ? ", --quick" : ""})`,
      "",
      "CPU per call (`process.cpuUsage`) of `mux.converse` and of the floor of any Effect wrapper that can abort",
      "(`Effect.runPromiseWith` of an `Effect.callback` around the send), on a Bedrock runtime that answers at once: on the",
      "next `setImmediate` (hot), or after a 1 ms timer, so that the event loop sleeps between the mux's work before the",
      `send and after the answer, as it does on real I/O (idle). Interleaved, ${cold.setup.rounds} rounds of ${cold.setup.callsPerBlock} calls per row.`,
      "",
      "| mode | callback floor | mux.converse | added by the mux |",
      "|---|---|---|---|",
      `| hot | ${f(cold.hot.callbackCpuUs)} µs | ${f(cold.hot.muxCpuUs)} µs | **${f(cold.hot.muxAddedCpuUs)} µs** |`,
      `| idle (1 ms between send and answer) | ${f(cold.idle.callbackCpuUs)} µs | ${f(cold.idle.muxCpuUs)} µs | **${f(cold.idle.muxAddedCpuUs)} µs** |`,
      "",
      `The mux's own work costs ${f(cold.idleOverHot)}× as much CPU after idle time as back to back. A small fixed piece of`,
      `plain JavaScript that touches little memory (200 small objects) takes ${f(cold.plainWork.hotUs, 2)} µs hot and ${f(cold.plainWork.idleUs, 2)} µs after the same`,
      `1 ms timer (${f(cold.plainWork.idleOverHot)}×; wall time of that piece alone, not the process's CPU as in the table). The likely cause,`,
      "not measured here: code and memory that left the CPU's caches while the loop slept, of which a request through the",
      "mux touches far more (the pool, the guards' and the stats' state, the metric series, the engine's code) than the",
      "floor does. Either way, this is why the simulator suites (no idle time) show a few µs and the sdk suite (the SDK's",
      "own work and a network wait between the mux's two halves) several times more, and why cutting what each request",
      "touches pays on a real call where hot-loop speed-ups alone do not.",
      ""
    )
  }
  return out.join("\n")
}

const loadOf = (l: Record<string, ReadonlyArray<number>>) => `${f(l.start![0]!, 2)} at the start, ${f(l.end![0]!, 2)} at the end`

/**
 * What each change to the core bought on the sdk suite's headline figures
 * (full runs: `npm run bench -- sdk`). Append a row per change, newest last.
 */
const SDK_HISTORY: ReadonlyArray<{ readonly change: string; readonly mux: string; readonly facade: string; readonly cpu: string; readonly ttft: string; readonly inflight: string }> = [
  {
    change: "before the redesign (ea6090a; two full runs on 2026-12-01 at load 5–7)",
    mux: "+291 / +300 µs",
    facade: "+274 / +288 µs",
    cpu: "+278 / +299 µs",
    ttft: "+532 / +562 µs",
    inflight: "29.8 / 30.0 vs 14.0 KB"
  },
  {
    change: "Converse fast path: stages in plain code, the SDK call under one deadline heap, free permits, events only while listened to (de3bfce, 74efd45, 183cdad; interleaved scratch A/B, load 5–7, not a full run)",
    mux: "+120 to +150 µs",
    facade: "—",
    cpu: "+120 to +145 µs",
    ttft: "+586 µs (unchanged)",
    inflight: "20.0 vs 14.4 KB (1.40×)"
  },
  {
    change: "stream fast path: sendConverseStream, the commit point as one Promise, one step per event, no abort of a finished stream (3d2ccdb, 05ca5c2; interleaved scratch A/B, load 2–7)",
    mux: "—",
    facade: "—",
    cpu: "—",
    ttft: "+586 → +313 → +204 to +249 µs (in memory 79 → 23 µs)",
    inflight: "—"
  },
  {
    change: "memory per request in flight: lazy collections, the request's handle a class (93d2597; scratch, 256 held, the bench's method)",
    mux: "—",
    facade: "—",
    cpu: "—",
    ttft: "—",
    inflight: "20.0 → 18.6 vs 14.6 KB (1.40 → 1.27×)"
  },
  {
    change: "all of the above, full run (562d439; 1500 rounds, load 1.0–2.9)",
    mux: "+79.3 µs",
    facade: "+75.7 µs",
    cpu: "+76.5 µs",
    ttft: "+183.2 µs",
    inflight: "18.5 vs 13.8 KB (1.34×)"
  },
  {
    change: "quota admission in plain code on the fast path (71e30bb): in-memory rpm/tpm admission 50 → 8.7 µs per call (`npm run bench -- admission`); no change for a pool without quotas",
    mux: "—",
    facade: "—",
    cpu: "—",
    ttft: "—",
    inflight: "—"
  },
  {
    change: "a raw attempt's deadline, handlers and cancel in one object; Converse's usage and result built once (1c041f2; heap snapshot 4711 → 4424 B per request held, scratch/inflight 1.30 → 1.28×)",
    mux: "—",
    facade: "—",
    cpu: "—",
    ttft: "—",
    inflight: "1.30 → 1.28×"
  },
  {
    change: "stream: an open success routed in plain code, the untraced stream one channel (df56232; instrumented loopback run: commit point → routed 45 → 19 µs); then a full run (8c4f5fe; 1500 rounds, idle machine)",
    mux: "+81.5 µs",
    facade: "+89.1 µs",
    cpu: "+76.0 µs",
    ttft: "+188.2 µs (within the run-to-run spread)",
    inflight: "18.1 vs 14.1 KB (1.29×)"
  },
  {
    change: "default stream settings built once, one builder per error, the failure record shared (0877cc0; full run, 1500 rounds, load 0.8–1.4): c64 0.96×, c256 0.94×, transport 0.62×",
    mux: "+80.1 µs",
    facade: "+83.6 µs",
    cpu: "+74.8 µs",
    ttft: "+148.2 µs",
    inflight: "18.0 vs 14.1 KB (1.28×)"
  },
  {
    change: "the common call's request check without building anything; metric series resolved once per context (bab3b54, real-path A/B −11 µs); the stream's metadata grace and drain on the deadline heap (07ac4f1, −21 µs CPU per stream, hot); Engine.startUnsafe (81de452); quiet guards (a890d58, −1 to −2 µs pristine, −5 µs with breaker failure history in the cold micro); two reviews' fixes (63885bd, 0a345aa). Quoted: the full sdk run at 0a345aa (load 1.3 at the start): transport 0.59×, c64 0.96×, c256 0.89×. Four full runs this session spread: mux +57.9 to +64.3 µs, TTFT +98 to +144 µs, transport 0.59 to 0.62×, c64 0.89 to 0.96×, c256 0.89 to 0.97×",
    mux: "+57.9 µs",
    facade: "+65.0 µs",
    cpu: "+55.5 µs",
    ttft: "+122.5 µs",
    inflight: "17.9 vs 14.1 KB (1.27×)"
  },
  {
    change: "a one-attempt success's metrics by series cached on the model's stats, tracing/Clock/Random read once per context, the facade's routing defined on the SDK's own output (5cad0c1); one stream channel, the route's general loop built lazily (3987b98); one literal per shape, the upstream's unused pull gone (ef9db6c); the series' state in objects of the mux's own in effect's registry entries (2062319); review fixes (16e7382); the throughput figures the median of 15 rounds, not 7. Same-process A/B against 0abf882 (`node bench/ab.ts`, 1500 rounds, both orders): mux.converse −4.7 / −11.3 µs, facade −11.1 / −11.4 µs, stream TTFT −13.5 / −16.6 µs; cold suite: the mux's CPU per call 4.2 → 2.1 µs hot, 23.7 → 20.1 µs idle. Quoted: the full sdk run with 15 throughput rounds (load 1.3 at the start): transport 0.63× (the floor itself 0.60× in that run), c64 0.94×, c256 0.95×. Four full runs of this session's code spread: mux +56.1 to +68.7 µs, facade +61.2 to +70.8, CPU +55.5 to +64.8, TTFT +118.6 to +126.9, transport 0.59 to 0.63×, c64 0.88 to 0.96×, c256 0.87 to 0.98× (the machine ran slower than at 0a345aa: the floor's p50 was 814 to 1035 µs against 765, BedrockRuntime.converse +20.6 to +26.6 µs against +15.6)",
    mux: "+59.1 µs",
    facade: "+66.6 µs",
    cpu: "+55.5 µs",
    ttft: "+118.6 µs",
    inflight: "17.6 vs 14.2 KB (1.24×)"
  },
  {
    change: "the method, not the code (4d0f122): warm-up past V8's TurboFan threshold (1,000 rounds, 4,000 calls of each row: V8 compiles a function after about 3,000 calls, and the old 150 rounds left much of each run unoptimised), the goals' mux and facade figures from A/B pairs with the floor alone (with eight rows in turn the other paths' code runs between two blocks of one path and likely evicts it), a process's first 500 calls reported on their own. The three runs' JSON: bench/results/runs/sdk-2026-12-01-run{1,2,3}.json. Same code measured both ways in one session: all-rows table +48.3 to +59.9 µs, pair +38.7 to +39.7 µs. Quoted: the third of three full runs (load 0.5 at the start): transport 0.58× (floor 0.57×), c64 0.88×, c256 0.91×. Spread of the three: mux +38.7 to +39.7, facade +40.4 to +46.1, CPU +38.2 to +39.5, TTFT +79.4 to +92.2, transport 0.58 to 0.62×, c64 0.88 to 0.96×, c256 0.84 to 0.92×, in flight 1.26 to 1.29×; first 500 calls: mux +136 to +164 µs",
    mux: "+38.7 µs",
    facade: "+40.4 µs",
    cpu: "+38.8 µs",
    ttft: "+92.2 µs",
    inflight: "17.9 vs 13.9 KB (1.29×)"
  },
  {
    change: "after a review of the method: the two pairs run in four alternating segments, samples pooled (neither pair always at one end of the suite); the all-rows figure beside each goal; the first calls flagged when other suites ran before in the process. Two full runs (bench/results/runs/sdk-2026-12-01-run{4,5}.json; quoted: the second, load 1.0 at the start): mux +39.3 / +39.9 µs, CPU +37.2 / +40.5, facade +47.7 / +48.1, TTFT +88.1 / +92.0, transport 0.61 / 0.63× (floor 0.59 / 0.60×), c64 0.97 / 1.00×, c256 0.85 / 0.93×, in flight 1.27 / 1.24×; all-rows mux +49.7 / +53.9; first 500 calls mux +152.2 / +156.6",
    mux: "+39.9 µs",
    facade: "+48.1 µs",
    cpu: "+40.5 µs",
    ttft: "+92.0 µs",
    inflight: "17.6 vs 14.2 KB (1.24×)"
  },
  {
    change: "the facade's calls start without a fiber of their own (37c3b0a; review fixes 29e9bf5): `Engine.runUnsafe` runs the fast path's stages and its raw first attempt from plain code, and records and answers a success in the attempt's own Promise callback; what the fast path hands over runs in a fiber. Same-process A/B against a8afef5 (`node bench/ab.ts`, 1500 rounds, both orders): facade −11.8 / −9.4 µs (CPU −14.0 / −11.3); `mux.converse` +0.9 / +1.4 µs (CPU −0.5 / +0.3), within the noise (a helper in BedrockMux.ts that handed a call's pieces back to each caller had cost it +1.1 / +4.2 µs: one `converseCall` serves both); the fast path split into stages against a8afef5's inline form, both paths in one process (`MODE=both`): +3.3 / −2.4 µs, nothing. Four full runs (bench/results/runs/sdk-2026-12-01-run{6,7,8,9}.json; quoted: the fourth, 29e9bf5, load 1.3 at the start): mux +44.7 / +48.1 / +40.6 / +48.0 µs, CPU +41.5 / +43.0 / +40.5 / +46.0, facade +37.4 / +43.1 / +34.8 / +39.2, TTFT +100.7 / +89.0 / +99.3 / +86.5, transport 0.59 / 0.61 / 0.57 / 0.61×, c64 0.96 / 0.95 / 0.94 / 0.90×, c256 0.95 / 0.90 / 0.91 / 0.91×, in flight 1.30 / 1.26 / 1.28 / 1.26×; first 500 calls facade +99.3 / +111.8 / +95.8 / +118.1 (mux +150.6 / +167.5 / +138.6 / +136.5). The machine ran slower and noisier than for the runs above: two control runs in the same hour, a8afef5's code (runs/sdk-2026-12-01-control-a8afef5.json) and this code with the facade's plain start turned off (runs/sdk-2026-12-01-control-v5-plain-start-off.json), measured mux +43.2 / +46.1, facade +51.1 / +50.1, TTFT +93.1 / +93.6 (the time to first token follows the machine: direct p50 1,006 to 1,289 µs in these runs against 920 to 1,171 before)",
    mux: "+48.0 µs",
    facade: "+39.2 µs",
    cpu: "+46.0 µs",
    ttft: "+86.5 µs",
    inflight: "17.7 vs 14.1 KB (1.26×)"
  },
  {
    change: "a stream's end builds no error (f6a3ec8: the drain read every complete answer's upstream to its end and made the end an Incomplete error it then dropped, 55 to 65 µs of CPU a stream; same-process A/B, `MODE=stream`, both orders: time to first token −5.5 / −6.8 µs, CPU per stream −65 / −68 µs), and `BedrockRuntime.converseStream` as one channel of callbacks over the SDK's iterator (818aba6: +133.4 → +33.0 µs to the first token over the SDK's own iterator, CPU +205 → +63 µs a stream; the streams paragraph's Effect-stream figure is now that floor). Three full runs at 93f78f8 / 7566ddb (bench/results/runs/sdk-2026-12-01-run{10,11,12}.json; quoted: the third), on a machine whose speed moved within the half hour (direct stream p50 926 / 1,215 / 1,157 µs): mux +42.3 / +47.7 / +39.5 µs, CPU +39.3 / +44.5 / +38.5, facade +37.6 / +38.2 / +36.2, TTFT +72.2 / +87.4 / +80.7 (CPU per stream +164 / +222 / +193, against +223 to +315 before; the Effect-stream floor row +26.5 / +35.0 / +28.6), transport 0.59 / 0.61 / 0.58×, c64 0.92 / 0.91 / 0.90×, c256 0.90 / 0.96 / 0.99×, in flight 1.27 / 1.27 / 1.24×; first 500 calls mux +135.2 / +153.3 / +121.2, facade +105.3 / +118.7 / +93.1",
    mux: "+39.5 µs",
    facade: "+36.2 µs",
    cpu: "+38.5 µs",
    ttft: "+80.7 µs",
    inflight: "17.6 vs 14.2 KB (1.24×)"
  },
  {
    change: "a stream's first route maps its answer in the attempt's own callback (6538b78: `Request.routeWith`, the first pull two Effect steps fewer before the send and one after the commit point; same-process A/B against cd5ccb1, `MODE=stream`, four runs in both orders: time to first token −2.9 / −8.2 / +1.0 / −4.9 µs, CPU per stream −6.5 / −5.8 / −1.0 / −6.3). Tried and dropped: sending the first attempt in the stream's first step and yielding to the event loop so the rest of the setup runs while the request is in flight (the request reached the socket no sooner: the SDK's pre-write phase stretched by what the send gained; −1.4 µs without the yield, worse with it; CORE notes). Three full runs at 6538b78 / bb7ea98 / fb0c7cd (bench/results/runs/sdk-2026-12-01-run{13,14,15}.json; quoted: the third; direct stream p50 1,281 / 1,220 / 1,145 µs): mux +45.3 / +43.8 / +43.9 µs, CPU +44.5 / +43.0 / +44.8, facade +41.1 / +42.1 / +42.1, TTFT +99.2 / +86.7 / +83.5 (over the Effect-stream floor +56.5 / +48.2 / +44.6, against +42.8 / +49.9 / +49.7 in runs 10 to 12), transport 0.59 / 0.60 / 0.57×, c64 0.89 / 0.93 / 0.95×, c256 0.91 / 0.93 / 0.94×, in flight 1.23 / 1.28 / 1.28×; first 500 calls mux +179.1 / +142.3 / +161.2, facade +135.1 / +103.5 / +130.1. The converse path's code did not change: same-process A/B (`MODE=both`, 1,200 rounds, both orders) of fb0c7cd against 7566ddb (run 12's code): mux +4.2 / −2.0 µs, facade +1.3 / −0.5; of bb7ea98 against cd5ccb1: mux +4.1 / −7.1, facade +2.6 / −1.2",
    mux: "+43.9 µs",
    facade: "+42.1 µs",
    cpu: "+44.8 µs",
    ttft: "+83.5 µs",
    inflight: "17.9 vs 14.0 KB (1.28×)"
  },
  {
    change: "no fast path changed (3b6f03c, 68825b4, 395dde5: a hedge's admit raced with the first attempt, an attempt's start after its admits, five defects the laws with slow guards found, all on the general path). Same-process A/B of 395dde5 against 8baa123: `MODE=stream`, 1,000 rounds, both orders: time to first token +3.2 / +1.0 µs, CPU per stream 0.0 / +4.8; `MODE=both`, 1,500 rounds, both orders: the copy listed second is 6 to 7 µs slower in either order, the facade +0.1 / −0.2. One full run at 395dde5 on a slower machine (bench/results/runs/sdk-2026-12-02-run16.json; direct stream p50 1,246 µs against 1,145 in run 15, load 1.0 to 1.5): mux +47.8 µs, CPU +43.5, facade +41.9, TTFT +92.2 (over the Effect-stream floor +52.3), transport 0.59×, c64 0.91×, c256 0.91×, in flight 17.9 vs 13.8 KB = 1.30×, 1.303 (the mux's 17.9 KB as in run 15; the SDK's lower, 13.8 against 14.0 KB). Where the time to first token goes (`node bench/stream-floor.ts`, two runs): a stream of the mux's shape without routing adds +21.5 / +28.8 µs, `mux.converseStream` +91.2 / +111.4 µs; instrumented, the mux sends about 65 µs after it (every step 1 to 12 µs, first-touch costs: the same select twice in a row 8.6 then 1.4 µs), and deferring a step past the first token did not move it (A/B −3.7 / +3.0 µs)",
    mux: "+47.8 µs",
    facade: "+41.9 µs",
    cpu: "+43.5 µs",
    ttft: "+92.2 µs",
    inflight: "17.9 vs 13.8 KB (1.30×)"
  }
]

/** The `sdk` suite: the mux's own cost on the real SDK path, against issue 11's goals. */
const renderSdk = (s: Record<string, any>): Array<string> => {
  const us = (n: number) => `${n >= 0 ? "+" : ""}${f(n)} µs`
  const out = [
    `## The mux on the real SDK path (sdk suite; ${s.node}, ${s.cpus} CPUs, load ${loadOf(s.setup.loadAverage)}, ${s.date}${s.quick ? ", --quick" : ""})`,
    "",
    "The real `@aws-sdk/client-bedrock-runtime` over loopback against a raw node:http fake that answers at once, in a",
    "child process (its CPU is not in the client's `process.cpuUsage`). One client with `defaultRequestHandler()`",
    "(keep-alive HTTP/1.1) behind every row. Interleaved: " +
      `${s.setup.rounds} rounds × every row × ${s.setup.block} sequential calls, order rotated each round, after ${s.setup.warmup} warm-up rounds` +
      (s.firstCalls === undefined ? "." : ` (${s.setup.warmup * s.setup.block} calls of each row, after its ${s.firstCalls.calls} first calls: V8 compiles a function with TurboFan after about 3,000 calls, and the mux's functions run once or twice per request; the first calls are reported on their own, below).`),
    "Added = pairwise median of (row − floor) per call; CPU = median over rounds of the block's CPU per call. The floor is",
    "`client.send` with an `abortSignal`. Effects run with `Effect.runPromiseWith(context)` unless the row says otherwise.",
    ...(s.quick ? ["", "**--quick run: fewer rounds, indicative only; quote the full run (`npm run bench -- sdk`).**"] : []),
    "",
    "| path | p50 / p99 | CPU per call | added latency | added CPU | added, 1st / 2nd half of rounds |",
    "|---|---|---|---|---|---|"
  ]
  for (const r of s.latency as Array<Record<string, any>>) {
    const floor = r.key === s.setup.baseline
    out.push(
      `| ${r.label} | ${f(r.p50us, 0)} / ${f(r.p99us, 0)} µs | ${f(r.cpuUs, 0)} µs | ${floor ? "—" : us(r.addedUs)} | ${floor ? "—" : us(r.addedCpuUs)} | ${
        floor ? "" : `${f(r.addedUsHalves[0])} / ${f(r.addedUsHalves[1])}`
      } |`
    )
  }
  if (s.pairs !== undefined) {
    const pr = s.pairs
    out.push(
      "",
      `The goals' figures, each path in an A/B pair with the floor alone (${pr.rounds} rounds after ${pr.warmup} more warm-up rounds` +
        (pr.segments === undefined ? "" : `, in ${pr.segments} segments that alternate between the two pairs, samples pooled`) +
        "; with every row in turn, six other paths' code runs between two blocks of one path, likely evicting it from the caches, and the table above costs each path more):",
      "",
      "| path | added latency | added CPU | added, 1st / 2nd half of rounds |",
      "|---|---|---|---|",
      ...[pr.mux, pr.facade].map((r: Record<string, any>) => `| ${r.label} | ${us(r.addedUs)} | ${us(r.addedCpuUs)} | ${f(r.addedUsHalves[0])} / ${f(r.addedUsHalves[1])} |`)
    )
  }
  if (s.firstCalls !== undefined) {
    const fc = s.firstCalls
    const pick = (key: string) => (fc.rows as Array<Record<string, any>>).find((r) => r.key === key)!
    const warm = (key: string) => (s.latency as Array<Record<string, any>>).find((r) => r.key === key)!
    out.push(
      "",
      `${fc.freshProcess === false ? "The suite's" : "A process's"} first ${fc.calls} calls of each row (medians, every row in turn; V8 has not yet compiled most of the mux's code with TurboFan, at about 3,000 calls of a function, while code the rows share may be compiled sooner` +
        (fc.freshProcess === false ? "; other suites ran before this one in the same process, so this is not a fresh process's figure" : "") + "):" +
        ` \`mux.converse\` ${us(pick("mux").addedUs)} (CPU ${us(pick("mux").addedCpuUs)}), the facade ${us(pick("facade").addedUs)}, \`BedrockRuntime.converse\` through a context ${us(pick("runtimeContext").addedUs)};` +
        ` measured the same way after the warm-up (the table above): ${us(warm("mux").addedUs)}, ${us(warm("facade").addedUs)} and ${us(warm("runtimeContext").addedUs)}.`
    )
  }
  out.push("", "| figure | value | goal | |", "|---|---|---|---|")
  for (const g of s.goals as Array<Record<string, any>>) out.push(`| ${g.figure} | ${g.value} | ${g.goal} | ${g.pass ? "pass" : "**FAIL**"} |`)
  const t = s.transport
  const st = s.stream
  const inf = s.inflight
  const h = s.heap
  const sim = s.simulator
  out.push(
    "",
    `- Transport (${t.rounds} interleaved rounds): default SDK client (HTTP/2, ${t.connectionsOpened.defaultSdkHttp2} connections opened) p50 ${f(t.defaultSdkP50us, 0)} µs;` +
      ` \`client.send\` on ours ${f(t.oursP50us, 0)} µs (${f(t.oursRatio, 2)}×, ${t.connectionsOpened.oursHttp1} new connections); \`mux.converse\` on ours ${f(t.muxP50us, 0)} µs (${f(t.muxRatio, 2)}×).`,
    `- Throughput (mux / \`client.send\` with an \`abortSignal\`, median of alternating rounds): ${
      (s.throughput as Array<Record<string, any>>).map((x) =>
        `c${x.concurrency} ${f(x.muxPerSecond, 0)} vs ${f(x.sdkPerSecond, 0)} calls/s = ${f(x.ratio, 2)}×`
      ).join("; ")
    }.`,
    `- Streams (ConverseStream, 5 deltas, ${st.rounds} rounds): time to first token p50 ${f(st.directTtftP50us, 0)} µs direct, ${f(st.muxTtftP50us, 0)} µs through \`mux.converseStream\`` +
      ` (added ${us(st.addedTtftUs)}, halves ${f(st.addedTtftUsHalves[0])} / ${f(st.addedTtftUsHalves[1])}); whole stream p50 ${f(st.directWholeStreamP50us, 0)} vs ${f(st.muxWholeStreamP50us, 0)} µs; added CPU per stream ${us(st.addedCpuPerStreamUs)}.` +
      (st.runtimeAddedTtftUs === undefined
        ? ""
        : ` An Effect stream over the SDK's iterator without any routing (\`BedrockRuntime.converseStream\`: one channel, a callback per pull) adds ${us(st.runtimeAddedTtftUs)} to the first token by itself; \`mux.converseStream\` ` +
          (st.muxOverRuntimeTtftUs >= 0
            ? `adds ${us(st.muxOverRuntimeTtftUs)} over that.`
            : `is ${f(-st.muxOverRuntimeTtftUs)} µs faster to the first token than that (up to its first content event it reads the SDK's iterator with plain awaits, inside one Effect step, not through an Effect stream).`)),
    `- In flight: ${inf.requests} requests held open by the fake (one socket each, opened beforehand), heap delta / N, median of ${inf.rounds} alternating rounds:` +
      ` ${f(inf.muxBytesPerRequest / 1024)} KB per mux request, ${f(inf.sdkBytesPerRequest / 1024)} KB per SDK request.`,
    `- Heap (${h.path}): ${f(h.after10kMB)} MB after 10k, ${f(h.afterMB)} MB after ${h.requests} requests. The 1M-request figure on the simulator is the mux suite's, above.`,
    `- Simulator (BedrockRuntime.converse vs mux.converse on BedrockSimulator, ${sim.calls} calls each, paired blocks): p50 ${f(sim.directP50us)} vs ${f(sim.muxP50us)} µs, added ${us(sim.addedUs)} (pairwise median).`,
    ""
  )
  out.push(
    "What each change bought (rows appended by hand in bench/report.ts; each says how it was measured):",
    "",
    "| change | mux.converse added | facade added | mux added CPU | stream TTFT added | in flight, mux vs SDK |",
    "|---|---|---|---|---|---|",
    ...SDK_HISTORY.map((h) => `| ${h.change} | ${h.mux} | ${h.facade} | ${h.cpu} | ${h.ttft} | ${h.inflight} |`),
    ""
  )
  if (s.counts !== undefined) {
    out.push("Inside Effect, per call (a counting tracer: one `context` call per run-loop step; fiber ids; spans):", "", "| path | run-loop steps | fibers | spans |", "|---|---|---|---|")
    for (const [name, c] of Object.entries(s.counts as Record<string, Record<string, number>>)) {
      out.push(`| ${name} | ${f(c.runLoopSteps!, 0)} | ${f(c.fibers!, 1)} | ${f(c.spans!, 1)} |`)
    }
    out.push("")
  }
  return out
}
