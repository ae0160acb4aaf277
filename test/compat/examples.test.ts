/**
 * The package as a migrating project consumes it: built by `npm run build`'s
 * script into a temporary package, compiled against by TypeScript 5.9 with
 * the aws-samples multiplexer's own tsconfig (`moduleResolution: "node"`,
 * `module: "commonjs"`), and loaded with `require()`.
 *
 * - The original's examples 01–10 (test/compat/examples/, changed
 *   only in their import lines and in lines marked "ported:") compile with
 *   no error, then run as CommonJS programs against a loopback FakeBedrock
 *   that the SDK finds through AWS_ENDPOINT_URL_BEDROCK_RUNTIME (set for the
 *   child process; the library reads no environment). Each must exit by
 *   itself, with nothing on stderr.
 * - A CommonJS consumer requires the package and its `/testing` entry and
 *   makes a call.
 * - The built bin is executable.
 */
import { spawn, spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { SimulatorScript } from "../../src/index.ts"
import { FakeBedrock } from "../../src/testing/index.ts"
import { refusalModel } from "../support/onnx.ts"

const root = resolve(import.meta.dirname, "../..")
const examples = join(root, "test/compat/examples")
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

  // the consumer: the ported examples, the original's tsconfig, and node_modules with the package in it
  mkdirSync(join(consumer, "node_modules/@types"), { recursive: true })
  for (const f of readdirSync(examples)) copyFileSync(join(examples, f), join(consumer, f))
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

/** Runs a compiled example (CommonJS) with the SDK pointed at `url`. */
const run = (file: string, url: string) =>
  new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(consumer, "dist", file)], {
      cwd: consumer,
      env: {
        PATH: process.env["PATH"] ?? "",
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME: url,
        AWS_ACCESS_KEY_ID: "fake",
        AWS_SECRET_ACCESS_KEY: "fake"
      }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => resolveRun({ code, stdout, stderr }))
  })

const NOVA_LITE = "amazon.nova-2-lite-v1:0"
const TITAN = "amazon.titan-text-express-v1"
const NOVA_PRO = "amazon.nova-pro-v1:0"
const healthy: SimulatorScript.ScriptInput = {
  models: { [NOVA_LITE]: { answer: "Quantum computers use qubits." }, [TITAN]: {}, [NOVA_PRO]: {} }
}

const example = async (file: string, script: SimulatorScript.ScriptInput = healthy) => {
  const server = await FakeBedrock.start(script)
  try {
    const out = await run(file, server.url)
    expect(out.stderr).toBe("")
    expect(out.code).toBe(0)
    return { ...out, attempts: server.attempts().map((a) => a.modelId) }
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

  it("TypeScript 5.9 with moduleResolution node (the original's tsconfig) resolves the package and compiles the ported examples", () => {
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
    const out = await example("consumer.js", { models: { m: { answer: "hello from CommonJS" } } })
    expect(JSON.parse(out.stdout)).toEqual({ text: "hello from CommonJS", model: "m", closed: "CLOSED", error: "function", testing: "function" })
    expect(out.attempts).toEqual(["m"])
  })
})

describe("the original's examples, run against the loopback fake", () => {
  it("01 basic usage: one answer", async () => {
    const out = await example("01-basic-usage.js")
    expect(out.stdout).toBe("Assistant: Quantum computers use qubits.\n")
  })

  it("02 weighted selection: 20 requests over the primaries, none to the fallback", async () => {
    const out = await example("02-weighted-selection.js")
    const counts = [...out.stdout.matchAll(/ {2}(\S+): (\d+) selections/g)].map((m) => [m[1], Number(m[2])] as const)
    expect(counts.reduce((n, [, c]) => n + c, 0)).toBe(20)
    expect(counts.every(([id]) => id === NOVA_LITE || id === TITAN)).toBe(true)
    expect(out.attempts.length).toBe(20)
  })

  it("03 failover and retry: throttled primaries fail over; with tierEscalation the throttled model answers at priority", async () => {
    const throttledTwice = { faults: [{ when: { calls: [1, 2] }, do: { kind: "error" as const, error: "ThrottlingException" as const } }] }
    const out = await example("03-failover-and-retry.js", { models: { [NOVA_LITE]: throttledTwice, [TITAN]: throttledTwice, [NOVA_PRO]: {} } })
    expect(out.stdout).not.toContain("❌")
    expect(out.stdout.match(/✅ Request succeeded/g)?.length).toBe(2)
    expect(out.stdout).toContain("✅ Succeeded on attempt 1")
    expect(out.stdout).toMatch(/⬆️ {2}Escalating amazon\.\S+: default → priority/)
    expect(out.stdout).toMatch(/✅ Escalation succeeded: amazon\.\S+ at priority tier/)
    // both primaries throttled the first request, which the fallback answered
    expect(out.attempts.slice(0, 3).sort()).toEqual([NOVA_LITE, NOVA_PRO, TITAN].sort())
  })

  it("04 circuit breaker: every breaker starts closed", async () => {
    const out = await example("04-circuit-breaker.js")
    expect(out.stdout).toContain(`  ${NOVA_LITE}: CLOSED (failures: 0)\n  ${NOVA_PRO}: CLOSED (failures: 0)`)
    expect(out.stdout).toContain("  Circuit state: CLOSED")
  })

  it("05 health checks: healthy, three healthy models", async () => {
    const out = await example("05-health-checks.js")
    expect(out.stdout).toContain("Simple health check: { status: 'healthy', code: 200 }")
    expect(out.stdout).toContain("Is healthy: true")
    expect(out.stdout).toContain("  Total models: 3\n  Healthy: 3\n  Degraded (HALF_OPEN): 0\n  Unhealthy (OPEN): 0")
    expect(out.stdout).toContain("Nova Lite circuit state: CLOSED")
  })

  it("06 timeout tuning: five answers, then a multiplexer with the suggested timeout", async () => {
    const out = await example("06-timeout-tuning.js")
    expect(out.stdout.match(/Request \d: ✅/g)?.length).toBe(5)
    expect(out.stdout).toMatch(/Recreated multiplexer with timeout: \d+ms/)
  })

  it("07 event system: the request's events in order, then model-added / model-removed and stats-reset", async () => {
    const out = await example("07-event-system.js")
    const lines = out.stdout.split("\n").filter((l) => /^\S+ +\[/.test(l)).map((l) => l.replace(/^\S+ +/, "").replace(/\[[^\]]*\] \d+ms$/, "[id] Nms").replace(/— \d+ms$/, "— Nms"))
    expect(lines).toEqual([
      "[request] Request received",
      `[model-selected] ${NOVA_LITE} (primary, retry #0)`,
      expect.stringMatching(new RegExp(`^\\[model-invocation-start\\] ${NOVA_LITE.replace(/\./g, "\\.")} \\[[^\\] ]+\\]$`)),
      `[model-invocation-complete] ${NOVA_LITE} [id] Nms`,
      "[stats] 1 requests, 1 success",
      `[success] ${NOVA_LITE} — Nms`,
      `[model-added] ${TITAN}`,
      `[model-removed] ${TITAN}`,
      "[stats-reset] Statistics cleared"
    ])
    expect(out.attempts).toEqual([NOVA_LITE])
  })

  it("10 refusal detection (Part B; Part A drives the original's internal classifier): refusals fail over to the fallback, refusalCount counts them", async () => {
    // where the example looks for its model: ../../models from its compiled file
    mkdirSync(join(tmp, "models"), { recursive: true })
    writeFileSync(join(tmp, "models/refusal_classifier.onnx"), refusalModel({ sorry: 2, cannot: 2, decline: 3 }, 1.5))
    const water = "Water evaporates, condenses into clouds and falls as rain"
    const refusal = "I am sorry but I cannot help with that"
    const out = await example("10-refusal-detection.js", {
      models: { [NOVA_PRO]: { answer: refusal }, "amazon.nova-lite-v1:0": { answer: refusal }, [TITAN]: { answer: water } }
    })
    // both primaries refuse each request; the fallback answers
    expect(out.stdout.match(new RegExp(`Assistant: ${water}`, "g"))?.length).toBe(2)
    expect(out.stdout).toContain("  Successes:   2\n  Refusals:    4\n  Rate limits: 0\n  Fail-fast:   0")
    expect(out.attempts.filter((m) => m === TITAN)).toHaveLength(2)
    expect(out.attempts).toHaveLength(6)
    expect(out.stdout).toContain("✨ Multiplexer destroyed (ONNX session released)")
  })

  it("08 statistics: five successes, then zero after resetStats", async () => {
    const out = await example("08-statistics.js")
    expect(out.stdout).toContain("  Successes:    5\n  Rate limits:  0\n  Fail-fast:    0\n  Success rate: 100.0%")
    expect(out.stdout).toContain("Stats reset. New counts:\n  Successes: 0, Rate limits: 0")
  })

  it("09 tracing: tracing enabled, both requests answered, the selection and invocation events seen", async () => {
    const out = await example("09-xray-tracing.js")
    expect(out.stdout.match(/✅ Success/g)?.length).toBe(2)
    expect(out.stdout.match(/🎯 Traced: model selected = amazon\.\S+ \(retry #0\)/g)?.length).toBe(2)
    expect(out.stdout.match(/⏱️ {2}Traced: invocation complete/g)?.length).toBe(2)
  })
})
