import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import * as fc from "fast-check"
import * as BedrockError from "../src/BedrockError.ts"
import * as Policy from "../src/Policy.ts"

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

// --- make and with* -----------------------------------------------------------------------------

const fields = [
  "attempts",
  "timeout",
  "deadline",
  "breaker",
  "selection",
  "classification",
  "backoff",
  "waitForRecovery",
  "estimateInputTokens",
  "stream"
] as const
type Field = typeof fields[number]

const someBackoff = Schedule.spaced("1 second") as unknown as Schedule.Schedule<unknown, BedrockError.BedrockError>
const otherClassification: Policy.Classification = () => ({ retrySame: 9, failover: false, breaker: true, largerContextOnly: true })

/** Random values for every field, all different from the defaults. */
const valuesArb: fc.Arbitrary<Policy.Policy> = fc.record({
  attempts: fc.integer({ min: 5, max: 20 }),
  timeout: fc.integer({ min: 1, max: 29_999 }).map(Duration.millis),
  deadline: fc.integer({ min: 60_001, max: 600_000 }).map(Duration.millis),
  breaker: fc.integer({ min: 6, max: 50 }).map((failures) => Policy.breaker({ failures })),
  selection: fc.constant(Policy.ordered),
  classification: fc.constant(otherClassification),
  backoff: fc.constant(someBackoff),
  waitForRecovery: fc.constant(true),
  // a fresh estimator per value (never the default): identity tells them apart
  estimateInputTokens: fc.integer({ min: 1, max: 10_000 }).map((n): Policy.TokenEstimator => () => n),
  stream: fc.integer({ min: 1, max: 9_999 }).map((ms) => Policy.withStreaming({ firstToken: ms })(Policy.defaults).stream)
})

describe("Policy.make and with*", () => {
  it("property: make(p) takes the given fields from p and every other field from defaults", () => {
    fc.assert(
      fc.property(valuesArb, fc.subarray([...fields]), (values, given) => {
        const input: Partial<Record<Field, unknown>> = {}
        for (const f of given) input[f] = values[f]
        const p = Policy.make(input as Partial<Policy.Policy>)
        for (const f of fields) {
          assert.strictEqual(p[f], given.includes(f) ? values[f] : Policy.defaults[f], f)
        }
        assert.deepStrictEqual(Object.keys(p).sort(), [...fields].sort())
      }),
      runs
    )
  })

  it("make() is the defaults, and the defaults are the documented ones", () => {
    const p = Policy.make()
    for (const f of fields) assert.strictEqual(p[f], Policy.defaults[f])
    assert.strictEqual(p.attempts, 4)
    assert.strictEqual(Duration.toMillis(p.timeout), 30_000)
    assert.strictEqual(Duration.toMillis(p.deadline), 60_000)
    assert.strictEqual(p.selection, Policy.weighted)
    assert.isUndefined(p.backoff)
    assert.isFalse(p.waitForRecovery)
    assert.strictEqual(p.estimateInputTokens, Policy.defaultTokenEstimator)
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

  it("property: each with* combinator replaces exactly one field", () => {
    fc.assert(
      fc.property(valuesArb, valuesArb, (base0, next) => {
        const base = Policy.make(base0)
        const cases: ReadonlyArray<readonly [Field, Policy.Policy, unknown]> = [
          ["attempts", Policy.withAttempts(next.attempts)(base), next.attempts],
          ["timeout", Policy.withTimeout(next.timeout)(base), next.timeout],
          ["deadline", Policy.withDeadline(next.deadline)(base), next.deadline],
          ["selection", Policy.withSelection(Policy.weighted)(base), Policy.weighted],
          ["breaker", Policy.withBreaker(next.breaker)(base), next.breaker],
          ["backoff", Policy.withBackoff(undefined)(base), undefined],
          ["estimateInputTokens", Policy.withTokenEstimator(next.estimateInputTokens)(base), next.estimateInputTokens]
        ]
        for (const [field, p, expected] of cases) {
          for (const f of fields) {
            if (f === field) {
              if (Duration.isDuration(expected)) assert.strictEqual(Duration.toMillis(p[f] as Duration.Duration), Duration.toMillis(expected))
              else assert.strictEqual(p[f], expected, f)
            } else assert.strictEqual(p[f], base[f], `${field} changed ${f}`)
          }
        }
        // mapClassification changes only the classification
        const mapped = Policy.mapClassification(Policy.override("AccessDenied", { failover: true }))(base)
        for (const f of fields) if (f !== "classification") assert.strictEqual(mapped[f], base[f], f)
        assert.notStrictEqual(mapped.classification, base.classification)
      }),
      runs
    )
  })

  it("withTimeout / withDeadline accept Duration inputs", () => {
    const p = Policy.withDeadline("2 minutes")(Policy.withTimeout(1500)(Policy.defaults))
    assert.strictEqual(Duration.toMillis(p.timeout), 1500)
    assert.strictEqual(Duration.toMillis(p.deadline), 120_000)
  })

  it("Policy.breaker fills unspecified fields from defaultBreaker", () => {
    const b = Policy.breaker({ failures: 3, cooldown: "10 seconds" })
    assert.strictEqual(b.failures, 3)
    assert.strictEqual(Duration.toMillis(b.cooldown), 10_000)
    assert.strictEqual(b.window, Policy.defaultBreaker.window)
    assert.strictEqual(b.cooldownMax, Policy.defaultBreaker.cooldownMax)
    assert.strictEqual(b.halfOpen, Policy.defaultBreaker.halfOpen)
    assert.strictEqual(b.rampUp, Policy.defaultBreaker.rampUp)
  })

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
})
