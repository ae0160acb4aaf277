/**
 * `bedrock-mux eval <golden.jsonl> --models a,b,c [...]`: the evaluation
 * gate on the command line. The flags and the run live here; `command.ts`
 * registers the command and passes in what it shares with the other
 * commands (the TTY progress line, the table renderer), so this module does
 * not import it.
 *
 * What it does, in order: reads the golden set, the current config, the
 * prices and the simulator script (any problem: exit 2); prints the
 * upper-bound cost estimate (above `--max-cost`: exit 2, nothing called);
 * runs `Eval.run` on real Bedrock (`--region`, `--endpoint`) or on the
 * simulator (virtual time: instant, reproducible); writes the Markdown
 * report and its SVG chart (`--report`), prints the verdict and the config
 * diff (or the JSON report with `--json`); writes the next config
 * (`--out`) only when the gate passes.
 *
 * Exit codes: 0 the gate passes (and `--out` was written), 1 a model of the
 * current config now fails the bar, fewer than `--min-models` pass, with
 * `--routes` a gated tag that no promoted model passes (`tag "math": no
 * promoted model passes it, no route written`), or the next config does not
 * validate; 2 bad input (files, flags, golden set, config, prices, script)
 * or an estimate above `--max-cost`.
 *
 * Output: results on stdout (the table and diff, or the JSON report with
 * `--json`); the estimate, errors, warnings and logs on stderr (`command.ts`
 * routes the logger there), so `--json` stdout always parses.
 */
import { Console, Effect, FileSystem, Layer, Option, Path, Result } from "effect"
import { Argument, Flag } from "effect/cli"
import { BedrockRuntime } from "../BedrockRuntime.ts"
import { BedrockSimulator } from "../BedrockSimulator.ts"
import * as Eval from "../Eval.ts"
import type * as MuxConfig from "../MuxConfig.ts"
import * as Policy from "../Policy.ts"
import * as Refusal from "../Refusal.ts"
import * as SimulatorScript from "../SimulatorScript.ts"
import type { ProgressReporter, Table } from "./scenarioKit.ts"
import { virtual } from "./scenarioKit.ts"

/** The default answer cache file. */
export const DEFAULT_CACHE = ".bedrock-mux/eval-cache.jsonl"

/** The flags and argument of `eval`. */
export const evalFlags = {
  golden: Argument.String("golden").pipe(Argument.withDescription("the golden set: a JSON Lines file, one case per line")),
  // optional for the parser, required by the run: a missing --models is bad input (exit 2), not a usage error
  models: Flag.String("models").pipe(Flag.withDescription("comma-separated model ids of the candidates (required)"), Flag.optional),
  config: Flag.String("config").pipe(
    Flag.withDescription("the current mux config (JSON): its models are the incumbents, its other fields carry over"),
    Flag.optional
  ),
  out: Flag.String("out").pipe(Flag.withDescription("write the next config here when the gate passes"), Flag.optional),
  report: Flag.String("report").pipe(
    Flag.withDescription("write the Markdown report here (and its SVG chart next to it, .svg)"),
    Flag.optional
  ),
  simulator: Flag.String("simulator").pipe(
    Flag.withDescription("run offline on this BedrockSimulator script (JSON), on virtual time"),
    Flag.optional
  ),
  bar: Flag.Finite("bar").pipe(Flag.withDescription("the bar in [0, 1] for the lower bound of the 95 % interval"), Flag.withDefault(0.8)),
  judge: Flag.String("judge").pipe(Flag.withDescription("the judge model of `judge` expectations"), Flag.optional),
  concurrency: Flag.Int("concurrency").pipe(Flag.withDescription("cases in flight at once"), Flag.withDefault(4)),
  minModels: Flag.Int("min-models").pipe(Flag.withDescription("the gate fails when fewer models pass"), Flag.withDefault(1)),
  weights: Flag.Literals("weights", ["equal", "score", "cost"]).pipe(
    Flag.withDescription("weights of the next config: equal, score or cost (docs/evaluation.md)"),
    Flag.withDefault("equal")
  ),
  routes: Flag.Boolean("routes").pipe(
    Flag.withDescription("keep a model that fails a tag, out of that tag's route, instead of leaving it out"),
    Flag.withDefault(false)
  ),
  maxCost: Flag.Finite("max-cost").pipe(Flag.withDescription("refuse to start when the cost estimate (USD) is above this"), Flag.optional),
  prices: Flag.String("prices").pipe(
    Flag.withDescription("price table (JSON): { modelId: { input, output } } in USD per 1000 tokens, over the --config models[].price"),
    Flag.optional
  ),
  maxTokens: Flag.Int("max-tokens").pipe(Flag.withDescription("maxTokens of every call (a case's own wins)"), Flag.withDefault(512)),
  rpm: Flag.Int("rpm").pipe(Flag.withDescription("requests per minute of a candidate not in --config"), Flag.optional),
  tpm: Flag.Int("tpm").pipe(Flag.withDescription("tokens per minute of a candidate not in --config"), Flag.optional),
  seed: Flag.String("seed").pipe(Flag.withDescription("the bootstrap's seed"), Flag.withDefault("bedrock-mux-eval")),
  resamples: Flag.Int("resamples").pipe(Flag.withDescription("bootstrap resamples"), Flag.withDefault(2000)),
  minTagCases: Flag.Int("min-tag-cases").pipe(Flag.withDescription("a tag with at least this many cases is gated"), Flag.withDefault(5)),
  cache: Flag.String("cache").pipe(Flag.withDescription("the answer cache file (JSON Lines)"), Flag.withDefault(DEFAULT_CACHE)),
  noCache: Flag.Boolean("no-cache").pipe(
    Flag.withDescription("neither read nor write the answer cache: call everything"),
    Flag.withDefault(false),
    Flag.withoutNegation
  ),
  region: Flag.String("region").pipe(Flag.withDescription("AWS region (real Bedrock)"), Flag.optional),
  endpoint: Flag.String("endpoint").pipe(Flag.withDescription("Bedrock Runtime endpoint URL (a VPC endpoint, a test fake)"), Flag.optional),
  json: Flag.Boolean("json").pipe(Flag.withDescription("print the report as JSON on stdout"), Flag.withDefault(false))
}

/** The parsed flags. */
export interface EvalArgs {
  readonly golden: string
  readonly models: Option.Option<string>
  readonly config: Option.Option<string>
  readonly out: Option.Option<string>
  readonly report: Option.Option<string>
  readonly simulator: Option.Option<string>
  readonly bar: number
  readonly judge: Option.Option<string>
  readonly concurrency: number
  readonly minModels: number
  readonly weights: Eval.WeightPolicy
  readonly routes: boolean
  readonly maxCost: Option.Option<number>
  readonly prices: Option.Option<string>
  readonly maxTokens: number
  readonly rpm: Option.Option<number>
  readonly tpm: Option.Option<number>
  readonly seed: string
  readonly resamples: number
  readonly minTagCases: number
  readonly cache: string
  readonly noCache: boolean
  readonly region: Option.Option<string>
  readonly endpoint: Option.Option<string>
  readonly json: boolean
}

/** What `command.ts` lends the command. */
export interface EvalDeps {
  /** the TTY progress line, or undefined off a TTY */
  readonly progress: ProgressReporter | undefined
  readonly renderTable: (table: Table) => string
  readonly describeError: (e: unknown) => string
}

/** Bad input: printed, exit 2. */
const badInput = (lines: ReadonlyArray<string>) => Effect.as(Console.error(lines.join("\n")), 2)

const readText = (path: string, what: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.readFileString(path).pipe(Effect.mapError((e) => `cannot read ${what} ${path}: ${e.message}`)))

const readJson = (path: string, what: string) =>
  Effect.flatMap(readText(path, what), (text) =>
    Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => `${what} ${path}: not valid JSON: ${(e as Error).message}` }))

const optionalJson = (path: Option.Option<string>, what: string) =>
  Option.isNone(path) ? Effect.succeed(undefined) : readJson(path.value, what)

const f2 = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(2))

/** The models' results as a table (what the demo and the command print). */
export const modelTable = (report: Eval.Report): Table => ({
  title: `evaluation gate: ${report.cases} cases, ${report.models.length} models, bar ${report.bar}, weights ${report.weights}`,
  expectation: "a model passes when the lower bound of its 95 % interval is at or above the bar, overall and on every gated tag",
  columns: ["model", "status", "mean", "95% CI", "pass rate", "TTFT p50 ms", "latency p50 ms", "$ / 1k cases", "errors", "failed tags"],
  rows: report.models.map((m) => {
    const s = m.summary
    return [
      m.incumbent ? `${m.modelId} (incumbent)` : m.modelId,
      m.promoted ? "promoted" : "left out",
      f2(s.mean),
      s.ci === undefined ? "-" : `[${f2(s.ci[0])}, ${f2(s.ci[1])}]`,
      s.passRate === undefined ? "-" : `${Math.round(s.passRate * 100)}%`,
      s.ttftMs === undefined ? "-" : Math.round(s.ttftMs.p50),
      s.latencyMs === undefined ? "-" : Math.round(s.latencyMs.p50),
      s.costPer1kCases === undefined ? "-" : s.costPer1kCases.toFixed(4),
      s.errors,
      m.failedTags.length === 0 ? "-" : m.failedTags.join(",")
    ]
  }),
  summary: {
    gate: report.gate.passed ? "PASS" : "FAIL",
    promoted: report.gate.promoted.join(",") || "none",
    leftOut: report.gate.leftOut.join(",") || "none"
  },
  ok: report.gate.passed
})

/** The diff lines as text. */
export const diffText = (report: Eval.Report): string =>
  report.next.diff.length === 0 ? "  (no change)" : report.next.diff.map((d) => `  ${d.op} ${d.text}`).join("\n")

/** The candidates: each with its rpm/tpm from the current config, else from --rpm/--tpm. */
const candidatesOf = (args: EvalArgs, current: unknown): Array<Eval.Candidate> => {
  const models = typeof current === "object" && current !== null
    ? (Array.isArray(current) ? current : (current as { readonly models?: unknown }).models)
    : undefined
  const entries = Array.isArray(models) ? (models as ReadonlyArray<{ readonly modelId?: unknown; readonly rpm?: unknown; readonly tpm?: unknown }>) : []
  return Option.getOrElse(args.models, () => "").split(",").map((m) => m.trim()).filter((m) => m !== "").map((modelId) => {
    const entry = entries.find((e) => e.modelId === modelId)
    const rpm = typeof entry?.rpm === "number" ? entry.rpm : Option.getOrUndefined(args.rpm)
    const tpm = typeof entry?.tpm === "number" ? entry.tpm : Option.getOrUndefined(args.tpm)
    return { modelId, ...(rpm === undefined ? {} : { rpm }), ...(tpm === undefined ? {} : { tpm }) }
  })
}

/**
 * Runs `eval` with parsed flags; returns the exit code (everything to say
 * was printed).
 */
export const runEval = (args: EvalArgs, deps: EvalDeps) =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* Path.Path
    const inputs = yield* Effect.result(Effect.all({
      goldenText: readText(args.golden, "golden set"),
      current: optionalJson(args.config, "config"),
      prices: optionalJson(args.prices, "prices"),
      script: optionalJson(args.simulator, "simulator script")
    }))
    if (Result.isFailure(inputs)) return yield* badInput([`error: ${inputs.failure}`])
    const { current, goldenText, prices, script } = inputs.success
    const golden = yield* Effect.result(Eval.decodeGolden(goldenText))
    if (Result.isFailure(golden)) return yield* badInput([`error: ${args.golden}: ${golden.failure.message}`])
    let simulated: SimulatorScript.Script | undefined
    if (script !== undefined) {
      const decoded = yield* Effect.result(SimulatorScript.decode(script))
      if (Result.isFailure(decoded)) return yield* badInput([`error: ${Option.getOrElse(args.simulator, () => "")}: ${decoded.failure.message}`])
      simulated = decoded.success
    }
    const candidates = candidatesOf(args, current)
    if (candidates.length === 0) return yield* badInput(["error: --models needs at least one model id (comma-separated)"])
    const options: Eval.Options = {
      golden: golden.success,
      candidates,
      bar: args.bar,
      concurrency: args.concurrency,
      minModels: args.minModels,
      weights: args.weights,
      routes: args.routes,
      seed: args.seed,
      resamples: args.resamples,
      minTagCases: args.minTagCases,
      inferenceConfig: { maxTokens: args.maxTokens },
      // refusals counted with the library's default classifier (the heuristic), at the mux's default threshold
      refusal: (text) => Effect.map(Refusal.heuristic.score(text), (score) => score >= Policy.defaultRefusalThreshold),
      ...(current === undefined ? {} : { current: current as MuxConfig.Input }),
      ...(prices === undefined ? {} : { prices: prices as Eval.Prices }),
      ...(Option.isSome(args.judge) ? { judge: args.judge.value } : {}),
      ...(Option.isSome(args.maxCost) ? { maxCostUsd: args.maxCost.value } : {}),
      ...(deps.progress === undefined || args.json ? {} : { onProgress: (p: Eval.Progress) => deps.progress!.report(p.done, p.total) })
    }
    const onVirtualTime = simulated !== undefined
    const cacheLayer = !args.noCache
      ? Eval.AnswerCache.layerFileSystem(args.cache, { write: onVirtualTime ? "on-close" : "through" })
      : Layer.empty
    const runtime: Layer.Layer<BedrockRuntime, unknown> = simulated !== undefined
      ? BedrockSimulator.layer(simulated)
      : BedrockRuntime.layer({
        ...(Option.isSome(args.region) ? { region: args.region.value } : {}),
        ...(Option.isSome(args.endpoint) ? { endpoint: args.endpoint.value } : {})
      })

    // built once, for the estimate and the run: the file is read (and a damaged line warned about) once;
    // on the simulator its answers are appended when runEval's scope closes, outside the virtual clock
    const cache = yield* Effect.result(Layer.build(cacheLayer))
    if (Result.isFailure(cache)) return yield* badInput([`error: answer cache: ${cache.failure.message}`])
    const estimate = yield* Effect.result(Eval.estimate(options).pipe(Effect.provide(cache.success)))
    if (Result.isFailure(estimate)) return yield* badInput([`error: ${estimate.failure.message}`])
    const est = estimate.success
    const bound = est.usd === undefined
      ? `unknown for ${est.calls} call(s) not in the cache (no price for ${est.unpriced.join(", ")} in --prices or the --config models[].price${
        est.pricedUsd > 0 ? `; the priced calls up to $${est.pricedUsd.toFixed(4)}` : ""
      })`
      : `up to $${est.usd.toFixed(4)} for ${est.calls} call(s) not in the cache`
    yield* Console.error(`estimated cost: ${bound}`)

    // the simulator is built inside the virtual clock: its time zero is the run's
    const evaluation = Eval.run(options).pipe(Effect.provide(runtime))
    const running = (onVirtualTime ? virtual(evaluation, "3650 days") : evaluation).pipe(
      Effect.ensuring(deps.progress === undefined || args.json ? Effect.void : Effect.sync(() => process.stderr.write("\r\x1b[K")))
    )
    const outcome = yield* Effect.result(running.pipe(Effect.provide(cache.success)))
    if (Result.isFailure(outcome)) return yield* badInput([`error: ${deps.describeError(outcome.failure)}`])
    const report = outcome.success

    const written: Array<string> = []
    const write = (path: string, text: string) =>
      fs.makeDirectory(paths.dirname(path), { recursive: true }).pipe(
        Effect.andThen(fs.writeFileString(path, text)),
        Effect.as(true),
        Effect.catch((e) => Effect.as(Console.error(`error: cannot write ${path}: ${e.message}`), false))
      )
    let failedWrite = false
    if (Option.isSome(args.report)) {
      const md = args.report.value
      const svg = md.replace(/\.(md|markdown)$/i, "") + ".svg"
      const ok1 = yield* write(svg, Eval.toSvg(report))
      const ok2 = yield* write(md, Eval.toMarkdown(report, { chart: paths.basename(svg) }))
      if (ok1 && ok2) written.push(md, svg)
      else failedWrite = true
    }
    if (report.gate.passed && Option.isSome(args.out)) {
      if (yield* write(args.out.value, JSON.stringify(report.next.input, null, 2) + "\n")) written.push(args.out.value)
      else failedWrite = true
    }

    if (args.json) yield* Console.log(JSON.stringify(Eval.toJson(report), null, 2))
    else {
      yield* Console.log(deps.renderTable(modelTable(report)))
      if (report.gate.reasons.length > 0) yield* Console.log(["gate fails:", ...report.gate.reasons.map((r) => `  - ${r}`), ""].join("\n"))
      yield* Console.log(
        [
          `next config (${Option.isSome(args.config) ? `diff against ${args.config.value}` : "no --config: every model is new"}):`,
          diffText(report),
          ...report.next.notes.map((n) => `  note: ${n}`),
          ...report.next.problems.map((p) => `  INVALID ${p.path}: ${p.message}`),
          ""
        ].join("\n")
      )
      if (Option.isSome(args.out) && !report.gate.passed) yield* Console.log(`not written: ${args.out.value} (the gate fails)`)
      if (Option.isNone(args.out) && report.gate.passed) yield* Console.log(`next config (give --out to write it):\n${JSON.stringify(report.next.input, null, 2)}`)
      for (const w of written) yield* Console.log(`wrote ${w}`)
    }
    if (failedWrite) return 2
    return report.gate.passed ? 0 : 1
  }))
