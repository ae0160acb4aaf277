/**
 * `BedrockError` and `MuxError` as Schemas: every reason and both errors
 * survive encode → JSON → decode as the same classes with the same fields;
 * an unknown reason fails to decode with a typed `SchemaError`; effect's
 * reason helpers (`Effect.catchReason`) work on the errors the library raises.
 */
import { ThrottlingException } from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Schema } from "effect"
import * as fc from "fast-check"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux } from "../src/BedrockMux.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import * as MuxError from "../src/MuxError.ts"
import type { AttemptRecord } from "../src/Routing.ts"
import { muxError, runFor } from "./support/mux.ts"

// --- arbitraries (written from the TypeScript types, not derived from the schemas under test) ---

/** Numbers as the library may hold them; `finite`: what plain `JSON.stringify` keeps (no NaN, ±Infinity, -0). */
const numberArb = (finite: boolean) =>
  (finite ? fc.double({ noNaN: true, noDefaultInfinity: true }) : fc.double()).map((n) => (Object.is(n, -0) ? 0 : n))
/** Durations as the library makes them: whole or fractional milliseconds, or infinite when `finite` is false. */
const durationArb = (finite: boolean) =>
  fc.oneof(
    fc.nat({ max: 1e9 }).map(Duration.millis),
    fc.integer({ min: 0, max: 1e6 }).map((n) => Duration.millis(n / 8)),
    ...(finite ? [] : [fc.constant(Duration.infinity)])
  )
/** An optional key: absent or present, never present as `undefined`. */
const opt = <K extends string, A>(key: K, arb: fc.Arbitrary<A>): fc.Arbitrary<{ readonly [P in K]?: A }> =>
  fc.option(arb, { nil: undefined }).map((a) => (a === undefined ? {} : { [key]: a }) as { readonly [P in K]?: A })

/** One arbitrary per reason tag; the Record type makes the list complete. */
const bedrockReasonArbs = (finite: boolean): { readonly [T in BedrockError.ReasonTag]: fc.Arbitrary<BedrockError.Reason> } => {
  const n = numberArb(finite)
  const d = durationArb(finite)
  return {
    Throttled: fc.record({ kind: fc.constantFrom("requests", "tokens", "daily", "unknown") as fc.Arbitrary<BedrockError.ThrottleKind> })
      .chain((r) => opt("retryAfter", d).map((o) => new BedrockError.Throttled({ ...r, ...o }))),
    ServiceUnavailable: fc.constant(new BedrockError.ServiceUnavailable()),
    InternalServer: fc.constant(new BedrockError.InternalServer()),
    ModelNotReady: fc.constant(new BedrockError.ModelNotReady()),
    ModelTimeout: fc.constant(new BedrockError.ModelTimeout()),
    ModelError: opt("originalStatusCode", n).map((o) => new BedrockError.ModelError(o)),
    ModelStreamError: opt("originalStatusCode", n).map((o) => new BedrockError.ModelStreamError(o)),
    Validation: fc.constantFrom("context-window" as const, "other" as const).map((kind) => new BedrockError.Validation({ kind })),
    AccessDenied: fc.constant(new BedrockError.AccessDenied()),
    ResourceNotFound: fc.constant(new BedrockError.ResourceNotFound()),
    ServiceQuotaExceeded: fc.constant(new BedrockError.ServiceQuotaExceeded()),
    Network: fc.tuple(fc.constantFrom("before-response" as const, "after-response" as const), opt("code", fc.string()))
      .map(([phase, o]) => new BedrockError.Network({ phase, ...o })),
    DeadlineExceeded: fc.tuple(fc.constantFrom("attempt" as const, "request" as const, "first-token" as const, "stall" as const), d)
      .map(([scope, after]) => new BedrockError.DeadlineExceeded({ scope, after })),
    Incomplete: fc.constantFrom("missing-output" as const, "no-message-stop" as const, "malformed-frame" as const, "malformed-body" as const)
      .map((detail) => new BedrockError.Incomplete({ detail })),
    Refused: fc.tuple(n, fc.string()).map(([score, classifier]) => new BedrockError.Refused({ score, classifier })),
    Local: fc.constantFrom("credentials" as const, "region" as const, "endpoint" as const, "serialization" as const, "other" as const)
      .map((kind) => new BedrockError.Local({ kind })),
    Unknown: opt("name", fc.string()).map((o) => new BedrockError.Unknown(o))
  }
}
const bedrockReasonArb = (finite: boolean) => fc.oneof(...Object.values(bedrockReasonArbs(finite)))

/** An SDK-like cause: an Error with its own name and message (what `fromSdkError` keeps), or a plain string. */
const causeArb = fc.oneof(
  fc.tuple(fc.constantFrom("ThrottlingException", "TimeoutError", "Error"), fc.string()).map(([name, message]) => {
    const e = new Error(message)
    e.name = name
    return e
  }),
  fc.string()
)

const bedrockErrorArb = (finite: boolean) =>
  fc.tuple(
    bedrockReasonArb(finite),
    fc.string(),
    opt("modelId", fc.string()),
    opt("requestId", fc.string()),
    opt("httpStatusCode", numberArb(finite)),
    opt("cause", causeArb)
  ).map(([reason, message, a, b, c, e]) => new BedrockError.BedrockError({ reason, message, ...a, ...b, ...c, ...e }))

const decisions = ["retry-same", "escalate", "failover", "fail-fast", "stop", "hedge-lost"] as const
const attemptArb = (finite: boolean): fc.Arbitrary<AttemptRecord> =>
  fc.tuple(
    fc.record({ modelId: fc.string(), target: fc.string(), outcome: fc.constantFrom("success" as const, "failure" as const, "interrupted" as const), durationMs: numberArb(finite) }),
    opt("reason", fc.constantFrom(...BedrockError.reasonTags)),
    opt("decision", fc.constantFrom(...decisions)),
    opt("serviceTier", fc.constantFrom("priority" as const, "reserved" as const)),
    opt("httpStatusCode", numberArb(finite)),
    opt("message", fc.string())
  ).map(([base, ...rest]) => Object.assign({}, base, ...rest) as AttemptRecord)

const availabilityArb = (finite: boolean): fc.Arbitrary<MuxError.ModelAvailability> =>
  fc.tuple(
    fc.record({ modelId: fc.string(), target: fc.string(), breaker: fc.constantFrom("closed" as const, "open" as const, "half-open" as const), excluded: fc.string() }),
    opt("recoversAt", numberArb(finite)),
    opt("lastFailure", fc.record({ reason: fc.string(), message: fc.string(), at: numberArb(finite) }))
  ).map(([base, a, b]) => ({ ...base, ...a, ...b }))

const muxReasonArbs = (finite: boolean): { readonly [T in MuxError.Reason["_tag"]]: fc.Arbitrary<MuxError.Reason> } => {
  const n = numberArb(finite)
  return {
    Failed: bedrockErrorArb(finite).map((error) => new MuxError.Failed({ error })),
    AttemptsExhausted: n.map((attempts) => new MuxError.AttemptsExhausted({ attempts })),
    NoModelsAvailable: fc.tuple(fc.array(availabilityArb(finite), { maxLength: 4 }), opt("earliestRecovery", n), opt("retryAfterMs", n))
      .map(([models, a, b]) => new MuxError.NoModelsAvailable({ models, ...a, ...b })),
    DeadlineExceeded: fc.tuple(n, fc.constantFrom("request" as const, "attempt" as const), n)
      .map(([deadlineMs, scope, afterMs]) => new MuxError.DeadlineExceeded({ deadlineMs, scope, afterMs })),
    InvalidRequest: fc.array(fc.string(), { maxLength: 4 }).map((problems) => new MuxError.InvalidRequest({ problems })),
    QuotaExceeded: fc.tuple(fc.string(), fc.constantFrom("requests" as const, "tokens" as const), finite ? n : fc.oneof(n, fc.constant(Infinity)))
      .map(([tenant, kind, retryAfterMs]) => new MuxError.QuotaExceeded({ tenant, kind, retryAfterMs })),
    StoreUnavailable: fc.string().map((message) => new MuxError.StoreUnavailable({ message })),
    StreamInterrupted: fc.tuple(
      fc.string(),
      fc.string(),
      bedrockErrorArb(finite),
      fc.record({ inputTokens: n, outputTokens: n, totalTokens: n, estimated: fc.boolean() }),
      n
    ).map(([modelId, target, error, partial, delivered]) => new MuxError.StreamInterrupted({ modelId, target, error, partial, delivered }))
  }
}

const muxErrorArb = (finite: boolean) =>
  fc.tuple(
    fc.oneof(...Object.values(muxReasonArbs(finite))),
    fc.string(),
    fc.array(attemptArb(finite), { maxLength: 5 }),
    opt("last", bedrockErrorArb(finite)),
    opt("requestId", fc.string())
  ).map(([reason, message, attempts, a, b]) => new MuxError.MuxError({ reason, message, attempts, ...a, ...b }))

// --- helpers ------------------------------------------------------------------------------------

/** encode → JSON text → decode with `codec`. */
const throughJson = <T, E>(codec: Schema.Codec<T, E>, value: T) => {
  const encoded = Schema.encodeSync(codec)(value)
  const text = JSON.stringify(encoded)
  return { encoded, text, decoded: Schema.decodeUnknownSync(codec)(JSON.parse(text)) }
}

const BedrockErrorJson = Schema.toCodecJson(BedrockError.BedrockError)
const MuxErrorJson = Schema.toCodecJson(MuxError.MuxError)

/**
 * A BedrockError's fields; `cause` by its name and message (all its encoded
 * form keeps). Absent keys stay absent, so `deepStrictEqual` sees a key that
 * appeared or vanished.
 */
const bedrockView = (e: BedrockError.BedrockError): object => {
  const { reason, message, cause, ...rest } = { ...e, message: e.message, cause: e.cause }
  return {
    reason,
    message,
    ...rest,
    ...(cause === undefined ? {} : { cause: cause instanceof Error ? { name: cause.name, message: cause.message } : cause })
  }
}

const muxView = (e: MuxError.MuxError): object => {
  const { reason, message, last, ...rest } = { ...e, message: e.message }
  return {
    reason: reason._tag === "Failed"
      ? { _tag: "Failed", error: bedrockView(reason.error) }
      : reason._tag === "StreamInterrupted"
      ? { ...reason, error: bedrockView(reason.error) }
      : reason,
    message,
    ...rest,
    ...(last === undefined ? {} : { last: bedrockView(last) })
  }
}

const runs = { numRuns: 300, seed: 11 }

/**
 * Property: every value of `arb` comes back from encode → JSON text → decode
 * with the same classes (`classes`) and the same `view`, and its encoded form
 * is a fixed point (encoding the decoded value gives it again). Returns the
 * `_tag`s of the reasons it saw.
 */
const survivesJson = <T extends { readonly reason?: { readonly _tag: string }; readonly _tag: string }, E>(
  codec: Schema.Codec<T, E>,
  arb: fc.Arbitrary<T>,
  view: (t: T) => unknown,
  classes: (t: T) => ReadonlyArray<unknown>
): ReadonlySet<string> => {
  const seen = new Set<string>()
  fc.assert(
    fc.property(arb, (value) => {
      seen.add(value.reason?._tag ?? value._tag)
      const { decoded, encoded } = throughJson(codec, value)
      assert.deepStrictEqual(classes(decoded), classes(value))
      assert.deepStrictEqual(view(decoded), view(value))
      assert.deepStrictEqual(Schema.encodeSync(codec)(decoded), encoded)
    }),
    runs
  )
  return seen
}
/** A reason as it is, with its own keys listed (an absent key that appeared would show). */
const reasonView = (r: object) => ({ keys: Object.keys(r).sort(), r })
const reasonClass = (r: object) => [r.constructor]
const errorClasses = (e: { readonly reason: object; readonly last?: object | undefined }) => [e.constructor, e.reason.constructor, e.last?.constructor]

// --- BedrockError --------------------------------------------------------------------------------

describe("BedrockError reasons as Schema classes", () => {
  it("property: every reason survives encode → JSON → decode as the same class with the same fields (absent keys stay absent)", () => {
    const seen = survivesJson(BedrockError.Reason, bedrockReasonArb(true), reasonView, reasonClass)
    assert.deepStrictEqual([...seen].sort(), [...BedrockError.reasonTags].sort())
  })

  it("property: through Schema.toCodecJson, NaN, ±Infinity and infinite durations survive JSON too", () => {
    survivesJson(Schema.toCodecJson(BedrockError.Reason), bedrockReasonArb(false), reasonView, reasonClass)
  })

  it("the encoded form is plain data: durations in milliseconds, an absent option is an absent key", () => {
    assert.deepStrictEqual(
      Schema.encodeSync(BedrockError.Reason)(new BedrockError.Throttled({ kind: "tokens", retryAfter: Duration.seconds(2) })),
      { _tag: "Throttled", kind: "tokens", retryAfter: 2000 }
    )
    assert.deepStrictEqual(Schema.encodeSync(BedrockError.Reason)(new BedrockError.Throttled({ kind: "requests" })), { _tag: "Throttled", kind: "requests" })
    assert.deepStrictEqual(
      Schema.encodeSync(BedrockError.Reason)(new BedrockError.DeadlineExceeded({ scope: "stall", after: Duration.millis(750) })),
      { _tag: "DeadlineExceeded", scope: "stall", after: 750 }
    )
    assert.deepStrictEqual(Object.keys(new BedrockError.Unknown()), ["_tag"])
  })

  it("an option given as undefined is taken, as a Data class took it (callers without exactOptionalPropertyTypes), and left out of the JSON", () => {
    const r = new BedrockError.Throttled({ kind: "requests", retryAfter: undefined })
    assert.isUndefined(r.retryAfter)
    const e = new BedrockError.BedrockError({ reason: r, message: "m", modelId: undefined, cause: undefined })
    const { text, decoded } = throughJson(BedrockError.BedrockError, e)
    assert.strictEqual(text, `{"_tag":"BedrockError","reason":{"_tag":"Throttled","kind":"requests"},"message":"m"}`)
    assert.isFalse("retryAfter" in decoded.reason)
    assert.isFalse("modelId" in decoded)
  })

  it("decoding an unknown reason tag, or a known one with a bad field, fails with a typed SchemaError", () =>
    Effect.runPromise(Effect.gen(function*() {
      const unknownTag = yield* Effect.flip(Schema.decodeUnknownEffect(BedrockError.Reason)({ _tag: "Overheated" }))
      assert.strictEqual(unknownTag._tag, "SchemaError")
      const badKind = yield* Effect.flip(Schema.decodeUnknownEffect(BedrockError.Reason)({ _tag: "Throttled", kind: "weekly" }))
      assert.strictEqual(badKind._tag, "SchemaError")
      assert.include(badKind.message, `["kind"]`)
      const inError = yield* Effect.flip(
        Schema.decodeUnknownEffect(BedrockError.BedrockError)({ _tag: "BedrockError", reason: { _tag: "Overheated" }, message: "m" })
      )
      assert.strictEqual(inError._tag, "SchemaError")
      assert.include(inError.message, `["reason"]`)
    })))

  it("Reason's tagged-union helpers: guards and isAnyOf", () => {
    const r: BedrockError.Reason = new BedrockError.ModelNotReady()
    assert.isTrue(BedrockError.Reason.guards.ModelNotReady(r))
    assert.isFalse(BedrockError.Reason.guards.Throttled(r))
    assert.isTrue(BedrockError.Reason.isAnyOf(["Throttled", "ModelNotReady"])(r))
  })
})

describe("BedrockError as a Schema error", () => {
  it("property: a BedrockError survives encode → JSON.stringify → JSON.parse → decode; its encoded form is a fixed point", () => {
    survivesJson(BedrockError.BedrockError, bedrockErrorArb(true), (e) => [bedrockView(e), e.decision], errorClasses)
  })

  it("property: through Schema.toCodecJson any number survives JSON", () => {
    survivesJson(BedrockErrorJson, bedrockErrorArb(false), bedrockView, errorClasses)
  })

  it("fromSdkError's error: the SDK cause is encoded as { name, message } and decoded as an Error with them; requestId and status are kept", () => {
    const sdk = new ThrottlingException({ message: "Too many tokens, please wait before trying again.", $metadata: { httpStatusCode: 429, requestId: "req-7" } })
    const error = BedrockError.fromSdkError(sdk, "amazon.nova-lite-v1:0")
    assert.strictEqual(error.cause, sdk)
    const { encoded, decoded } = throughJson(BedrockError.BedrockError, error)
    assert.deepStrictEqual(encoded, {
      _tag: "BedrockError",
      reason: { _tag: "Throttled", kind: "tokens" },
      message: "ThrottlingException: Too many tokens, please wait before trying again.",
      modelId: "amazon.nova-lite-v1:0",
      requestId: "req-7",
      httpStatusCode: 429,
      cause: { name: "ThrottlingException", message: "Too many tokens, please wait before trying again." }
    })
    assert.instanceOf(decoded.cause, Error)
    assert.notInstanceOf(decoded.cause, ThrottlingException)
    assert.strictEqual((decoded.cause as Error).name, "ThrottlingException")
    assert.deepStrictEqual(decoded.reason, error.reason)
  })

  it("property: the error of fromSdkError(anything) always encodes to JSON and decodes back (never throws)", () =>
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withNullPrototype: true, withMap: true, withSet: true, withDate: true }), (u) => {
        const error = BedrockError.fromSdkError(u, "m")
        const { decoded } = throughJson(BedrockErrorJson, error)
        assert.instanceOf(decoded, BedrockError.BedrockError)
        assert.deepStrictEqual(decoded.reason, error.reason)
        assert.strictEqual(decoded.message, error.message)
      }),
      runs
    ))

  it("stays what it was: new, _tag, name, message, yieldable, make and deadline", () =>
    Effect.runPromise(Effect.gen(function*() {
      const e = new BedrockError.BedrockError({ reason: new BedrockError.AccessDenied(), message: "no access", modelId: "m" })
      assert.strictEqual(e._tag, "BedrockError")
      assert.strictEqual(e.name, "BedrockError")
      assert.strictEqual(e.message, "no access")
      assert.isFalse("requestId" in e)
      assert.isTrue(BedrockError.isBedrockError(e))
      const failed = yield* Effect.flip(Effect.gen(function*() {
        return yield* e
      }))
      assert.strictEqual(failed, e)
      const d = BedrockError.deadline("attempt", Duration.seconds(30), "m")
      assert.instanceOf(d.reason, BedrockError.DeadlineExceeded)
      assert.deepStrictEqual(throughJson(BedrockError.BedrockError, d).decoded.reason, d.reason)
      assert.isFalse("modelId" in BedrockError.make(new BedrockError.InternalServer(), "x"))
    })))
})

// --- MuxError ------------------------------------------------------------------------------------

describe("MuxError as a Schema error", () => {
  it("property: every MuxError reason survives encode → JSON → decode as the same class, nested BedrockErrors too", () => {
    const nested = (r: MuxError.Reason) => [r.constructor, r._tag === "Failed" || r._tag === "StreamInterrupted" ? r.error.constructor : undefined]
    const view = (r: MuxError.Reason) => ({ keys: Object.keys(r).sort(), r: muxView(new MuxError.MuxError({ reason: r, message: "", attempts: [] })) })
    const seen = survivesJson(MuxError.Reason, fc.oneof(...Object.values(muxReasonArbs(true))), view, nested)
    assert.deepStrictEqual([...seen].sort(), ["AttemptsExhausted", "DeadlineExceeded", "Failed", "InvalidRequest", "NoModelsAvailable", "QuotaExceeded", "StoreUnavailable", "StreamInterrupted"])
  })

  it("property: a full MuxError (attempts, last, nested BedrockErrors) survives encode → JSON → decode; its encoded form is a fixed point", () => {
    survivesJson(MuxError.MuxError, muxErrorArb(true), muxView, errorClasses)
  })

  it("property: through Schema.toCodecJson any number (a QuotaExceeded's Infinity) survives JSON", () => {
    survivesJson(MuxErrorJson, muxErrorArb(false), muxView, errorClasses)
  })

  it("Schema.toCodecJson writes a non-finite number as a string, where JSON.stringify would write null", () => {
    const never = new MuxError.MuxError({ reason: new MuxError.QuotaExceeded({ tenant: "t", kind: "tokens", retryAfterMs: Infinity }), message: "too large", attempts: [] })
    assert.strictEqual(JSON.parse(JSON.stringify(Schema.encodeSync(MuxError.MuxError)(never))).reason.retryAfterMs, null)
    const { encoded, decoded } = throughJson(MuxErrorJson, never)
    assert.strictEqual((encoded as { reason: { retryAfterMs: unknown } }).reason.retryAfterMs, "Infinity")
    assert.strictEqual(decoded.reason._tag === "QuotaExceeded" && decoded.reason.retryAfterMs, Infinity)
  })

  it("constructing keeps the attempts array as given (no copy); encoding and decoding check every record", () =>
    Effect.runPromise(Effect.gen(function*() {
      const attempts: Array<AttemptRecord> = [{ modelId: "a", target: "a", outcome: "failure", reason: "Throttled", durationMs: 3 }]
      const e = new MuxError.MuxError({ reason: new MuxError.AttemptsExhausted({ attempts: 1 }), message: "x", attempts })
      assert.strictEqual(e.attempts, attempts)
      const bad = new MuxError.MuxError({
        reason: new MuxError.AttemptsExhausted({ attempts: 1 }),
        message: "x",
        attempts: [{ modelId: "a", target: "a", outcome: "lost", durationMs: 3 } as unknown as AttemptRecord]
      })
      const encodeError = yield* Effect.flip(Schema.encodeEffect(MuxError.MuxError)(bad))
      assert.strictEqual(encodeError._tag, "SchemaError")
      assert.include(encodeError.message, `["attempts"][0]["outcome"]`)
      const decodeError = yield* Effect.flip(Schema.decodeUnknownEffect(MuxError.MuxError)({
        _tag: "MuxError",
        reason: { _tag: "AttemptsExhausted", attempts: 1 },
        message: "x",
        attempts: [{ modelId: "a", target: "a", outcome: "failure", reason: "Overheated", durationMs: 3 }]
      }))
      assert.include(decodeError.message, `["attempts"][0]["reason"]`)
    })))

  it("decoding an unknown MuxError reason tag fails with a typed SchemaError", () =>
    Effect.runPromise(Effect.gen(function*() {
      const e = yield* Effect.flip(Schema.decodeUnknownEffect(MuxError.MuxError)({ _tag: "MuxError", reason: { _tag: "Overloaded" }, message: "x", attempts: [] }))
      assert.strictEqual(e._tag, "SchemaError")
      assert.include(e.message, `["reason"]`)
    })))
})

// --- errors the library raises, through effect's reason helpers -----------------------------------

const hello = { messages: [{ role: "user" as const, content: [{ text: "hello" }] }] }

describe("Effect.catchReason on the library's errors", () => {
  const converse = Effect.gen(function*() {
    const rt = yield* BedrockRuntime
    return yield* rt.converse({ modelId: "m", ...hello })
  })

  it.effect("BedrockError / Throttled: a throttled BedrockRuntime call is caught by its reason; other reasons pass through", () =>
    Effect.gen(function*() {
      yield* converse // the one request of the minute
      const caught = yield* converse.pipe(
        Effect.map(() => "answered"),
        Effect.catchReason("BedrockError", "Throttled", (r) => Effect.succeed(`throttled: ${r.kind}`))
      )
      assert.strictEqual(caught, "throttled: requests")
      const denied = BedrockError.make(new BedrockError.AccessDenied(), "no access", "m")
      const passed = yield* Effect.fail(denied).pipe(
        Effect.catchReason("BedrockError", "Throttled", () => Effect.succeed("caught")),
        Effect.flip
      )
      assert.strictEqual(passed, denied)
    }).pipe(Effect.provide(BedrockSimulator.layer({ models: { m: { rpm: 1 } } }))))

  const muxLayer = BedrockMux.layer({ models: [{ modelId: "primary", weight: 100 }], breaker: { failures: 1, cooldown: "10 seconds" } }).pipe(
    Layer.provideMerge(BedrockSimulator.layer({ models: { primary: { latency: 100, faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] } } }))
  )
  const muxConverse = Effect.gen(function*() {
    const mux = yield* BedrockMux
    return yield* mux.converse(hello)
  })

  it.effect("MuxError / NoModelsAvailable: the error of an open breaker is caught by its reason, typed; other reasons pass through", () =>
    Effect.gen(function*() {
      yield* runFor(Effect.exit(muxConverse), "1 second") // fails at once and opens the breaker until 10 s
      const opened = muxError(yield* Effect.exit(muxConverse))
      assert.strictEqual(opened.reason._tag, "NoModelsAvailable")
      const caught = yield* muxConverse.pipe(
        Effect.map(() => undefined),
        Effect.catchReason("MuxError", "NoModelsAvailable", (r) => Effect.succeed(r.earliestRecovery))
      )
      assert.strictEqual(caught, 10_000)
      assert.strictEqual(opened.reason._tag === "NoModelsAvailable" ? opened.reason.earliestRecovery : -1, 10_000)
      const quota = new MuxError.MuxError({ reason: new MuxError.QuotaExceeded({ tenant: "t", kind: "requests", retryAfterMs: 100 }), message: "over quota", attempts: [] })
      const passed = yield* Effect.fail(quota).pipe(
        Effect.catchReason("MuxError", "NoModelsAvailable", () => Effect.succeed("caught")),
        Effect.flip
      )
      assert.strictEqual(passed, quota)
    }).pipe(Effect.provide(muxLayer)))

  it.effect("a MuxError the mux raised (real attempts, last error, SDK-like cause) round-trips through JSON", () =>
    Effect.gen(function*() {
      const failed = muxError(yield* runFor(Effect.exit(muxConverse), "1 second"))
      assert.isAbove(failed.attempts.length, 0)
      const { decoded } = throughJson(MuxErrorJson, failed)
      assert.instanceOf(decoded, MuxError.MuxError)
      assert.strictEqual(decoded.reason.constructor, failed.reason.constructor)
      assert.instanceOf(decoded.last, BedrockError.BedrockError)
      assert.deepStrictEqual(muxView(decoded), muxView(failed))
      const opened = muxError(yield* Effect.exit(muxConverse))
      assert.deepStrictEqual(muxView(throughJson(MuxErrorJson, opened).decoded), muxView(opened))
    }).pipe(Effect.provide(muxLayer)))
})
