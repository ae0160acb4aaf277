/**
 * From case results to the gate's evidence: a summary per model and per
 * (model, tag), which models pass the bar, and paired comparisons.
 *
 * - A model passes when the lower bound of its 95 % interval is at or above
 *   the bar, overall and on every gated tag (a tag with at least
 *   `minTagCases` cases). With `routes`, a model that passes overall but
 *   fails a tag stays in the pool and is left out of that tag's route.
 * - A candidate is better (or worse) than an incumbent only when the paired
 *   bootstrap interval of the difference, on the cases both scored,
 *   excludes 0.
 * - Every bootstrap draws from `Random` seeded with `seed` and the group's
 *   name (`seed:model:tag`), so adding a model or a tag leaves the other
 *   intervals as they were.
 */
import { Effect, Random } from "effect"
import { bootstrapInterval, pairedBootstrap, percentile, weightedMean } from "./stats.ts"
import type { CaseResult, Comparison, Percentiles, Summary } from "./types.ts"

/** A generator of [0, 1) from `Random` under `seed`. */
const generator = (seed: string) =>
  Effect.gen(function*() {
    const random = yield* Random.Random
    return () => random.nextDoubleUnsafe()
  }).pipe(Random.withSeed(seed))

const percentiles = (xs: ReadonlyArray<number>): Percentiles | undefined =>
  xs.length === 0 ? undefined : { p50: percentile(xs, 0.5)!, p95: percentile(xs, 0.95)! }

/** The summary of a group of results; the interval under `seed`. */
export const summarize = (
  results: ReadonlyArray<CaseResult>,
  options: { readonly bar: number; readonly resamples: number; readonly seed: string; readonly refusals: boolean }
): Effect.Effect<Summary> =>
  Effect.gen(function*() {
    const scored = results.filter((r) => r.score !== undefined)
    const xs = scored.map((r) => r.score!)
    const ws = scored.map((r) => r.weight)
    const ci = bootstrapInterval(xs, ws, options.resamples, yield* generator(options.seed))
    const answered = results.filter((r) => r.answer !== undefined)
    const costs = results.map((r) => r.costUsd)
    return {
      cases: results.length,
      scored: scored.length,
      mean: weightedMean(xs, ws),
      ci,
      passRate: weightedMean(scored.map((r) => (r.pass === true ? 1 : 0)), ws),
      ttftMs: percentiles(answered.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs]))),
      latencyMs: percentiles(answered.flatMap((r) => (r.latencyMs === undefined ? [] : [r.latencyMs]))),
      costPer1kCases: results.length === 0 || costs.some((c) => c === undefined)
        ? undefined
        : (costs.reduce((n: number, c) => n + c!, 0) / results.length) * 1000,
      errors: results.filter((r) => r.error !== undefined).length,
      refusals: options.refusals ? results.filter((r) => r.refusal === true).length : undefined,
      judgeFailures: results.reduce((n, r) => n + r.checks.filter((k) => k.status === "failed").length, 0),
      passesBar: ci !== undefined && ci[0] >= options.bar
    } satisfies Summary
  })

/** The tags of the golden set, sorted, and the gated ones (at least `minTagCases` cases). */
export const tagsOf = (results: ReadonlyArray<CaseResult>, minTagCases: number) => {
  const counts = new Map<string, number>()
  for (const r of results) for (const t of r.tags) counts.set(t, (counts.get(t) ?? 0) + 1)
  const tags = [...counts.keys()].sort()
  return { tags, gated: tags.filter((t) => counts.get(t)! >= minTagCases) }
}

/** The paired comparison of `candidate` against `incumbent` on the cases both scored. */
export const compare = (
  candidate: ReadonlyArray<CaseResult>,
  incumbent: ReadonlyArray<CaseResult>,
  options: { readonly resamples: number; readonly seed: string }
): Effect.Effect<Comparison | undefined> =>
  Effect.gen(function*() {
    const theirs = new Map(incumbent.map((r) => [r.caseId, r] as const))
    const pairs = candidate.flatMap((r) => {
      const other = theirs.get(r.caseId)
      return r.score !== undefined && other?.score !== undefined ? [[r, other] as const] : []
    })
    if (pairs.length === 0) return undefined
    const name = { candidate: candidate[0]!.modelId, incumbent: incumbent[0]!.modelId }
    const rng = yield* generator(`${options.seed}:pair:${name.candidate}:${name.incumbent}`)
    const result = pairedBootstrap(pairs.map(([a]) => a.score!), pairs.map(([, b]) => b.score!), pairs.map(([a]) => a.weight), options.resamples, rng)!
    return {
      ...name,
      cases: pairs.length,
      diff: result.diff,
      ci: result.ci,
      verdict: result.ci[0] > 0 ? "better" : result.ci[1] < 0 ? "worse" : "no significant difference"
    } satisfies Comparison
  })
