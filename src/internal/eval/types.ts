/**
 * The data of an evaluation: golden cases, scorers and what they return,
 * per-case results, summaries and the report. Types only (and the two
 * errors a scorer and a judge can fail with), so every other part of the
 * evaluation depends on this module and it depends on none of them.
 */
import type { Message } from "@aws-sdk/client-bedrock-runtime"
import { Data, type Effect, type Schema } from "effect"
import type * as MuxConfig from "../../MuxConfig.ts"

/** The inference settings a case (or the run) may set; part of the cache key. */
export interface InferenceSettings {
  readonly maxTokens?: number
  readonly temperature?: number
  readonly topP?: number
  readonly stopSequences?: ReadonlyArray<string>
}

/** One expectation of a case: the scorer it names and its decoded argument. */
export interface Expectation {
  readonly scorer: string
  readonly expected: unknown
}

/** One decoded line of the golden set. */
export interface Case {
  readonly id: string
  /** 1-based line in the golden file */
  readonly line: number
  readonly messages: ReadonlyArray<Message>
  /** the text of the last user message (what the report shows, and what a simulator matches on) */
  readonly prompt: string
  readonly system: string | undefined
  /** in the order of the line's `expect` keys */
  readonly expect: ReadonlyArray<Expectation>
  readonly weight: number
  readonly tags: ReadonlyArray<string>
  readonly inferenceConfig: InferenceSettings | undefined
}

/** A decoded golden set. */
export interface Golden {
  readonly cases: ReadonlyArray<Case>
}

/** What a scorer says about one answer: a score in [0, 1] and whether the case passes it. */
export interface Score {
  readonly score: number
  readonly pass: boolean
  /** why, in a few words (shown in the report's worst cases) */
  readonly detail?: string
}

/** A scorer that could not score (an unparseable judge answer, a failed judge call): recorded, never a crash. */
export class ScoreFailure extends Data.TaggedError("ScoreFailure")<{ readonly message: string }> {}

/** The judge model, as scorers see it: one question, one answer text. */
export interface Judge {
  readonly modelId: string
  readonly ask: (question: { readonly system: string; readonly prompt: string }) => Effect.Effect<string, ScoreFailure>
}

/** What a scorer is given. */
export interface ScoreInput {
  readonly answer: string
  readonly case: Case
  /** the judge model, when the run has one */
  readonly judge: Judge | undefined
}

/**
 * A scorer: the `expect` key it reads (`name`), the schema of its argument
 * (decoded with the golden set, so a bad argument is a problem at its
 * line), and the scoring itself.
 */
export interface Scorer<A = any, R = never> {
  readonly name: string
  readonly description: string
  readonly expectation: Schema.Decoder<A>
  readonly score: (expected: A, input: ScoreInput) => Effect.Effect<Score, ScoreFailure, R>
}

/** One scorer's verdict on one answer. */
export type CheckResult =
  | { readonly scorer: string; readonly status: "scored"; readonly score: number; readonly pass: boolean; readonly detail?: string }
  | { readonly scorer: string; readonly status: "failed"; readonly failure: string }

/** One case answered (or not) by one model, and scored. */
export interface CaseResult {
  readonly caseId: string
  readonly line: number
  readonly modelId: string
  readonly tags: ReadonlyArray<string>
  readonly weight: number
  /** the text of the case's last user message */
  readonly prompt: string
  /** undefined when the call failed */
  readonly answer: string | undefined
  /** why the call failed (after admission waits and retries of throttles) */
  readonly error: string | undefined
  /** the answer came from the cache: nothing was billed for it in this run */
  readonly cached: boolean
  /** from the answering attempt's start to its first content event */
  readonly ttftMs: number | undefined
  /** the answering attempt's duration (admission waits excluded) */
  readonly latencyMs: number | undefined
  readonly inputTokens: number
  readonly outputTokens: number
  /** undefined when the model has no price */
  readonly costUsd: number | undefined
  /** what the judge calls of this case cost (undefined: no judge call, or no judge price) */
  readonly judgeCostUsd: number | undefined
  /** undefined when the run has no refusal classifier */
  readonly refusal: boolean | undefined
  readonly checks: ReadonlyArray<CheckResult>
  /** mean of the scored checks (0 for a failed call); undefined when every check failed to score */
  readonly score: number | undefined
  /** every scored check passed (false for a failed call); undefined when unscored */
  readonly pass: boolean | undefined
}

/** Two percentiles of a latency. */
export interface Percentiles {
  readonly p50: number
  readonly p95: number
}

/** The aggregate of a set of case results (a model, or a model on one tag). */
export interface Summary {
  readonly cases: number
  /** cases with a score (a failed call scores 0; a case whose every check failed has none) */
  readonly scored: number
  /** weighted mean score of the scored cases */
  readonly mean: number | undefined
  /** seeded bootstrap 95 % confidence interval of the mean */
  readonly ci: readonly [number, number] | undefined
  /** weighted share of scored cases that passed */
  readonly passRate: number | undefined
  readonly ttftMs: Percentiles | undefined
  readonly latencyMs: Percentiles | undefined
  /** mean cost of a case × 1000; undefined without a price */
  readonly costPer1kCases: number | undefined
  readonly errors: number
  /** undefined when the run has no refusal classifier */
  readonly refusals: number | undefined
  readonly judgeFailures: number
  /** the interval's lower bound is at or above the bar */
  readonly passesBar: boolean
}

/** A candidate's results. */
export interface ModelReport {
  readonly modelId: string
  /** the model is in the current config */
  readonly incumbent: boolean
  readonly summary: Summary
  /** by tag, sorted by tag */
  readonly tags: Readonly<Record<string, Summary>>
  /** gated tags whose interval's lower bound is below the bar */
  readonly failedTags: ReadonlyArray<string>
  /** in the next config's pool */
  readonly promoted: boolean
  /** why it left (or stays out of) the pool */
  readonly reasons: ReadonlyArray<string>
  readonly results: ReadonlyArray<CaseResult>
}

/** A paired bootstrap of two models on the cases both scored. */
export interface Comparison {
  readonly candidate: string
  readonly incumbent: string
  readonly cases: number
  /** mean of candidate − incumbent */
  readonly diff: number
  readonly ci: readonly [number, number]
  /** better / worse only when the interval excludes 0 */
  readonly verdict: "better" | "worse" | "no significant difference"
}

/** How the next config weighs its models (see docs/evaluation.md). */
export type WeightPolicy = "equal" | "score" | "cost"

/** One line of the diff between the current and the next config. */
export interface DiffLine {
  readonly op: "+" | "-" | "~"
  readonly text: string
}

/** The config the evidence supports. */
export interface NextConfig {
  /** the JSON to write (the current config's other fields carried over) */
  readonly input: MuxConfig.Input
  /** `input` decoded by `MuxConfig.decode`; undefined when it does not decode (see `problems`) */
  readonly config: MuxConfig.MuxConfig | undefined
  readonly problems: ReadonlyArray<{ readonly path: string; readonly message: string }>
  readonly diff: ReadonlyArray<DiffLine>
  /** what was decided beyond the diff (a kept unevaluated model, a dropped empty route) */
  readonly notes: ReadonlyArray<string>
}

/** The gate's verdict. */
export interface Gate {
  readonly passed: boolean
  readonly promoted: ReadonlyArray<string>
  /** evaluated models that are not in the next pool */
  readonly leftOut: ReadonlyArray<string>
  /** models of the current config that now fail */
  readonly incumbentsFailing: ReadonlyArray<string>
  /** why the gate fails; empty when it passes */
  readonly reasons: ReadonlyArray<string>
}

/** What the run cost and what it saved. */
export interface CostSummary {
  /** the upper-bound estimate printed before the run (of what was not cached); undefined when a model has no price */
  readonly estimateUsd: number | undefined
  /** models and judge without a price (their cost is not counted) */
  readonly unpriced: ReadonlyArray<string>
  /** what this run's calls cost (cached answers are free) */
  readonly billedUsd: number
  readonly calls: number
  readonly cachedCalls: number
  readonly judgeCalls: number
  readonly judgeCachedCalls: number
}

/** The evaluation report. */
export interface Report {
  readonly bar: number
  readonly seed: string
  readonly resamples: number
  readonly weights: WeightPolicy
  readonly routes: boolean
  readonly minModels: number
  readonly minTagCases: number
  readonly judge: string | undefined
  readonly cases: number
  /** every tag of the golden set, sorted */
  readonly tags: ReadonlyArray<string>
  /** the tags with at least `minTagCases` cases: the ones the bar applies to */
  readonly gatedTags: ReadonlyArray<string>
  readonly models: ReadonlyArray<ModelReport>
  readonly comparisons: ReadonlyArray<Comparison>
  readonly gate: Gate
  readonly next: NextConfig
  readonly cost: CostSummary
}
