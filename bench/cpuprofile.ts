/**
 * Reads V8 `.cpuprofile` files (node --cpu-prof) and aggregates time by
 * function, by file and by category, per call.
 *
 *   node bench/cpuprofile.ts <profile> [--calls N] [--top K]
 *   node bench/cpuprofile.ts --diff <baseline> <profile> --calls N [--top K]
 *
 * Self time of a sample goes to the leaf frame; total time to every distinct
 * function on the sample's stack. A category is decided per sample by
 * walking the stack from the leaf up to the first frame a rule claims (see
 * `RULES`): the Effect interpreter runs every primitive from its run loop, so
 * the leaf side of a stack names the operation (a span, a metric update, a
 * PubSub publish, a generator step), and the root side names only the fiber.
 * With `--diff`, both profiles are scaled per call and subtracted: what the
 * second path adds over the first.
 */
import * as fs from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

/** A file path shortened to the package (or repo-relative path) and file. */
export const fileOf = (url: string): string => {
  if (url === "") return "(native)"
  const u = url.replace(/^file:\/\//, "")
  const nm = u.lastIndexOf("node_modules/")
  if (nm >= 0) return u.slice(nm + "node_modules/".length)
  const m = /\/(src|bench|scratch|test)\/.*/.exec(u)
  return m !== null ? m[0].slice(1) : u
}
const packageOf = (file: string): string => {
  if (file.startsWith("node:") || file.startsWith("(")) return file.startsWith("node:") ? "node:*" : file
  if (file.startsWith("@")) return file.split("/").slice(0, 2).join("/")
  if (file.startsWith("src/") || file.startsWith("bench/") || file.startsWith("scratch/")) return file.split("/")[0]!
  return file.split("/")[0]!
}

/** Category rules, tried from the leaf up; the first frame a rule claims decides. */
const RULES: ReadonlyArray<readonly [string, (f: CallFrame, file: string) => boolean]> = [
  ["gc", (f) => f.functionName === "(garbage collector)"],
  ["idle", (f) => f.functionName === "(idle)"],
  ["program (native)", (f) => f.functionName === "(program)"],
  ["SDK + HTTP (@aws-sdk, @smithy, node:http/net)", (_f, file) => file.startsWith("@aws-sdk/") || file.startsWith("@smithy/") || file.startsWith("@aws-crypto/") || /^node:(_http|http|net|stream|internal\/streams|internal\/http|events|buffer|internal\/url|url|dns|tls|zlib)/.test(file) || file.startsWith("fast-xml-parser") || file.startsWith("tslib")],
  ["spans (Tracer, withSpan, annotate)", (f, file) => /effect\/(src|dist)\/(Tracer|internal\/tracer)/.test(file) || /Span/.test(f.functionName) && file.startsWith("effect/")],
  ["metrics (Metric)", (_f, file) => /effect\/(src|dist)\/(Metric|internal\/metric)/.test(file) || file.startsWith("src/internal/telemetry")],
  ["PubSub publish", (_f, file) => /effect\/(src|dist)\/(PubSub|internal\/pubsub|MutableList|Queue)/.test(file)],
  ["Clock / Random", (f, file) => /effect\/(src|dist)\/(Clock|Random|internal\/random|Duration)/.test(file) || /^(currentTimeMillis|nextRandom|unsafeCurrentTimeMillis)/.test(f.functionName)],
  ["timers (Scheduler, timeout, sleep, setTimeout)", (f, file) => /effect\/(src|dist)\/(Scheduler|internal\/schedule)/.test(file) || /timeout|sleep|setTimeout|clearTimeout/i.test(f.functionName) && (file.startsWith("effect/") || file.startsWith("node:"))
    || /^node:(timers|internal\/timers)/.test(file)],
  ["store (MuxStore)", (_f, file) => file.startsWith("src/MuxStore") || file.startsWith("src/internal/quota") || file.startsWith("src/internal/breaker")],
  ["mux engine (engine.ts, selection, stats)", (_f, file) => /^src\/internal\/(engine|selection|stats|stream)/.test(file)],
  ["mux service (BedrockMux.ts, MuxStream)", (_f, file) => /^src\/(BedrockMux|MuxStream|MuxError|Policy|createMultiplexer)/.test(file)],
  ["BedrockRuntime / BedrockError", (_f, file) => /^src\/(BedrockRuntime|BedrockError)/.test(file)],
  ["Effect runtime: Scope / Exit / Cause", (_f, file) => /effect\/(src|dist)\/(Scope|Exit|Cause|internal\/(scope|cause))/.test(file)],
  ["Effect runtime: fibers, run loop, gen steps", (_f, file) => file.startsWith("effect/")],
  ["node: promises, microtasks, other", (_f, file) => file.startsWith("node:") || file === "(native)"],
  ["bench driver", (_f, file) => file.startsWith("bench/") || file.startsWith("scratch/")]
]

export interface Aggregate {
  readonly totalUs: number
  /** by the Effect primitive the innermost fiber run loop was evaluating, and the first non-effect frame under it */
  readonly byOp: Map<string, number>
  readonly selfByFunction: Map<string, number>
  readonly totalByFunction: Map<string, number>
  readonly selfByFile: Map<string, number>
  readonly selfByPackage: Map<string, number>
  readonly byCategory: Map<string, number>
}

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)

export const aggregate = (p: Profile): Aggregate => {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const keyOf = (f: CallFrame) => `${f.functionName || "(anonymous)"} ${fileOf(f.url)}:${f.lineNumber + 1}`
  const stackCache = new Map<number, { readonly keys: ReadonlyArray<string>; readonly category: string; readonly op: string }>()
  /** leaf → root frames */
  const framesOf = (id: number) => {
    const out: Array<CallFrame> = []
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) out.push(byId.get(cur)!.callFrame)
    return out
  }
  const opOf = (id: number): string => {
    const frames = framesOf(id)
    const k = frames.findIndex((f) => f.functionName === "runLoop" && fileOf(f.url).startsWith("effect/"))
    if (k < 0) {
      const leaf = frames[0]!
      const file = fileOf(leaf.url)
      const rule = RULES.find(([, r]) => frames.some((f) => r(f, fileOf(f.url))))
      return `outside any fiber: ${rule?.[0] ?? file}`
    }
    if (k === 0) return "run loop itself"
    const op = primitiveName(frames[k - 1]!)
    let user: CallFrame | undefined
    for (let j = k - 2; j >= 0; j--) {
      const file = fileOf(frames[j]!.url)
      if (!file.startsWith("effect/") && file !== "(native)" && !file.startsWith("node:")) {
        user = frames[j]
        break
      }
    }
    // inside effect's own code: name the function the primitive called (a withFiber callback, a span, a fork)
    const callee = frames[k - 2]
    const sub = user !== undefined
      ? `${user.functionName || "(anonymous)"} ${fileOf(user.url)}:${user.lineNumber + 1}`
      : callee === undefined
      ? "(the primitive itself)"
      : `(effect) ${callee.functionName || "(anonymous)"} ${fileOf(callee.url)}:${callee.lineNumber + 1}`
    return `${op} → ${sub}`
  }
  const stackOf = (id: number) => {
    let s = stackCache.get(id)
    if (s !== undefined) return s
    const keys = new Set<string>()
    let category: string | undefined
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame
      keys.add(keyOf(f))
      if (category === undefined) {
        const file = fileOf(f.url)
        for (const [name, rule] of RULES) {
          if (rule(f, file)) {
            category = name
            break
          }
        }
      }
    }
    s = { keys: [...keys], category: category ?? "other", op: opOf(id) }
    stackCache.set(id, s)
    return s
  }
  const a: Aggregate = {
    totalUs: 0,
    selfByFunction: new Map(),
    totalByFunction: new Map(),
    selfByFile: new Map(),
    selfByPackage: new Map(),
    byCategory: new Map(),
    byOp: new Map()
  }
  let total = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0
    const id = p.samples[i]!
    const leaf = byId.get(id)!.callFrame
    total += dt
    add(a.selfByFunction, keyOf(leaf), dt)
    const file = fileOf(leaf.url)
    add(a.selfByFile, file, dt)
    add(a.selfByPackage, packageOf(file), dt)
    const s = stackOf(id)
    for (const k of s.keys) add(a.totalByFunction, k, dt)
    add(a.byCategory, s.category, dt)
    add(a.byOp, s.op, dt)
  }
  return { ...a, totalUs: total }
}

const sources = new Map<string, ReadonlyArray<string>>()
/** The `op: "…"` of the Effect primitive a run-loop callee belongs to (read from the source next to its line). */
const primitiveName = (f: CallFrame): string => {
  const file = f.url.replace(/^file:\/\//, "")
  let lines = sources.get(file)
  if (lines === undefined) {
    try {
      lines = fs.readFileSync(file, "utf8").split("\n")
    } catch {
      lines = []
    }
    sources.set(file, lines)
  }
  for (let l = f.lineNumber; l >= Math.max(0, f.lineNumber - 6); l--) {
    const m = /op: "(\w+)"/.exec(lines[l] ?? "")
    if (m !== null) {
      const method = /\[(contA|contE|contAll|evaluate)\]/.exec(lines.slice(l, f.lineNumber + 1).join("\n"))
      return `${m[1]}${method !== null && method[1] !== "evaluate" ? `.${method[1]}` : ""}`
    }
  }
  return `${f.functionName || "(anonymous)"} ${fileOf(f.url)}:${f.lineNumber + 1}`
}

const load = (file: string): Profile => JSON.parse(fs.readFileSync(file, "utf8"))

const table = (title: string, m: Map<string, number>, scale: number, top: number, base?: Map<string, number>, baseScale = 1) => {
  const keys = new Set([...m.keys(), ...(base?.keys() ?? [])])
  const rows = [...keys].map((k) => {
    const v = (m.get(k) ?? 0) / scale
    const b = base === undefined ? 0 : (base.get(k) ?? 0) / baseScale
    return [k, v, b, v - b] as const
  }).sort((x, y) => y[3] - x[3]).slice(0, top)
  const lines = [`\n## ${title}`]
  for (const [k, v, b, d] of rows) {
    lines.push(base === undefined ? `${v.toFixed(1).padStart(9)}  ${k}` : `${d.toFixed(1).padStart(9)}  (${b.toFixed(1)} → ${v.toFixed(1)})  ${k}`)
  }
  return lines.join("\n")
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const flag = (name: string, dflt: number) => {
    const i = args.indexOf(name)
    if (i < 0) return dflt
    const v = Number(args[i + 1])
    args.splice(i, 2)
    return v
  }
  const calls = flag("--calls", 1)
  const top = flag("--top", 30)
  const unit = calls === 1 ? "µs" : "µs per call"
  if (args[0] === "--diff") {
    const base = aggregate(load(args[1]!))
    const prof = aggregate(load(args[2]!))
    console.log(`# ${args[2]} over ${args[1]} (${unit}; total ${(base.totalUs / calls).toFixed(1)} → ${(prof.totalUs / calls).toFixed(1)})`)
    console.log(table("by category (added)", prof.byCategory, calls, 40, base.byCategory, calls))
    console.log(table("by Effect primitive → first non-effect frame (added)", prof.byOp, calls, top, base.byOp, calls))
    console.log(table("self by package (added)", prof.selfByPackage, calls, top, base.selfByPackage, calls))
    console.log(table("self by file (added)", prof.selfByFile, calls, top, base.selfByFile, calls))
    console.log(table("self by function (added)", prof.selfByFunction, calls, top, base.selfByFunction, calls))
    console.log(table("total by function (added)", prof.totalByFunction, calls, top, base.totalByFunction, calls))
  } else {
    const a = aggregate(load(args[0]!))
    console.log(`# ${args[0]} (${unit}; total ${(a.totalUs / calls).toFixed(1)})`)
    console.log(table("by category", a.byCategory, calls, 40))
    console.log(table("by Effect primitive → first non-effect frame", a.byOp, calls, top))
    console.log(table("self by package", a.selfByPackage, calls, top))
    console.log(table("self by file", a.selfByFile, calls, top))
    console.log(table("self by function", a.selfByFunction, calls, top))
    console.log(table("total by function", a.totalByFunction, calls, top))
  }
}
