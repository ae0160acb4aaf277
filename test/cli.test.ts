// The bedrock-mux command line, run in-process with Command.runWith; output
// captured by the TestConsole of it.effect.
import { NodeServices } from "@effect/platform-node"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Runtime } from "effect"
import { Command } from "effect/cli"
import { TestConsole } from "effect/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { cli, CliExit } from "../src/cli/command.ts"

const run = (...args: Array<string>) =>
  Command.runWith(cli, { version: "0.0.0-test" })(args).pipe(Effect.provide(NodeServices.layer))

/** runs with `env` as the whole environment seen by Config */
const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bedrock-mux-cli-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const file = (name: string, content: unknown): string => {
  const p = path.join(dir, name)
  fs.writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content))
  return p
}

const good = {
  models: [
    { modelId: "amazon.nova-lite-v1:0", weight: 100, rpm: 50, labels: ["fast"] },
    { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true, timeout: "5 seconds" }
  ],
  deadline: "20 seconds",
  timeout: "8 seconds",
  tenants: { A: { rpm: 3 } }
}

const bad = {
  models: [
    { modelId: "a", weight: -1 },
    { modelId: "a", isFallback: true, tier: 0 }
  ],
  breaker: { cooldown: "10 minutes" },
  routes: { x: ["zzz"] }
}

const exitCode = (e: unknown): number => Runtime.getErrorExitCode(e)

describe("bedrock-mux validate-config", () => {
  it.effect("a good file: prints the decoded models, tiers and resolved timeouts", () =>
    Effect.gen(function*() {
      yield* run("validate-config", file("good.json", good))
      const out = (yield* TestConsole.logLines).join("\n")
      assert.include(out, "VALID")
      assert.match(out, /amazon\.nova-lite-v1:0\s+0 \(primary\)\s+100\s+8s \(policy\)\s+50/)
      assert.match(out, /amazon\.nova-pro-v1:0\s+1 \(fallback\)\s+30\s+5s/)
      assert.include(out, "deadline 20s")
      assert.include(out, "fast -> amazon.nova-lite-v1:0")
      assert.include(out, "A: rpm 3")
    }))

  it.effect("the issue's config with typos: INVALID with every unknown key and its suggestion, exit 1", () =>
    Effect.gen(function*() {
      const typos = {
        models: [{ modelId: "a" }, { modelId: "b", isFallbak: true }],
        deadlin: "5 seconds",
        stream: { stalTimeout: "2 seconds" }
      }
      const err = yield* run("validate-config", file("typos.json", typos)).pipe(Effect.flip)
      assert.strictEqual(exitCode(err), 1)
      const out = (yield* TestConsole.logLines).join("\n")
      assert.match(out, /^INVALID {2}file /)
      assert.include(out, "3 problems")
      assert.include(out, "  models[1].isFallbak: unknown key; did you mean `isFallback`?")
      assert.include(out, "  deadlin: unknown key; did you mean `deadline`?")
      assert.include(out, "  stream.stalTimeout: unknown key; did you mean `stallTimeout`?")
    }))

  it.effect("every section is printed: stream, decisions, backoff, cooldowns, tenants, capture bodies", () =>
    Effect.gen(function*() {
      const full = {
        ...good,
        decisions: { AccessDenied: { failover: true } },
        backoff: { base: "250 millis", max: "4 seconds", times: 3 },
        cooldowns: { requests: "5 seconds" },
        defaultTenant: { tpm: 1000 },
        captureBodies: true,
        stream: { firstTokenTimeout: "3 seconds", stallTimeout: "4 seconds", metadataGrace: 100, onInterrupt: "restart", hedge: { after: "1 second", budget: 0.2 } }
      }
      yield* run("validate-config", file("full.json", full))
      const out = (yield* TestConsole.logLines).join("\n")
      assert.include(out, "stream: first token within 3s, stall after 4s, metadata grace 100ms, on interrupt restart, hedge after 1s, budget 0.2")
      assert.include(out, "decisions (overrides of the defaults):\n  AccessDenied: failover true")
      assert.include(out, "backoff exponential from 250ms up to 4s, 3 time(s)")
      assert.include(out, "throttle cooldowns: requests 5s, tokens 30s")
      assert.include(out, "(any other): tpm 1000")
      assert.include(out, "capture bodies: true")
      // the defaults are printed too
      yield* run("validate-config", file("plain.json", [{ modelId: "a" }]))
      const plain = (yield* TestConsole.logLines).join("\n")
      assert.include(plain, "stream: first token within 10s, stall after 10s, metadata grace 250ms, on interrupt fail, hedge off")
      assert.include(plain, "decisions: defaults")
      assert.include(plain, "backoff none")
      assert.include(plain, "capture bodies: false")

      yield* run("validate-config", file("full2.json", full), "--json")
      const lines = yield* TestConsole.logLines
      const json = JSON.parse(lines.slice(lines.findIndex((l) => String(l).startsWith("{"))).join("\n"))
      assert.deepStrictEqual(json.config.stream, { firstTokenTimeoutMs: 3000, stallTimeoutMs: 4000, metadataGraceMs: 100, onInterrupt: "restart", hedge: { after: 1000, budget: 0.2 } })
      assert.deepStrictEqual(json.config.policy.decisions, { AccessDenied: { failover: true } })
      assert.deepStrictEqual(json.config.policy.backoff, { baseMs: 250, maxMs: 4000, times: 3 })
      assert.strictEqual(json.config.captureBodies, true)
      assert.strictEqual(json.config.cooldownsMs.requests, 5000)
    }))

  it.effect("--json: the decoded config as JSON", () =>
    Effect.gen(function*() {
      yield* run("validate-config", file("good2.json", good), "--json")
      const out = JSON.parse((yield* TestConsole.logLines).join("\n"))
      assert.strictEqual(out.ok, true)
      assert.deepStrictEqual(
        out.config.models.map((m: { target: string; tier: number; timeoutMs: number }) => [m.target, m.tier, m.timeoutMs]),
        [["amazon.nova-lite-v1:0", 0, 8_000], ["amazon.nova-pro-v1:0", 1, 5_000]]
      )
      assert.strictEqual(out.config.policy.deadlineMs, 20_000)
    }))

  it.effect("a bad file: every problem with its path, exit 1", () =>
    Effect.gen(function*() {
      const err = yield* run("validate-config", file("bad.json", bad)).pipe(Effect.flip)
      assert.instanceOf(err, CliExit)
      assert.strictEqual(exitCode(err), 1)
      const out = (yield* TestConsole.logLines).join("\n")
      assert.include(out, "INVALID")
      for (
        const p of ["models[0].weight", "models[1].modelId", "models[1].tier", "breaker.cooldownMax", "routes.x[0]"]
      ) assert.include(out, `  ${p}: `)
    }))

  it.effect("a bad config in an environment variable, --json", () =>
    Effect.gen(function*() {
      const err = yield* run("validate-config", "MUX_CONFIG_TEST", "--json").pipe(
        withEnv({ MUX_CONFIG_TEST: JSON.stringify(bad) }),
        Effect.flip
      )
      assert.strictEqual(exitCode(err), 1)
      const out = JSON.parse((yield* TestConsole.logLines).join("\n"))
      assert.strictEqual(out.ok, false)
      assert.strictEqual(out.source, "environment variable MUX_CONFIG_TEST")
      assert.includeMembers(out.problems.map((p: { path: string }) => p.path), ["models[0].weight", "routes.x[0]"])
    }))

  it.effect("a good config in an environment variable", () =>
    Effect.gen(function*() {
      yield* run("validate-config", "MUX_CONFIG_TEST").pipe(withEnv({ MUX_CONFIG_TEST: JSON.stringify(good.models) }))
      assert.include((yield* TestConsole.logLines).join("\n"), "VALID  environment variable MUX_CONFIG_TEST")
    }))

  it.effect("a missing file, an unset variable, invalid JSON: a readable error, exit 1", () =>
    Effect.gen(function*() {
      const missing = yield* run("validate-config", path.join(dir, "nope.json")).pipe(Effect.flip)
      const unset = yield* run("validate-config", "MUX_CONFIG_UNSET").pipe(withEnv({}), Effect.flip)
      const garbled = yield* run("validate-config", file("garbled.json", "{oops")).pipe(Effect.flip)
      assert.deepStrictEqual([missing, unset, garbled].map(exitCode), [1, 1, 1])
      const errors = yield* TestConsole.errorLines
      assert.strictEqual(errors.length, 3)
      assert.include(errors[0], "no such file")
      assert.include(errors[1], "environment variable MUX_CONFIG_UNSET is not set")
      assert.include(errors[2], "not valid JSON")
      assert.notInclude(errors.join("\n"), "    at ") // no stack trace
    }))
})

describe("bedrock-mux demo", () => {
  it.effect("one scenario with --json: parseable results, ok", () =>
    Effect.gen(function*() {
      yield* run("demo", "throttled-primary", "--json")
      const results = JSON.parse((yield* TestConsole.logLines).join("\n"))
      assert.strictEqual(results.length, 1)
      assert.strictEqual(results[0].name, "throttled-primary")
      assert.strictEqual(results[0].ok, true)
      assert.deepStrictEqual(results[0].summary, { requests: 10, successes: 10 })
      assert.deepStrictEqual(yield* TestConsole.errorLines, []) // no progress output with --json
    }))

  it.effect("the table rendering: PASS, expectation, columns, summary", () =>
    Effect.gen(function*() {
      yield* run("demo", "admission")
      const out = (yield* TestConsole.logLines).join("\n")
      assert.match(out, /^PASS {2}\(e\) primary 3 RPM/)
      assert.include(out, "      expected: 10/10 succeed")
      assert.match(out, /model\s+answered\s+calls seen by Bedrock\s+throttled/)
      assert.include(out, "requests=10  successes=10  throttledCallsSent=0")
    }))

  it.effect("an unknown scenario: exit 2, the known ones listed", () =>
    Effect.gen(function*() {
      const err = yield* run("demo", "throttled-primary", "nope", "--json").pipe(Effect.flip)
      assert.strictEqual(exitCode(err), 2)
      const errors = (yield* TestConsole.errorLines).join("\n")
      assert.include(errors, "unknown scenario(s): nope")
      assert.include(errors, "known: runtime, throttled-primary, outage")
      assert.deepStrictEqual(yield* TestConsole.logLines, []) // nothing ran
    }))

  it.effect("--help lists both commands", () =>
    Effect.gen(function*() {
      yield* run("--help")
      const out = (yield* TestConsole.logLines).join("\n")
      assert.include(out, "demo")
      assert.include(out, "validate-config")
    }))
})
