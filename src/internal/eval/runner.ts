/**
 * Runs the calls of an evaluation: every case on every candidate, and the
 * judge where a case asks for it, each through a one-model `BedrockMux`
 * over the ambient `BedrockRuntime` (the real client, the simulator, or the
 * loopback fake), then scores the answers.
 *
 * Cost control and measurement:
 * - Admission: each candidate's mux has the model's `rpm` / `tpm` and
 *   `waitForRecovery`, so a call waits for quota room instead of being sent
 *   to be throttled. A throttle Bedrock sends anyway puts the model in its
 *   throttle cooldown (500 ms, doubling with each further throttle up to the
 *   cap of its kind); the request waits it out and asks again, up to
 *   `THROTTLED_SENDS` sends per case. At most `concurrency` cases are in
 *   flight. The eval mux has no breaker: every case is sent, so an outage
 *   shows as errors, not as skipped cases.
 * - Answers come through `converseStream`: time to first token is the
 *   answering attempt's start to its first content event, latency that
 *   attempt's duration to the end of the stream; an attempt starts once it
 *   is admitted, so waits for quota room and cooldowns are in neither. Both
 *   on Effect's `Clock`. Usage is the stream's metadata (or the mux's
 *   estimate).
 * - The cache is asked first; only new successful answers are stored.
 */
import type { ConverseStreamCommandInput, InferenceConfiguration, Message } from "@aws-sdk/client-bedrock-runtime"
import { Cause, Context, Duration, Effect, Layer, Result } from "effect"
import { BedrockMux } from "../../BedrockMux.ts"
import type * as MuxConfig from "../../MuxConfig.ts"
import type { MuxError } from "../../MuxError.ts"
import * as MuxStream from "../../MuxStream.ts"
import * as Policy from "../../Policy.ts"
import { AnswerCache, type CachedAnswer, keyOf } from "./cache.ts"
import { JUDGE_SYSTEM, judgePrompt } from "./judge.ts"
import { answerTokenBound, costOf, inputTokenBound, type Prices } from "./prices.ts"
import {
  type Case,
  type CaseResult,
  type CheckResult,
  type InferenceSettings,
  type Judge,
  ScoreFailure,
  type Scorer
} from "./types.ts"

/** A model to evaluate, with the quota the mux admits it under. */
export interface Candidate {
  readonly modelId: string
  readonly rpm?: number
  readonly tpm?: number
}

/** What the run has done so far. */
export interface Progress {
  readonly done: number
  readonly total: number
  readonly cached: number
  readonly errors: number
}

/** Everything `run` needs, with the defaults filled in. */
export interface Settings<R> {
  readonly cases: ReadonlyArray<Case>
  readonly candidates: ReadonlyArray<Candidate>
  readonly judge: Candidate | undefined
  readonly scorers: ReadonlyMap<string, Scorer<any, R>>
  readonly prices: Prices
  readonly concurrency: number
  readonly inferenceConfig: InferenceSettings & { readonly maxTokens: number }
  readonly judgeMaxTokens: number
  readonly timeout: Duration.Input
  readonly deadline: Duration.Input
  readonly refusal: ((text: string) => Effect.Effect<boolean>) | undefined
  readonly onProgress: ((progress: Progress) => Effect.Effect<void>) | undefined
}

/** The calls made, by kind. */
export interface Calls {
  calls: number
  cachedCalls: number
  judgeCalls: number
  judgeCachedCalls: number
  billedUsd: number
}

/** A case's inference config: the run's, with the case's own settings on top. */
export const inferenceOf = (c: Case, defaults: InferenceSettings & { readonly maxTokens: number }) => {
  const merged = { ...defaults, ...c.inferenceConfig }
  return {
    maxTokens: merged.maxTokens,
    ...(merged.temperature === undefined ? {} : { temperature: merged.temperature }),
    ...(merged.topP === undefined ? {} : { topP: merged.topP }),
    ...(merged.stopSequences === undefined ? {} : { stopSequences: [...merged.stopSequences] })
  } satisfies InferenceConfiguration
}

/** The request a case sends (without the model id), and its cache key for `modelId`. */
export const requestOf = (c: Case, defaults: InferenceSettings & { readonly maxTokens: number }, modelId: string) => {
  const inferenceConfig = inferenceOf(c, defaults)
  const request: Omit<ConverseStreamCommandInput, "modelId"> = {
    messages: c.messages as Array<Message>,
    ...(c.system === undefined ? {} : { system: [{ text: c.system }] }),
    inferenceConfig
  }
  const key = keyOf({ operation: "converseStream", modelId, system: c.system, messages: c.messages, inferenceConfig })
  return { request, key, inferenceConfig }
}

/** The judge's request for one question, and its cache key. */
export const judgeRequestOf = (modelId: string, question: { readonly system: string; readonly prompt: string }, maxTokens: number) => {
  const messages: Array<Message> = [{ role: "user", content: [{ text: question.prompt }] }]
  const inferenceConfig = { maxTokens, temperature: 0 }
  return {
    request: { system: [{ text: question.system }], messages, inferenceConfig },
    key: keyOf({ operation: "converse", modelId, system: question.system, messages, inferenceConfig })
  }
}

/**
 * How many times a case (or a judge question) is sent while Bedrock
 * throttles it: the request's attempts. With one model, only a throttle asks
 * the same model again past the per-reason retries (any other failure fails
 * over, and there is nowhere to go), so this is the throttle budget: 7
 * cooldowns, 35.5 s of waiting for a requests throttle (0.5 + 1 + 2 + 4 + 8 +
 * 10 + 10), 61.5 s for a tokens one; a daily quota's 1 h cooldown outlasts the
 * deadline and ends the case at once.
 */
export const THROTTLED_SENDS = 8

/**
 * The one-model mux a candidate is called through: its JSON config, and the
 * policy change `BedrockMux.layer` applies to it (no breaker).
 */
export const muxOf = (
  c: Candidate,
  maxTokens: number,
  timeout: Duration.Input,
  deadline: Duration.Input
): { readonly config: MuxConfig.Input; readonly policy: (p: Policy.Policy) => Policy.Policy } => {
  const t = Duration.toMillis(Duration.fromInputUnsafe(timeout))
  return {
    config: {
      name: `eval:${c.modelId}`,
      models: [{ modelId: c.modelId, maxTokens, ...(c.rpm === undefined ? {} : { rpm: c.rpm }), ...(c.tpm === undefined ? {} : { tpm: c.tpm }) }],
      attempts: THROTTLED_SENDS,
      timeout: t,
      deadline: Duration.toMillis(Duration.fromInputUnsafe(deadline)),
      waitForRecovery: true,
      stream: { firstTokenTimeout: t, stallTimeout: t }
    },
    // a model's outage is what the evaluation measures: no breaker holds cases back (throttle cooldowns stay)
    policy: Policy.withoutGuard("breaker")
  }
}

/** What a failed case reads in the report: the request's reason, and the last attempt's when the message leaves it out. */
const describe = (e: MuxError): string => {
  const last = e.last
  const why = last === undefined || e.message.includes(last.message) ? "" : `; last attempt: ${last.reason._tag}: ${last.message}`
  return `${e.reason._tag}: ${e.message}${why}`
}

/** Asks `mux` for one streamed answer (the mux waits out throttle cooldowns and asks again). */
const streamAnswer = (mux: BedrockMux["Service"], request: Omit<ConverseStreamCommandInput, "modelId">, modelId: string) =>
  MuxStream.collect(mux.converseStream(request)).pipe(
    Effect.map((answer): CachedAnswer => {
      const routing = answer.routing
      const answering = routing?.attempts.findLast((a) => a.outcome === "success")
      return {
        modelId,
        text: answer.text,
        inputTokens: routing?.usage.inputTokens ?? 0,
        outputTokens: routing?.usage.outputTokens ?? 0,
        ...(routing === undefined ? {} : { ttftMs: routing.timeToFirstTokenMs }),
        ...(answering === undefined ? {} : { latencyMs: answering.durationMs })
      }
    })
  )

const checkOf = <R>(
  scorer: Scorer<any, R>,
  expected: unknown,
  input: Parameters<Scorer["score"]>[1]
): Effect.Effect<CheckResult, never, R> =>
  Effect.suspend(() => scorer.score(expected, input)).pipe(
    Effect.map((s): CheckResult =>
      Number.isFinite(s.score) && s.score >= 0 && s.score <= 1
        ? { scorer: scorer.name, status: "scored", score: s.score, pass: s.pass, ...(s.detail === undefined ? {} : { detail: s.detail }) }
        : { scorer: scorer.name, status: "failed", failure: `score ${s.score} is outside [0, 1]` }
    ),
    Effect.catchCause((cause): Effect.Effect<CheckResult> => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause) as never
      const failure = Cause.findErrorOption(cause)
      const message = failure._tag === "Some" && failure.value instanceof ScoreFailure
        ? failure.value.message
        : `scorer crashed: ${Cause.squash(cause) instanceof Error ? (Cause.squash(cause) as Error).message : String(Cause.squash(cause))}`
      return Effect.succeed({ scorer: scorer.name, status: "failed", failure: message })
    })
  )

/**
 * Runs every case on every candidate and scores it. Results come back per
 * candidate, in the golden set's order.
 */
export const run = <R>(settings: Settings<R>) =>
  Effect.scoped(Effect.gen(function*() {
    const cache = yield* AnswerCache
    const { cases, candidates } = settings
    const build = (c: Candidate, maxTokens: number) => {
      const { config, policy } = muxOf(c, maxTokens, settings.timeout, settings.deadline)
      return Effect.map(Layer.build(BedrockMux.layer(config, { policy })), (ctx) => Context.get(ctx, BedrockMux))
    }
    const muxes = new Map<string, BedrockMux["Service"]>()
    for (const c of candidates) muxes.set(c.modelId, yield* build(c, settings.inferenceConfig.maxTokens))
    const judgeMux = settings.judge === undefined ? undefined : yield* build(settings.judge, settings.judgeMaxTokens)
    const calls: Calls = { calls: 0, cachedCalls: 0, judgeCalls: 0, judgeCachedCalls: 0, billedUsd: 0 }
    const total = cases.length * candidates.length
    let done = 0
    let errors = 0
    const report = settings.onProgress ?? (() => Effect.void)
    yield* report({ done, total, cached: 0, errors })

    const judgeFor = (cost: { usd: number | undefined }): Judge | undefined => {
      if (settings.judge === undefined || judgeMux === undefined) return undefined
      const modelId = settings.judge.modelId
      const price = settings.prices[modelId]
      return {
        modelId,
        ask: (question) =>
          Effect.gen(function*() {
            const { key, request } = judgeRequestOf(modelId, question, settings.judgeMaxTokens)
            const hit = yield* cache.get(key)
            const answer = hit ?? (yield* judgeMux.converse(request).pipe(
              Effect.map((out): CachedAnswer => ({
                modelId,
                text: (out.output?.message?.content ?? []).flatMap((b) => (b.text === undefined ? [] : [b.text])).join(""),
                inputTokens: out.usage?.inputTokens ?? 0,
                outputTokens: out.usage?.outputTokens ?? 0
              })),
              Effect.mapError((e) => new ScoreFailure({ message: `judge call failed: ${describe(e)}` }))
            ))
            const usd = costOf(price, answer.inputTokens, answer.outputTokens)
            if (usd !== undefined) cost.usd = (cost.usd ?? 0) + usd
            if (hit !== undefined) calls.judgeCachedCalls += 1
            else {
              calls.judgeCalls += 1
              calls.billedUsd += usd ?? 0
              yield* cache.put(key, answer)
            }
            return answer.text
          })
      }
    }

    const task = (c: Case, candidate: Candidate) =>
      Effect.gen(function*() {
        const { modelId } = candidate
        const { key, request } = requestOf(c, settings.inferenceConfig, modelId)
        const hit = yield* cache.get(key)
        const outcome = hit !== undefined
          ? Result.succeed(hit)
          : yield* Effect.result(streamAnswer(muxes.get(modelId)!, request, modelId))
        const price = settings.prices[modelId]
        const base = { caseId: c.id, line: c.line, modelId, tags: c.tags, weight: c.weight, prompt: c.prompt, cached: hit !== undefined }
        if (Result.isFailure(outcome)) {
          errors += 1
          calls.calls += 1
          return {
            ...base,
            answer: undefined,
            error: describe(outcome.failure),
            ttftMs: undefined,
            latencyMs: undefined,
            inputTokens: 0,
            outputTokens: 0,
            costUsd: price === undefined ? undefined : 0,
            judgeCostUsd: undefined,
            refusal: undefined,
            checks: [],
            score: 0,
            pass: false
          } satisfies CaseResult
        }
        const answer = outcome.success
        const costUsd = costOf(price, answer.inputTokens, answer.outputTokens)
        if (hit !== undefined) calls.cachedCalls += 1
        else {
          calls.calls += 1
          calls.billedUsd += costUsd ?? 0
          yield* cache.put(key, answer)
        }
        const judgeCost: { usd: number | undefined } = { usd: undefined }
        const input = { answer: answer.text, case: c, judge: judgeFor(judgeCost) }
        const checks: Array<CheckResult> = []
        for (const e of c.expect) checks.push(yield* checkOf(settings.scorers.get(e.scorer)!, e.expected, input))
        const scored = checks.filter((k) => k.status === "scored")
        return {
          ...base,
          answer: answer.text,
          error: undefined,
          ttftMs: answer.ttftMs,
          latencyMs: answer.latencyMs,
          inputTokens: answer.inputTokens,
          outputTokens: answer.outputTokens,
          costUsd,
          judgeCostUsd: judgeCost.usd,
          refusal: settings.refusal === undefined ? undefined : yield* settings.refusal(answer.text),
          checks,
          score: scored.length === 0 ? undefined : scored.reduce((n, k) => n + k.score, 0) / scored.length,
          pass: scored.length === 0 ? undefined : scored.every((k) => k.pass)
        } satisfies CaseResult
      }).pipe(
        Effect.tap(() => Effect.suspend(() => report({ done: ++done, total, cached: calls.cachedCalls, errors })))
      )

    // case-major order: every candidate (each with its own quota) has work from the start
    const jobs = cases.flatMap((c) => candidates.map((m) => [c, m] as const))
    const results = yield* Effect.forEach(jobs, ([c, m]) => task(c, m), { concurrency: settings.concurrency })
    const byModel = new Map<string, Array<CaseResult>>(candidates.map((m) => [m.modelId, []]))
    for (const r of results) byModel.get(r.modelId)!.push(r)
    return { results: byModel, calls }
  }))

/**
 * The upper-bound estimate of what the calls that are not cached would cost
 * (see `prices.ts`), and the models without a price.
 */
export const estimate = <R>(settings: Settings<R>) =>
  Effect.gen(function*() {
    const cache = yield* AnswerCache
    let usd = 0
    let calls = 0
    const unpriced = new Set<string>()
    const bill = (modelId: string, input: number, output: number) => {
      calls += 1
      const cost = costOf(settings.prices[modelId], input, output)
      if (cost === undefined) unpriced.add(modelId)
      else usd += cost
    }
    for (const c of settings.cases) {
      const texts = c.messages.flatMap((m) => (m.content ?? []).flatMap((b) => (b.text === undefined ? [] : [b.text])))
      const judged = c.expect.filter((e) => e.scorer === "judge")
      for (const m of settings.candidates) {
        const { key, inferenceConfig } = requestOf(c, settings.inferenceConfig, m.modelId)
        const hit = yield* cache.get(key)
        if (hit === undefined) bill(m.modelId, inputTokenBound(c.system, texts), inferenceConfig.maxTokens)
        const judge = settings.judge
        if (judge === undefined) continue
        for (const e of judged) {
          const rubric = typeof e.expected === "string" ? e.expected : (e.expected as { readonly rubric: string }).rubric
          if (hit !== undefined) {
            // the answer is known: so is the judge's question, and maybe its answer
            const question = { system: JUDGE_SYSTEM, prompt: judgePrompt({ rubric, prompt: c.prompt, system: c.system, answer: hit.text }) }
            if ((yield* cache.get(judgeRequestOf(judge.modelId, question, settings.judgeMaxTokens).key)) !== undefined) continue
            bill(judge.modelId, inputTokenBound(JUDGE_SYSTEM, [question.prompt]), settings.judgeMaxTokens)
          } else {
            // the answer is not known yet: its maxTokens candidate tokens, as judge tokens with the stated margin
            const question = judgePrompt({ rubric, prompt: c.prompt, system: c.system, answer: "" })
            bill(judge.modelId, inputTokenBound(JUDGE_SYSTEM, [question]) + answerTokenBound(inferenceConfig.maxTokens), settings.judgeMaxTokens)
          }
        }
      }
    }
    return { usd: unpriced.size > 0 ? undefined : usd, pricedUsd: usd, calls, unpriced: [...unpriced].sort() }
  })
