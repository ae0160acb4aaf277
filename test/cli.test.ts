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
import { cli, CliExit, configToJson, progressDue, progressLine, renderConfig, usageErrorExit } from "../src/cli/command.ts"
import * as MuxConfig from "../src/MuxConfig.ts"
import * as Policy from "../src/Policy.ts"

// as src/cli/main.ts runs it
const run = (...args: Array<string>) =>
  Command.runWith(cli, { version: "0.0.0-test" })(args).pipe(usageErrorExit, Effect.provide(NodeServices.layer))

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

  /** the head of every section validate-config prints, in order */
  const sections = ["name: ", "models (", "policy: ", "retry: ", "guards: ", "breaker: ", "decisions", "stream: ", "routes", "tenants", "throttle cooldowns: ", "capture bodies: "]
  const assertEverySection = (out: string) => {
    const lines = out.split("\n")
    let at = -1
    for (const head of sections) {
      const i = lines.findIndex((l, j) => j > at && l.startsWith(head))
      assert.isAbove(i, at, `section "${head}" printed, after the previous one`)
      at = i
    }
  }

  it.effect("every section is printed: policy, retry, guards, breaker, stream, decisions, backoff, routes, tenants, cooldowns, capture bodies", () =>
    Effect.gen(function*() {
      const full = {
        ...good,
        models: [{ ...good.models[0]!, price: { input: 0.06, output: 0.24 } }, good.models[1]!],
        selection: "latency",
        breaker: { failures: 3, window: "30 seconds", probeInterval: "2 seconds", probeIntervalMax: "1 minute", halfOpen: 2, rampUp: "10 seconds" },
        decisions: { AccessDenied: { failover: true } },
        retry: { base: "200 millis", max: "2 seconds" },
        backoff: { base: "250 millis", max: "4 seconds", times: 3 },
        cooldowns: { base: "250 millis", requests: "5 seconds" },
        defaultTenant: { tpm: 1000 },
        captureBodies: true,
        stream: { firstTokenTimeout: "3 seconds", stallTimeout: "4 seconds", metadataGrace: 100, onInterrupt: "restart", hedge: { after: "1 second", budget: 0.2 } }
      }
      yield* run("validate-config", file("full.json", full))
      const out = (yield* TestConsole.logLines).join("\n")
      assertEverySection(out)
      assert.include(
        out,
        "policy: attempts 4, attempt timeout 8s, deadline 20s, selection latency, backoff exponential from 250ms up to 4s, 3 time(s), waitForRecovery false"
      )
      assert.include(out, "\nretry: 200ms doubling up to 2s, jittered, at least the retry-after\n")
      assert.include(out, "guards: breaker, cooldown, quota")
      assert.include(
        out,
        "breaker: opens after 3 failures in 30s, a probe every 2s while open (a slow failure doubles it, up to 1m), 2 half-open probe(s), ramp-up 10s"
      )
      assert.include(out, "stream: first token within 3s, stall after 4s, metadata grace 100ms, on interrupt restart, hedge after 1s, budget 0.2")
      assert.include(out, "decisions (overrides of the defaults):\n  AccessDenied: failover true")
      assert.include(out, "routes:\n  fast -> amazon.nova-lite-v1:0")
      assert.include(out, "tenants:\n  A: rpm 3\n  (any other): tpm 1000")
      // the base is given, requests is given, the rest are the defaults
      assert.include(out, "throttle cooldowns: from 250ms, doubling up to requests 5s, tokens 30s, unknown 10s; daily 1h; on store error: allow")
      assert.include(out, "capture bodies: true")
      // the defaults are printed too
      yield* run("validate-config", file("plain.json", [{ modelId: "a" }]))
      // the console keeps every run's lines: this run's output is from its VALID line on
      const lastRun = (lines: ReadonlyArray<unknown>) => {
        const all = lines.join("\n")
        return all.slice(all.lastIndexOf("VALID  file"))
      }
      const plain = lastRun(yield* TestConsole.logLines)
      assert.include(plain, "plain.json")
      assertEverySection(plain)
      assert.include(plain, "policy: attempts 4, attempt timeout 30s, deadline 1m, selection weighted, backoff none, waitForRecovery false")
      assert.include(plain, "\nretry: default (100ms doubling, jittered, at least the retry-after)\n")
      assert.include(
        plain,
        "breaker: opens after 5 failures in 1m, a probe every 5s while open (a slow failure doubles it, up to 5m), 1 half-open probe(s), ramp-up 30s"
      )
      assert.include(plain, "stream: first token within 10s, stall after 10s, metadata grace 250ms, on interrupt fail, hedge off")
      assert.include(plain, "decisions: defaults")
      assert.include(plain, "routes: none")
      assert.include(plain, "tenants: none (unlimited)")
      assert.include(plain, "throttle cooldowns: from 500ms, doubling up to requests 10s, tokens 30s, unknown 10s; daily 1h; on store error: allow")
      assert.include(plain, "capture bodies: false")
      // the older breaker names print as the probe interval they are
      yield* run("validate-config", file("old-names.json", { models: [{ modelId: "a" }], breaker: { cooldown: "3 seconds", cooldownMax: "30 seconds" } }))
      const oldNames = lastRun(yield* TestConsole.logLines)
      assert.include(oldNames, "old-names.json")
      assert.include(oldNames, "a probe every 3s while open (a slow failure doubles it, up to 30s)")

      yield* run("validate-config", file("full2.json", full), "--json")
      const lines = yield* TestConsole.logLines
      const json = JSON.parse(lines.slice(lines.findIndex((l) => String(l).startsWith("{"))).join("\n"))
      assert.deepStrictEqual(Object.keys(json.config).sort(), [
        "captureBodies",
        "cooldowns",
        "defaultTenant",
        "models",
        "name",
        "onStoreError",
        "policy",
        "route",
        "routes",
        "stream",
        "tenants"
      ])
      assert.deepStrictEqual(json.config.route, [["amazon.nova-lite-v1:0"], ["amazon.nova-pro-v1:0"]])
      assert.deepStrictEqual(json.config.models[0].price, { input: 0.06, output: 0.24 })
      assert.notProperty(json.config.models[1], "price")
      assert.strictEqual(json.config.policy.selection, "latency")
      assert.deepStrictEqual(json.config.policy.guards, ["breaker", "cooldown", "quota"])
      assert.deepStrictEqual(json.config.policy.breaker, {
        failures: 3,
        windowMs: 30_000,
        probeIntervalMs: 2_000,
        probeIntervalMaxMs: 60_000,
        halfOpen: 2,
        rampUpMs: 10_000
      })
      assert.deepStrictEqual(json.config.stream, { firstTokenTimeoutMs: 3000, stallTimeoutMs: 4000, metadataGraceMs: 100, onInterrupt: "restart", hedge: { after: 1000, budget: 0.2 } })
      assert.deepStrictEqual(json.config.policy.decisions, { AccessDenied: { failover: true } })
      assert.deepStrictEqual(json.config.policy.backoff, { baseMs: 250, maxMs: 4000, times: 3 })
      assert.deepStrictEqual(json.config.policy.retry, { baseMs: 200, maxMs: 2000 })
      assert.deepStrictEqual(json.config.routes, { fast: ["amazon.nova-lite-v1:0"] })
      assert.deepStrictEqual(json.config.tenants, { A: { rpm: 3 } })
      assert.deepStrictEqual(json.config.defaultTenant, { tpm: 1000 })
      assert.strictEqual(json.config.captureBodies, true)
      assert.deepStrictEqual(json.config.cooldowns, { baseMs: 250, requestsMs: 5000, tokensMs: 30_000, dailyMs: 3_600_000, unknownMs: 10_000 })
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
      // no retry section: the default, said as such
      assert.strictEqual(out.config.policy.retry, "default (100ms doubling, jittered, at least the retry-after)")
    }))

  it("the retry schedule of a policy composed in code: the default as such, any other as custom; a section without max prints none", () => {
    const models = [{ modelId: "a" }]
    assert.strictEqual(configToJson(Policy.make(models)).policy.retry, "default (100ms doubling, jittered, at least the retry-after)")
    const custom = Policy.make(models, { retry: Policy.exponentialRetry({ base: "200 millis" }) })
    assert.strictEqual(configToJson(custom).policy.retry, "custom")
    assert.include(renderConfig(custom), "\nretry: custom\n")
    const decoded = MuxConfig.decodeSync({ models, retry: { base: 300 } })
    assert.deepStrictEqual(configToJson(decoded).policy.retry, { baseMs: 300, maxMs: null })
    assert.include(renderConfig(decoded), "\nretry: 300ms doubling, jittered, at least the retry-after\n")
  })

  it.effect("a bad file: every problem with its path, exit 1", () =>
    Effect.gen(function*() {
      const err = yield* run("validate-config", file("bad.json", bad)).pipe(Effect.flip)
      assert.instanceOf(err, CliExit)
      assert.strictEqual(exitCode(err), 1)
      const out = (yield* TestConsole.logLines).join("\n")
      assert.include(out, "INVALID")
      for (
        // the older name `cooldown` (10 minutes) is longer than the default probeIntervalMax (5 minutes)
        const p of ["models[0].weight", "models[1].modelId", "models[1].tier", "breaker.probeIntervalMax", "routes.x[0]"]
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

  it.effect("the eval scenario: the gate's table, then the report's model and tag tables, the worst cases, the next config", () =>
    Effect.gen(function*() {
      yield* run("demo", "eval")
      const out = (yield* TestConsole.logLines).join("\n")
      assert.match(out, /^PASS {2}\(eval\) the gate/)
      assert.include(out, "gate=PASS  promoted=2  leftOut=us.meta.llama3-2-3b-instruct-v1:0  configValid=true")
      assert.match(out, /\| `us\.meta\.llama3-2-3b-instruct-v1:0` \| ❌ left out \| 0\.91 \|/)
      assert.include(out, "  ### By tag")
      assert.match(out, /\| math \| 6 \| 1\.00 \[1\.00, 1\.00\] ✅ \| .* \| 0\.67 \[0\.33, 1\.00\] ❌ \|/)
      assert.include(out, "  - `us.meta.llama3-2-3b-instruct-v1:0` math-1 (line 7): score 0.00; number ✗ got 401, expected 391 ± 0")
      assert.include(out, "    prompt: What is 17 * 23? Answer with the number.")
      assert.include(out, "    + model us.anthropic.claude-sonnet-4-5-20250929-v1:0: tier 0, weight 13")
      // the next config pretty-printed, as --out writes it
      const config = out.slice(out.indexOf("writes):\n") + "writes):\n".length).split("\n").map((l) => l.slice(2)).join("\n")
      const next = JSON.parse(config)
      assert.deepStrictEqual(next.models.map((m: { modelId: string; weight: number }) => [m.modelId, m.weight]), [
        ["us.amazon.nova-2-lite-v1:0", 100],
        ["us.anthropic.claude-sonnet-4-5-20250929-v1:0", 13]
      ])
      assert.include(out, '  {\n    "models": [\n      {\n        "modelId": "us.amazon.nova-2-lite-v1:0",')
      assert.isBelow(out.split("\n").length, 90, "readable: not hundreds of lines")
    }))

  it("the progress line: name, done/total, redrawn over itself; redrawn at most every 50 ms but for the first and last count", () => {
    assert.strictEqual(progressLine("eval", 3, 24), "\r\x1b[Keval                 3/24 requests")
    assert.strictEqual(progressLine("a-very-long-scenario-name", 0, 1), "\r\x1b[Ka-very-long-scenario-name 0/1 requests")
    assert.deepStrictEqual(
      [progressDue(0, 24, 0), progressDue(24, 24, 1), progressDue(5, 24, 10), progressDue(5, 24, 50), progressDue(5, 24, 120, 100)],
      [true, true, false, true, true]
    )
  })

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

  it.effect("a command line the parser rejects exits 2 after the usage and the error; help asked for exits 0", () =>
    Effect.gen(function*() {
      const rejected = [
        ["--bogus"],
        ["validate-config"],
        ["eval", "golden.jsonl", "--models", "m", "--bar", "abc"],
        ["demo", "--no-such-flag"]
      ]
      for (const args of rejected) {
        const err = yield* run(...args).pipe(Effect.flip)
        assert.instanceOf(err, CliExit, args.join(" "))
        assert.strictEqual(exitCode(err), 2, args.join(" "))
      }
      const out = [...yield* TestConsole.logLines, ...yield* TestConsole.errorLines].join("\n")
      assert.include(out, "Missing required argument: source")
      assert.include(out, "Invalid value for flag --bar: \"abc\"")
      // help asked for: shown, exit 0 (a bare bedrock-mux fails with effect/cli's ShowHelp, whose exit code is 0)
      yield* run("--help")
      yield* run("eval", "--help")
      const bare = yield* run().pipe(Effect.flip)
      assert.strictEqual(exitCode(bare), 0)
    }))
})
