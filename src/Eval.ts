/**
 * `Eval`: the evaluation gate. Prove which models qualify on a golden set
 * of your own prompts, then write the routing config from the evidence.
 *
 * `Eval.run` calls every candidate on every case through `BedrockRuntime`
 * (real Bedrock, `BedrockSimulator`, or the loopback `FakeBedrock`), scores
 * the answers, and returns a typed `Report`: a summary per model and per
 * tag, paired comparisons against the incumbents, the gate's verdict, and
 * the next config as a `MuxConfig` value (and its JSON).
 *
 * How it behaves:
 * - The golden set is JSON Lines (`decodeGolden`): `id`, `prompt` or
 *   `messages`, optional `system`, `expect` (one or more of `exact`,
 *   `contains`, `regex`, `json`, `number`, `judge`, and your own scorers'
 *   keys), `weight`, `tags`, `inferenceConfig`. Every problem is listed
 *   with its line.
 * - A case's score is the mean of its scorers' scores; it passes when every
 *   scorer passes. A failed call scores 0. A scorer that cannot score (an
 *   unparseable judge answer) is recorded and left out, never a crash.
 * - Per model and per tag: the weighted mean score with a percentile
 *   bootstrap 95 % interval (`Random` seeded with `seed`: same inputs, same
 *   report), pass rate, p50/p95 time to first token and latency, cost per
 *   1 000 cases, errors, refusals, judge failures.
 * - A model passes when its interval's lower bound is at or above `bar`,
 *   overall and on every tag with at least `minTagCases` cases. A candidate
 *   is better than an incumbent only when the paired bootstrap interval of
 *   the difference excludes 0.
 * - Cost control: each candidate is called through a one-model
 *   `BedrockMux` with its `rpm`/`tpm` (calls wait for quota room), at most
 *   `concurrency` cases at a time; answers are looked up in the
 *   `AnswerCache` first; `maxCostUsd` refuses to start when the upper-bound
 *   estimate (`estimate`) is above it.
 * - Prices: the current config's `models[].price`, with `prices` over them;
 *   the next config carries them in its `models[].price`.
 * - The gate passes when no model of the current config fails, at least
 *   `minModels` models are promoted, and the next config decodes.
 *
 * Gotchas:
 * - Latency is measured on Effect's `Clock`: on the simulator under
 *   `TestClock` it is the scripted latency, exactly.
 * - `refusal` is optional: without a classifier, refusals are not counted.
 * - Prompts and answers appear only in the report you render; nothing is
 *   logged.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockSimulator, Eval } from "effect-bedrock-mux"
 *
 * const program = Effect.gen(function*() {
 *   const golden = yield* Eval.decodeGolden('{"id":"capital","prompt":"Capital of France?","expect":{"contains":"Paris"}}')
 *   const report = yield* Eval.run({ golden, candidates: ["a", "b"], bar: 0.5 })
 *   return [report.gate.passed, Eval.toMarkdown(report)] as const
 * }).pipe(Effect.provide(BedrockSimulator.layer({
 *   models: { a: { answer: "Paris." }, b: { answers: [{ includes: "France", answer: "Lyon." }] } }
 * })))
 * ```
 * @since 0.1.0
 */
import { Duration, Effect, Result, Schema } from "effect"
import type { BedrockRuntime } from "./BedrockRuntime.ts"
import * as Aggregate from "./internal/eval/aggregate.ts"
import { AnswerCache, AnswerCacheError, type CachedAnswer } from "./internal/eval/cache.ts"
import { chartOf } from "./internal/eval/chart.ts"
import { decodeGolden as decodeGoldenPure, formatProblem, type GoldenProblem } from "./internal/eval/golden.ts"
import { parseJudgeScore as parseJudge } from "./internal/eval/judge.ts"
import { checkSchema, validate } from "./internal/eval/jsonSchema.ts"
import { currentObject, diffOf, type Evidence, nextConfigOf } from "./internal/eval/nextConfig.ts"
import { type Price, Prices as PricesSchema, pricesOfModels } from "./internal/eval/prices.ts"
import { jsonOf, markdownOf } from "./internal/eval/report.ts"
import * as Runner from "./internal/eval/runner.ts"
import * as Scorers from "./internal/eval/scorers.ts"
import type * as Types from "./internal/eval/types.ts"
import { ScoreFailure } from "./internal/eval/types.ts"
import { problemsOf, strict } from "./internal/schema.ts"
import * as MuxConfig from "./MuxConfig.ts"
import * as Policy from "./Policy.ts"

export { AnswerCache, AnswerCacheError, ScoreFailure }
export type { CachedAnswer, GoldenProblem, Price }
export type {
  Case,
  CaseResult,
  CheckResult,
  Comparison,
  CostSummary,
  DiffLine,
  Expectation,
  Gate,
  Golden,
  InferenceSettings,
  Judge,
  ModelReport,
  NextConfig,
  Percentiles,
  Report,
  Score,
  Scorer,
  ScoreInput,
  Summary,
  WeightPolicy
} from "./internal/eval/types.ts"
export type { Candidate, Progress } from "./internal/eval/runner.ts"

/**
 * The built-in scorers, by name: `exact`, `contains`, `regex`, `json`,
 * `number`, `judge` (docs/evaluation.md lists their arguments).
 *
 * @example
 * ```ts
 * import { Eval } from "effect-bedrock-mux"
 * // only exact and contains: a golden line naming another scorer is a problem at its line
 * const strict = (text: string) => Eval.decodeGolden(text, [Eval.scorers.exact, Eval.scorers.contains])
 * ```
 * @since 0.1.0
 */
export const scorers = {
  exact: Scorers.exact,
  contains: Scorers.contains,
  regex: Scorers.regex,
  json: Scorers.json,
  number: Scorers.number,
  judge: Scorers.judge
} as const

/**
 * The built-in scorers as a list: the default of `decodeGolden` and `run`.
 * Add yours with `[...Eval.builtins, mine]`.
 * @example
 * ```ts
 * import { Eval } from "effect-bedrock-mux"
 * const names = Eval.builtins.map((s) => s.name) // ["exact", "contains", "regex", "json", "number", "judge"]
 * ```
 * @since 0.1.0
 */
export const builtins: ReadonlyArray<Types.Scorer> = Scorers.builtins

/**
 * Defines a scorer: the `expect` key it reads, the schema of its argument,
 * and how it scores an answer (a score in [0, 1] and pass or not; fail with
 * `ScoreFailure` when it cannot score).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Eval } from "effect-bedrock-mux"
 * // "expect": { "maxWords": 50 }
 * const maxWords = Eval.scorer({
 *   name: "maxWords",
 *   description: "the answer has at most this many words",
 *   expectation: Schema.Int,
 *   score: (max, { answer }) => {
 *     const words = answer.split(/\s+/).filter((w) => w !== "").length
 *     return Effect.succeed({ score: words <= max ? 1 : 0, pass: words <= max, detail: `${words} words` })
 *   }
 * })
 * ```
 * @since 0.1.0
 */
export const scorer = <A, R = never>(definition: Types.Scorer<A, R>): Types.Scorer<A, R> => definition

/**
 * A golden set that does not decode: every problem with its line and field path.
 * @since 0.1.0
 */
export class GoldenError extends Schema.TaggedError<GoldenError>()("GoldenError", {
  problems: Schema.Array(Schema.Struct({ line: Schema.Number, path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `Invalid golden set (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${
      this.problems.map((p) => `  ${formatProblem(p)}`).join("\n")
    }`
  }
}

/**
 * Decodes a golden set (JSON Lines text). `scorers` are the expectations a
 * line may name: the built-ins by default; pass yours with them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Eval } from "effect-bedrock-mux"
 * const golden = Eval.decodeGolden([
 *   '{"id":"sum","prompt":"2+2?","expect":{"number":4},"tags":["math"]}',
 *   '{"id":"json","prompt":"Give {\\"a\\":1}","expect":{"json":{"type":"object","required":["a"]}}}'
 * ].join("\n")).pipe(Effect.runSync)
 * ```
 * @since 0.1.0
 */
export const decodeGolden = (
  text: string,
  scorerList: ReadonlyArray<Types.Scorer<any, any>> = Scorers.builtins
): Effect.Effect<Types.Golden, GoldenError> => {
  const result = decodeGoldenPure(text, scorerList)
  return Result.isFailure(result) ? Effect.fail(new GoldenError({ problems: result.failure })) : Effect.succeed(result.success)
}

/**
 * A price table: model id → `{ input, output }`, USD per 1 000 tokens.
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Eval } from "effect-bedrock-mux"
 * const prices = Schema.decodeUnknownSync(Eval.Prices)({ "amazon.nova-lite-v1:0": { input: 0.00006, output: 0.00024 } })
 * ```
 * @since 0.1.0
 */
export const Prices = PricesSchema
/** @since 0.1.0 */
export type Prices = typeof PricesSchema.Type

/**
 * Options of an evaluation that cannot run: every problem with its path
 * (`candidates[1]`, `current.models[0].weight`, `prices`).
 * @since 0.1.0
 */
export class EvalInputError extends Schema.TaggedError<EvalInputError>()("EvalInputError", {
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `Invalid evaluation (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${
      this.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")
    }`
  }
}

/**
 * The upper-bound estimate is above `maxCostUsd`: nothing was called.
 * @since 0.1.0
 */
export class CostLimitExceeded extends Schema.TaggedError<CostLimitExceeded>()("CostLimitExceeded", {
  estimateUsd: Schema.Number,
  maxCostUsd: Schema.Number,
  calls: Schema.Number
}) {
  override get message(): string {
    return `the estimated cost of ${this.calls} calls is up to $${this.estimateUsd.toFixed(4)}, above --max-cost $${this.maxCostUsd}: not started`
  }
}

/**
 * What an evaluation runs.
 * @since 0.1.0
 */
export interface Options<R = never> {
  readonly golden: Types.Golden
  /** model ids, or `{ modelId, rpm, tpm }` for the quota the calls are admitted under */
  readonly candidates: ReadonlyArray<string | Runner.Candidate>
  /** the bar in [0, 1]: a model passes when its interval's lower bound is at or above it */
  readonly bar: number
  /** default `builtins`; must include every scorer the golden set names */
  readonly scorers?: ReadonlyArray<Types.Scorer<any, R>>
  /** the judge model of `judge` expectations */
  readonly judge?: string | Runner.Candidate
  /**
   * USD per 1 000 tokens, per model, over the current config's
   * `models[].price`; a model without a price has no cost in the report
   */
  readonly prices?: Prices
  /** the current mux config (JSON): its models (and their prices) are the incumbents, its other fields carry over */
  readonly current?: MuxConfig.Input
  /** default `equal` */
  readonly weights?: Types.WeightPolicy
  /** write per-tag routes instead of leaving out a model that fails a tag (default false) */
  readonly routes?: boolean
  /** the gate fails when fewer models are promoted (default 1) */
  readonly minModels?: number
  /** a tag is gated when it has at least this many cases (default 5) */
  readonly minTagCases?: number
  /** cases in flight at once (default 4) */
  readonly concurrency?: number
  /** of every call, under each case's own (default `{ maxTokens: 512 }`) */
  readonly inferenceConfig?: Types.InferenceSettings
  /** the judge's output budget (default 256) */
  readonly judgeMaxTokens?: number
  /** attempt timeout (default 2 minutes) and request deadline, admission waits included (default 30 minutes) */
  readonly timeout?: Duration.Input
  readonly deadline?: Duration.Input
  /** the seed of every bootstrap (default "bedrock-mux-eval") */
  readonly seed?: string
  /** bootstrap resamples (default 2000) */
  readonly resamples?: number
  /** refuse to start when the upper-bound estimate is above this (USD) */
  readonly maxCostUsd?: number
  /** counts refusals: true when an answer is a refusal */
  readonly refusal?: (text: string) => Effect.Effect<boolean>
  /** called after each case of each model */
  readonly onProgress?: (progress: Runner.Progress) => Effect.Effect<void>
}

/**
 * The upper-bound cost estimate of a run (the calls not cached).
 * @since 0.1.0
 */
export interface Estimate {
  /** undefined when a model (or the judge) has no price */
  readonly usd: number | undefined
  /** the bound of the priced calls only */
  readonly pricedUsd: number
  readonly calls: number
  readonly unpriced: ReadonlyArray<string>
}

const DEFAULTS = {
  weights: "equal",
  minModels: 1,
  minTagCases: 5,
  concurrency: 4,
  maxTokens: 512,
  judgeMaxTokens: 256,
  timeout: "2 minutes",
  deadline: "30 minutes",
  seed: "bedrock-mux-eval",
  resamples: 2000
} as const

const candidateOf = (c: string | Runner.Candidate): Runner.Candidate => (typeof c === "string" ? { modelId: c } : c)

type Problem = { readonly path: string; readonly message: string }

const isCount = (n: number, min: number) => Number.isInteger(n) && n >= min

/** Every problem of the options, and the settings when there are none; `configPrices` are the current config's. */
const settingsOf = <R>(options: Options<R>, configPrices: Prices): Result.Result<Runner.Settings<R>, ReadonlyArray<Problem>> => {
  const problems: Array<Problem> = []
  const add = (path: string, message: string) => problems.push({ path, message })
  const candidates = options.candidates.map(candidateOf)
  const judge = options.judge === undefined ? undefined : candidateOf(options.judge)
  const scorerList = options.scorers ?? (Scorers.builtins as ReadonlyArray<Types.Scorer<any, R>>)
  if (!(options.bar >= 0 && options.bar <= 1)) add("bar", `${options.bar}; allowed: 0 <= bar <= 1`)
  if (candidates.length === 0) add("candidates", "no candidate; give at least one model id")
  const seen = new Set<string>()
  candidates.forEach((c, i) => {
    if (c.modelId.trim() === "") add(`candidates[${i}]`, "empty model id")
    if (seen.has(c.modelId)) add(`candidates[${i}]`, `duplicate model "${c.modelId}"`)
    seen.add(c.modelId)
  })
  for (const [path, c] of [...candidates.map((c, i) => [`candidates[${i}]`, c] as const), ...(judge === undefined ? [] : [["judge", judge] as const])]) {
    for (const q of ["rpm", "tpm"] as const) {
      const v = c[q]
      if (v !== undefined && !isCount(v, 1)) add(`${path}.${q}`, `${v}; allowed: an integer >= 1`)
    }
  }
  const counts = [
    ["concurrency", options.concurrency, 1],
    ["minModels", options.minModels, 0],
    ["minTagCases", options.minTagCases, 1],
    ["resamples", options.resamples, 1],
    ["judgeMaxTokens", options.judgeMaxTokens, 1],
    ["inferenceConfig.maxTokens", options.inferenceConfig?.maxTokens, 1]
  ] as const
  for (const [path, v, min] of counts) if (v !== undefined && !isCount(v, min)) add(path, `${v}; allowed: an integer >= ${min}`)
  const names = new Set(scorerList.map((s) => s.name))
  const judged: Array<number> = []
  for (const c of options.golden.cases) {
    for (const e of c.expect) {
      if (!names.has(e.scorer)) add(`golden line ${c.line}`, `expectation "${e.scorer}" has no scorer in this run; scorers: ${[...names].join(", ")}`)
      if (e.scorer === "judge") judged.push(c.line)
    }
  }
  if (judged.length > 0 && judge === undefined) {
    add("judge", `cases on lines ${judged.slice(0, 5).join(", ")}${judged.length > 5 ? ", ..." : ""} expect a judge, and the run has no judge model`)
  }
  const decodedPrices = Schema.decodeUnknownResult(PricesSchema)(options.prices ?? {}, strict)
  if (Result.isFailure(decodedPrices)) for (const p of problemsOf(decodedPrices.failure)) add(`prices.${p.path}`, p.message)
  // the run's prices over the config's: the config's file may be older than the price sheet
  const prices: Prices = { ...configPrices, ...(Result.isSuccess(decodedPrices) ? decodedPrices.success : {}) }
  if ((options.weights ?? DEFAULTS.weights) === "cost") {
    for (const c of candidates) {
      if (!Object.hasOwn(prices, c.modelId)) {
        add("prices", `no price for "${c.modelId}": weights "cost" needs every candidate's price (in prices, or the current config's models[].price)`)
      }
    }
  }
  if (options.maxCostUsd !== undefined && !(options.maxCostUsd >= 0)) add("maxCostUsd", `${options.maxCostUsd}; allowed: >= 0`)
  for (const [path, d] of [["timeout", options.timeout], ["deadline", options.deadline]] as const) {
    if (d !== undefined && Duration.fromInput(d)._tag === "None") add(path, `${String(d)} is not a duration`)
  }
  if (problems.length > 0) return Result.fail(problems)
  return Result.succeed({
    cases: options.golden.cases,
    candidates,
    judge,
    scorers: new Map(scorerList.map((s) => [s.name, s] as const)),
    prices,
    concurrency: options.concurrency ?? DEFAULTS.concurrency,
    inferenceConfig: { ...options.inferenceConfig, maxTokens: options.inferenceConfig?.maxTokens ?? DEFAULTS.maxTokens },
    judgeMaxTokens: options.judgeMaxTokens ?? DEFAULTS.judgeMaxTokens,
    timeout: options.timeout ?? DEFAULTS.timeout,
    deadline: options.deadline ?? DEFAULTS.deadline,
    refusal: options.refusal,
    onProgress: options.onProgress
  })
}

/** The current config's problems, and its models' prices. */
const currentOf = (current: MuxConfig.Input | undefined): Effect.Effect<{ readonly problems: ReadonlyArray<Problem>; readonly prices: Prices }> =>
  current === undefined
    ? Effect.succeed({ problems: [], prices: {} })
    : MuxConfig.decode(current).pipe(
      Effect.map((config) => ({ problems: [], prices: pricesOfModels(Policy.models(config)) })),
      Effect.catch((e) => Effect.succeed({ problems: e.problems.map((p) => ({ path: `current.${p.path}`, message: p.message })), prices: {} }))
    )

const settingsOrFail = <R>(options: Options<R>) =>
  Effect.gen(function*() {
    const current = yield* currentOf(options.current)
    const settings = settingsOf(options, current.prices)
    const problems = [...(Result.isFailure(settings) ? settings.failure : []), ...current.problems]
    if (problems.length > 0 || Result.isFailure(settings)) return yield* new EvalInputError({ problems })
    return settings.success
  })

/**
 * The upper-bound cost estimate of a run: what the calls that are not in
 * the `AnswerCache` can cost at most, under the assumptions docs/evaluation.md
 * states (the judge's input tokens for an answer not cached yet are assumed
 * at 2 per candidate token: an assumption, not a bound).
 *
 * @example
 * ```ts
 * import { Console, Effect } from "effect"
 * import { Eval } from "effect-bedrock-mux"
 * const printEstimate = (options: Eval.Options) =>
 *   Effect.flatMap(Eval.estimate(options), (e) => Console.log(`up to $${e.usd} for ${e.calls} calls`))
 * ```
 * @since 0.1.0
 */
export const estimate = <R>(options: Options<R>): Effect.Effect<Estimate, EvalInputError> =>
  Effect.flatMap(settingsOrFail(options), Runner.estimate)

const lowerBoundReason = (s: Types.Summary, bar: number, what: string): string =>
  s.ci === undefined ? `${what}: no scored case` : `${what}: lower bound ${s.ci[0].toFixed(2)} < bar ${bar}`

/**
 * Runs the evaluation and returns the report. Fails before any call when
 * the options or the current config have problems (`EvalInputError`) or
 * the estimate is above `maxCostUsd` (`CostLimitExceeded`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockRuntime, Eval } from "effect-bedrock-mux"
 * const gate = (golden: Eval.Golden) =>
 *   Eval.run({
 *     golden,
 *     candidates: ["us.amazon.nova-2-lite-v1:0", { modelId: "us.amazon.nova-pro-v1:0", rpm: 20 }],
 *     bar: 0.8,
 *     judge: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
 *     weights: "cost",
 *     prices: {
 *       "us.amazon.nova-2-lite-v1:0": { input: 0.0003, output: 0.0025 },
 *       "us.amazon.nova-pro-v1:0": { input: 0.0008, output: 0.0032 }
 *     }
 *   }).pipe(Effect.provide(BedrockRuntime.layer({ region: "us-east-1" })))
 * ```
 * @since 0.1.0
 */
export const run = <R = never>(
  options: Options<R>
): Effect.Effect<Types.Report, EvalInputError | CostLimitExceeded, BedrockRuntime | R> =>
  Effect.gen(function*() {
    const settings = yield* settingsOrFail(options)
    const est = yield* Runner.estimate(settings)
    if (options.maxCostUsd !== undefined) {
      if (est.usd === undefined) {
        return yield* new EvalInputError({
          problems: [{ path: "prices", message: `no price for ${est.unpriced.join(", ")}: the cost cannot be bounded for maxCostUsd` }]
        })
      }
      if (est.usd > options.maxCostUsd) {
        return yield* new CostLimitExceeded({ estimateUsd: est.usd, maxCostUsd: options.maxCostUsd, calls: est.calls })
      }
    }
    const { calls, results } = yield* Runner.run(settings).pipe(
      Effect.catchTag("MuxConfigError", (e) => Effect.die(e)) // a candidate's mux config is built from checked options
    )
    const bar = options.bar
    const seed = options.seed ?? DEFAULTS.seed
    const resamples = options.resamples ?? DEFAULTS.resamples
    const minTagCases = options.minTagCases ?? DEFAULTS.minTagCases
    const routes = options.routes ?? false
    const weights = options.weights ?? DEFAULTS.weights
    const minModels = options.minModels ?? DEFAULTS.minModels
    const stat = { bar, resamples, refusals: options.refusal !== undefined }
    const first = results.get(settings.candidates[0]!.modelId)!
    const { gated, tags } = Aggregate.tagsOf(first, minTagCases)
    const current = currentObject(options.current)
    const incumbentIds = new Set(
      (Array.isArray(current?.["models"]) ? (current["models"] as Array<{ readonly modelId?: unknown }>) : []).map((m) => String(m.modelId))
    )

    const models: Array<Types.ModelReport> = []
    for (const { modelId } of settings.candidates) {
      const mine = results.get(modelId)!
      const summary = yield* Aggregate.summarize(mine, { ...stat, seed: `${seed}:${modelId}` })
      const byTag: Record<string, Types.Summary> = {}
      for (const t of tags) {
        byTag[t] = yield* Aggregate.summarize(mine.filter((r) => r.tags.includes(t)), { ...stat, seed: `${seed}:${modelId}:${t}` })
      }
      const failedTags = gated.filter((t) => !byTag[t]!.passesBar)
      const promoted = summary.passesBar && (routes || failedTags.length === 0)
      const reasons = [
        ...(summary.passesBar ? [] : [lowerBoundReason(summary, bar, "overall")]),
        ...(routes ? [] : failedTags.map((t) => lowerBoundReason(byTag[t]!, bar, `tag ${t}`)))
      ]
      models.push({ modelId, incumbent: incumbentIds.has(modelId), summary, tags: byTag, failedTags, promoted, reasons, results: mine })
    }

    const comparisons: Array<Types.Comparison> = []
    for (const c of models.filter((m) => !m.incumbent)) {
      for (const i of models.filter((m) => m.incumbent)) {
        const cmp = yield* Aggregate.compare(c.results, i.results, { resamples, seed })
        if (cmp !== undefined) comparisons.push(cmp)
      }
    }

    const promoted = models.filter((m) => m.promoted)
    const best = [...promoted].sort((a, b) => (b.summary.mean ?? 0) - (a.summary.mean ?? 0))[0]
    const evidence: Array<Evidence> = []
    for (const m of models) {
      const vsBest = best === undefined || m === best || !m.promoted ? undefined : yield* Aggregate.compare(m.results, best.results, { resamples, seed })
      evidence.push({
        modelId: m.modelId,
        promoted: m.promoted,
        mean: m.summary.mean,
        costPerCase: m.summary.costPer1kCases === undefined ? undefined : m.summary.costPer1kCases / 1000,
        failedTags: m.failedTags,
        tiesBest: vsBest === undefined || vsBest.verdict !== "worse",
        reasons: m.reasons
      })
    }
    const written = nextConfigOf({
      current: options.current,
      evidence,
      candidates: settings.candidates,
      prices: settings.prices,
      weights,
      routes,
      gatedTags: gated
    })
    const decoded = yield* Effect.result(MuxConfig.decode(written.config))
    const next: Types.NextConfig = {
      input: written.config as MuxConfig.Input,
      config: Result.isSuccess(decoded) ? decoded.success : undefined,
      problems: Result.isFailure(decoded) ? decoded.failure.problems : [],
      diff: diffOf(options.current, written.config, evidence),
      notes: written.notes
    }

    const incumbentsFailing = models.filter((m) => m.incumbent && !m.promoted).map((m) => m.modelId)
    const reasons = [
      ...incumbentsFailing.map((id) => `${id} is in the current config and now fails the bar`),
      ...(promoted.length < minModels ? [`${promoted.length} model(s) pass, fewer than the minimum of ${minModels}`] : []),
      ...(next.problems.length > 0 ? ["the next config does not validate"] : []),
      ...(routes ? written.notes.filter((n) => n.startsWith("tag ")) : [])
    ]
    return {
      bar,
      seed,
      resamples,
      weights,
      routes,
      minModels,
      minTagCases,
      judge: settings.judge?.modelId,
      cases: options.golden.cases.length,
      tags,
      gatedTags: gated,
      models,
      comparisons,
      gate: {
        passed: reasons.length === 0,
        promoted: promoted.map((m) => m.modelId),
        leftOut: models.filter((m) => !m.promoted).map((m) => m.modelId),
        incumbentsFailing,
        reasons
      },
      next,
      cost: {
        estimateUsd: est.usd,
        unpriced: est.unpriced,
        billedUsd: calls.billedUsd,
        calls: calls.calls,
        cachedCalls: calls.cachedCalls,
        judgeCalls: calls.judgeCalls,
        judgeCachedCalls: calls.judgeCachedCalls
      }
    } satisfies Types.Report
  })

/**
 * The report as Markdown, for a PR comment: the verdict, a table per model
 * and per tag, comparisons, the config diff and JSON, the worst cases with
 * their prompts and answers, the cost. `chart` links the SVG.
 *
 * @example
 * ```ts
 * import { Eval } from "effect-bedrock-mux"
 * const comment = (report: Eval.Report) => Eval.toMarkdown(report, { worst: 5, chart: "report.svg" })
 * ```
 * @since 0.1.0
 */
export const toMarkdown: (report: Types.Report, options?: { readonly worst?: number; readonly chart?: string }) => string = markdownOf

/**
 * The report as JSON-ready data (`next.config`, the decoded value, is left
 * out; `next.input` is its JSON).
 * @example
 * ```ts
 * import { Eval } from "effect-bedrock-mux"
 * const json = (report: Eval.Report) => JSON.stringify(Eval.toJson(report), null, 2)
 * ```
 * @since 0.1.0
 */
export const toJson: (report: Types.Report) => unknown = jsonOf

/**
 * The SVG chart: mean score with its interval against cost per 1 000 cases
 * and against p50 latency, per model.
 * @example
 * ```ts
 * import { Eval } from "effect-bedrock-mux"
 * const svg = (report: Eval.Report) => Eval.toSvg(report)
 * ```
 * @since 0.1.0
 */
export const toSvg: (report: Types.Report) => string = chartOf

/**
 * Reads a score in [0, 1] out of a judge model's answer (`SCORE: 8`,
 * `**Score:** 4/5`, `{"score": 7}`), or says why it cannot.
 * @example
 * ```ts
 * import { Eval } from "effect-bedrock-mux"
 * Eval.parseJudgeScore("Concise and correct.\nSCORE: 9") // Result.succeed(0.9)
 * ```
 * @since 0.1.0
 */
export const parseJudgeScore: (answer: string) => Result.Result<number, string> = parseJudge

/**
 * The JSON Schema subset of the `json` expectation: `check` lists a
 * schema's problems (unsupported keywords included), `validate` a value's
 * violations (`$.a: expected string, got number`).
 * @example
 * ```ts
 * import { Eval } from "effect-bedrock-mux"
 * Eval.jsonSchema.validate({ type: "object", required: ["a"] }, {}) // ['$: missing required property "a"']
 * ```
 * @since 0.1.0
 */
export const jsonSchema = { check: checkSchema, validate } as const
