import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, pipe, Random, Schedule } from "effect"
import * as fc from "fast-check"
import * as BedrockError from "../src/BedrockError.ts"
import * as Guard from "../src/Guard.ts"
import * as Model from "../src/Model.ts"
import * as Policy from "../src/Policy.ts"
import * as Route from "../src/Route.ts"
import * as Selector from "../src/Selector.ts"
import { delaysOf, throttled, unavailable } from "./support/schedule.ts"

// --- arbitraries --------------------------------------------------------------------------------

const optional = <A,>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: undefined })
const durationArb = fc.integer({ min: 0, max: 120_000 }).map(Duration.millis)
const statusArb = optional(fc.constantFrom(400, 403, 404, 408, 424, 429, 500, 502, 503))

/** One generator per reason tag: the Record type makes the list exhaustive. */
const reasonArbs: { readonly [K in BedrockError.ReasonTag]: fc.Arbitrary<Extract<BedrockError.Reason, { _tag: K }>> } = {
  Throttled: fc.record({ kind: fc.constantFrom<BedrockError.ThrottleKind>("requests", "tokens", "daily", "unknown"), retryAfter: optional(durationArb) })
    .map(({ kind, retryAfter }) => new BedrockError.Throttled(retryAfter === undefined ? { kind } : { kind, retryAfter })),
  ServiceUnavailable: fc.constant(new BedrockError.ServiceUnavailable()),
  InternalServer: fc.constant(new BedrockError.InternalServer()),
  ModelNotReady: fc.constant(new BedrockError.ModelNotReady()),
  ModelTimeout: fc.constant(new BedrockError.ModelTimeout()),
  ModelError: statusArb.map((s) => new BedrockError.ModelError(s === undefined ? {} : { originalStatusCode: s })),
  ModelStreamError: statusArb.map((s) => new BedrockError.ModelStreamError(s === undefined ? {} : { originalStatusCode: s })),
  Validation: fc.constantFrom("context-window", "other").map((kind) => new BedrockError.Validation({ kind: kind as "context-window" | "other" })),
  AccessDenied: fc.constant(new BedrockError.AccessDenied()),
  ResourceNotFound: fc.constant(new BedrockError.ResourceNotFound()),
  ServiceQuotaExceeded: fc.constant(new BedrockError.ServiceQuotaExceeded()),
  Network: fc.record({ phase: fc.constantFrom("before-response", "after-response"), code: optional(fc.constantFrom("ECONNRESET", "EPIPE")) })
    .map(({ phase, code }) =>
      new BedrockError.Network(
        code === undefined
          ? { phase: phase as "before-response" | "after-response" }
          : { phase: phase as "before-response" | "after-response", code }
      )
    ),
  DeadlineExceeded: fc.record({ scope: fc.constantFrom("attempt", "request", "first-token", "stall"), after: durationArb })
    .map(({ scope, after }) => new BedrockError.DeadlineExceeded({ scope: scope as "attempt", after })),
  Incomplete: fc.constantFrom("missing-output", "no-message-stop", "malformed-frame", "malformed-body")
    .map((detail) => new BedrockError.Incomplete({ detail: detail as "missing-output" })),
  Refused: fc.record({ score: fc.double({ min: 0, max: 1, noNaN: true }), classifier: fc.constantFrom("keywords", "model") })
    .map((r) => new BedrockError.Refused(r)),
  Local: fc.constantFrom("credentials", "region", "endpoint", "serialization", "other")
    .map((kind) => new BedrockError.Local({ kind: kind as BedrockError.LocalKind })),
  Unknown: optional(fc.string()).map((name) => new BedrockError.Unknown(name === undefined ? {} : { name }))
}

const reasonArb: fc.Arbitrary<BedrockError.Reason> = fc.oneof(...Object.values(reasonArbs) as Array<fc.Arbitrary<BedrockError.Reason>>)

const errorArb: fc.Arbitrary<BedrockError.BedrockError> = fc
  .record({ reason: reasonArb, message: fc.string(), modelId: optional(fc.constantFrom("a", "b")) })
  .map(({ modelId, ...rest }) => new BedrockError.BedrockError(modelId === undefined ? rest : { ...rest, modelId }))

const tagArb = fc.constantFrom(...BedrockError.reasonTags)

const decisionArb: fc.Arbitrary<BedrockError.Decision> = fc.record({
  retrySame: fc.nat({ max: 3 }),
  failover: fc.boolean(),
  breaker: fc.boolean(),
  largerContextOnly: fc.boolean()
})
const partialDecisionArb: fc.Arbitrary<Partial<BedrockError.Decision>> = fc.record(
  { retrySame: fc.nat({ max: 3 }), failover: fc.boolean(), breaker: fc.boolean(), largerContextOnly: fc.boolean() },
  { requiredKeys: [] }
)

/** A base classification: the default table, or a random table by tag. */
const classificationArb: fc.Arbitrary<Policy.Classification> = fc.oneof(
  fc.constant(Policy.defaultClassification),
  fc.array(decisionArb, { minLength: BedrockError.reasonTags.length, maxLength: BedrockError.reasonTags.length }).map(
    (table): Policy.Classification => (e) => table[BedrockError.reasonTags.indexOf(e.reason._tag)]!
  )
)

const errorsArb = fc.array(errorArb, { minLength: 1, maxLength: 30 })

/** Two classifications are equal when they decide alike on every error given. */
const sameOn = (errors: ReadonlyArray<BedrockError.BedrockError>, a: Policy.Classification, b: Policy.Classification) => {
  for (const e of errors) assert.deepStrictEqual(a(e), b(e), e.reason._tag)
}

const runs = { seed: 31337, numRuns: 500 }

// --- laws ---------------------------------------------------------------------------------------

describe("Policy.override laws", () => {
  it("the error arbitrary reaches every reason tag", () => {
    const seen = new Set(fc.sample(errorArb, { seed: 1, numRuns: 2_000 }).map((e) => e.reason._tag))
    assert.deepStrictEqual([...seen].sort(), [...BedrockError.reasonTags].sort())
  })

  it("property: override affects only its tag, and decides like { ...c(e), ...d } for it", () => {
    fc.assert(
      fc.property(classificationArb, tagArb, partialDecisionArb, errorsArb, (c, tag, d, errors) => {
        const o = Policy.override(tag, d)(c)
        for (const e of errors) {
          if (e.reason._tag === tag) assert.deepStrictEqual(o(e), { ...c(e), ...d })
          else assert.deepStrictEqual(o(e), c(e))
        }
      }),
      runs
    )
  })

  it("property: the overridden tag itself always gets the override (errors of that tag)", () => {
    fc.assert(
      fc.property(classificationArb, reasonArb, partialDecisionArb, fc.string(), (c, reason, d, message) => {
        const e = new BedrockError.BedrockError({ reason, message })
        const o = Policy.override(reason._tag, d)(c)(e)
        for (const [k, v] of Object.entries(d)) assert.strictEqual(o[k as keyof BedrockError.Decision], v, k)
        assert.deepStrictEqual(o, { ...c(e), ...d })
      }),
      runs
    )
  })

  it("property: overrides of different tags commute", () => {
    fc.assert(
      fc.property(
        classificationArb,
        fc.uniqueArray(tagArb, { minLength: 2, maxLength: 2 }),
        partialDecisionArb,
        partialDecisionArb,
        errorsArb,
        (c, [t1, t2], d1, d2, errors) => {
          const a = Policy.override(t1!, d1)(Policy.override(t2!, d2)(c))
          const b = Policy.override(t2!, d2)(Policy.override(t1!, d1)(c))
          sameOn(errors, a, b)
        }
      ),
      runs
    )
  })

  it("property: the same override twice is the same as once; for one tag the later override wins per field", () => {
    fc.assert(
      fc.property(classificationArb, tagArb, partialDecisionArb, partialDecisionArb, errorsArb, (c, tag, d1, d2, errors) => {
        const once = Policy.override(tag, d1)(c)
        sameOn(errors, Policy.override(tag, d1)(once), once)
        const later = Policy.override(tag, d2)(Policy.override(tag, d1)(c))
        sameOn(errors, later, Policy.override(tag, { ...d1, ...d2 })(c))
      }),
      runs
    )
  })

  it("defaultClassification is the taxonomy's table", () => {
    fc.assert(
      fc.property(errorArb, (e) => {
        assert.deepStrictEqual(Policy.defaultClassification(e), BedrockError.decisionOf(e.reason))
      }),
      runs
    )
  })
})

// --- routes ---------------------------------------------------------------------------------------

/** Model inputs over a small pool of ids and two clients, so that routes share models. */
const modelInputArb: fc.Arbitrary<Model.Input> = fc
  .record({
    modelId: fc.constantFrom("a", "b", "c", "d", "e", "f"),
    client: fc.constantFrom(undefined, "west"),
    weight: fc.integer({ min: 0, max: 5 }),
    tier: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    isFallback: fc.boolean()
  })
  .map(({ client, tier, ...m }): Model.Input => ({ ...m, ...(client === undefined ? {} : { client }), ...(tier === undefined ? {} : { tier }) }))

/** Routes built with the module's own constructors: a chain of tiers, or models that say their tier. */
const routeArb: fc.Arbitrary<Route.Route> = fc.oneof(
  fc.array(fc.array(modelInputArb, { maxLength: 4 }), { maxLength: 4 }).map((tiers) =>
    tiers.reduce((r, t) => Route.orElse(r, Route.tier(t)), Route.empty)
  ),
  fc.array(modelInputArb, { maxLength: 8 }).map(Route.fromModels)
)

const targets = (r: Route.Route): Array<Array<string>> => r.tiers.map((t) => t.map((m) => m.target))

describe("Route laws", () => {
  it("property: orElse is associative", () => {
    fc.assert(
      fc.property(routeArb, routeArb, routeArb, (a, b, c) => {
        assert.deepStrictEqual(Route.orElse(Route.orElse(a, b), c), Route.orElse(a, Route.orElse(b, c)))
      }),
      runs
    )
  })

  it("property: Route.empty is the identity of orElse, on both sides", () => {
    fc.assert(
      fc.property(routeArb, (a) => {
        assert.deepStrictEqual(Route.orElse(Route.empty, a), a)
        assert.deepStrictEqual(Route.orElse(a, Route.empty), a)
        // the dual's data-last form: orElse(that)(self)
        assert.deepStrictEqual(Route.orElse(Route.empty)(a), a)
        assert.deepStrictEqual(pipe(Route.empty, Route.orElse(a)), a)
      }),
      runs
    )
    assert.deepStrictEqual(Route.empty.tiers, [])
  })

  it("property: a model appears once in a route, where it first appears; no tier is empty", () => {
    fc.assert(
      fc.property(routeArb, routeArb, (a, b) => {
        const r = Route.orElse(a, b)
        const ts = Route.models(r).map((m) => m.target)
        assert.strictEqual(new Set(ts).size, ts.length, `${ts}`)
        for (const t of r.tiers) assert.isAbove(t.length, 0)
        // a's models where a has them; then b's that a does not have, in b's order and tiers
        const inA = new Set(Route.models(a).map((m) => m.target))
        const expected = [...targets(a), ...targets(b).map((t) => t.filter((x) => !inA.has(x))).filter((t) => t.length > 0)]
        assert.deepStrictEqual(targets(r), expected)
        // the models themselves are kept (not copies)
        for (const m of Route.models(r)) assert.isTrue(Route.models(a).includes(m) || Route.models(b).includes(m))
      }),
      runs
    )
    // within one tier too: the later duplicate is dropped
    assert.deepStrictEqual(targets(Route.tier([{ modelId: "a" }, { modelId: "b" }, { modelId: "a", weight: 9 }])), [["a", "b"]])
    assert.strictEqual(Route.models(Route.tier([{ modelId: "a", weight: 2 }, { modelId: "a", weight: 9 }]))[0]!.weight, 2)
  })

  it("property: fromModels orders tiers ascending and keeps declaration order within each", () => {
    fc.assert(
      fc.property(fc.array(modelInputArb, { maxLength: 10 }), (inputs) => {
        const r = Route.fromModels(inputs)
        const built = inputs.map(Model.make)
        // every tier holds models of one `tier` value, ascending from tier to tier
        const levels = r.tiers.map((t) => {
          assert.strictEqual(new Set(t.map((m) => m.tier)).size, 1)
          return t[0]!.tier
        })
        for (let i = 1; i < levels.length; i++) assert.isAbove(levels[i]!, levels[i - 1]!)
        // a stable sort by tier of the declared models, each target once (its first place in that order)
        const sorted = [...built].sort((x, y) => x.tier - y.tier).map((m) => m.target)
        assert.deepStrictEqual(Route.models(r).map((m) => m.target), sorted.filter((t, i) => sorted.indexOf(t) === i))
      }),
      runs
    )
    assert.deepStrictEqual(
      targets(Route.fromModels([{ modelId: "z", tier: 2 }, { modelId: "b", isFallback: true }, { modelId: "a" }, { modelId: "c", tier: 1 }, { modelId: "d" }])),
      [["a", "d"], ["b", "c"], ["z"]]
    )
  })

  it("filter keeps the tiers of the models it keeps and drops the tiers left empty", () => {
    const r = pipe(Route.tier([{ modelId: "a" }, { modelId: "b" }]), Route.orElse(Route.tier([{ modelId: "c" }])), Route.orElse(Route.tier([{ modelId: "d" }])))
    assert.deepStrictEqual(targets(Route.filter(r, (m) => m.modelId !== "b" && m.modelId !== "c")), [["a"], ["d"]])
    assert.deepStrictEqual(targets(Route.filter(r, () => false)), [])
  })
})

// --- make and with* -----------------------------------------------------------------------------

/** Every field of a policy, as documented. */
const fields = [
  "name",
  "route",
  "routes",
  "selector",
  "guards",
  "tenants",
  "attempts",
  "countEscalations",
  "timeout",
  "deadline",
  "classification",
  "retry",
  "backoff",
  "waitForRecovery",
  "estimateInputTokens",
  "stream",
  "refusal",
  "onStoreError",
  "captureBodies"
] as const
type Field = typeof fields[number]

const someBackoff = Schedule.spaced("1 second") as unknown as Schedule.Schedule<unknown, BedrockError.BedrockError>
const otherClassification: Policy.Classification = () => ({ retrySame: 9, failover: false, breaker: true, largerContextOnly: true })
const classifier: Policy.RefusalClassifier = { name: "never", score: () => Effect.succeed(0) }

/** Random values for every field, all different from the defaults (fresh objects: identity tells them apart). */
const valuesArb: fc.Arbitrary<Policy.Policy> = fc.record({
  name: fc.string({ minLength: 1, maxLength: 8 }).filter((n) => n !== "default"),
  route: routeArb,
  routes: routeArb.map((r) => new Map([["label", r]])),
  selector: fc.constantFrom(Selector.ordered, Selector.latency(), Selector.cheapest()),
  guards: fc.integer({ min: 6, max: 50 }).map((failures) => [Guard.breaker({ failures })]),
  tenants: fc.integer({ min: 1, max: 100 }).map((rpm): Policy.Tenants => ({ limits: new Map([["T", { rpm }]]), default: { tpm: rpm * 10 } })),
  attempts: fc.integer({ min: 5, max: 20 }),
  countEscalations: fc.constant(false),
  timeout: fc.integer({ min: 1, max: 29_999 }).map(Duration.millis),
  deadline: fc.integer({ min: 60_001, max: 600_000 }).map(Duration.millis),
  classification: fc.constant(otherClassification).map((c): Policy.Classification => (e) => c(e)),
  retry: fc.integer({ min: 1, max: 1_000 }).map((n) => Schedule.spaced(Duration.millis(n)) as unknown as Schedule.Schedule<unknown, BedrockError.BedrockError>),
  backoff: fc.constant(someBackoff),
  waitForRecovery: fc.constant(true),
  estimateInputTokens: fc.integer({ min: 1, max: 10_000 }).map((n): Policy.TokenEstimator => () => n),
  stream: fc.integer({ min: 1, max: 9_999 }).map((ms) => Policy.withStreaming({ firstToken: ms })(Policy.defaults).stream),
  refusal: fc.double({ min: 0, max: 1, noNaN: true }).map((threshold): Policy.Refusal => ({ classifier, threshold, holdBack: 0 })),
  onStoreError: fc.constant("fail" as const),
  captureBodies: fc.constant(true)
})

describe("Policy.make and with*", () => {
  it("the defaults have every documented field, and the documented values", () => {
    const d = Policy.defaults
    assert.deepStrictEqual(Object.keys(d).sort(), [...fields].sort())
    assert.strictEqual(d.name, "default")
    assert.strictEqual(d.route, Route.empty)
    assert.strictEqual(d.routes.size, 0)
    assert.strictEqual(d.selector, Selector.weighted)
    assert.strictEqual(d.guards, Policy.defaultGuards)
    assert.deepStrictEqual(d.guards.map((g) => g.name), ["breaker", "cooldown", "quota"])
    assert.deepStrictEqual(d.guards[0]!.settings, Guard.defaultBreaker)
    assert.deepStrictEqual(d.guards[1]!.settings, Guard.defaultCooldown)
    assert.deepStrictEqual([d.tenants.limits.size, d.tenants.default], [0, undefined])
    assert.strictEqual(d.attempts, 4)
    assert.isTrue(d.countEscalations)
    assert.strictEqual(Duration.toMillis(d.timeout), 30_000)
    assert.strictEqual(Duration.toMillis(d.deadline), 60_000)
    assert.strictEqual(d.classification, Policy.defaultClassification)
    assert.strictEqual(d.retry, Policy.defaultRetry)
    assert.isUndefined(d.backoff)
    assert.isFalse(d.waitForRecovery)
    assert.strictEqual(d.estimateInputTokens, Policy.defaultTokenEstimator)
    assert.strictEqual(d.stream, Policy.defaultStreaming)
    assert.isUndefined(d.refusal)
    assert.strictEqual(d.onStoreError, "allow")
    assert.isFalse(d.captureBodies)
  })

  it("property: make(route, p) takes the route, the given fields from p, every other field from defaults", () => {
    fc.assert(
      fc.property(routeArb, valuesArb, fc.subarray([...fields]), (route, values, given) => {
        const input: Partial<Record<Field, unknown>> = {}
        for (const f of given) input[f] = values[f]
        const p = Policy.make(route, input as Partial<Policy.Policy>)
        for (const f of fields) {
          const expected = given.includes(f) ? values[f] : f === "route" ? route : Policy.defaults[f]
          assert.strictEqual(p[f], expected, f)
        }
        assert.deepStrictEqual(Object.keys(p).sort(), [...fields].sort())
      }),
      runs
    )
  })

  it("property: make(models) routes them as Route.fromModels does", () => {
    fc.assert(
      fc.property(fc.array(modelInputArb, { maxLength: 8 }), (inputs) => {
        const p = Policy.make(inputs)
        assert.deepStrictEqual(p.route, Route.fromModels(inputs))
        for (const f of fields) if (f !== "route") assert.strictEqual(p[f], Policy.defaults[f], f)
      }),
      runs
    )
    // built models are kept as they are
    const m = Model.make({ modelId: "a", weight: 3 })
    assert.strictEqual(Route.models(Policy.make([m]).route)[0], m)
  })

  it("property: each with* combinator replaces exactly one field", () => {
    fc.assert(
      fc.property(valuesArb, valuesArb, fc.boolean(), (base, next, replace) => {
        const extra = Guard.make({ name: "extra", view: (ts) => Effect.succeed(ts.map(() => Guard.open)), admit: () => Effect.succeed(Guard.noPermit) })
        // withGuard of a name that is there (replaced in place) or not (added last)
        const guard = replace ? Guard.breaker({ failures: 2 }) : extra
        const hedge = Policy.hedge({ after: "2 seconds", budget: 0.3 })
        const cases: ReadonlyArray<readonly [Field, Policy.Policy, (p: Policy.Policy) => void]> = [
          ["route", Policy.withRoute(next.route)(base), (p) => assert.strictEqual(p.route, next.route)],
          ["routes", Policy.withLabel("other", next.route)(base), (p) => {
            assert.deepStrictEqual([...p.routes.keys()], ["label", "other"])
            assert.strictEqual(p.routes.get("label"), base.routes.get("label"))
            assert.strictEqual(p.routes.get("other"), next.route)
          }],
          ["routes", Policy.withLabel("label", next.route)(base), (p) => {
            assert.deepStrictEqual([...p.routes.keys()], ["label"])
            assert.strictEqual(p.routes.get("label"), next.route)
          }],
          ["selector", Policy.withSelector(next.selector)(base), (p) => assert.strictEqual(p.selector, next.selector)],
          ["guards", Policy.withGuards(next.guards)(base), (p) => assert.strictEqual(p.guards, next.guards)],
          ["guards", Policy.withGuard(guard)(base), (p) =>
            assert.deepStrictEqual(p.guards, replace ? [guard] : [...base.guards, guard])],
          ["guards", Policy.withoutGuard("breaker")(base), (p) => assert.deepStrictEqual(p.guards, [])],
          ["guards", Policy.withBreaker({ failures: 2 })(base), (p) => {
            assert.deepStrictEqual(p.guards.map((g) => g.name), ["breaker"])
            assert.deepStrictEqual(p.guards[0]!.settings, Guard.breakerSettings({ failures: 2 }))
          }],
          ["tenants", Policy.withTenants({ limits: { X: { rpm: 1 } }, default: { tpm: 5 } })(base), (p) =>
            assert.deepStrictEqual(p.tenants, { limits: new Map([["X", { rpm: 1 }]]), default: { tpm: 5 } })],
          ["attempts", Policy.withAttempts(next.attempts)(base), (p) => assert.strictEqual(p.attempts, next.attempts)],
          ["timeout", Policy.withTimeout(next.timeout)(base), (p) => assert.strictEqual(Duration.toMillis(p.timeout), Duration.toMillis(next.timeout))],
          ["deadline", Policy.withDeadline(next.deadline)(base), (p) => assert.strictEqual(Duration.toMillis(p.deadline), Duration.toMillis(next.deadline))],
          ["classification", Policy.mapClassification(() => next.classification)(base), (p) => assert.strictEqual(p.classification, next.classification)],
          ["retry", Policy.withRetry(next.retry)(base), (p) => assert.strictEqual(p.retry, next.retry)],
          ["backoff", Policy.withBackoff(undefined)(base), (p) => assert.isUndefined(p.backoff)],
          ["waitForRecovery", Policy.withWaitForRecovery(false)(base), (p) => assert.isFalse(p.waitForRecovery)],
          ["estimateInputTokens", Policy.withTokenEstimator(next.estimateInputTokens)(base), (p) => assert.strictEqual(p.estimateInputTokens, next.estimateInputTokens)],
          ["refusal", Policy.withRefusal(undefined)(base), (p) => assert.isUndefined(p.refusal)],
          ["refusal", Policy.withRefusal({ classifier })(base), (p) => assert.deepStrictEqual(p.refusal, { classifier, threshold: 0.5, holdBack: 0 })],
          ["stream", Policy.withStreaming({ stall: "5 seconds" })(base), (p) =>
            assert.deepStrictEqual(p.stream, { ...base.stream, stall: Duration.seconds(5) })],
          ["stream", Policy.withHedge(hedge)(base), (p) => assert.deepStrictEqual(p.stream, { ...base.stream, hedge })]
        ]
        for (const [field, p, expected] of cases) {
          expected(p)
          for (const f of fields) if (f !== field) assert.strictEqual(p[f], base[f], `${field} changed ${f}`)
          assert.deepStrictEqual(Object.keys(p).sort(), [...fields].sort())
        }
        // mapClassification applies its function to the classification in place
        const mapped = Policy.mapClassification(Policy.override("AccessDenied", { failover: true }))(base)
        const denied = new BedrockError.BedrockError({ reason: new BedrockError.AccessDenied(), message: "x" })
        assert.isTrue(mapped.classification(denied).failover)
        assert.isFalse(base.classification(denied).failover)
      }),
      runs
    )
  })

  it("withGuard replaces a guard of the same name in place; withoutGuard drops only that name", () => {
    const strict = Guard.breaker({ failures: 1 })
    const p = Policy.withGuard(strict)(Policy.defaults)
    assert.deepStrictEqual(p.guards.map((g) => g.name), ["breaker", "cooldown", "quota"])
    assert.strictEqual(p.guards[0], strict)
    assert.strictEqual(p.guards[1], Policy.defaults.guards[1])
    const q = Policy.withoutGuard("cooldown")(p)
    assert.deepStrictEqual(q.guards, [strict, Policy.defaults.guards[2]])
    assert.strictEqual(Policy.withoutGuard("nothing")(q).guards.length, 2)
  })

  it("withTenants takes a record or a map; withStreaming replaces only what it is given; withHedge(undefined) turns hedging off", () => {
    const limits = new Map([["A", { rpm: 3 }]])
    assert.strictEqual(Policy.withTenants({ limits })(Policy.defaults).tenants.limits, limits)
    assert.deepStrictEqual(Policy.withTenants({})(Policy.defaults).tenants, { limits: new Map(), default: undefined })
    const s = Policy.withStreaming({ firstToken: 1_500, onInterrupt: "restart", hedge: Policy.hedge() })(Policy.defaults).stream
    assert.deepStrictEqual(s, { ...Policy.defaultStreaming, firstToken: Duration.millis(1_500), onInterrupt: "restart", hedge: { after: "p95", budget: 0.1 } })
    const off = Policy.withHedge(undefined)(Policy.withStreaming({ hedge: Policy.hedge() })(Policy.defaults))
    assert.isUndefined(off.stream.hedge)
    // a hedge left out is kept
    const kept = Policy.withStreaming({ stall: 1 })(Policy.withStreaming({ hedge: Policy.hedge({ after: 500 }) })(Policy.defaults))
    assert.deepStrictEqual(kept.stream.hedge, { after: Duration.millis(500), budget: 0.1 })
  })

  it("defaultTokenEstimator: ceil(characters / 4) + 3 per message, system text included, at least 1", () => {
    const text = (t: string) => ({ text: t })
    // the documented example
    assert.strictEqual(Policy.defaultTokenEstimator({ messages: [{ role: "user", content: [text("Hello there")] }] }), 6)
    assert.strictEqual(
      Policy.defaultTokenEstimator({
        system: [text("12345678")],
        messages: [{ role: "user", content: [text("123456789")] }, { role: "assistant", content: [text("1")] }]
      }),
      Math.ceil(18 / 4) + 2 * 3
    )
    assert.strictEqual(Policy.defaultTokenEstimator({ messages: [] }), 1)
  })

  it("property: defaultTokenEstimator is monotone in the text and grows by about a token per 4 characters", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), fc.string({ minLength: 1, maxLength: 400 }), (a, b) => {
        const est = (t: string) => Policy.defaultTokenEstimator({ messages: [{ role: "user", content: [{ text: t }] }] })
        const ab = est(a + b)
        assert.isAtLeast(ab, est(a))
        assert.strictEqual(ab, Math.ceil((a.length + b.length) / 4) + 3)
      }),
      runs
    )
  })

  it("withTimeout / withDeadline accept Duration inputs", () => {
    const p = Policy.withDeadline("2 minutes")(Policy.withTimeout(1500)(Policy.defaults))
    assert.strictEqual(Duration.toMillis(p.timeout), 1500)
    assert.strictEqual(Duration.toMillis(p.deadline), 120_000)
  })

  it("Guard.breakerSettings fills unspecified fields from Guard.defaultBreaker (the documented defaults)", () => {
    const d = Guard.defaultBreaker
    assert.deepStrictEqual(
      [d.failures, Duration.toMillis(d.window), Duration.toMillis(d.probeInterval), Duration.toMillis(d.probeIntervalMax), d.halfOpen, Duration.toMillis(d.rampUp)],
      [5, 60_000, 5_000, 300_000, 1, 30_000]
    )
    const b = Guard.breakerSettings({ failures: 3, probeInterval: "10 seconds" })
    assert.strictEqual(b.failures, 3)
    assert.strictEqual(Duration.toMillis(b.probeInterval), 10_000)
    assert.strictEqual(b.window, Guard.defaultBreaker.window)
    assert.strictEqual(b.probeIntervalMax, Guard.defaultBreaker.probeIntervalMax)
    assert.strictEqual(b.halfOpen, Guard.defaultBreaker.halfOpen)
    assert.strictEqual(b.rampUp, Guard.defaultBreaker.rampUp)
    // the guard carries its settings (validate-config prints them); full settings are taken as they are
    assert.deepStrictEqual(Guard.breaker({ failures: 3, probeInterval: "10 seconds" }).settings, b)
    assert.strictEqual(Guard.breaker(b).settings, b)
  })

  it("Guard.cooldownSettings fills unspecified fields from Guard.defaultCooldown (the documented defaults)", () => {
    const d = Guard.defaultCooldown
    assert.deepStrictEqual([d.base, d.requests, d.tokens, d.daily, d.unknown].map(Duration.toMillis), [500, 10_000, 30_000, 3_600_000, 10_000])
    const c = Guard.cooldownSettings({ base: "1 second", tokens: "1 minute" })
    assert.deepStrictEqual([c.base, c.requests, c.tokens, c.daily, c.unknown].map(Duration.toMillis), [1_000, 10_000, 60_000, 3_600_000, 10_000])
    assert.deepStrictEqual(Guard.cooldown({ base: "1 second", tokens: "1 minute" }).settings, c)
    assert.strictEqual(Guard.cooldown(c).settings, c)
  })

  it.effect("defaultRetry: 100 ms doubling, each delay within ±20 %, and never shorter than a throttle's retry-after", () =>
    Effect.gen(function*() {
      const delays = (error: BedrockError.BedrockError) =>
        Effect.gen(function*() {
          const step = yield* Schedule.toStep(Policy.defaultRetry)
          const out: Array<number> = []
          let now = 0
          for (let i = 0; i < 5; i++) {
            const r = yield* Effect.result(step(now, error))
            if (r._tag === "Failure") break
            const d = Duration.toMillis(r.success[1])
            out.push(d)
            now += d
          }
          return out
        })
      const unavailable = new BedrockError.BedrockError({ reason: new BedrockError.ServiceUnavailable(), message: "x" })
      const plain = yield* delays(unavailable)
      assert.strictEqual(plain.length, 5)
      plain.forEach((d, i) => {
        assert.isAtLeast(d, 100 * 2 ** i * 0.8 - 1e-9)
        assert.isAtMost(d, 100 * 2 ** i * 1.2 + 1e-9)
      })
      const throttled = new BedrockError.BedrockError({
        reason: new BedrockError.Throttled({ kind: "requests", retryAfter: Duration.seconds(1) }),
        message: "x"
      })
      const waited = yield* delays(throttled)
      assert.strictEqual(waited.length, 5)
      // 100, 200, 400 (±20 %) are raised to the 1 s retry-after; 800 ±20 % may exceed it, 1600 ±20 % does
      for (const d of waited) assert.isAtLeast(d, 1_000)
      assert.isAtLeast(waited[4]!, 1_600 * 0.8 - 1e-9)
    }).pipe(Random.withSeed("retry")))

  it.effect("exponentialBackoff: at most `times` retries, each delay jittered within [0.8, 1.2] x min(base x 2^n, max)", () =>
    Effect.gen(function*() {
      const schedule = Policy.exponentialBackoff({ base: "100 millis", max: "300 millis", times: 3 })
      const step = yield* Schedule.toStep(schedule)
      const err = new BedrockError.BedrockError({ reason: new BedrockError.ServiceUnavailable(), message: "x" })
      const delays: Array<number> = []
      let now = 0
      for (let i = 0; i < 10; i++) {
        const r = yield* Effect.result(step(now, err))
        if (r._tag === "Failure") break
        const d = Duration.toMillis(r.success[1])
        delays.push(d)
        now += d
      }
      assert.strictEqual(delays.length, 3)
      const nominal = [100, 200, 300]
      delays.forEach((d, i) => {
        assert.isAtLeast(d, nominal[i]! * 0.8 - 1e-9)
        assert.isAtMost(d, nominal[i]! * 1.2 + 1e-9)
      })
    }))

  it.effect("defaultRetry is exponentialRetry({ base: 100 ms }): the same delays as its definition before, under every seed", () =>
    Effect.gen(function*() {
      // what defaultRetry was defined as before exponentialRetry (and what examples/compose-policy.ts wrote with 200 ms)
      const before = (base: Duration.Input) => Policy.honourRetryAfter(Schedule.exponential(base).pipe(Schedule.jittered))
      const inputs = [unavailable, unavailable, throttled(1_000), unavailable, throttled(5_000), unavailable, unavailable, unavailable]
      for (const seed of ["retry", "a", "b", "c"]) {
        const old = yield* delaysOf(before("100 millis"), inputs, seed)
        assert.strictEqual(old.length, inputs.length)
        assert.deepStrictEqual(yield* delaysOf(Policy.defaultRetry, inputs, seed), old, seed)
        assert.deepStrictEqual(yield* delaysOf(Policy.exponentialRetry({ base: "100 millis" }), inputs, seed), old, seed)
        assert.deepStrictEqual(
          yield* delaysOf(Policy.exponentialRetry({ base: "200 millis" }), inputs, seed),
          yield* delaysOf(before("200 millis"), inputs, seed),
          seed
        )
      }
    }))

  it.effect("exponentialRetry: never stops by itself; each delay within [0.8, 1.2] x min(base x 2^n, max), and at least a throttle's retry-after", () =>
    Effect.gen(function*() {
      const schedule = Policy.exponentialRetry({ base: "100 millis", max: "300 millis" })
      const plain = yield* delaysOf(schedule, Array.from({ length: 10 }, () => unavailable))
      assert.strictEqual(plain.length, 10)
      plain.forEach((d, i) => {
        const nominal = Math.min(100 * 2 ** i, 300)
        assert.isAtLeast(d as number, nominal * 0.8 - 1e-9)
        assert.isAtMost(d as number, nominal * 1.2 + 1e-9)
      })
      // a retry-after longer than max still wins
      const waited = yield* delaysOf(schedule, Array.from({ length: 5 }, () => throttled(1_000)))
      assert.deepStrictEqual(waited, [1_000, 1_000, 1_000, 1_000, 1_000])
      // without max: uncapped
      const uncapped = yield* delaysOf(Policy.exponentialRetry({ base: 100 }), Array.from({ length: 8 }, () => unavailable))
      assert.isAtLeast(uncapped[7] as number, 12_800 * 0.8 - 1e-9)
    }))
})

// --- check ----------------------------------------------------------------------------------------

describe("Policy.check", () => {
  const valid = Policy.make([{ modelId: "a", weight: 2 }, { modelId: "b", isFallback: true }])

  /** Each problem the doc lists (and the two it does not), made on its own, with the paths it must report. */
  const breakages: ReadonlyArray<readonly [string, (p: Policy.Policy) => Policy.Policy, ReadonlyArray<string>, RegExp]> = [
    ["empty route", Policy.withRoute(Route.empty), ["route"], /no primary model: the route's first tier needs a model with weight > 0/],
    [
      "first tier of weight 0",
      Policy.withRoute(pipe(Route.tier([{ modelId: "z", weight: 0 }]), Route.orElse(Route.tier([{ modelId: "y" }])))),
      ["route"],
      /no primary model/
    ],
    ["attempts 0", Policy.withAttempts(0), ["attempts"], /^attempts 0; allowed: an integer >= 1$/],
    ["attempts 2.5", Policy.withAttempts(2.5), ["attempts"], /^attempts 2.5; allowed: an integer >= 1$/],
    // a zero deadline also leaves every timeout longer than it
    ["deadline 0", Policy.withDeadline(0), ["deadline", "timeout"], /^deadline must be positive; allowed: 0 < deadline$/],
    ["timeout 0", Policy.withTimeout(0), ["timeout"], /^attempt timeout 0 ms; allowed: 0 < timeout <= deadline/],
    ["hedge budget 1.5", Policy.withHedge(Policy.hedge({ budget: 1.5 })), ["stream.hedge.budget"], /^budget 1.5; allowed: 0..1$/],
    ["hedge budget -0.1", Policy.withHedge(Policy.hedge({ budget: -0.1 })), ["stream.hedge.budget"], /^budget -0.1; allowed: 0..1$/],
    ["two breakers", (p) => Policy.withGuards([...p.guards, Guard.breaker({ failures: 2 })])(p), ["guards.breaker"], /two guards named "breaker"; each name once/],
    ["an empty label", Policy.withLabel("nothing", Route.empty), ["routes.nothing"], /a route without models/]
  ]

  it("a valid policy has no problems; the documented example has exactly the route problem", () => {
    assert.deepStrictEqual(Policy.check(valid), [])
    assert.deepStrictEqual(Policy.check(Policy.make([])).map((p) => p.path), ["route"])
    // a timeout equal to the deadline is allowed; a hedge budget of 0 or 1 too
    assert.deepStrictEqual(Policy.check(Policy.withTimeout("60 seconds")(valid)), [])
    assert.deepStrictEqual(Policy.check(Policy.withHedge(Policy.hedge({ budget: 0 }))(valid)), [])
    assert.deepStrictEqual(Policy.check(Policy.withHedge(Policy.hedge({ budget: 1 }))(valid)), [])
  })

  it("each problem on its own: its path and a message with the allowed range", () => {
    for (const [what, breakIt, paths, message] of breakages) {
      const problems = Policy.check(breakIt(valid))
      assert.deepStrictEqual(problems.map((p) => p.path), [...paths], what)
      assert.match(problems.find((p) => p.path === paths[0])!.message, message, what)
    }
    // a timeout longer than the deadline names both
    const long = Policy.check(Policy.withTimeout("61 seconds")(valid))
    assert.deepStrictEqual(long, [{ path: "timeout", message: "attempt timeout 61000 ms; allowed: 0 < timeout <= deadline (60000 ms)" }])
  })

  it("property: every problem of a policy is reported, each once, whatever else is wrong", () => {
    fc.assert(
      fc.property(fc.subarray([...breakages.keys()]), (chosen) => {
        const p = chosen.reduce((acc, i) => breakages[i]![1](acc), valid)
        const expected = new Set(chosen.flatMap((i) => breakages[i]![2]))
        const paths = Policy.check(p).map((x) => x.path)
        assert.strictEqual(new Set(paths).size, paths.length, `${paths}`)
        assert.deepStrictEqual([...paths].sort(), [...expected].sort())
      }),
      runs
    )
  })
})
