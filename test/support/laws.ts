/**
 * The harness of test/laws.test.ts: random scenarios (routes, scripts,
 * policies, selectors, guards, requests), a recorder guard, one run of a
 * scenario on the simulator under TestClock, and readers of what it logged.
 */
import { assert } from "@effect/vitest"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Layer, Option, Random, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import {
  BedrockError,
  BedrockMux,
  BedrockSimulator,
  Guard,
  type MuxEvent,
  type MuxError as MuxErrors,
  MuxStream,
  Policy,
  Route,
  Selector,
  SimulatorScript
} from "../../src/index.ts"
import { prng } from "./prng.ts"

// --- scenarios ----------------------------------------------------------------------------------

export interface ModelSpec {
  readonly id: string
  readonly weight: number
  readonly timeoutMs: number | undefined
  readonly rpm: number | undefined
  readonly price: { readonly input: number; readonly output: number } | undefined
  /** a throttle at the default tier is retried once at this tier */
  readonly escalate: "priority" | "reserved" | undefined
  readonly script: SimulatorScript.ScriptInput["models"][string]
}

/**
 * A guard's calls taking virtual time (a remote store's round trip, a user's slow code): each `view` (and each
 * `admit`) takes the next delay of its list, in turn. `after`: the inner guard answers at once and the answer
 * arrives `ms` later (a store that made its change, then a slow reply); else the call waits, then asks.
 * `sync`: the inner guard's synchronous forms are kept, for the calls whose delay is 0 only (they answer
 * undefined when the call is slow: a synchronous form takes no time); else they are dropped.
 */
export interface SlowSpec {
  readonly view: ReadonlyArray<number> | undefined
  readonly admit: ReadonlyArray<number> | undefined
  readonly after: boolean
  readonly sync: boolean
  /**
   * a slow call's answer comes through a Promise, as a store client's does: its continuation is a microtask the
   * test clock does not wait for, so it may land after other work of the same instant (found a leaked permit)
   */
  readonly promise?: boolean | undefined
}

export type GuardSpec = BaseGuardSpec & { readonly slow?: SlowSpec | undefined }

export type BaseGuardSpec =
  | {
    readonly kind: "breaker"
    readonly failures: number
    readonly windowMs: number
    readonly probeMs: number
    readonly probeMaxMs: number
    readonly halfOpen: number
  }
  | { readonly kind: "cooldown"; readonly baseMs: number; readonly requestsMs: number }
  | { readonly kind: "quota" }
  | { readonly kind: "window"; readonly windows: ReadonlyArray<readonly [string, number, number]>; readonly sync: boolean }
  | { readonly kind: "reject"; readonly p: number; readonly sync: boolean }
  | { readonly kind: "flaky"; readonly p: number; readonly sync: boolean }
  | { readonly kind: "counting"; readonly sync: boolean }

export type SelectorSpec = "weighted" | "ordered" | "latency" | "cheapest" | "user-random" | "user-last" | "user-last-sync"

export interface RequestSpec {
  readonly at: number
  readonly kind: "converse" | "stream"
  readonly deadlineMs: number | undefined
  readonly hedge: boolean | undefined
  readonly onInterrupt: "fail" | "restart" | undefined
  /** a stream reader that stops after this many events */
  readonly take: number | undefined
  /** the caller gives up this long after its start (a timeout of its own), if it has not ended by then */
  readonly giveUpMs?: number | undefined
}

export interface Scenario {
  readonly seed: string
  /** three routes, composed with orElse; a model may appear in more than one (it stays where it first appears) */
  readonly routes: readonly [ReadonlyArray<ReadonlyArray<ModelSpec>>, ReadonlyArray<ReadonlyArray<ModelSpec>>, ReadonlyArray<ReadonlyArray<ModelSpec>>]
  readonly guards: ReadonlyArray<GuardSpec>
  readonly selector: SelectorSpec
  readonly attempts: number
  /** does an escalation count toward `attempts`? */
  readonly countEscalations: boolean
  readonly timeoutMs: number
  readonly deadlineMs: number
  readonly table: Readonly<Record<BedrockError.ReasonTag, BedrockError.Decision>>
  readonly retryMs: number | "default"
  readonly backoff: { readonly baseMs: number; readonly maxMs: number; readonly times: number } | undefined
  readonly waitForRecovery: boolean
  readonly stream: {
    readonly firstTokenMs: number
    readonly stallMs: number
    readonly metadataGraceMs: number
    readonly onInterrupt: "fail" | "restart"
    readonly hedge: { readonly afterMs: number; readonly budget: number } | undefined
  }
  readonly requests: ReadonlyArray<RequestSpec>
}

export const MODEL_IDS = ["m0", "m1", "m2", "m3", "m4", "m5"] as const

export const faultArb: fc.Arbitrary<NonNullable<SimulatorScript.ScriptInput["models"][string]["faults"]>[number]> = fc.record({
  when: fc.oneof(
    fc.record({ calls: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 3 }) }),
    fc.integer({ min: 0, max: 20_000 }).chain((from) => fc.integer({ min: from + 1, max: from + 20_000 }).map((to) => ({ from, to })))
  ),
  do: fc.oneof(
    { weight: 5, arbitrary: fc.record({
      kind: fc.constant("error" as const),
      error: fc.constantFrom(...SimulatorScript.ErrorNames),
      retryAfter: fc.option(fc.integer({ min: 100, max: 3_000 }), { nil: undefined })
    }).map(({ retryAfter, ...e }) => (retryAfter === undefined || e.error !== "ThrottlingException" ? e : { ...e, retryAfter })) },
    { weight: 1, arbitrary: fc.constant({ kind: "hang" as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("cut" as const), afterTokens: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("stall" as const), afterTokens: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 2, arbitrary: fc.record({
      kind: fc.constant("streamError" as const),
      afterTokens: fc.integer({ min: 0, max: 3 }),
      error: fc.constantFrom(...SimulatorScript.StreamErrorNames)
    }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("malformed" as const), afterTokens: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: "noMetadata" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "emptyOutput" as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("slow" as const), latency: fc.integer({ min: 0, max: 8_000 }), firstToken: fc.integer({ min: 0, max: 8_000 }) }) }
  )
})

export const modelArb = (id: string): fc.Arbitrary<ModelSpec> =>
  fc.record({
    weight: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constant(0) }),
    timeoutMs: fc.option(fc.integer({ min: 100, max: 6_000 }), { nil: undefined }),
    rpm: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined, freq: 4 }),
    price: fc.option(fc.record({ input: fc.integer({ min: 0, max: 20 }), output: fc.integer({ min: 0, max: 60 }) }), { nil: undefined }),
    latency: fc.integer({ min: 0, max: 1_500 }),
    firstToken: fc.integer({ min: 0, max: 1_500 }),
    tokensPerSecond: fc.constantFrom(10, 20, 50, 100, 200, 1_000),
    words: fc.integer({ min: 1, max: 6 }),
    rpmUpstream: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined, freq: 5 }),
    faults: fc.array(faultArb, { maxLength: 3 }),
    escalate: fc.option(fc.constantFrom("priority" as const, "reserved" as const), { nil: undefined, freq: 3 })
  }).map((m): ModelSpec => ({
    id,
    weight: m.weight,
    timeoutMs: m.timeoutMs,
    rpm: m.rpm,
    price: m.price,
    escalate: m.escalate,
    script: {
      latency: m.latency,
      firstToken: m.firstToken,
      tokensPerSecond: m.tokensPerSecond,
      answer: Array.from({ length: m.words }, (_, w) => `${id}w${w}`).join(" "),
      ...(m.rpmUpstream !== undefined ? { rpm: m.rpmUpstream } : {}),
      faults: m.faults
    }
  }))

/** A pool of six models; the three routes draw tiers from it (so they may share models). */
export const poolArb = fc.tuple(...MODEL_IDS.map(modelArb)) as unknown as fc.Arbitrary<ReadonlyArray<ModelSpec>>

export const tiersArb = (pool: ReadonlyArray<ModelSpec>, minTiers: number) =>
  fc.array(fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: 3, selector: (m) => m.id }), { minLength: minTiers, maxLength: 2 })

export const decisionArb: fc.Arbitrary<BedrockError.Decision> = fc.record({
  retrySame: fc.integer({ min: 0, max: 2 }),
  failover: fc.boolean(),
  breaker: fc.boolean(),
  largerContextOnly: fc.constant(false)
})

/** A representative reason per tag: the table derived from the taxonomy's defaults. */
export const representative: Record<BedrockError.ReasonTag, BedrockError.Reason> = {
  Throttled: new BedrockError.Throttled({ kind: "requests" }),
  ServiceUnavailable: new BedrockError.ServiceUnavailable(),
  InternalServer: new BedrockError.InternalServer(),
  ModelNotReady: new BedrockError.ModelNotReady(),
  ModelTimeout: new BedrockError.ModelTimeout(),
  ModelError: new BedrockError.ModelError({}),
  ModelStreamError: new BedrockError.ModelStreamError({}),
  Validation: new BedrockError.Validation({ kind: "other" }),
  AccessDenied: new BedrockError.AccessDenied(),
  ResourceNotFound: new BedrockError.ResourceNotFound(),
  ServiceQuotaExceeded: new BedrockError.ServiceQuotaExceeded(),
  Network: new BedrockError.Network({ phase: "before-response" }),
  DeadlineExceeded: new BedrockError.DeadlineExceeded({ scope: "attempt", after: Duration.seconds(1) }),
  Incomplete: new BedrockError.Incomplete({ detail: "no-message-stop" }),
  Refused: new BedrockError.Refused({ score: 1, classifier: "x" }),
  Local: new BedrockError.Local({ kind: "other" }),
  Unknown: new BedrockError.Unknown({})
}
export const defaultTable = Object.fromEntries(
  BedrockError.reasonTags.map((t) => [t, { ...BedrockError.decisionOf(representative[t]), largerContextOnly: false }])
) as Record<BedrockError.ReasonTag, BedrockError.Decision>

export const tableArb: fc.Arbitrary<Record<BedrockError.ReasonTag, BedrockError.Decision>> = fc.oneof(
  fc.constant(defaultTable),
  fc.tuple(...BedrockError.reasonTags.map(() => decisionArb)).map((ds) =>
    Object.fromEntries(BedrockError.reasonTags.map((t, i) => [t, ds[i]!])) as Record<BedrockError.ReasonTag, BedrockError.Decision>
  )
)

export const userGuardArb: fc.Arbitrary<ReadonlyArray<GuardSpec>> = fc.record({
  breaker: fc.option(fc.record({
    kind: fc.constant("breaker" as const),
    failures: fc.integer({ min: 1, max: 4 }),
    windowMs: fc.integer({ min: 1_000, max: 60_000 }),
    probeMs: fc.integer({ min: 100, max: 5_000 }),
    probeMaxMs: fc.integer({ min: 5_000, max: 60_000 }),
    halfOpen: fc.integer({ min: 1, max: 2 })
  }), { nil: undefined, freq: 4 }),
  cooldown: fc.option(fc.record({ kind: fc.constant("cooldown" as const), baseMs: fc.integer({ min: 50, max: 1_000 }), requestsMs: fc.integer({ min: 1_000, max: 10_000 }) }), { nil: undefined, freq: 4 }),
  quota: fc.option(fc.constant({ kind: "quota" as const }), { nil: undefined, freq: 4 }),
  window: fc.option(fc.record({
    kind: fc.constant("window" as const),
    windows: fc.array(
      fc.tuple(fc.constantFrom(...MODEL_IDS), fc.integer({ min: 0, max: 15_000 }), fc.integer({ min: 100, max: 10_000 }))
        .map(([id, from, length]) => [id, from, from + length] as const),
      { maxLength: 3 }
    ),
    sync: fc.boolean()
  }), { nil: undefined }),
  reject: fc.option(fc.record({ kind: fc.constant("reject" as const), p: fc.double({ min: 0.05, max: 0.6, noNaN: true }), sync: fc.boolean() }), { nil: undefined }),
  flaky: fc.option(fc.record({ kind: fc.constant("flaky" as const), p: fc.double({ min: 0.05, max: 0.5, noNaN: true }), sync: fc.boolean() }), { nil: undefined }),
  counting: fc.record({ kind: fc.constant("counting" as const), sync: fc.boolean() })
}).chain((g) => {
  const all: Array<GuardSpec> = []
  for (const x of Object.values(g)) if (x !== undefined) all.push(x as GuardSpec)
  // the counting guard is always there: its permits are never free, so the mux must release every one
  return fc.shuffledSubarray(all, { minLength: 1 }).map((xs) => (xs.some((x) => x.kind === "counting") ? xs : [...xs, g.counting]))
})

export const requestArb: fc.Arbitrary<RequestSpec> = fc.record({
  at: fc.integer({ min: 0, max: 20_000 }),
  kind: fc.constantFrom("converse" as const, "stream" as const),
  deadlineMs: fc.option(fc.integer({ min: 200, max: 20_000 }), { nil: undefined }),
  hedge: fc.option(fc.boolean(), { nil: undefined }),
  onInterrupt: fc.option(fc.constantFrom("fail" as const, "restart" as const), { nil: undefined }),
  take: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined, freq: 5 })
})

export const scenarioArb: fc.Arbitrary<Scenario> = poolArb.chain((pool) =>
  fc.record({
    seed: fc.string({ minLength: 1, maxLength: 6 }),
    routes: fc.tuple(tiersArb(pool, 1), tiersArb(pool, 0), tiersArb(pool, 0)),
    guards: userGuardArb,
    selector: fc.constantFrom<SelectorSpec>("weighted", "ordered", "latency", "cheapest", "user-random", "user-last", "user-last-sync"),
    attempts: fc.integer({ min: 1, max: 6 }),
    countEscalations: fc.boolean(),
    deadlineMs: fc.integer({ min: 500, max: 20_000 }),
    timeoutFraction: fc.double({ min: 0.05, max: 1, noNaN: true }),
    table: tableArb,
    retryMs: fc.oneof(fc.constant("default" as const), fc.integer({ min: 0, max: 1_000 })),
    backoff: fc.option(fc.record({ baseMs: fc.integer({ min: 50, max: 1_000 }), maxMs: fc.integer({ min: 1_000, max: 4_000 }), times: fc.integer({ min: 1, max: 3 }) }), { nil: undefined, freq: 3 }),
    waitForRecovery: fc.boolean(),
    stream: fc.record({
      firstTokenMs: fc.integer({ min: 100, max: 5_000 }),
      stallMs: fc.integer({ min: 100, max: 3_000 }),
      metadataGraceMs: fc.integer({ min: 0, max: 500 }),
      onInterrupt: fc.constantFrom("fail" as const, "restart" as const),
      hedge: fc.option(fc.record({ afterMs: fc.integer({ min: 50, max: 2_000 }), budget: fc.double({ min: 0, max: 1, noNaN: true }) }), { nil: undefined })
    }),
    requests: fc.array(requestArb, { minLength: 1, maxLength: 6 }).map((rs) => [...rs].sort((a, b) => a.at - b.at))
  }).map(({ timeoutFraction, ...s }): Scenario => ({ ...s, timeoutMs: Math.max(1, Math.round(s.deadlineMs * timeoutFraction)) }))
).filter((s) => (s.routes[0][0] ?? []).some((m) => m.weight > 0)) // Policy.check: the first tier needs a model with weight > 0

/** How long one call of a guard takes: mostly no time or a round trip, now and then a store that hangs past any deadline. */
export const delayArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.constantFrom(5, 50, 300) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 25_000 }) }
)

export const slowSpecArb: fc.Arbitrary<SlowSpec> = fc.record({
  view: fc.option(fc.array(delayArb, { minLength: 1, maxLength: 5 }), { nil: undefined }),
  admit: fc.option(fc.array(delayArb, { minLength: 1, maxLength: 5 }), { nil: undefined }),
  after: fc.boolean(),
  sync: fc.boolean(),
  promise: fc.boolean()
})

/**
 * Slow calls for the scenario's guards (by position: the first always), callers that give up, and what to push
 * the scenario toward so the slow calls race the rest of a request: hedges (`hedgeAfterMs`: every request a
 * stream hedged this soon, at full budget) and stream restarts (`cut`: every model's first and third calls cut
 * after this many tokens, every stream restarting, read to its end, a cut's errors failing over,
 * at least three attempts).
 */
export interface SlowPlan {
  readonly guards: ReadonlyArray<SlowSpec | undefined>
  readonly giveUps: ReadonlyArray<number | undefined>
  readonly hedgeAfterMs: number | undefined
  readonly cut: number | undefined
}

export const slowPlanArb: fc.Arbitrary<SlowPlan> = fc.record({
  guards: fc.tuple(slowSpecArb, fc.array(fc.option(slowSpecArb, { nil: undefined }), { maxLength: 6 })).map(([first, rest]) => [first, ...rest]),
  // mostly early (during a selection, an admit, a first attempt), now and then at any time
  giveUps: fc.array(
    fc.option(fc.oneof(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 20_000 })), { nil: undefined, freq: 2 }),
    { maxLength: 6 }
  ),
  hedgeAfterMs: fc.option(fc.integer({ min: 20, max: 400 }), { nil: undefined }),
  cut: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined, freq: 3 })
})

export const withSlow = (s: Scenario, plan: SlowPlan): Scenario => {
  const cut = plan.cut
  const model = (m: ModelSpec): ModelSpec =>
    cut === undefined ? m : { ...m, script: { ...m.script, faults: [{ when: { calls: [1, 3] }, do: { kind: "cut", afterTokens: cut } }, ...(m.script.faults ?? [])] } }
  return {
    ...s,
    routes: s.routes.map((tiers) => tiers.map((tier) => tier.map(model))) as unknown as Scenario["routes"],
    // a cut after the commit point restarts where its error fails over
    ...(cut !== undefined
      ? { attempts: Math.max(s.attempts, 3), table: { ...s.table, Network: { ...s.table.Network, failover: true }, Incomplete: { ...s.table.Incomplete, failover: true } } }
      : {}),
    guards: s.guards.map((g, i) => (plan.guards[i] === undefined ? g : { ...g, slow: plan.guards[i] })),
    stream: {
      ...s.stream,
      ...(plan.hedgeAfterMs !== undefined ? { hedge: { afterMs: plan.hedgeAfterMs, budget: 1 } } : {}),
      ...(cut !== undefined ? { onInterrupt: "restart" as const } : {})
    },
    requests: s.requests.map((r, i) => ({
      ...r,
      ...(plan.giveUps[i] !== undefined ? { giveUpMs: plan.giveUps[i] } : {}),
      ...(plan.hedgeAfterMs !== undefined ? { kind: "stream" as const, hedge: true } : {}),
      ...(cut !== undefined ? { kind: "stream" as const, onInterrupt: "restart" as const, take: undefined } : {})
    }))
  }
}

/**
 * The laws' scenarios: those of `scenarioArb`, and in about one in three of them guards that take virtual time
 * (`SlowSpec`) and callers that give up, so the races of a slow admission with the rest of a request (a hedge's
 * selection and the first attempt's answer, the deadline, the caller, a stream's restart) are drawn too.
 */
export const lawsScenarioArb: fc.Arbitrary<Scenario> = fc.tuple(
  scenarioArb,
  fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: slowPlanArb })
).map(([s, plan]) => (plan === undefined ? s : withSlow(s, plan)))

// --- the recorder -------------------------------------------------------------------------------

export interface ViewEntry {
  readonly seq: number
  readonly guard: string
  readonly requestId: string
  readonly label: string | undefined
  /** the `now` the mux passed (its select stage's start) */
  readonly now: number
  /** when the view was asked, and when it answered (a slow guard's take time) */
  readonly at: number
  readonly endAt: number
  /** the fiber that asked (a select stage runs in a fiber of its own); undefined: a synchronous form, in plain code */
  readonly fiber: number | undefined
  readonly targets: ReadonlyArray<string>
  readonly views: ReadonlyArray<Guard.View>
}
export interface AdmitEntry {
  readonly seq: number
  readonly guard: string
  readonly requestId: string
  readonly label: string | undefined
  readonly target: string
  /** the `now` the mux passed (its select stage's start) */
  readonly now: number
  /** when the admit was asked, and when it answered */
  readonly at: number
  readonly endAt: number
  /** the fiber that asked, as for a view */
  readonly fiber: number | undefined
  readonly result:
    | { readonly ok: true; readonly permit: number; readonly free: boolean }
    | { readonly ok: false; readonly why: string; readonly retryAfterMs: number | undefined }
}
export interface ReleaseEntry {
  readonly seq: number
  readonly permit: number
  readonly outcome: Guard.Outcome["_tag"]
  readonly at: number
}
export interface ReadEntry {
  readonly seq: number
  readonly at: number
  readonly kind: "content" | "reset" | "routing" | "other"
  /** content: the model whose answer it is (the scripted answers name their model) */
  readonly model?: string | undefined
}

export interface Trace {
  seq: number
  permits: number
  /** admits that did not run to their end (an admit may have taken a slot: the mux must never cut one) */
  readonly cutAdmits: Array<{ readonly guard: string; readonly requestId: string; readonly target: string; readonly at: number }>
  /** each request's id by its label, from the first time a guard was asked about it (a view may never answer) */
  readonly ids: Map<string, string>
  readonly views: Array<ViewEntry>
  readonly admits: Array<AdmitEntry>
  readonly releases: Array<ReleaseEntry>
}

/** A guard that logs what `inner` sees and says, through the public protocol only. */
export const recorded = (inner: Guard.Guard, trace: Trace): Guard.Guard => ({
  name: inner.name,
  ...(inner.settings !== undefined ? { settings: inner.settings } : {}),
  build: (env) =>
    Effect.map(inner.build(env), (live): Guard.Live => {
      const logViews = (
        targets: ReadonlyArray<{ readonly model: { readonly target: string } }>,
        request: Guard.RequestInfo,
        now: number,
        at: number,
        endAt: number,
        fiber: number | undefined,
        views: ReadonlyArray<Guard.View>
      ) => {
        if (request.id !== "health") {
          trace.views.push({ seq: ++trace.seq, guard: inner.name, requestId: request.id, label: request.label, now, at, endAt, fiber, targets: targets.map((t) => t.model.target), views })
        }
        return views
      }
      const granted = (target: string, request: Guard.RequestInfo, now: number, at: number, endAt: number, fiber: number | undefined, p: Guard.Permit): Guard.Permit => {
        const id = ++trace.permits
        trace.admits.push({ seq: ++trace.seq, guard: inner.name, requestId: request.id, label: request.label, target, now, at, endAt, fiber, result: { ok: true, permit: id, free: p.free === true } })
        return {
          ...p,
          release: (outcome) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) => {
              trace.releases.push({ seq: ++trace.seq, permit: id, outcome: outcome._tag, at })
              return p.release(outcome)
            })
        }
      }
      const viewUnsafe = live.viewUnsafe
      const admitUnsafe = live.admitUnsafe
      return {
        view: (targets, request, now) =>
          Effect.withFiber((fiber) => {
            const at = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
            if (request.label !== undefined && !trace.ids.has(request.label)) trace.ids.set(request.label, request.id)
            return Effect.flatMap(live.view(targets, request, now), (v) => Effect.map(Clock.currentTimeMillis, (endAt) => logViews(targets, request, now, at, endAt, fiber.id, v)))
          }),
        admit: (target, request, view, now) =>
          Effect.withFiber((fiber) => {
            const at = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
            return live.admit(target, request, view, now).pipe(
              Effect.flatMap((p) => Effect.map(Clock.currentTimeMillis, (endAt) => granted(target.model.target, request, now, at, endAt, fiber.id, p))),
              Effect.tapError((e) =>
                Effect.flatMap(Clock.currentTimeMillis, (endAt) =>
                  Effect.sync(() => {
                    if (e._tag === "Rejected") {
                      trace.admits.push({
                        seq: ++trace.seq,
                        guard: inner.name,
                        requestId: request.id,
                        label: request.label,
                        target: target.model.target,
                        now,
                        at,
                        endAt,
                        fiber: fiber.id,
                        result: { ok: false, why: e.why, retryAfterMs: e.retryAfterMs }
                      })
                    }
                  }))
              ),
              Effect.onInterrupt(() => Effect.sync(() => void trace.cutAdmits.push({ guard: inner.name, requestId: request.id, target: target.model.target, at })))
            )
          }),
        ...(live.health !== undefined ? { health: live.health } : {}),
        ...(viewUnsafe !== undefined
          ? {
            viewUnsafe: (targets, request, now) => {
              if (request.label !== undefined && !trace.ids.has(request.label)) trace.ids.set(request.label, request.id)
              const v = viewUnsafe(targets, request, now)
              // a synchronous form takes no time: it answers at the mux's now
              return v === undefined ? undefined : logViews(targets, request, now, now, now, undefined, v)
            }
          }
          : {}),
        ...(admitUnsafe !== undefined
          ? {
            admitUnsafe: (target, request, view, now) => {
              const p = admitUnsafe(target, request, view, now)
              return p === undefined ? undefined : granted(target.model.target, request, now, now, now, undefined, p)
            }
          }
          : {})
      }
    })
})

// --- the user's guards and selectors ------------------------------------------------------------

export const openViews = (targets: ReadonlyArray<unknown>) => targets.map(() => Guard.open)

/** Keeps models out during their windows (epoch ms of the mux's Clock). */
export const windowGuard = (windows: ReadonlyArray<readonly [string, number, number]>, sync: boolean) => {
  const viewOf = (targets: ReadonlyArray<{ readonly model: { readonly modelId: string } }>, now: number) =>
    targets.map((t): Guard.View => {
      const w = windows.find(([id, from, to]) => id === t.model.modelId && now >= from && now < to)
      return w === undefined ? Guard.open : { admits: false, weight: 0, why: "window", recoversAt: w[2] }
    })
  return Guard.make({
    name: "window",
    view: (targets, _request, now) => Effect.succeed(viewOf(targets, now)),
    admit: () => Effect.succeed(Guard.noPermit),
    ...(sync ? { viewUnsafe: (targets: ReadonlyArray<{ readonly model: { readonly modelId: string } }>, _request: unknown, now: number) => viewOf(targets, now), admitUnsafe: () => Guard.noPermit } : {})
  })
}

/** Rejects an admission with probability `p` (its sync side leaves the draws it would reject to `admit`). */
export const rejectGuard = (seed: string, p: number, sync: boolean) =>
  Guard.stateful("reject", () =>
    Effect.sync((): Guard.Live => {
      const draw = prng(`${seed}/reject`)
      return {
        view: (targets) => Effect.succeed(openViews(targets)),
        admit: () => (draw() < p ? Effect.fail(new Guard.Rejected({ guard: "reject", why: "reject" })) : Effect.succeed(Guard.noPermit)),
        ...(sync ? { viewUnsafe: (targets) => openViews(targets), admitUnsafe: () => (draw() < p ? undefined : Guard.noPermit) } : {})
      }
    }))

/** Keeps each target out of a view with probability `p`. */
export const flakyGuard = (seed: string, p: number, sync: boolean) =>
  Guard.stateful("flaky", () =>
    Effect.sync((): Guard.Live => {
      const draw = prng(`${seed}/flaky`)
      const viewOf = (targets: ReadonlyArray<unknown>, now: number) =>
        targets.map((): Guard.View => (draw() < p ? { admits: false, weight: 0, why: "flaky", recoversAt: now + 100 } : Guard.open))
      return {
        view: (targets, _request, now) => Effect.succeed(viewOf(targets, now)),
        admit: () => Effect.succeed(Guard.noPermit),
        ...(sync ? { viewUnsafe: (targets, _request, now) => viewOf(targets, now), admitUnsafe: () => Guard.noPermit } : {})
      }
    }))

/** Admits everything with permits that are never free: the mux must release each one. */
export const countingGuard = (sync: boolean) => {
  const permit = (): Guard.Permit => ({ release: () => Effect.void })
  return Guard.make({
    name: "counting",
    view: (targets) => Effect.succeed(openViews(targets)),
    admit: () => Effect.sync(permit),
    ...(sync ? { viewUnsafe: (targets: ReadonlyArray<unknown>) => openViews(targets), admitUnsafe: permit } : {})
  })
}

export const guardOf = (seed: string, g: GuardSpec): Guard.Guard => {
  switch (g.kind) {
    case "breaker":
      return Guard.breaker({ failures: g.failures, window: g.windowMs, probeInterval: g.probeMs, probeIntervalMax: g.probeMaxMs, halfOpen: g.halfOpen })
    case "cooldown":
      return Guard.cooldown({ base: g.baseMs, requests: g.requestsMs })
    case "quota":
      return Guard.quota()
    case "window":
      return windowGuard(g.windows, g.sync)
    case "reject":
      return rejectGuard(seed, g.p, g.sync)
    case "flaky":
      return flakyGuard(seed, g.p, g.sync)
    case "counting":
      return countingGuard(g.sync)
  }
}

/** `inner` with its calls taking the virtual time `spec` says (see `SlowSpec`). */
export const slowGuard = (inner: Guard.Guard, spec: SlowSpec): Guard.Guard => ({
  name: inner.name,
  ...(inner.settings !== undefined ? { settings: inner.settings } : {}),
  build: (env) =>
    Effect.map(inner.build(env), (live): Guard.Live => {
      /** the delays of one side, in turn (none: every call at once) */
      const turns = (delays: ReadonlyArray<number> | undefined) => {
        let k = 0
        return { peek: () => (delays === undefined ? 0 : delays[k % delays.length]!), take: () => (delays === undefined ? 0 : delays[k++ % delays.length]!) }
      }
      const views = turns(spec.view)
      const admits = turns(spec.admit)
      const wait = (ms: number) => (spec.promise === true ? Effect.andThen(Effect.sleep(ms), Effect.promise(() => Promise.resolve())) : Effect.sleep(ms))
      const delayed = <A, E>(ms: number, self: Effect.Effect<A, E>): Effect.Effect<A, E> =>
        ms <= 0 ? self : spec.after ? Effect.flatMap(Effect.exit(self), (exit) => Effect.andThen(wait(ms), exit)) : Effect.andThen(wait(ms), self)
      const { viewUnsafe, admitUnsafe } = live
      return {
        view: (targets, request, now) => Effect.suspend(() => delayed(views.take(), live.view(targets, request, now))),
        admit: (target, request, view, now) => Effect.suspend(() => delayed(admits.take(), live.admit(target, request, view, now))),
        ...(live.health !== undefined ? { health: live.health } : {}),
        // a synchronous form only for a call that takes no time (its turn is used only when it answers), and none
        // at all for a side whose every call is slow
        ...(spec.sync && viewUnsafe !== undefined && (spec.view ?? [0]).includes(0)
          ? {
            viewUnsafe: (targets, request, now) => {
              if (views.peek() > 0) return undefined
              const v = viewUnsafe(targets, request, now)
              if (v !== undefined) views.take()
              return v
            }
          }
          : {}),
        ...(spec.sync && admitUnsafe !== undefined && (spec.admit ?? [0]).includes(0)
          ? {
            admitUnsafe: (target, request, view, now) => {
              if (admits.peek() > 0) return undefined
              const p = admitUnsafe(target, request, view, now)
              if (p !== undefined) admits.take()
              return p
            }
          }
          : {})
      }
    })
})

export const last = (cs: ReadonlyArray<Selector.Candidate>) => cs[cs.length - 1]!

export const selectorOf = (s: SelectorSpec): Selector.Selector => {
  switch (s) {
    case "weighted":
      return Selector.weighted
    case "ordered":
      return Selector.ordered
    case "latency":
      return Selector.latency()
    case "cheapest":
      return Selector.cheapest()
    case "user-random":
      return Selector.make("user-random", (cs) => Effect.map(Random.nextIntBetween(0, cs.length, { halfOpen: true }), (i) => cs[i]!))
    case "user-last":
      return Selector.make("user-last", (cs) => Effect.succeed(last(cs)))
    case "user-last-sync":
      return { name: "user-last-sync", pick: (cs) => Effect.succeed(last(cs)), pickUnsafe: (cs) => last(cs) }
  }
}

// --- the run ------------------------------------------------------------------------------------

export const routeOf = (tiers: ReadonlyArray<ReadonlyArray<ModelSpec>>): Route.Route =>
  tiers.reduce(
    (r, tier) =>
      Route.orElse(r, Route.tier(tier.map((m) => ({
        modelId: m.id,
        weight: m.weight,
        ...(m.timeoutMs !== undefined ? { timeout: m.timeoutMs } : {}),
        ...(m.rpm !== undefined ? { rpm: m.rpm } : {}),
        ...(m.price !== undefined ? { price: m.price } : {}),
        ...(m.escalate !== undefined ? { escalate: m.escalate } : {})
      })))),
    Route.empty
  )

/** The route of the scenario, composed to the left or to the right. */
export const composed = (s: Scenario, assoc: "left" | "right"): Route.Route => {
  const [a, b, c] = s.routes.map(routeOf) as [Route.Route, Route.Route, Route.Route]
  return assoc === "left" ? Route.orElse(Route.orElse(a, b), c) : Route.orElse(a, Route.orElse(b, c))
}

/** The scenario's guards, each behind the recorder (the laws read what they saw); another choice for other tests. */
export type GuardsOf = (s: Scenario, trace: Trace) => ReadonlyArray<Guard.Guard>
export const recordedGuards: GuardsOf = (s, trace) =>
  s.guards.map((g) => recorded(g.slow === undefined ? guardOf(s.seed, g) : slowGuard(guardOf(s.seed, g), g.slow), trace))

export const policyOf = (s: Scenario, route: Route.Route, trace: Trace, guards: GuardsOf = recordedGuards): Policy.Policy => {
  const labels = s.requests.map((_, i) => `q${i}`)
  const base = Policy.make(route, {
    selector: selectorOf(s.selector),
    guards: guards(s, trace),
    attempts: s.attempts,
    countEscalations: s.countEscalations,
    timeout: Duration.millis(s.timeoutMs),
    deadline: Duration.millis(s.deadlineMs),
    classification: (e) => s.table[e.reason._tag],
    retry: s.retryMs === "default" ? Policy.defaultRetry : Policy.honourRetryAfter(Schedule.spaced(Duration.millis(s.retryMs))),
    backoff: s.backoff === undefined ? undefined : Policy.exponentialBackoff({ base: s.backoff.baseMs, max: s.backoff.maxMs, times: s.backoff.times }),
    waitForRecovery: s.waitForRecovery
  })
  // every request has a label of its own (the same route): the recorder tells requests apart by it
  return labels.reduce((p, label) => Policy.withLabel(label, route)(p), Policy.withStreaming({
    firstToken: s.stream.firstTokenMs,
    stall: s.stream.stallMs,
    metadataGrace: s.stream.metadataGraceMs,
    onInterrupt: s.stream.onInterrupt,
    hedge: s.stream.hedge === undefined ? undefined : Policy.hedge({ after: s.stream.hedge.afterMs, budget: s.stream.hedge.budget })
  })(base))
}

export const scriptOf = (s: Scenario): SimulatorScript.ScriptInput => ({
  seed: s.seed,
  models: Object.fromEntries(s.routes.flat(2).map((m) => [m.id, m.script]))
})

export interface Call {
  readonly index: number
  readonly label: string
  readonly kind: "converse" | "stream"
  readonly startAt: number
  readonly endAt: number
  readonly deadlineMs: number
  readonly exit: Exit.Exit<unknown, MuxErrors.MuxError>
  /** streams: what the reader got, in the recorder's sequence */
  readonly reads: ReadonlyArray<ReadEntry>
  /** the attempt records the caller got (routing, or the MuxError's) */
  readonly attempts: ReadonlyArray<unknown> | undefined
  readonly take: number | undefined
  /** the caller gave up (`RequestSpec.giveUpMs`) before the request ended; `exit` is then a plain success */
  readonly gaveUp: boolean
}

export interface Run {
  readonly scenario: Scenario
  readonly route: Route.Route
  readonly policy: Policy.Policy
  readonly trace: Trace
  readonly events: ReadonlyArray<MuxEvent.MuxEvent>
  readonly calls: ReadonlyArray<Call>
}

export const call = (mux: BedrockMux["Service"], s: Scenario, index: number, r: RequestSpec, trace: Trace) =>
  Effect.gen(function*() {
    const startAt = yield* Clock.currentTimeMillis
    const label = `q${index}`
    const options = { label, ...(r.deadlineMs !== undefined ? { deadline: Duration.millis(r.deadlineMs) } : {}) }
    const request = { messages: [{ role: "user" as const, content: [{ text: `request ${index}` }] }] }
    const reads: Array<ReadEntry> = []
    let attempts: ReadonlyArray<unknown> | undefined
    let made: Effect.Effect<Exit.Exit<unknown, MuxErrors.MuxError>>
    if (r.kind === "converse") made = Effect.exit(mux.converse(request, options))
    else {
      const stream = mux.converseStream(request, {
        ...options,
        ...(r.hedge !== undefined ? { hedge: r.hedge } : {}),
        ...(r.onInterrupt !== undefined ? { onInterrupt: r.onInterrupt } : {})
      })
      made = (r.take === undefined ? stream : Stream.take(stream, r.take)).pipe(
        Stream.runForEach((ev) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.sync(() => {
              const kind = MuxStream.isRouting(ev) ? "routing" : MuxStream.isReset(ev) ? "reset" : ev.contentBlockDelta !== undefined ? "content" : "other"
              if (MuxStream.isRouting(ev)) attempts = ev.routing.attempts
              const model = /^\s*(m\d)w/.exec(ev.contentBlockDelta?.delta?.text ?? "")?.[1]
              reads.push({ seq: ++trace.seq, at, kind, ...(model !== undefined ? { model } : {}) })
            }))
        ),
        Effect.exit
      )
    }
    // a caller with a timeout of its own: it interrupts the request when it gives up
    const ended = r.giveUpMs === undefined ? Effect.map(made, Option.some) : Effect.timeoutOption(made, Duration.millis(r.giveUpMs))
    const got = yield* ended
    const gaveUp = Option.isNone(got)
    const exit: Exit.Exit<unknown, MuxErrors.MuxError> = Option.isSome(got) ? got.value : Exit.void
    const endAt = yield* Clock.currentTimeMillis
    if (Exit.isSuccess(exit) && r.kind === "converse" && !gaveUp) attempts = (exit.value as { readonly routing: { readonly attempts: ReadonlyArray<unknown> } }).routing.attempts
    if (Exit.isFailure(exit)) {
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") attempts = error.value.attempts
    }
    return { index, label, kind: r.kind, startAt, endAt, deadlineMs: r.deadlineMs ?? s.deadlineMs, exit, reads, attempts, take: r.take, gaveUp } satisfies Call
  })

export const run = (s: Scenario, assoc: "left" | "right" = "left", guards: GuardsOf = recordedGuards): Promise<Run> => {
  const trace: Trace = { seq: 0, permits: 0, cutAdmits: [], ids: new Map(), views: [], admits: [], releases: [] }
  const route = composed(s, assoc)
  const policy = policyOf(s, route, trace, guards)
  const program = Effect.gen(function*() {
    const mux = yield* BedrockMux
    const events: Array<MuxEvent.MuxEvent> = []
    yield* Stream.runForEach(mux.events, (e) => Effect.sync(() => void events.push(e))).pipe(Effect.forkScoped({ startImmediately: true }))
    const fibers: Array<Fiber.Fiber<Call>> = []
    let now = 0
    for (const [i, r] of s.requests.entries()) {
      if (r.at > now) {
        yield* TestClock.adjust(Duration.millis(r.at - now))
        now = r.at
      }
      fibers.push(yield* Effect.forkChild(call(mux, s, i, r, trace), { startImmediately: true }))
    }
    yield* TestClock.adjust("10 minutes")
    const calls = yield* Fiber.joinAll(fibers)
    yield* TestClock.adjust("1 minute")
    return { scenario: s, route, policy, trace, events, calls } satisfies Run
  })
  return Effect.runPromise(program.pipe(
    Effect.provide(BedrockMux.layer(policy).pipe(Layer.provideMerge(BedrockSimulator.layer(scriptOf(s))))),
    Effect.scoped,
    Random.withSeed(s.seed),
    // a fiber that keeps running when the clock wakes it (a bug) holds the clock this long (wall time) per wake
    Effect.provide(TestClock.layer({ warningDelay: "100 millis" }))
  ))
}

// --- reading a run ------------------------------------------------------------------------------

export interface Round {
  readonly target: string
  /** its select stage's start (the `now` the mux passed its guards) */
  readonly now: number
  /** when its last admit answered: when its attempt starts (its permits in hand) */
  readonly endAt: number
  /** its select stage's fiber (undefined: in plain code) */
  readonly fiber: number | undefined
  readonly firstSeq: number
  readonly admits: ReadonlyArray<AdmitEntry>
}

/** One request of a run: its id, label, call, events, and its admission rounds (all guards admitted one target). */
export interface RequestView {
  readonly id: string
  readonly call: Call
  readonly started: ReadonlyArray<MuxEvent.AttemptStarted>
  readonly records: ReadonlyArray<MuxEvent.AttemptEnded>
  readonly ended: ReadonlyArray<MuxEvent.RequestEnded>
  /** complete admission rounds whose pick was sent, in order: the k-th is the k-th attempt's */
  readonly rounds: ReadonlyArray<Round>
  /**
   * complete rounds whose pick was given back unused (a permit released NotSent): made at or past the deadline,
   * as the caller gave up, or by a hedge's selection the first attempt's answer overtook
   */
  readonly unsent: ReadonlyArray<Round>
  /** rounds some guard rejected, and rounds left unfinished */
  readonly partial: ReadonlyArray<{ readonly admits: ReadonlyArray<AdmitEntry>; readonly rejected: boolean }>
}

export const where = (r: Run) => `scenario ${JSON.stringify(r.scenario)}`

export const requestsOf = (r: Run): ReadonlyArray<RequestView> => {
  const names = r.policy.guards.map((g) => g.name)
  const idOf = r.trace.ids
  return r.calls.map((c) => {
    const id = idOf.get(c.label)
    assert.isDefined(id, `${where(r)}: request ${c.index} was never shown to the guards`)
    const admits = r.trace.admits.filter((a) => a.requestId === id)
    const rounds: Array<Round> = []
    const unsent: Array<Round> = []
    const partial: Array<{ admits: Array<AdmitEntry>; rejected: boolean }> = []
    // a round is one select stage's admits of one pick, in guard order; two stages of a request may overlap (a
    // hedge's selection, given up, runs on while the request selects again, a stream's restart at the same
    // instant included), so a round is known by its stage's fiber (a stage in plain code runs whole at once),
    // not by its place in the log
    const open = new Map<string, Array<AdmitEntry>>()
    const close = (key: string, rejected: boolean) => {
      const current = open.get(key)
      if (current !== undefined && current.length > 0) partial.push({ admits: current, rejected })
      open.delete(key)
    }
    const notSent = (a: AdmitEntry) =>
      a.result.ok && !a.result.free && r.trace.releases.some((x) => a.result.ok && x.permit === a.result.permit && x.outcome === "NotSent")
    for (const a of admits) {
      const g = names.indexOf(a.guard)
      const key = a.fiber === undefined ? "plain" : `fiber ${a.fiber}`
      if (g === 0) {
        close(key, false)
        open.set(key, [])
      }
      const current = open.get(key)
      if (current === undefined || current.length !== g || (g > 0 && (current[0]!.target !== a.target || current[0]!.now !== a.now))) {
        assert.fail(`${where(r)}: ${id}: guard ${a.guard} asked out of order: ${JSON.stringify(current)} then ${JSON.stringify(a)}`)
      }
      current.push(a)
      if (!a.result.ok) close(key, true)
      else if (current.length === names.length) {
        const round = { target: a.target, now: a.now, endAt: a.endAt, fiber: a.fiber, firstSeq: current[0]!.seq, admits: current }
        if (current.some(notSent)) unsent.push(round)
        else rounds.push(round)
        open.delete(key)
      }
    }
    for (const key of [...open.keys()]) close(key, false)
    return {
      id: id!,
      call: c,
      started: r.events.filter((e): e is MuxEvent.AttemptStarted => e._tag === "AttemptStarted" && e.requestId === id),
      records: r.events.filter((e): e is MuxEvent.AttemptEnded => e._tag === "AttemptEnded" && e.requestId === id),
      ended: r.events.filter((e): e is MuxEvent.RequestEnded => e._tag === "RequestEnded" && e.requestId === id),
      rounds,
      unsent,
      partial
    }
  })
}

/** Records that existed when attempt `s` started (its `attempt` number counts them; a hedge's primary is not recorded yet). */
export const recordsBefore = (q: RequestView, s: MuxEvent.AttemptStarted) => q.records.slice(0, s.attempt - (s.hedge ? 2 : 1)).map((e) => e.record)

/**
 * Each guard's latest view of the request before `seq` that covers `target`, in the select stage of `round` (its
 * fiber and start: another stage of the request, a hedge's, may answer in between).
 */
export const viewsBefore = (r: Run, q: RequestView, seq: number, round: Pick<Round, "now" | "fiber">, covering: (targets: ReadonlyArray<string>) => boolean) =>
  r.policy.guards.map((g) =>
    r.trace.views.findLast((v) =>
      v.requestId === q.id && v.guard === g.name && v.seq < seq && v.now === round.now && v.fiber === round.fiber && covering(v.targets)
    )
  )

export const modelOf = (r: Run, target: string) => Route.models(r.route).find((m) => m.target === target)!

export const tierOf = (r: Run, target: string) => r.route.tiers.findIndex((t) => t.some((m) => m.target === target))

/** Every attempt with the round that admitted it and the views that selected it. */
export const attemptsOf = (r: Run, q: RequestView) => {
  assert.strictEqual(q.rounds.length, q.started.length, `${where(r)}: ${q.id}: ${q.rounds.length} admission rounds for ${q.started.length} attempts`)
  return q.started.map((s, k) => {
    const round = q.rounds[k]!
    assert.strictEqual(round.target, s.target, `${where(r)}: ${q.id}: attempt ${k + 1} is not on the target its guards admitted`)
    // an attempt starts when its permits are in hand (a slow admit's time is not the model's)
    assert.strictEqual(round.endAt, s.at, `${where(r)}: ${q.id}: attempt ${k + 1} did not start when it was admitted`)
    const views = viewsBefore(r, q, round.firstSeq, round, (ts) => ts.includes(s.target))
    return { start: s, round, views, before: recordsBefore(q, s) }
  })
}

/** Did the reader get content of `model` before `seq` (the model had committed: a restart excludes it, throttled or not)? */
export const deliveredBefore = (q: RequestView, model: string, seq: number) =>
  q.call.reads.some((x) => x.kind === "content" && x.model === model && x.seq < seq)

/** The most views one guard gave one request at one instant: a request that waits without time passing spins. */
export const busiestInstant = (r: Run) => {
  const counts = new Map<string, number>()
  let worst = { key: "", count: 0 }
  for (const v of r.trace.views) {
    const key = `${v.requestId} ${v.guard} t=${v.now}`
    const n = (counts.get(key) ?? 0) + 1
    counts.set(key, n)
    if (n > worst.count) worst = { key, count: n }
  }
  return worst
}

export const viewOf = (entry: ViewEntry | undefined, target: string): Guard.View | undefined =>
  entry === undefined ? undefined : entry.views[entry.targets.indexOf(target)]


/** A guard's call: its stage's start, and when it was asked and answered where that was later. */
const span = (e: { readonly now: number; readonly at: number; readonly endAt: number }) =>
  e.at === e.now && e.endAt === e.now ? `${e.now}` : `${e.now} (asked ${e.at}, answered ${e.endAt})`

/** A run as text, request by request in the recorder's order, then the pool's events (for `LAWS_TRACE=1`). */
export const story = (r: Run): string => {
  const lines: Array<string> = [
    `route ${JSON.stringify(r.route.tiers.map((t) => t.map((m) => `${m.target} w${m.weight}${m.timeout !== undefined ? ` timeout ${Duration.toMillis(m.timeout)}` : ""}${m.rpm !== undefined ? ` rpm ${m.rpm}` : ""}`)))}; guards ${r.policy.guards.map((g) => g.name).join(", ")}`
  ]
  // not through requestsOf: the story of a run whose log that cannot read (a round out of order) is told too
  for (const q of r.calls.map((call) => ({ id: r.trace.ids.get(call.label) ?? `(${call.label}: never shown to the guards)`, call }))) {
    const entries: Array<readonly [number, string]> = []
    lines.push(`${q.id} (${q.call.label}, ${q.call.kind}): from ${q.call.startAt}, deadline ${q.call.deadlineMs} ms, caller's exit at ${q.call.endAt}: ${q.call.gaveUp ? "gave up" : Exit.isSuccess(q.call.exit) ? "success" : Cause.pretty(q.call.exit.cause).split("\n")[0]}`)
    for (const v of r.trace.views.filter((v) => v.requestId === q.id)) {
      entries.push([v.seq, `t=${span(v)} view ${v.guard}: ${v.targets.map((t, i) => `${t} ${v.views[i]!.admits ? "ok" : v.views[i]!.why}${v.views[i]!.weight !== 1 ? ` ×${v.views[i]!.weight}` : ""}`).join(", ")}`])
    }
    for (const a of r.trace.admits.filter((a) => a.requestId === q.id)) {
      entries.push([a.seq, `t=${span(a)} admit ${a.guard} ${a.target}: ${a.result.ok ? `permit #${a.result.permit}${a.result.free ? " (free)" : ""}` : `rejected (${a.result.why})`}`])
      if (a.result.ok) {
        const id = a.result.permit
        for (const x of r.trace.releases.filter((x) => x.permit === id)) entries.push([x.seq, `t=${x.at} release #${id} (${a.guard} ${a.target}): ${x.outcome}`])
      }
    }
    for (const x of q.call.reads) entries.push([x.seq, `t=${x.at} read ${x.kind}${x.model !== undefined ? ` of ${x.model}` : ""}`])
    lines.push(...[...entries].sort((a, b) => a[0] - b[0]).map(([, l]) => `  ${l}`))
    for (const e of r.events.filter((e) => "requestId" in e && e.requestId === q.id)) lines.push(`  event ${JSON.stringify(e)}`)
  }
  for (const e of r.events.filter((e) => !("requestId" in e))) lines.push(`event ${JSON.stringify(e)}`)
  return lines.join("\n")
}
