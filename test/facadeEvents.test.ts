/**
 * The facade's event translation (src/internal/facade/events.ts) as a pure
 * function of `mux.events`, and its refusal classifier wrapper
 * (src/internal/facade/refusal.ts): what the original's events say for each
 * MuxEvent, in order, and that the wrapper measures nothing unless asked.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { makeTranslator } from "../src/internal/facade/events.ts"
import * as FacadeRefusal from "../src/internal/facade/refusal.ts"
import { ErrorType, Model, type MuxEvent, OutcomeType, Refusal } from "../src/index.ts"

const models = [Model.make({ modelId: "a" }), Model.make({ modelId: "b", isFallback: true })]
const started = (requestId: string, modelId: string, attempt: number, tier = 0): MuxEvent.MuxEvent => ({
  _tag: "AttemptStarted", at: 0, requestId, modelId, target: modelId, attempt, hedge: false, tier
})
const ended = (requestId: string, modelId: string, outcome: "success" | "failure", reason?: "Refused" | "Throttled", serviceTier?: "priority"): MuxEvent.MuxEvent => ({
  _tag: "AttemptEnded",
  at: 5,
  requestId,
  record: { modelId, target: modelId, outcome, ...(reason !== undefined ? { reason } : {}), ...(serviceTier !== undefined ? { serviceTier } : {}), durationMs: 5 }
})
const names = (out: ReadonlyArray<ReadonlyArray<unknown>>) => out.map((e) => e[0])

describe("the event translation", () => {
  it("a refused attempt then an answer: classification after model-invocation-complete, refusal-detected with the text, error(null, REFUSAL)", () => {
    const t = makeTranslator(models)
    const out: Array<ReadonlyArray<unknown>> = []
    const push = (e: MuxEvent.MuxEvent) => out.push(...t.translate(e, true))
    push(started("r1", "a", 1))
    t.classified("r1", "a", { refused: true, score: 0.9, durationMs: 2, text: "I can't." })
    push(ended("r1", "a", "failure", "Refused"))
    push(started("r1", "b", 2, 1))
    t.classified("r1", "b", { refused: false, score: 0.1, durationMs: 1, text: "Sure." })
    push(ended("r1", "b", "success"))
    push({ _tag: "RequestEnded", at: 9, requestId: "r1", operation: "converse", outcome: "success", modelId: "b", error: undefined, durationMs: 9, attempts: 2, usage: undefined, timeToFirstTokenMs: undefined })
    assert.deepStrictEqual(names(out), [
      "model-selected", "model-invocation-start", "model-invocation-complete", "refusal-classification", "refusal-detected", "error", "stats",
      // the success's `stats` is the facade's, after its `success`: RequestEnded adds nothing
      "model-selected", "model-invocation-start", "model-invocation-complete", "refusal-classification"
    ])
    assert.deepStrictEqual(out[0], ["model-selected", "a", false, 0])
    assert.deepStrictEqual(out[3], ["refusal-classification", "a", true, 0.9, 2])
    assert.deepStrictEqual(out[4], ["refusal-detected", "a", 0.9, "I can't."])
    assert.strictEqual(out[5]![1], null)
    assert.strictEqual((out[5]![2] as { readonly type: number }).type, OutcomeType.REFUSAL)
    assert.deepStrictEqual(out[7], ["model-selected", "b", true, 1])
    assert.deepStrictEqual(out[10], ["refusal-classification", "b", false, 0.1, 1])
  })

  it("a classification is emitted once, with its own attempt only; the request's end forgets what is left", () => {
    const t = makeTranslator(models)
    t.classified("r1", "a", { refused: false, score: 0, durationMs: 0, text: "x" })
    assert.deepStrictEqual(names(t.translate(ended("r2", "a", "success"), false)), ["model-invocation-complete"])
    t.translate({ _tag: "RequestEnded", at: 9, requestId: "r1", operation: "converse", outcome: "interrupted", modelId: "a", error: undefined, durationMs: 9, attempts: 1, usage: undefined, timeToFirstTokenMs: undefined }, false)
    assert.deepStrictEqual(names(t.translate(ended("r1", "a", "success"), false)), ["model-invocation-complete"])
  })

  it("escalation: tier-escalation on Escalated, then -success or -failure on that model's escalated attempt, which is no selection and no retry", () => {
    const t = makeTranslator(models)
    const started = (requestId: string, target: string, attempt: number, serviceTier?: "priority"): MuxEvent.MuxEvent => ({
      _tag: "AttemptStarted",
      at: 1,
      requestId,
      modelId: target,
      target,
      attempt,
      hedge: false,
      tier: 0,
      ...(serviceTier !== undefined ? { serviceTier } : {})
    })
    assert.deepStrictEqual(names(t.translate(ended("r1", "a", "failure", "Throttled"), false)), ["model-invocation-complete", "error"])
    assert.deepStrictEqual(t.translate({ _tag: "Escalated", at: 1, requestId: "r1", modelId: "a", target: "a", serviceTier: "priority" }, false), [["tier-escalation", "a", "default", "priority"]])
    // the original sends the escalation to the model itself: no model-selected, no model-invocation-start / -complete
    assert.deepStrictEqual(t.translate(started("r1", "a", 2, "priority"), false), [])
    assert.deepStrictEqual(t.translate(ended("r1", "a", "success", undefined, "priority"), false), [["tier-escalation-success", "a", "priority"]])
    t.translate({ _tag: "Escalated", at: 1, requestId: "r2", modelId: "a", target: "a", serviceTier: "priority" }, false)
    assert.deepStrictEqual(t.translate(started("r2", "a", 2, "priority"), false), [])
    assert.deepStrictEqual(t.translate(ended("r2", "a", "failure", "Throttled", "priority"), false)[0], ["tier-escalation-failure", "a", "priority", "Throttled"])
    // the next model's selection counts one retry (the model skipped), not two
    assert.deepStrictEqual(t.translate(started("r2", "b", 3), false)[0], ["model-selected", "b", true, 1])
    // an escalation a guard refused never started: no retry to leave out
    t.translate({ _tag: "Escalated", at: 1, requestId: "r3", modelId: "a", target: "a", serviceTier: "priority" }, false)
    assert.deepStrictEqual(t.translate(started("r3", "b", 2), false)[0], ["model-selected", "b", true, 1])
  })

  it("an attempt cut off at its timeout is an error(timeout response, FAIL_FAST) then stats; a hedge's loser or the caller's interrupt is not", () => {
    const t = makeTranslator(models)
    const interrupted = (requestId: string, extra: Record<string, unknown>): MuxEvent.MuxEvent => ({
      _tag: "AttemptEnded",
      at: 7,
      requestId,
      record: { modelId: "a", target: "a", outcome: "interrupted", durationMs: 301, ...extra }
    })
    const timedOut = t.translate(interrupted("r1", { reason: "DeadlineExceeded", decision: "failover", limitMs: 300, message: "attempt timeout of 300 ms expired; the request was aborted" }), true)
    assert.deepStrictEqual(names(timedOut), ["model-invocation-complete", "error", "stats"])
    const [, error, outcome] = timedOut[1] as unknown as readonly [string, Record<string, unknown>, Record<string, unknown>]
    assert.deepInclude(error, { code: 500, message: "Request timed out after 300ms", errorType: ErrorType.TIMEOUT, retryable: true, modelId: "a" })
    assert.deepStrictEqual(error["details"], { name: "TimeoutError", reason: "DeadlineExceeded", decision: "failover" })
    assert.deepStrictEqual(outcome, { modelId: "a", type: OutcomeType.FAIL_FAST, latency: 301, timestamp: new Date(7), error })
    // the request deadline cut it off: the limit named is the deadline's
    const deadline = t.translate(interrupted("r2", { reason: "DeadlineExceeded", limitMs: 5000, message: "request deadline of 5000 ms expired; the request was aborted" }), false)
    assert.strictEqual((deadline[1]![1] as { readonly message: string }).message, "Request timed out after 5000ms")
    // the limit is the record's, not its message's: a record without one reports its duration
    const bare = t.translate(interrupted("r6", { reason: "DeadlineExceeded", message: "attempt timeout of 300 ms expired" }), false)
    assert.strictEqual((bare[1]![1] as { readonly message: string }).message, "Request timed out after 301ms")
    // no reason: a hedge that lost, or the caller gave up
    assert.deepStrictEqual(names(t.translate(interrupted("r3", { decision: "hedge-lost" }), true)), ["model-invocation-complete"])
    assert.deepStrictEqual(names(t.translate(interrupted("r4", {}), true)), ["model-invocation-complete"])
    // an escalated attempt that timed out is the escalation's failure, with the timeout's message
    t.translate({ _tag: "Escalated", at: 1, requestId: "r5", modelId: "a", target: "a", serviceTier: "priority" }, false)
    const escalated = t.translate(interrupted("r5", { reason: "DeadlineExceeded", serviceTier: "priority", limitMs: 300, message: "attempt timeout of 300 ms expired; the request was aborted" }), false)
    assert.deepStrictEqual(escalated[0], ["tier-escalation-failure", "a", "priority", "Request timed out after 300ms"])
    assert.deepStrictEqual(names(escalated), ["tier-escalation-failure", "error"])
  })

  it("a skipped model is model-circuit-open-skipped only when its breaker kept it out; pool changes follow the model's own tier", () => {
    const t = makeTranslator(models)
    const skipped = (why: string): MuxEvent.MuxEvent => ({ _tag: "ModelSkipped", at: 0, requestId: "r", modelId: "a", target: "a", why, tier: 0 })
    assert.deepStrictEqual(t.translate(skipped("breaker"), false), [["model-circuit-open-skipped", "a"]])
    assert.deepStrictEqual(t.translate(skipped("cooldown"), false), [])
    assert.deepStrictEqual(t.translate({ _tag: "ModelAdded", at: 0, modelId: "c", target: "c", tier: 1, weight: 1 }, false), [["model-added", "c"]])
    // the only model of its route (route tier 0), yet a fallback model
    assert.deepStrictEqual(t.translate(started("r", "c", 1, 0), false)[0], ["model-selected", "c", true, 0])
    assert.deepStrictEqual(t.translate({ _tag: "ModelRemoved", at: 0, modelId: "c", target: "c" }, false), [["model-removed", "c"]])
  })
})

describe("the facade's classifier wrapper", () => {
  const attempt = { requestId: "r1", modelId: "a", target: "a" }
  const slow: Refusal.Classifier = { name: "slow", score: () => Effect.as(TestClock.adjust("40 millis"), 0.8) }

  it.effect("reports the score, the text and the time taken (the mux's Clock) for the attempt the core names", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const c = FacadeRefusal.observe(slow, () => true, (a, text, score, ms) => seen.push([a.modelId, text, score, ms]))
      const score = yield* (c.score as (text: string, a: FacadeRefusal.ScoredAttempt) => Effect.Effect<number>)("No.", attempt)
      assert.strictEqual(score, 0.8)
      assert.deepStrictEqual(seen, [["a", "No.", 0.8, 40]])
    }))

  it.effect("reports nothing without listeners or without the attempt; the score is the classifier's either way", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const quiet = FacadeRefusal.observe(slow, () => false, () => seen.push(1))
      assert.strictEqual(yield* (quiet.score as (text: string, a: FacadeRefusal.ScoredAttempt) => Effect.Effect<number>)("No.", attempt), 0.8)
      const blind = FacadeRefusal.observe(slow, () => true, () => seen.push(1))
      assert.strictEqual(yield* blind.score("No."), 0.8)
      assert.deepStrictEqual(seen, [])
      assert.strictEqual(blind.name, "slow")
    }))
})
