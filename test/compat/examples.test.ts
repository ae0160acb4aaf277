/**
 * The package as a migrating project consumes it: built by `npm run build`'s
 * script into a temporary package, compiled against by TypeScript 5.9 in a
 * CommonJS project set up like the aws-samples multiplexer's own
 * (`moduleResolution: "node"`, `module: "commonjs"`), and loaded with
 * `require()`.
 *
 * - The compat programs (test/compat/programs/, one per feature area of the
 *   original: our own programs, written against its documented API and
 *   importing only this package and the AWS SDK) compile with no error, then
 *   run as CommonJS programs against a loopback FakeBedrock that the SDK
 *   finds through AWS_ENDPOINT_URL_BEDROCK_RUNTIME (set for the child
 *   process; the library reads no environment). Each program checks its own
 *   outcome and exits non-zero on a wrong one; here each must exit 0 by
 *   itself with nothing on stderr, and the calls the fake saw must be the
 *   ones the program's story implies.
 * - A CommonJS consumer requires the package and its `/testing` entry and
 *   makes a call.
 * - The built bin is executable.
 */
import { spawn, spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { SimulatorScript } from "../../src/index.ts"
import { FakeBedrock } from "../../src/testing/index.ts"
import { refusalModel } from "../support/onnx.ts"

const root = resolve(import.meta.dirname, "../..")
const programs = join(root, "test/compat/programs")
const tmp = mkdtempSync(join(tmpdir(), "compat-"))
const pkg = join(tmp, "pkg")
const consumer = join(tmp, "consumer")
const link = (target: string, path: string) => symlinkSync(target, path, "dir")

let compiled: { readonly status: number | null; readonly output: string }
let compiledEsm: { readonly status: number | null; readonly output: string }

beforeAll(() => {
  // the package: package.json, LICENSE and dist as npm would pack them; its dependencies from this repo
  mkdirSync(pkg, { recursive: true })
  copyFileSync(join(root, "package.json"), join(pkg, "package.json"))
  copyFileSync(join(root, "LICENSE"), join(pkg, "LICENSE"))
  link(join(root, "node_modules"), join(pkg, "node_modules"))
  const build = spawnSync(process.execPath, [join(root, "scripts/build.ts"), join(pkg, "dist")], { encoding: "utf8" })
  if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`)

  // the consumer: the compat programs, their CommonJS tsconfig, and node_modules with the package in it
  mkdirSync(join(consumer, "node_modules/@types"), { recursive: true })
  for (const f of readdirSync(programs)) copyFileSync(join(programs, f), join(consumer, f))
  link(pkg, join(consumer, "node_modules/effect-bedrock-mux"))
  link(join(root, "node_modules/@aws-sdk"), join(consumer, "node_modules/@aws-sdk"))
  link(join(root, "node_modules/@types/node"), join(consumer, "node_modules/@types/node"))
  // a negative control: were the package's types unresolved (any), these directives would be unused, and tsc would fail
  writeFileSync(join(consumer, "negative.ts"), [
    "import { createMultiplexer, CircuitBreakerState } from 'effect-bedrock-mux';",
    "import { FakeBedrock } from 'effect-bedrock-mux/testing';",
    "const m = createMultiplexer([{ modelId: 'a', weight: 1, isFallback: false }]);",
    "// @ts-expect-error the listener's arguments are typed",
    "m.on('model-selected', (modelId: number) => modelId);",
    "// @ts-expect-error an unknown option",
    "createMultiplexer([], { maxAttemptz: 1 });",
    "// @ts-expect-error the enum-like's values",
    "const s: typeof CircuitBreakerState.OPEN = 'CLOSED';",
    "// @ts-expect-error the testing entry resolves too",
    "export const url: number = (null as unknown as FakeBedrock.FakeBedrockServer).url;",
    "export { s };"
  ].join("\n"))
  const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript-5/bin/tsc"), "-p", join(consumer, "tsconfig.json")], { encoding: "utf8" })
  compiled = { status: tsc.status, output: tsc.stdout + tsc.stderr }
  // the same control as an ES module project with moduleResolution nodenext, on this repo's TypeScript (7)
  const esm = join(consumer, "esm")
  mkdirSync(esm)
  writeFileSync(join(esm, "package.json"), JSON.stringify({ type: "module" }))
  copyFileSync(join(consumer, "negative.ts"), join(esm, "negative.ts"))
  writeFileSync(join(esm, "tsconfig.json"), JSON.stringify({
    compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, skipLibCheck: true, noEmit: true, types: ["node"] },
    include: ["negative.ts"]
  }))
  const tsc7 = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(esm, "tsconfig.json")], { encoding: "utf8" })
  compiledEsm = { status: tsc7.status, output: tsc7.stdout + tsc7.stderr }
}, 120_000)

afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** Runs a compiled program (CommonJS) with the SDK pointed at `url`; `node` options (a preload) go before it. */
const run = (file: string, url: string, node: ReadonlyArray<string> = [], env: Record<string, string> = {}) =>
  new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolveRun, reject) => {
    const child = spawn(process.execPath, [...node, join(consumer, "dist", file)], {
      cwd: consumer,
      env: {
        PATH: process.env["PATH"] ?? "",
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME: url,
        AWS_ACCESS_KEY_ID: "fake",
        AWS_SECRET_ACCESS_KEY: "fake",
        ...env
      }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => resolveRun({ code, stdout, stderr }))
  })

type Model = NonNullable<SimulatorScript.ScriptInput["models"][string]>
type Fault = NonNullable<Model["faults"]>[number]

/** The fake's script: each model answers "answered by <modelId>" (the programs' convention), plus `extra`. */
const answering = (ids: ReadonlyArray<string>, extra: Record<string, Model> = {}): SimulatorScript.ScriptInput => ({
  models: Object.fromEntries([...new Set([...ids, ...Object.keys(extra)])].map((id) => [id, { answer: `answered by ${id}`, ...extra[id] }]))
})
const fault = (error: Extract<Fault["do"], { kind: "error" }>["error"], calls?: number | Array<number>): Model => ({
  faults: [{ ...(calls !== undefined ? { when: { calls } } : {}), do: { kind: "error", error } }]
})
const hang: Model = { faults: [{ do: { kind: "hang" } }] }

/** How each model's calls ended, in order, as the fake saw them. */
const outcomes = (attempts: ReadonlyArray<FakeBedrock.Attempt>): Record<string, Array<string>> => {
  const out: Record<string, Array<string>> = {}
  for (const a of attempts) (out[a.modelId] ??= []).push(a.serviceTier === undefined ? a.outcome : `${a.outcome} (${a.serviceTier})`)
  return out
}

/** Runs `file` against a fake with `script`: it must exit 0 with nothing on stderr. */
const program = async (file: string, script: SimulatorScript.ScriptInput, node: ReadonlyArray<string> = [], env: Record<string, string> = {}) => {
  const server = await FakeBedrock.start(script)
  try {
    const out = await run(file, server.url, node, env)
    expect(out.stderr).toBe("")
    expect(out.code).toBe(0)
    return { ...out, attempts: server.attempts() }
  } finally {
    await server.close()
  }
}

describe("the built package", () => {
  it("npm run build keeps the bin executable", () => {
    const bin = join(pkg, "dist/cli/main.js")
    expect(statSync(bin).mode & 0o111).toBe(0o111)
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true)
    expect(JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).bin["bedrock-mux"]).toBe("./dist/cli/main.js")
  })

  it("TypeScript 5.9 with moduleResolution node and module commonjs resolves the package and compiles the compat programs", () => {
    expect(compiled.output).toBe("")
    expect(compiled.status).toBe(0)
  })

  it("TypeScript 7 with moduleResolution nodenext (an ES module project) resolves the package and its types", () => {
    expect(compiledEsm.output).toBe("")
    expect(compiledEsm.status).toBe(0)
  })

  it("require() loads the package and its testing entry, and makes a call", async () => {
    writeFileSync(join(consumer, "dist/consumer.js"), [
      "const { createMultiplexer, CircuitBreakerState, MultiplexerError } = require('effect-bedrock-mux');",
      "const { FakeBedrock } = require('effect-bedrock-mux/testing');",
      "const m = createMultiplexer([{ modelId: 'm', weight: 1, isFallback: false }], { clientConfig: { region: 'us-east-1' } });",
      "m.processRequest({ messages: [{ role: 'user', content: [{ text: 'hi' }] }] }).then(async (r) => {",
      "  console.log(JSON.stringify({ text: r.output.message.content[0].text, model: r.routing.modelId, closed: CircuitBreakerState.CLOSED,",
      "    error: typeof MultiplexerError, testing: typeof FakeBedrock.start }));",
      "  await m.destroy();",
      "});"
    ].join("\n"))
    const out = await program("consumer.js", { models: { m: { answer: "hello from CommonJS" } } })
    expect(JSON.parse(out.stdout)).toEqual({ text: "hello from CommonJS", model: "m", closed: "CLOSED", error: "function", testing: "function" })
    expect(outcomes(out.attempts)).toEqual({ m: ["success"] })
  })
})

describe("the compat programs (the original's documented API through the facade), run against the loopback fake", () => {
  const NOVA_2_LITE = "amazon.nova-2-lite-v1:0"
  const NOVA_LITE = "amazon.nova-lite-v1:0"
  const NOVA_MICRO = "amazon.nova-micro-v1:0"
  const NOVA_PRO = "amazon.nova-pro-v1:0"
  const NOVA_PREMIER = "amazon.nova-premier-v1:0"
  const TITAN = "amazon.titan-text-express-v1"
  const TITAN_LITE = "amazon.titan-text-lite-v1"
  const HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
  const LLAMA = "meta.llama3-8b-instruct-v1:0"
  const MISTRAL = "mistral.mistral-7b-instruct-v0:2"
  const COMMAND = "cohere.command-r-v1:0"
  const JAMBA = "ai21.jamba-1-5-mini-v1:0"

  it("basic-converse: the primary answers through createMultiplexer and new BedrockMultiplexer", async () => {
    const out = await program("basic-converse.js", answering([NOVA_2_LITE, NOVA_PRO]))
    expect(out.stdout).toContain(`Assistant: answered by ${NOVA_2_LITE}\n`)
    expect(outcomes(out.attempts)).toEqual({ [NOVA_2_LITE]: ["success", "success"] })
  })

  it("basic-converse exits non-zero, saying which check failed, when the answer is not the one it expects", async () => {
    const server = await FakeBedrock.start({ models: { [NOVA_2_LITE]: { answer: "something else" }, [NOVA_PRO]: {} } })
    try {
      const out = await run("basic-converse.js", server.url)
      expect(out.code).toBe(1)
      expect(out.stderr).toContain("check failed: the assistant's message")
    } finally {
      await server.close()
    }
  })

  it("weighted-selection: 200 requests over the two primaries by weight, none to the fallback", async () => {
    const out = await program("weighted-selection.js", answering([NOVA_2_LITE, TITAN, NOVA_PRO]))
    const printed = Object.fromEntries([...out.stdout.matchAll(/^ {2}(\S+): (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]))
    const seen = outcomes(out.attempts)
    expect(out.attempts).toHaveLength(200)
    expect(seen[NOVA_PRO]).toBeUndefined()
    expect(printed).toEqual({ [NOVA_2_LITE]: seen[NOVA_2_LITE]!.length, [TITAN]: seen[TITAN]!.length, [NOVA_PRO]: 0 })
  })

  it("failover-and-retry: throttles and a 503 fail over, a 500 is retried on its model, tierEscalation answers at priority, a ValidationException fails fast", async () => {
    const out = await program("failover-and-retry.js", answering(
      [NOVA_LITE, NOVA_MICRO, NOVA_PRO, HAIKU, TITAN, LLAMA, MISTRAL, NOVA_PREMIER, TITAN_LITE, COMMAND, JAMBA],
      {
        [NOVA_LITE]: fault("ThrottlingException", 1),
        [NOVA_MICRO]: fault("ThrottlingException", 1),
        [HAIKU]: fault("ServiceUnavailableException"),
        [LLAMA]: fault("InternalServerException", 1),
        [NOVA_PREMIER]: fault("ThrottlingException", 1),
        [COMMAND]: fault("ValidationException")
      }
    ))
    expect(outcomes(out.attempts)).toEqual({
      [NOVA_LITE]: ["ThrottlingException"],
      [NOVA_MICRO]: ["ThrottlingException"],
      [NOVA_PRO]: ["success"],
      [HAIKU]: ["ServiceUnavailableException"],
      [TITAN]: ["success"],
      [LLAMA]: ["InternalServerException", "success"],
      [NOVA_PREMIER]: ["ThrottlingException", "success (priority)"],
      [COMMAND]: ["ValidationException"]
    })
    expect(out.stdout.match(/^✅/gm)).toHaveLength(5)
  })

  it("circuit-breaker: five 503s open the primary's breaker; the sixth request does not reach it", async () => {
    const out = await program("circuit-breaker.js", answering([NOVA_LITE, NOVA_PRO], { [NOVA_LITE]: fault("ServiceUnavailableException") }))
    expect(outcomes(out.attempts)).toEqual({
      [NOVA_LITE]: Array(5).fill("ServiceUnavailableException"),
      [NOVA_PRO]: Array(6).fill("success")
    })
    expect(out.stdout).toContain(`  ${NOVA_LITE}: OPEN (failures: 5)\n`)
  })

  it("health-checks: a healthy pool reports 200; a pool whose breakers all opened reports 503 and sends nothing", async () => {
    const healthy = [NOVA_2_LITE, TITAN, NOVA_PRO]
    const out = await program("health-checks.js", answering([...healthy, HAIKU, LLAMA], {
      [HAIKU]: fault("ServiceUnavailableException"),
      [LLAMA]: fault("ServiceUnavailableException")
    }))
    const seen = outcomes(out.attempts)
    expect(healthy.flatMap((id) => seen[id] ?? [])).toEqual(["success", "success", "success"])
    // five requests reach both models; the sixth neither
    expect([seen[HAIKU], seen[LLAMA]]).toEqual([Array(5).fill("ServiceUnavailableException"), Array(5).fill("ServiceUnavailableException")])
  })

  it("timeout-tuning: the original's range, a timeout from the measured p99, a stuck model given up on, TimeoutError when nothing answers", async () => {
    const out = await program("timeout-tuning.js", answering([NOVA_MICRO], { [NOVA_PREMIER]: hang, [TITAN_LITE]: hang }))
    // the stuck calls were aborted, not left hanging: the fake saw them end as interrupted
    expect(outcomes(out.attempts)).toEqual({
      [NOVA_MICRO]: Array(7).fill("success"),
      [NOVA_PREMIER]: ["interrupted", "interrupted"],
      [TITAN_LITE]: ["interrupted"]
    })
    expect(out.stdout).toMatch(/recreated with defaultTimeoutMs \d+ms/)
  })

  it("event-system: a failed-over request's events in the original's order; once, off; model-added, model-removed, stats-reset", async () => {
    const out = await program("event-system.js", answering([NOVA_LITE, NOVA_PRO], { [NOVA_LITE]: fault("ThrottlingException", 1) }))
    expect(out.attempts.slice(0, 2).map((a) => [a.modelId, a.outcome])).toEqual([[NOVA_LITE, "ThrottlingException"], [NOVA_PRO, "success"]])
    // the second request goes to whichever model can take it then (the primary's throttle cooldown is on real time)
    expect(out.attempts.slice(2).map((a) => a.outcome)).toEqual(["success"])
    expect(out.attempts.some((a) => a.modelId === TITAN)).toBe(false)
  })

  it("statistics: five successes after one throttle, a fail-fast counted, zero after resetStats", async () => {
    const out = await program("statistics.js", answering([NOVA_LITE, NOVA_PRO, COMMAND], {
      [NOVA_LITE]: fault("ThrottlingException", 1),
      [COMMAND]: fault("ValidationException")
    }))
    const seen = outcomes(out.attempts)
    expect(seen[NOVA_LITE]![0]).toBe("ThrottlingException")
    expect([...seen[NOVA_LITE]!.slice(1), ...seen[NOVA_PRO]!]).toEqual(Array(5).fill("success"))
    expect(seen[COMMAND]).toEqual(["ValidationException"])
    expect(out.stdout).toContain("  Successes:    5\n  Rate limits:  1\n")
  })

  it("tracing: the traced multiplexer's spans reach the global OpenTelemetry provider (bodies captured); the untraced one sends none", async () => {
    const require = createRequire(import.meta.url)
    const spansFile = join(tmp, "spans.json")
    const preload = join(tmp, "otel-preload.cjs")
    // the app's side of tracing, which the program leaves to its host: a provider with an in-memory exporter
    writeFileSync(preload, [
      `const { trace } = require(${JSON.stringify(require.resolve("@opentelemetry/api"))});`,
      `const sdk = require(${JSON.stringify(require.resolve("@opentelemetry/sdk-trace-base"))});`,
      "const exporter = new sdk.InMemorySpanExporter();",
      "trace.setGlobalTracerProvider(new sdk.BasicTracerProvider({ spanProcessors: [new sdk.SimpleSpanProcessor(exporter)] }));",
      "process.on('exit', () => require('node:fs').writeFileSync(process.env.SPANS_FILE, JSON.stringify(exporter.getFinishedSpans().map((s) => ({",
      "  name: s.name, scope: s.instrumentationScope.name, id: s.spanContext().spanId, parent: s.parentSpanContext && s.parentSpanContext.spanId,",
      "  attributes: s.attributes",
      "})))));"
    ].join("\n"))
    const out = await program("tracing.js", answering([NOVA_LITE, NOVA_PRO], { [NOVA_LITE]: fault("ServiceUnavailableException", 1) }), [
      "--require",
      preload
    ], { SPANS_FILE: spansFile })
    expect(outcomes(out.attempts)).toEqual({ [NOVA_LITE]: ["ServiceUnavailableException", "success"], [NOVA_PRO]: ["success"] })
    interface Span {
      readonly name: string
      readonly scope: string
      readonly id: string
      readonly parent?: string
      readonly attributes: Record<string, unknown>
    }
    const spans: Array<Span> = JSON.parse(readFileSync(spansFile, "utf8"))
    expect(spans.map((s) => s.name).sort()).toEqual(["chat bedrock-mux", `chat ${NOVA_LITE}`, `chat ${NOVA_PRO}`].sort())
    const request = spans.find((s) => s.name === "chat bedrock-mux")!
    expect(spans.every((s) => s.scope === "compat-tracing")).toBe(true)
    expect(spans.filter((s) => s !== request).every((s) => s.parent === request.id)).toBe(true)
    expect(request.attributes["gen_ai.response.model"]).toBe(NOVA_PRO)
    expect(JSON.parse(String(request.attributes["gen_ai.input.messages"]))).toEqual([{ role: "user", content: [{ text: "Trace this request" }] }])
  })

  it("refusal-detection: the heuristic, a classifier function and an ONNX model each fail a refusal over; retryOnRefusal false scores nothing", async () => {
    // where the program looks for its model: ../models from its compiled file
    mkdirSync(join(consumer, "models"), { recursive: true })
    writeFileSync(join(consumer, "models/refusal_classifier.onnx"), refusalModel({ sorry: 2, cannot: 2, decline: 3 }, 1.5))
    const out = await program("refusal-detection.js", answering([NOVA_PRO, TITAN], {
      [NOVA_PRO]: { answer: "I am sorry but I cannot help with that" }
    }))
    // three detecting pools, retryOnRefusal false, and the refusing model alone
    expect(outcomes(out.attempts)).toEqual({ [NOVA_PRO]: Array(5).fill("success"), [TITAN]: Array(3).fill("success") })
    expect(out.stdout.match(/^✅/gm)).toHaveLength(5)
  })

  it("add-remove-models: a model added, the primary removed while in flight (that request still answered by it) and added back as a primary", async () => {
    const out = await program("add-remove-models.js", answering([NOVA_LITE, NOVA_PRO]))
    expect(out.attempts.map((a) => a.modelId)).toEqual([NOVA_LITE, NOVA_PRO, ...Array.from({ length: 10 }, () => NOVA_LITE)])
    expect(out.stdout).toBe(`  added ${NOVA_PRO}\n  removed ${NOVA_LITE}\n  added ${NOVA_LITE}\n`)
  })
})
