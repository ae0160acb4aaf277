// `bedrock-mux eval`, run in-process with Command.runWith (output captured
// by TestConsole): the files it reads and writes, its exit codes, the cost
// limit, the cache; once end to end over the real AWS SDK against the
// loopback FakeBedrock, and once as a real process for the exit code.
import { NodeServices } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Runtime } from "effect"
import { Command } from "effect/cli"
import { TestConsole } from "effect/testing"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { cli, CliExit, usageErrorExit } from "../src/cli/command.ts"
import * as MuxConfig from "../src/MuxConfig.ts"
import { FakeBedrock } from "../src/testing/index.ts"

// as src/cli/main.ts runs it
const run = (...args: Array<string>) =>
  Command.runWith(cli, { version: "0.0.0-test" })(args).pipe(usageErrorExit, Effect.provide(NodeServices.layer))

const exitCode = (e: unknown): number => Runtime.getErrorExitCode(e)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bedrock-mux-eval-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const file = (name: string, content: unknown): string => {
  const p = path.join(dir, name)
  fs.mkdirSync(path.dirname(p), { recursive: true })
  fs.writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content))
  return p
}
const at = (name: string) => path.join(dir, name)

const cases = [
  ...["France:Paris", "Italy:Rome", "Spain:Madrid", "Peru:Lima", "Chile:Santiago", "Japan:Tokyo"].map((pair, i) => {
    const [country, city] = pair.split(":")
    return { id: `geo-${i}`, prompt: `What is the capital of ${country}?`, expect: { contains: city }, tags: ["geo"] }
  }),
  ...[[2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [12, 13]].map(([a, b], i) => ({
    id: `math-${i}`,
    prompt: `What is ${a} + ${b}?`,
    expect: { number: a! + b! },
    tags: ["math"]
  }))
]
const answer = (c: typeof cases[number]) =>
  "number" in c.expect ? `The sum is ${c.expect.number}.` : `It is ${(c.expect as { contains: string }).contains}.`

const golden = file("golden.jsonl", cases.map((c) => JSON.stringify(c)).join("\n") + "\n")
/** good answers everything; weak gets the arithmetic wrong */
const script = {
  models: {
    good: { latency: 5, firstToken: 5, answers: cases.map((c) => ({ prompt: c.prompt, answer: answer(c) })) },
    weak: { latency: 5, firstToken: 5, answers: cases.map((c) => ({ prompt: c.prompt, answer: c.id.startsWith("math") ? "I think 3." : answer(c) })) }
  }
}
const simulator = file("sim.json", script)
const prices = file("prices.json", { good: { input: 0.001, output: 0.002 }, weak: { input: 0.0001, output: 0.0002 } })
const goodIncumbent = file("current-good.json", { models: [{ modelId: "good", weight: 10 }], deadline: "40 seconds" })
const weakIncumbent = file("current-weak.json", { models: [{ modelId: "weak", weight: 100 }, { modelId: "good", isFallback: true }] })

const evalArgs = (...extra: Array<string>) => ["eval", golden, "--models", "good,weak", "--simulator", simulator, ...extra]

const stdout = Effect.map(TestConsole.logLines, (l) => l.join("\n"))
const stderr = Effect.map(TestConsole.errorLines, (l) => l.join("\n"))

describe("bedrock-mux eval on the simulator", () => {
  it.effect("the gate passes: exit 0, the report (Markdown + SVG) and the next config written; the config validates", () =>
    Effect.gen(function*() {
      const out = at("pass/next.json")
      yield* run(...evalArgs("--config", goodIncumbent, "--prices", prices, "--out", out, "--report", at("pass/report.md"), "--cache", at("pass/cache.jsonl")))
      const text = yield* stdout
      assert.match(text, /^PASS {2}evaluation gate: 12 cases, 2 models, bar 0\.8, weights equal/)
      assert.match(text, /good \(incumbent\)\s+promoted\s+1\.00/)
      assert.match(text, /weak\s+left out\s+0\.50 .* math/)
      assert.include(text, "~ model good: tier 0, weight 10 → tier 0, weight 100, price $0.001 in / $0.002 out per 1k")
      assert.include(text, `wrote ${out}`)
      assert.match(yield* stderr, /^estimated cost: up to \$0\.\d+ for 24 call\(s\) not in the cache/)
      const next = JSON.parse(fs.readFileSync(out, "utf8"))
      assert.deepStrictEqual(next, { models: [{ modelId: "good", weight: 100, price: { input: 0.001, output: 0.002 } }], deadline: "40 seconds" })
      assert.isTrue(MuxConfig.decode(next).pipe(Effect.isSuccess, Effect.runSync))
      const md = fs.readFileSync(at("pass/report.md"), "utf8")
      assert.match(md, /^## Evaluation gate: ✅ PASS/)
      assert.include(md, "![score against cost and latency](report.svg)")
      assert.match(fs.readFileSync(at("pass/report.svg"), "utf8"), /^<svg /)
      assert.strictEqual(fs.readFileSync(at("pass/cache.jsonl"), "utf8").trim().split("\n").length, 24)
    }))

  it.effect("the written config passes validate-config", () =>
    Effect.gen(function*() {
      const out = at("validate/next.json")
      yield* run(...evalArgs("--config", goodIncumbent, "--out", out, "--no-cache"))
      yield* run("validate-config", out)
      assert.include(yield* stdout, `VALID  file ${out}`)
    }))

  it.effect("prices from the config's models[].price: the estimate is known, and the written config keeps them and validates", () =>
    Effect.gen(function*() {
      const out = at("priced/next.json")
      const current = file("current-priced.json", { models: [{ modelId: "good", weight: 10, price: { input: 0.001, output: 0.002 } }] })
      yield* run("eval", golden, "--models", "good", "--simulator", simulator, "--config", current, "--out", out, "--no-cache")
      assert.match(yield* stderr, /^estimated cost: up to \$0\.\d+ for 12 call\(s\) not in the cache/)
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(out, "utf8")), { models: [{ modelId: "good", weight: 100, price: { input: 0.001, output: 0.002 } }] })
      yield* run("validate-config", out)
      assert.include(yield* stdout, `VALID  file ${out}`)
    }))

  it.effect("an incumbent now fails the bar: exit 1, the report written, the config not", () =>
    Effect.gen(function*() {
      const out = at("fail/next.json")
      const error = yield* run(...evalArgs("--config", weakIncumbent, "--out", out, "--report", at("fail/report.md"), "--no-cache")).pipe(Effect.flip)
      assert.instanceOf(error, CliExit)
      assert.strictEqual(exitCode(error), 1)
      const text = yield* stdout
      assert.match(text, /^FAIL /)
      assert.include(text, "  - weak is in the current config and now fails the bar")
      assert.include(text, `not written: ${out} (the gate fails)`)
      assert.isFalse(fs.existsSync(out))
      assert.match(fs.readFileSync(at("fail/report.md"), "utf8"), /^## Evaluation gate: ❌ FAIL/)
    }))

  it.effect("fewer than --min-models pass: exit 1", () =>
    Effect.gen(function*() {
      const error = yield* run(...evalArgs("--min-models", "2", "--no-cache")).pipe(Effect.flip)
      assert.strictEqual(exitCode(error), 1)
      assert.include(yield* stdout, "1 model(s) pass, fewer than the minimum of 2")
    }))

  it.effect("--json: the report as JSON on stdout", () =>
    Effect.gen(function*() {
      yield* run(...evalArgs("--json", "--no-cache", "--weights", "score", "--routes"))
      const report = JSON.parse(yield* stdout)
      assert.deepStrictEqual(report.gate.promoted, ["good"])
      assert.strictEqual(report.weights, "score")
      assert.deepStrictEqual(report.models.map((m: { modelId: string; failedTags: Array<string> }) => [m.modelId, m.failedTags]), [
        ["good", []],
        ["weak", ["math"]]
      ])
    }))

  it.effect("refusals are counted with the heuristic classifier: a model that refuses the geography cases", () =>
    Effect.gen(function*() {
      const refusing = file("sim-refusing.json", {
        models: {
          good: script.models.good,
          weak: { latency: 5, firstToken: 5, answers: cases.map((c) => ({ prompt: c.prompt, answer: c.id.startsWith("geo") ? "I'm sorry, but I can't help with that." : answer(c) })) }
        }
      })
      yield* run("eval", golden, "--models", "good,weak", "--simulator", refusing, "--json", "--no-cache").pipe(Effect.ignore)
      const report = JSON.parse(yield* stdout)
      assert.deepStrictEqual(report.models.map((m: { modelId: string; summary: { refusals: number } }) => [m.modelId, m.summary.refusals]), [["good", 0], ["weak", 6]])
    }))

  it.effect("the cache: a rerun calls nothing (estimate 0 calls, every answer cached)", () =>
    Effect.gen(function*() {
      const cache = at("rerun/cache.jsonl")
      yield* run(...evalArgs("--cache", cache, "--json"))
      yield* run(...evalArgs("--cache", cache, "--json"))
      // one log entry per run: the JSON report
      const [first, again] = (yield* TestConsole.logLines).map((l) => JSON.parse(String(l)))
      assert.deepStrictEqual([first.cost.calls, first.cost.cachedCalls], [24, 0])
      assert.deepStrictEqual([again.cost.calls, again.cost.cachedCalls], [0, 24])
      assert.include(yield* stderr, "for 0 call(s) not in the cache")
    }))

  it.effect("a damaged cache with --json: stdout is the JSON report alone, the warning is on stderr, once", () =>
    Effect.gen(function*() {
      const cache = at("damaged/cache.jsonl")
      yield* run(...evalArgs("--cache", cache, "--json"))
      fs.appendFileSync(cache, "{\"key\":\"cut\",\"mo")
      const [outBefore, errBefore] = [(yield* TestConsole.logLines).length, (yield* TestConsole.errorLines).length]
      yield* run(...evalArgs("--cache", cache, "--json"))
      const out = (yield* TestConsole.logLines).slice(outBefore)
      assert.strictEqual(out.length, 1, "one entry on stdout: the report")
      const report = JSON.parse(String(out[0]))
      assert.deepStrictEqual([report.cost.calls, report.cost.cachedCalls], [0, 24])
      const warnings = (yield* TestConsole.errorLines).slice(errBefore).map(String).filter((l) => l.includes("skipped 1 line(s)"))
      assert.strictEqual(warnings.length, 1, "the cache is read once, for the estimate and the run")
      assert.include(warnings[0], `answer cache ${cache}: skipped 1 line(s) that do not decode`)
    }))

  it.effect("admission: an incumbent's rpm comes from --config (over --rpm), a new candidate's from --rpm / --tpm", () =>
    Effect.gen(function*() {
      // Bedrock (the simulator) allows good 2 requests a minute: sent faster, cases are throttled until they fail
      const limited = file("sim-limited.json", {
        models: { good: { ...script.models.good, rpm: 2 }, fresh: script.models.good }
      })
      const current = file("current-limited.json", { models: [{ modelId: "good", rpm: 2 }] })
      yield* run("eval", golden, "--models", "good,fresh", "--simulator", limited, "--config", current, "--rpm", "60", "--tpm", "90000", "--json", "--no-cache")
      const report = JSON.parse(yield* stdout)
      assert.deepStrictEqual(report.models.map((m: { modelId: string; summary: { errors: number } }) => [m.modelId, m.summary.errors]), [["good", 0], ["fresh", 0]])
      assert.deepStrictEqual(report.next.input.models, [
        { modelId: "good", rpm: 2, weight: 100 },
        { modelId: "fresh", weight: 100, rpm: 60, tpm: 90000 }
      ])
      // the control: good admitted at --rpm's 60 a minute is throttled into errors
      const unlimited = file("current-unlimited.json", { models: [{ modelId: "good" }] })
      const before = (yield* TestConsole.logLines).length
      yield* run("eval", golden, "--models", "good", "--simulator", limited, "--config", unlimited, "--rpm", "60", "--json", "--no-cache").pipe(Effect.ignore)
      assert.isAbove(JSON.parse(String((yield* TestConsole.logLines)[before])).models[0].summary.errors, 0)
    }))

  it.effect("--routes: a gated tag that no promoted model passes fails the gate (exit 1), with the reason", () =>
    Effect.gen(function*() {
      // weak alone: right on geography, wrong on every sum; it passes overall at a low bar, and nothing passes math
      const error = yield* run("eval", golden, "--models", "weak", "--simulator", simulator, "--routes", "--bar", "0.1", "--no-cache").pipe(Effect.flip)
      assert.strictEqual(exitCode(error), 1)
      const text = yield* stdout
      assert.match(text, /weak\s+promoted/)
      assert.include(text, "gate fails:\n  - tag \"math\": no promoted model passes it, no route written")
    }))

  it.effect("bad input: exit 2 with every problem (golden set, config, prices, script, files, --models)", () =>
    Effect.gen(function*() {
      const badGolden = file("bad.jsonl", [
        JSON.stringify({ id: "a", prompt: "x", expect: { regex: "(" } }),
        JSON.stringify({ id: "a", expect: {} }),
        "oops"
      ].join("\n"))
      const attempts = [
        ["eval", badGolden, "--models", "good", "--simulator", simulator],
        ["eval", at("missing.jsonl"), "--models", "good", "--simulator", simulator],
        [...evalArgs("--config", file("bad-config.json", { models: [{ modelId: "good", weight: -1 }] }))],
        [...evalArgs("--prices", file("bad-prices.json", { good: { input: "cheap" } }))],
        ["eval", golden, "--models", "good", "--simulator", file("bad-sim.json", { models: { good: { answers: [{ answer: "x" }] } } })],
        ["eval", golden, "--simulator", simulator],
        [...evalArgs("--config", file("garbled.json", "{nope"))],
        [...evalArgs("--bar", "2")]
      ]
      for (const args of attempts) assert.strictEqual(exitCode(yield* run(...args).pipe(Effect.flip)), 2, args.join(" "))
      const errors = yield* stderr
      assert.include(errors, "Invalid golden set (5 problems)")
      assert.include(errors, "line 1, expect.regex: Invalid regular expression")
      assert.include(errors, "line 2, id: duplicate id \"a\" (also on line 1)")
      assert.include(errors, "line 2, prompt: Expected exactly one of `prompt` and `messages`")
      assert.include(errors, "line 3, (line): not valid JSON")
      assert.include(errors, "cannot read golden set")
      assert.include(errors, "current.models[0].weight: ")
      assert.include(errors, "prices.good.input: ")
      assert.include(errors, "models.good.answers[0]: Expected `prompt` or `includes`")
      assert.include(errors, "--models needs at least one model id")
      assert.include(errors, "not valid JSON")
      assert.include(errors, "bar: 2; allowed: 0 <= bar <= 1")
      assert.deepStrictEqual(yield* stdout, "", "nothing ran")
    }))

  it.effect("--max-cost below the estimate: exit 2, nothing called, nothing cached", () =>
    Effect.gen(function*() {
      const cache = at("capped/cache.jsonl")
      const error = yield* run(...evalArgs("--prices", prices, "--max-cost", "0.000001", "--cache", cache)).pipe(Effect.flip)
      assert.strictEqual(exitCode(error), 2)
      assert.match(yield* stderr, /estimated cost: up to \$\d\.\d+ for 24 call\(s\)[\s\S]*above --max-cost \$0\.000001: not started/)
      assert.isFalse(fs.existsSync(cache))
      const unpriced = yield* run(...evalArgs("--max-cost", "10", "--no-cache")).pipe(Effect.flip)
      assert.strictEqual(exitCode(unpriced), 2)
      assert.include(yield* stderr, "no price for good, weak: the cost cannot be bounded")
    }))
})

describe("bedrock-mux eval over the real SDK against FakeBedrock", () => {
  let fake: FakeBedrock.FakeBedrockServer
  beforeAll(async () => {
    // the SDK's default credential chain reads these first
    process.env["AWS_ACCESS_KEY_ID"] = "fake"
    process.env["AWS_SECRET_ACCESS_KEY"] = "fake"
    fake = await FakeBedrock.start(script)
  })
  afterAll(() => fake.close())

  it.live("end to end: every case on every model over HTTP, the gate, the config; the rerun makes no calls", () =>
    Effect.gen(function*() {
      const cache = at("fake/cache.jsonl")
      const out = at("fake/next.json")
      const args = ["eval", golden, "--models", "good,weak", "--endpoint", fake.url, "--region", "us-east-1", "--cache", cache, "--out", out, "--concurrency", "3"]
      yield* run(...args)
      assert.deepStrictEqual(fake.attempts().map((a) => [a.operation, a.outcome]).filter(([, o]) => o !== "success"), [])
      assert.strictEqual(fake.attempts().length, 24)
      assert.deepStrictEqual(new Set(fake.attempts().map((a) => a.operation)), new Set(["converseStream"]))
      const text = yield* stdout
      assert.match(text, /^PASS /)
      assert.match(text, /weak\s+left out/)
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(out, "utf8")), { models: [{ modelId: "good", weight: 100 }] })
      fake.reset()
      yield* run(...args)
      assert.strictEqual(fake.attempts().length, 0, "every answer came from the cache")
    }).pipe(Effect.provide(TestConsole.layer)))
})

describe("bedrock-mux eval as a process", () => {
  it("exits with the code (2 for a missing golden set)", () => {
    const node = process.execPath
    const r = spawnSync(node, ["src/cli/main.ts", "eval", at("nope.jsonl"), "--models", "m"], { encoding: "utf8", timeout: 20_000 })
    assert.strictEqual(r.status, 2, r.stderr)
    assert.include(r.stderr, "cannot read golden set")
  })

  it("stdout is for results: with a damaged cache, --json stdout parses and the warning is on stderr, once", () => {
    const node = process.execPath
    const cache = at("process/cache.jsonl")
    const args = ["src/cli/main.ts", ...evalArgs("--cache", cache, "--json")]
    assert.strictEqual(spawnSync(node, args, { encoding: "utf8", timeout: 20_000 }).status, 0)
    fs.appendFileSync(cache, "{\"key\":\"cut\",\"mo")
    const r = spawnSync(node, args, { encoding: "utf8", timeout: 20_000 })
    assert.strictEqual(r.status, 0, r.stderr)
    assert.deepStrictEqual(JSON.parse(r.stdout).gate.promoted, ["good"])
    assert.strictEqual(r.stderr.split("\n").filter((l) => l.includes(`answer cache ${cache}: skipped 1 line(s)`)).length, 1, r.stderr)
  })

  it("a command line the parser rejects exits 2; --help exits 0", () => {
    const node = process.execPath
    const rejected = spawnSync(node, ["src/cli/main.ts", "eval", at("nope.jsonl"), "--models", "m", "--bar", "abc"], { encoding: "utf8", timeout: 20_000 })
    assert.strictEqual(rejected.status, 2, rejected.stderr)
    assert.include(rejected.stdout + rejected.stderr, "Invalid value for flag --bar: \"abc\"")
    const help = spawnSync(node, ["src/cli/main.ts", "--help"], { encoding: "utf8", timeout: 20_000 })
    assert.strictEqual(help.status, 0, help.stderr)
    assert.include(help.stdout, "validate-config")
  })
})
