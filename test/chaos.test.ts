/**
 * Chaos: a few hundred requests with random faults, through the real AWS SDK
 * over loopback against FakeBedrock (HTTP/1.1 keep-alive, and HTTP/2 for a
 * share), on `converse` and `converseStream`, with hedging, `onInterrupt:
 * "restart"` and consumers that stop reading. Only the public API is used
 * (`BedrockMux.layer`, `converse`, `converseStream`, `events`, FakeBedrock),
 * so this suite pins behaviour across rewrites of the core.
 *
 * The faults are drawn per request from one seed: every request has a pool of
 * its own (three models, routed by a label), and each model's script says
 * what its first call and its later calls do. So a request's faults do not
 * depend on how the others interleave. Every failure message names the seed,
 * the request and its plan (each model's first-token time and faults, the
 * options), enough to replay that one request on its own.
 * `CHAOS_SEED=… npm test -- test/chaos.test.ts` runs another seed.
 *
 * What must hold for every request, whatever the interleaving:
 * - exactly one outcome: the caller gets one result (a success, or a typed
 *   `MuxError`, never a defect), and the mux publishes exactly one
 *   `RequestEnded` for it, with the same outcome;
 * - no success without `messageStop` (streams) or a stop reason (converse);
 * - no splice: a successful answer's text (after the last reset) is exactly
 *   the whole scripted answer of the model `routing` names; before a reset or
 *   a failure, the text is a prefix of one model's answer; a reset is always
 *   followed by the new answer's content;
 * - every aborted attempt is closed at the server: once all requests ended,
 *   neither fake has a request in flight (a stalled or hung call stays open
 *   until its client aborts it);
 * - the heap is flat: the plans run three times (the model's later calls
 *   follow their "later calls" script), and the heap (after `gc`, which
 *   vitest's workers expose) is measured before and after the last pass, when
 *   per-model state already exists and only a leak would grow.
 */
import { NodeHttp2Handler } from "@smithy/node-http-handler"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer, Stream } from "effect"
import { BedrockMux, type MuxResponse, type StreamOptions } from "../src/BedrockMux.ts"
import type { BedrockRuntime } from "../src/BedrockRuntime.ts"
import type * as MuxConfig from "../src/MuxConfig.ts"
import { MuxError, StreamInterrupted } from "../src/MuxError.ts"
import type * as MuxEvent from "../src/MuxEvent.ts"
import * as MuxStream from "../src/MuxStream.ts"
import type * as SimulatorScript from "../src/SimulatorScript.ts"
import { FakeBedrock } from "../src/testing/index.ts"
import { prng } from "./support/prng.ts"

const SEED = process.env["CHAOS_SEED"] ?? "chaos-1"
/** Requests per pass; the suite runs the same plans three times. */
const REQUESTS = 120
const PASSES = 3
const CONCURRENCY = 32
/**
 * Heap growth allowed over the last pass (after a collection at each end): by then every
 * model has been used and the mux's bounded windows have filled, so what grows is the fakes'
 * attempt logs and this test's records (0.5 to 0.7 MB measured, seeds chaos-1, b, d). 16 kB per
 * request.
 */
const HEAP_GROWTH_LIMIT = REQUESTS * 16 * 1024

// --- the seeded plan --------------------------------------------------------------------------

type Fault = SimulatorScript.ScriptInput["models"][string]["faults"]
type Action = NonNullable<Fault>[number]["do"]

interface ModelPlan {
  readonly id: string
  readonly answer: string
  readonly script: SimulatorScript.ScriptInput["models"][string]
}

interface Plan {
  readonly index: number
  readonly op: "converse" | "stream"
  readonly transport: "http1" | "http2"
  readonly label: string
  readonly models: readonly [ModelPlan, ModelPlan, ModelPlan]
  readonly options: StreamOptions
  /** a stream consumer that stops after this many events */
  readonly take: number | undefined
}

const planAll = (seed: string): ReadonlyArray<Plan> => {
  const rnd = prng(seed)
  const int = (min: number, max: number) => min + Math.floor(rnd() * (max - min + 1))
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rnd() * xs.length)]!
  const chance = (p: number) => rnd() < p

  // [weight, fault]: the faults a client timeout must end (hang, stall) are rarer, since each
  // costs its request the whole timeout
  const actions: ReadonlyArray<readonly [number, (tokens: number) => Action]> = [
    [4, () => ({ kind: "error", error: pick(["ServiceUnavailableException", "InternalServerException", "ThrottlingException", "ModelNotReadyException", "ModelErrorException"] as const) })],
    [1, () => ({ kind: "error", error: pick(["ValidationException", "AccessDeniedException"] as const) })], // fail fast
    [1, () => ({ kind: "hang" })],
    [3, (tokens) => ({ kind: "cut", afterTokens: int(0, tokens) })],
    [1, (tokens) => ({ kind: "stall", afterTokens: int(0, tokens) })],
    [3, (tokens) => ({
      kind: "streamError",
      afterTokens: int(0, tokens),
      error: pick(["throttlingException", "modelStreamErrorException", "internalServerException", "serviceUnavailableException", "validationException"] as const)
    })],
    [2, (tokens) => ({ kind: "malformed", afterTokens: int(0, tokens) })],
    [1, () => ({ kind: "noMetadata" })],
    [1, () => ({ kind: "emptyOutput" })]
  ]
  const totalWeight = actions.reduce((n, [w]) => n + w, 0)
  const action = (tokens: number): Action => {
    let r = rnd() * totalWeight
    for (const [w, make] of actions) if ((r -= w) < 0) return make(tokens)
    return actions[0]![1](tokens)
  }

  return Array.from({ length: REQUESTS }, (_, index): Plan => {
    // every 10th request: a stream whose reader stops after 2 events, from a first model that
    // answers at once (so the run always has consumers that abort)
    const stopsReading = index % 10 === 5
    const model = (suffix: string): ModelPlan => {
      const id = `r${index}-${suffix}`
      const clean = stopsReading && suffix === "a"
      const tokens = int(2, 10)
      // words that name their model: any delta tells where it came from
      const answer = Array.from({ length: tokens }, (_, w) => `${id}.${w}`).join(" ")
      const faults: Array<NonNullable<Fault>[number]> = []
      // the first call: a fault half the time; every later call: a fault a third of the time
      if (chance(0.5) && !clean) faults.push({ when: { calls: 1 }, do: action(tokens) })
      if (chance(0.33) && !clean) faults.push({ when: { calls: { from: 2 } }, do: action(tokens) })
      // mostly quick; some slow enough for a hedge to start, a few past the first-token limit
      const first = chance(0.75) || clean ? int(2, 20) : chance(0.8) ? int(60, 250) : int(1_200, 1_400)
      return {
        id,
        answer,
        script: { answer, latency: first, firstToken: first, tokensPerSecond: pick([100, 400, 2000]), faults }
      }
    }
    const op = chance(0.45) && !stopsReading ? "converse" : "stream"
    return {
      index,
      op,
      transport: chance(0.25) ? "http2" : "http1",
      label: `r${index}`,
      models: [model("a"), model("b"), model("c")],
      options: op === "converse" ? {} : {
        ...(chance(0.4) ? { onInterrupt: "restart" as const } : {}),
        ...(chance(0.35) ? { hedge: { after: int(40, 120), budget: 1 } } : {})
      },
      take: stopsReading ? 2 : op === "stream" && chance(0.05) ? int(1, 4) : undefined
    }
  })
}

const PLANS = planAll(SEED)

const SCRIPT: SimulatorScript.ScriptInput = {
  seed: SEED,
  models: Object.fromEntries(PLANS.flatMap((p) => p.models.map((m) => [m.id, m.script])))
}

const CONFIG: MuxConfig.Input = {
  name: "chaos",
  models: PLANS.flatMap((p) => [
    { modelId: p.models[0].id, weight: 100 },
    { modelId: p.models[1].id, weight: 50 },
    { modelId: p.models[2].id, isFallback: true }
  ]),
  routes: Object.fromEntries(PLANS.map((p) => [p.label, p.models.map((m) => m.id)])),
  // limits far above a quick answer's time even on a loaded machine: only the scripted faults
  // (and the slow first tokens) should reach them
  timeout: "1 second",
  deadline: "6 seconds",
  stream: { firstTokenTimeout: "1 second", stallTimeout: "600 millis" }
}

const answers = new Map(PLANS.flatMap((p) => p.models.map((m) => [m.id, m.answer] as const)))
const planOfModel = (modelId: string): number => Number(/^r(\d+)-/.exec(modelId)?.[1] ?? -1)

// --- one request, checked as soon as it ends --------------------------------------------------

interface Outcome {
  readonly index: number
  readonly operation: MuxEvent.Operation
  readonly outcome: MuxEvent.RequestEnded["outcome"]
  /** the model that answered (successes) */
  readonly modelId: string | undefined
}

const where = (plan: Plan) =>
  `seed ${JSON.stringify(SEED)}, request ${plan.index} (${plan.op} over ${plan.transport}, options ${JSON.stringify(plan.options)}, take ${plan.take}): ${
    JSON.stringify(plan.models.map((m) => [m.id, m.script.firstToken, m.script.faults]))
  }`

/** The one typed MuxError of a failure; anything else (a defect, an interruption) fails the test. */
const muxErrorOf = (plan: Plan, cause: Cause.Cause<MuxError>): MuxError => {
  assert.strictEqual(cause.reasons.length, 1, `${where(plan)}: ${Cause.pretty(cause)}`)
  const reason = cause.reasons[0]!
  assert.strictEqual(reason._tag, "Fail", `${where(plan)}: not a typed failure: ${Cause.pretty(cause)}`)
  const error = (reason as { readonly error: unknown }).error
  assert.instanceOf(error, MuxError, where(plan))
  return error as MuxError
}

/** Text of content deltas, and whether all of them come from one model's answer, in order. */
const assertPrefixOfOne = (plan: Plan, deltas: ReadonlyArray<string>, context: string): string | undefined => {
  if (deltas.length === 0) return undefined
  const text = deltas.join("")
  const modelId = /^\s*(r\d+-[abc])\./.exec(deltas[0]!)?.[1]
  assert.isDefined(modelId, `${where(plan)}: ${context}: a delta from no model: ${JSON.stringify(deltas[0])}`)
  assert.isTrue(answers.get(modelId!)!.startsWith(text), `${where(plan)}: ${context}: spliced or out of order: ${JSON.stringify(text)}`)
  return modelId
}

const runConverse = (mux: BedrockMux["Service"], plan: Plan) =>
  Effect.map(Effect.exit(mux.converse(request(plan), { label: plan.label })), (exit): Outcome => {
    if (Exit.isFailure(exit)) {
      muxErrorOf(plan, exit.cause)
      return { index: plan.index, operation: "converse", outcome: "failure", modelId: undefined }
    }
    const res: MuxResponse = exit.value
    const modelId = res.routing.modelId
    assert.strictEqual(planOfModel(modelId), plan.index, `${where(plan)}: answered by another request's model ${modelId}`)
    assert.isDefined(res.stopReason, `${where(plan)}: a success without a stop reason`)
    const text = (res.output?.message?.content ?? []).map((c) => c.text ?? "").join("")
    assert.strictEqual(text, answers.get(modelId), `${where(plan)}: not ${modelId}'s whole answer`)
    return { index: plan.index, operation: "converse", outcome: "success", modelId }
  })

const runStream = (mux: BedrockMux["Service"], plan: Plan) =>
  Effect.gen(function*() {
    const events: Array<MuxStream.Event> = []
    const stream = mux.converseStream(request(plan), { label: plan.label, ...plan.options })
    const exit = yield* (plan.take === undefined ? stream : Stream.take(stream, plan.take)).pipe(
      Stream.runForEach((ev) => Effect.sync(() => void events.push(ev))),
      Effect.exit
    )
    // between resets, every delta comes from one model, in its answer's order; a reset is
    // always followed by the new answer's content
    const segments: Array<Array<string>> = [[]]
    for (const ev of events) {
      if (MuxStream.isReset(ev)) segments.push([])
      const text = ev.contentBlockDelta?.delta?.text
      if (text !== undefined) segments[segments.length - 1]!.push(text)
    }
    segments.forEach((deltas, i) => {
      assertPrefixOfOne(plan, deltas, `segment ${i}`)
      if (i > 0 && plan.take === undefined) assert.isAbove(deltas.length, 0, `${where(plan)}: a reset without a new answer`)
    })
    const last = segments[segments.length - 1]!
    if (plan.take !== undefined && Exit.isSuccess(exit) && !events.some(MuxStream.isRouting)) {
      // the consumer stopped reading: the mux ends the request as interrupted
      return { index: plan.index, operation: "converse_stream", outcome: "interrupted", modelId: undefined } satisfies Outcome
    }
    if (Exit.isFailure(exit)) {
      const error = muxErrorOf(plan, exit.cause)
      // after content, the only way to fail is StreamInterrupted (never a silent switch)
      if (last.length > 0) {
        assert.instanceOf(error.reason, StreamInterrupted, `${where(plan)}: content, then ${error.reason._tag}`)
        const reason = error.reason as StreamInterrupted
        assert.strictEqual(assertPrefixOfOne(plan, last, "interrupted answer"), reason.modelId, where(plan))
        assert.strictEqual(reason.delivered, last.length, `${where(plan)}: delivered`)
      }
      return { index: plan.index, operation: "converse_stream", outcome: "failure", modelId: undefined } satisfies Outcome
    }
    // a success: messageStop after the last reset, the routing event last, the whole answer of that model
    const routingEvent = events[events.length - 1]
    assert.isTrue(routingEvent !== undefined && MuxStream.isRouting(routingEvent), `${where(plan)}: the last event is not { routing }`)
    assert.strictEqual(events.filter(MuxStream.isRouting).length, 1, where(plan))
    const modelId = (routingEvent as MuxStream.RoutingEvent).routing.modelId
    const afterReset = events.slice(events.findLastIndex(MuxStream.isReset) + 1)
    assert.isTrue(afterReset.some((ev) => ev.messageStop !== undefined), `${where(plan)}: a success without messageStop`)
    assert.strictEqual(last.join(""), answers.get(modelId), `${where(plan)}: not ${modelId}'s whole answer`)
    return { index: plan.index, operation: "converse_stream", outcome: "success", modelId } satisfies Outcome
  })

const request = (plan: Plan) => ({ messages: [{ role: "user" as const, content: [{ text: `request ${plan.index}` }] }] })

// --- the run ----------------------------------------------------------------------------------

interface Side {
  readonly mux: BedrockMux["Service"]
  readonly fake: FakeBedrock.FakeBedrockServer
  readonly ended: Array<MuxEvent.RequestEnded>
}

/** A mux over its own fake, and every RequestEnded it publishes from now on. */
const side = (runtime: Layer.Layer<FakeBedrock.FakeBedrock | BedrockRuntime>) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(BedrockMux.layer(CONFIG).pipe(Layer.provideMerge(runtime)))
    const mux = Context.get(ctx, BedrockMux)
    const ended: Array<MuxEvent.RequestEnded> = []
    // startImmediately: subscribed when this returns (a subscriber sees only later events)
    yield* Stream.runForEach(mux.events, (e) => Effect.sync(() => e._tag === "RequestEnded" && void ended.push(e))).pipe(
      Effect.forkScoped({ startImmediately: true })
    )
    return { mux, fake: Context.get(ctx, FakeBedrock.FakeBedrock), ended } satisfies Side
  })

const gc = (globalThis as { gc?: () => void }).gc

const heapUsed = (): number => {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}

describe("chaos: random faults per request over loopback, both transports", () => {
  it.live(`${REQUESTS} requests, ${PASSES} times (seed ${JSON.stringify(SEED)}): one outcome each, no truncated or spliced success, nothing left open, flat heap`, () =>
    Effect.gen(function*() {
      const http1 = yield* side(FakeBedrock.layerRuntime(SCRIPT))
      const http2 = yield* side(FakeBedrock.layerRuntime(SCRIPT, { requestHandler: new NodeHttp2Handler() }))
      const run = (plan: Plan) => {
        const { mux } = plan.transport === "http1" ? http1 : http2
        return plan.op === "converse" ? runConverse(mux, plan) : runStream(mux, plan)
      }

      const outcomes: Array<Outcome> = []
      let before = 0
      for (let pass = 1; pass <= PASSES; pass++) {
        if (pass === PASSES) before = heapUsed()
        outcomes.push(...yield* Effect.forEach(PLANS, run, { concurrency: CONCURRENCY }))
      }
      const after = heapUsed()

      // every aborted attempt was closed by its client
      for (const { fake } of [http1, http2]) {
        assert.isTrue(yield* Effect.promise(() => fake.waitForIdle(10_000)), `seed ${SEED}: a request left in flight at the server`)
        assert.strictEqual(fake.inFlight(), 0)
      }

      // exactly one RequestEnded per request, with the caller's outcome (scheduler turns, not time:
      // the subscribers catch up with what was already published)
      const total = outcomes.length
      const published = () => http1.ended.length + http2.ended.length
      for (let i = 0; i < 10_000 && published() < total; i++) yield* Effect.yieldNow
      const ended = [...http1.ended, ...http2.ended]
      assert.strictEqual(ended.length, total, `seed ${SEED}: RequestEnded events`)
      assert.strictEqual(new Set(ended.map((e) => e.requestId)).size, total, `seed ${SEED}: distinct request ids`)
      // each request ran once per pass: its outcomes as the caller saw them and as the events say
      const key = (operation: string, outcome: string, modelId: string | undefined) =>
        `${operation} ${outcome}${outcome === "success" ? ` ${modelId}` : ""}`
      const seen = new Map<number, Array<string>>()
      for (const e of ended) {
        assert.isDefined(e.modelId, `seed ${SEED}: a RequestEnded without a model: ${JSON.stringify(e)}`)
        const index = planOfModel(e.modelId!)
        seen.set(index, [...(seen.get(index) ?? []), key(e.operation, e.outcome, e.modelId)])
      }
      for (const plan of PLANS) {
        const caller = outcomes.filter((o) => o.index === plan.index).map((o) => key(o.operation, o.outcome, o.modelId))
        assert.deepStrictEqual((seen.get(plan.index) ?? []).sort(), caller.sort(), `${where(plan)}: RequestEnded vs what the caller saw`)
      }

      // the run exercised what it claims to
      const count = (f: (o: Outcome) => boolean) => outcomes.filter(f).length
      assert.isAbove(count((o) => o.operation === "converse" && o.outcome === "success"), 20)
      assert.isAbove(count((o) => o.operation === "converse" && o.outcome === "failure"), 5)
      assert.isAbove(count((o) => o.operation === "converse_stream" && o.outcome === "success"), 20)
      assert.isAbove(count((o) => o.operation === "converse_stream" && o.outcome === "failure"), 5)
      assert.isAbove(count((o) => o.outcome === "interrupted"), 3)
      const interrupted = [http1, http2].flatMap(({ fake }) => fake.attempts()).filter((a) => a.outcome === "interrupted")
      assert.isAbove(interrupted.length, 20, "attempts aborted by the client (timeouts, hedges, consumers)")

      // flat heap: only meaningful after a full collection
      assert.isDefined(gc, "global.gc: vitest.config.ts passes --expose-gc to the workers")
      assert.isBelow(after - before, HEAP_GROWTH_LIMIT, `seed ${SEED}: heap grew from ${before} to ${after} bytes over the last pass`)
    }), 120_000)
})
