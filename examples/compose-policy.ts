/**
 * A routing policy composed in code from typed values with `pipe`, and the
 * same policy from JSON.
 *
 * The pieces, each a public value with a constructor and documented defaults:
 * - the pool: `Route.tier` (models with weights), and the tiers as
 *   `Route.orElse(primary, fallback)`: the fallback route is used only while
 *   every model of the primary one is out;
 * - the per-attempt timeout and the request deadline (`withTimeout`,
 *   `withDeadline`);
 * - same-model retries as an Effect `Schedule` that honours `retry-after`
 *   (`Policy.withRetry(Policy.exponentialRetry(...))`);
 * - the last-model backoff `Schedule` (`Policy.exponentialBackoff`);
 * - hedged first tokens (`Policy.hedge`);
 * - the guards, asked in order for every attempt: the breaker
 *   (`Guard.breaker`), throttle cooldowns (`Guard.cooldown`), the models'
 *   own quotas (`Guard.quota`).
 *
 * The JSON config decodes into the same kind of value (`MuxConfig.decode`
 * returns a `Policy`), so the program compares the two field by field
 * (schedules by the delays they give under one seed) and then runs both
 * through `BedrockMux.layer`, which takes either, on the same simulated
 * Bedrock: they route every request alike. The same-model retry schedule is
 * JSON's `retry` (`{ base, max? }`, which decodes to `Policy.exponentialRetry`;
 * without it, `Policy.defaultRetry`).
 *
 * What the requests show (on the simulator, virtual time, 5 s apart):
 * - "long" (a label whose route is the fallback model alone): two 503s, each
 *   followed by the backoff's wait (the last model left is retried; its
 *   records say `failover`), then an answer;
 * - Nova Lite's first call is a 500: retried on the same model after the
 *   retry schedule's delay;
 * - Nova Lite's third call is throttled: it cools for the cooldown's 250 ms
 *   base and the request fails over at once;
 * - Haiku answers 503 every time: its breaker opens after 3 failures and it
 *   is skipped from then on;
 * - a stream whose model is slow to its first token (Nova Lite, 3 s) is
 *   hedged after 1.5 s on the fallback, which wins;
 * - Nova Lite's client-side quota (`rpm: 5`) admits 5 requests a minute (a
 *   failed attempt gives its reservation back, a hedge's loser keeps it):
 *   the last request skips it without calling it.
 *
 * Run: node examples/compose-policy.ts
 */
import { Console, Duration, Effect, Fiber, Layer, pipe, Random, Schedule } from "effect"
import { TestClock } from "effect/testing"
import {
  BedrockError,
  BedrockMux,
  type BedrockRuntime,
  BedrockSimulator,
  Guard,
  MuxConfig,
  MuxStream,
  Policy,
  Route,
  type Routing,
  Selector
} from "../src/index.ts"

const LITE = "us.amazon.nova-2-lite-v1:0"
const HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
const PRO = "us.amazon.nova-pro-v1:0"

// --- the policy in code -------------------------------------------------------------------------

const primary = Route.tier([{ modelId: LITE, weight: 100, rpm: 5 }, { modelId: HAIKU, weight: 50 }])
// `tier: 1` only says how `health` reports it: its place after `orElse` is what routes it
const fallback = Route.tier([{ modelId: PRO, tier: 1, timeout: "20 seconds" }])

/** Same-model retries: 200 ms doubling, jittered, never sooner than a throttle's retry-after. */
export const retry = Policy.exponentialRetry({ base: "200 millis" })

export const composed: Policy.Policy = pipe(
  Policy.make(Route.orElse(primary, fallback)),
  Policy.withLabel("long", fallback),
  Policy.withSelector(Selector.weighted),
  Policy.withTimeout("10 seconds"),
  Policy.withDeadline("30 seconds"),
  Policy.withAttempts(5),
  Policy.withRetry(retry),
  Policy.withBackoff(Policy.exponentialBackoff({ base: "250 millis", max: "2 seconds", times: 2 })),
  Policy.withHedge(Policy.hedge({ after: "1500 millis", budget: 0.5 })),
  Policy.withGuards([
    Guard.breaker({ failures: 3, window: "30 seconds", probeInterval: "1 minute", probeIntervalMax: "5 minutes" }),
    Guard.cooldown({ base: "250 millis", requests: "5 seconds" }),
    Guard.quota()
  ])
)

// --- the same policy as JSON --------------------------------------------------------------------

export const json: MuxConfig.Input = {
  models: [
    { modelId: LITE, weight: 100, rpm: 5 },
    { modelId: HAIKU, weight: 50 },
    { modelId: PRO, isFallback: true, timeout: "20 seconds" }
  ],
  routes: { long: [PRO] },
  selection: "weighted",
  timeout: "10 seconds",
  deadline: "30 seconds",
  attempts: 5,
  retry: { base: "200 millis" },
  backoff: { base: "250 millis", max: "2 seconds", times: 2 },
  stream: { hedge: { after: "1500 millis", budget: 0.5 } },
  breaker: { failures: 3, window: "30 seconds", probeInterval: "1 minute", probeIntervalMax: "5 minutes" },
  cooldowns: { base: "250 millis", requests: "5 seconds" }
}

// --- comparing two policies ---------------------------------------------------------------------

const throttled = BedrockError.make(new BedrockError.Throttled({ kind: "requests", retryAfter: Duration.seconds(1) }), "slow down")
const failed = BedrockError.make(new BedrockError.InternalServer(), "oops")

/** The first delays of a schedule, given the same errors, under a seed (jitter draws from `Random`). */
const delaysOf = (schedule: Schedule.Schedule<unknown, BedrockError.BedrockError> | undefined, inputs: ReadonlyArray<BedrockError.BedrockError>) =>
  schedule === undefined ? Effect.succeed(undefined) : Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    const out: Array<number | "done"> = []
    for (const input of inputs) {
      const r = yield* Effect.result(step(0, input))
      out.push(r._tag === "Success" ? Math.round(Duration.toMillis(r.success[1])) : "done")
    }
    return out
  }).pipe(Random.withSeed("delays"))

/** A policy's fields as plain data: what the code and the JSON must agree on. */
export const shapeOf = (p: Policy.Policy) =>
  Effect.gen(function*() {
    const tiers = (r: Route.Route) =>
      r.tiers.map((tier) => tier.map((m) => ({ target: m.target, weight: m.weight, timeout: m.timeout && Duration.toMillis(m.timeout), rpm: m.rpm, tier: m.tier })))
    return {
      route: tiers(p.route),
      routes: [...p.routes].map(([label, r]) => [label, tiers(r)] as const),
      selector: p.selector.name,
      timeout: Duration.toMillis(p.timeout),
      deadline: Duration.toMillis(p.deadline),
      attempts: p.attempts,
      guards: p.guards.map((g) => ({ name: g.name, settings: g.settings })),
      hedge: p.stream.hedge,
      retry: yield* delaysOf(p.retry, [failed, failed, throttled]),
      backoff: yield* delaysOf(p.backoff, [failed, failed, failed])
    }
  })

// --- running both -------------------------------------------------------------------------------

const script = {
  seed: "compose",
  models: {
    [LITE]: {
      answer: "Lite answers.",
      firstToken: "3 seconds",
      tokensPerSecond: 20,
      faults: [
        { when: { calls: [1] }, do: { kind: "error", error: "InternalServerException" } },
        { when: { calls: [3] }, do: { kind: "error", error: "ThrottlingException" } }
      ]
    },
    [HAIKU]: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
    [PRO]: {
      answer: "Pro answers.",
      firstToken: 200,
      tokensPerSecond: 20,
      faults: [{ when: { calls: [1, 2] }, do: { kind: "error", error: "ServiceUnavailableException" } }]
    }
  }
} as const

const ask = { messages: [{ role: "user" as const, content: [{ text: "Which model are you?" }] }] }

/** One mux on a fresh simulated Bedrock: the same requests, one after another, on virtual time. */
const runAll = (layer: Layer.Layer<BedrockMux, MuxConfig.MuxConfigError, BedrockRuntime>) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const settle = <A, E>(self: Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.result(self))
        yield* TestClock.adjust("5 seconds")
        return yield* Fiber.join(fiber)
      })
    const requests: Array<{ readonly label: string; readonly answeredBy: string | undefined; readonly attempts: ReadonlyArray<string> }> = []
    const note = (label: string, routing: Routing.Routing | undefined, attempts: ReadonlyArray<Routing.AttemptRecord>) =>
      requests.push({
        label,
        answeredBy: routing?.modelId,
        attempts: attempts.map((a) => `${a.modelId} ${a.outcome}${a.reason !== undefined ? ` ${a.reason}` : ""}${a.decision !== undefined ? ` → ${a.decision}` : ""}`)
      })
    const long = yield* settle(mux.converse(ask, { label: "long" }))
    note("long", long._tag === "Success" ? long.success.routing : undefined, long._tag === "Success" ? long.success.routing.attempts : long.failure.attempts)
    const converse = (label: string) =>
      Effect.map(settle(mux.converse(ask)), (r) =>
        note(label, r._tag === "Success" ? r.success.routing : undefined, r._tag === "Success" ? r.success.routing.attempts : r.failure.attempts))
    for (let i = 1; i <= 5; i++) yield* converse(`converse ${i}`)
    const streamed = yield* settle(MuxStream.collect(mux.converseStream(ask)))
    note("stream", streamed._tag === "Success" ? streamed.success.routing : undefined, streamed._tag === "Success" ? streamed.success.routing?.attempts ?? [] : streamed.failure.attempts)
    yield* converse("converse 6")
    const health = yield* mux.health
    const calls = (yield* BedrockSimulator.attempts).map((a) => ({ modelId: a.modelId, start: a.start, end: a.end, outcome: a.outcome }))
    return {
      requests,
      breakers: Object.fromEntries(health.models.map((m) => [m.modelId, m.breaker])),
      calls,
      stats: { hedges: (yield* mux.stats).hedges }
    }
  }).pipe(
    Effect.provide(layer.pipe(Layer.provideMerge(BedrockSimulator.layer(script)))),
    // a seed under which the weighted picks tell the whole story (the first pick of "converse 2" is Nova Lite, the
    // stream's hedge finds Haiku's breaker open); the behaviour itself holds under any seed
    Random.withSeed("routing-19"),
    Effect.provide(TestClock.layer())
  )

export const program = Effect.gen(function*() {
  const decoded = yield* MuxConfig.decode(json)
  const code = yield* shapeOf(composed)
  const fromJson = yield* shapeOf(decoded)
  yield* Console.log("code and JSON agree:", JSON.stringify(code) === JSON.stringify(fromJson))
  yield* Console.log("retry delays (after a 500, a 500, a throttle with retry-after 1 s):", code.retry)
  yield* Console.log("backoff delays:", code.backoff)

  const byCode = yield* runAll(BedrockMux.layer(composed))
  // the layer takes the JSON, or the decoded value, which is a Policy
  const byJson = yield* runAll(BedrockMux.layer(json))
  const byDecoded = yield* runAll(BedrockMux.layer(decoded))
  for (const r of byCode.requests) yield* Console.log(`${r.label.padEnd(10)} ${r.answeredBy ?? "failed"}: ${r.attempts.join(", ")}`)
  yield* Console.log("breakers:", byCode.breakers, "hedges:", byCode.stats.hedges)
  return { code, fromJson, byCode, byJson, byDecoded }
})

if (import.meta.main) Effect.runPromise(program)
