import {
  AccessDeniedException,
  BedrockRuntimeServiceException,
  ConflictException,
  InternalServerException,
  ModelErrorException,
  ModelNotReadyException,
  ModelStreamErrorException,
  ModelTimeoutException,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
  ServiceUnavailableException,
  ThrottlingException,
  ValidationException
} from "@aws-sdk/client-bedrock-runtime"
import type { BedrockRuntimeClientConfig, ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime"
import { fromIni } from "@aws-sdk/credential-provider-ini"
import { NodeHttp2Handler } from "@smithy/node-http-handler"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Stream } from "effect"
import * as fc from "fast-check"
import * as os from "node:os"
import * as path from "node:path"
import * as BedrockError from "../src/BedrockError.ts"
import { BedrockMux } from "../src/BedrockMux.ts"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { BedrockSimulator } from "../src/BedrockSimulator.ts"
import { FakeBedrock } from "../src/testing/index.ts"

const meta = (httpStatusCode: number) => ({ httpStatusCode, requestId: "r" })

/** The SDK keeps the raw HTTP response on `$response`; classification reads its headers. */
const withResponse = <E extends object>(err: E, headers: Record<string, string>): E =>
  Object.assign(err, { $response: { statusCode: 429, headers } })

const RPM = "Too many requests, please wait before trying again."
const TPM = "Too many tokens, please wait before trying again."
const DAILY = "Too many tokens per day, please wait before trying again."

const classify = (u: unknown, phase?: "before-response" | "after-response") =>
  phase === undefined ? BedrockError.fromSdkError(u, "model-x") : BedrockError.fromSdkError(u, "model-x", phase)

const netError = (message: string, code: string) => Object.assign(new Error(message), { code })

describe("fromSdkError: every Bedrock Runtime exception", () => {
  const cases: ReadonlyArray<readonly [string, () => Error, number, BedrockError.Reason]> = [
    ["ThrottlingException (RPM)", () => new ThrottlingException({ message: RPM, $metadata: meta(429) }), 429, new BedrockError.Throttled({ kind: "requests" })],
    ["ThrottlingException (TPM)", () => new ThrottlingException({ message: TPM, $metadata: meta(429) }), 429, new BedrockError.Throttled({ kind: "tokens" })],
    ["ThrottlingException (daily)", () => new ThrottlingException({ message: DAILY, $metadata: meta(429) }), 429, new BedrockError.Throttled({ kind: "daily" })],
    ["ThrottlingException (other text)", () => new ThrottlingException({ message: "Rate exceeded", $metadata: meta(429) }), 429, new BedrockError.Throttled({ kind: "unknown" })],
    ["ServiceUnavailableException", () => new ServiceUnavailableException({ message: "Service unavailable", $metadata: meta(503) }), 503, new BedrockError.ServiceUnavailable()],
    ["InternalServerException", () => new InternalServerException({ message: "internal", $metadata: meta(500) }), 500, new BedrockError.InternalServer()],
    ["ModelNotReadyException", () => new ModelNotReadyException({ message: "Model is not ready", $metadata: meta(429) }), 429, new BedrockError.ModelNotReady()],
    ["ModelTimeoutException", () => new ModelTimeoutException({ message: "timed out", $metadata: meta(408) }), 408, new BedrockError.ModelTimeout()],
    ["ModelErrorException (original 400)", () => new ModelErrorException({ message: "bad", originalStatusCode: 400, $metadata: meta(424) }), 424, new BedrockError.ModelError({ originalStatusCode: 400 })],
    ["ModelErrorException (original 503)", () => new ModelErrorException({ message: "down", originalStatusCode: 503, $metadata: meta(424) }), 424, new BedrockError.ModelError({ originalStatusCode: 503 })],
    ["ModelErrorException (no original)", () => new ModelErrorException({ message: "down", $metadata: meta(424) }), 424, new BedrockError.ModelError({})],
    ["ModelStreamErrorException", () => new ModelStreamErrorException({ message: "stream", originalStatusCode: 500, $metadata: meta(424) }), 424, new BedrockError.ModelStreamError({ originalStatusCode: 500 })],
    ["ValidationException (other)", () => new ValidationException({ message: "Malformed input request: #: required key [messages] not found", $metadata: meta(400) }), 400, new BedrockError.Validation({ kind: "other" })],
    ["ValidationException (context window)", () => new ValidationException({ message: "Input is too long for requested model.", $metadata: meta(400) }), 400, new BedrockError.Validation({ kind: "context-window" })],
    ["AccessDeniedException", () => new AccessDeniedException({ message: "You don't have access to the model with the specified model ID.", $metadata: meta(403) }), 403, new BedrockError.AccessDenied()],
    ["ResourceNotFoundException", () => new ResourceNotFoundException({ message: "not found", $metadata: meta(404) }), 404, new BedrockError.ResourceNotFound()],
    ["ServiceQuotaExceededException (400, but quota)", () => new ServiceQuotaExceededException({ message: "quota", $metadata: meta(400) }), 400, new BedrockError.ServiceQuotaExceeded()],
    ["ConflictException (a request problem: fails fast like validation)", () => new ConflictException({ message: "conflict", $metadata: meta(400) }), 400, new BedrockError.Validation({ kind: "other" })]
  ]

  for (const [label, make, status, expected] of cases) {
    it(label, () => {
      const sdk = make()
      const err = classify(sdk)
      assert.instanceOf(err, BedrockError.BedrockError)
      assert.strictEqual(err._tag, "BedrockError")
      assert.deepStrictEqual(err.reason, expected)
      assert.strictEqual(err.httpStatusCode, status)
      assert.strictEqual(err.requestId, "r")
      assert.strictEqual(err.modelId, "model-x")
      assert.strictEqual(err.cause, sdk)
      assert.strictEqual(err.message, `${sdk.name}: ${sdk.message}`)
      assert.deepStrictEqual(err.decision, BedrockError.decisionOf(expected))
    })
  }

  it("keeps the SDK error as cause, so instanceof still works", () => {
    const sdk = new ThrottlingException({ message: TPM, $metadata: { httpStatusCode: 429, requestId: "req-42" } })
    const err = classify(sdk)
    assert.instanceOf(err.cause, ThrottlingException)
    assert.notInstanceOf(err.cause, ServiceUnavailableException)
    assert.strictEqual(err.requestId, "req-42")
  })

  it("classifies by name before status (a 429 ModelNotReady is not a throttle)", () => {
    const err = classify(new ModelNotReadyException({ message: "x", $metadata: meta(429) }))
    assert.strictEqual(err.reason._tag, "ModelNotReady")
  })

  it("omits modelId, requestId and httpStatusCode when unknown", () => {
    const err = BedrockError.fromSdkError(new ThrottlingException({ message: RPM, $metadata: {} }))
    assert.isUndefined(err.modelId)
    assert.isUndefined(err.requestId)
    assert.isUndefined(err.httpStatusCode)
    assert.isFalse("modelId" in err)
    assert.isFalse("requestId" in err)
    assert.isFalse("httpStatusCode" in err)
  })

  it("returns a BedrockError unchanged", () => {
    const original = BedrockError.make(new BedrockError.InternalServer(), "boom", "m")
    assert.strictEqual(BedrockError.fromSdkError(original, "other"), original)
  })
})

describe("fromSdkError: throttle sub-kinds and retryAfter", () => {
  it("sub-classifies the real Bedrock messages", () => {
    assert.strictEqual(BedrockError.throttleKindOf(RPM), "requests")
    assert.strictEqual(BedrockError.throttleKindOf(TPM), "tokens")
    assert.strictEqual(BedrockError.throttleKindOf(DAILY), "daily")
    assert.strictEqual(BedrockError.throttleKindOf("Rate exceeded"), "unknown")
  })

  it("reads retry-after (seconds) from $response.headers", () => {
    const err = classify(withResponse(new ThrottlingException({ message: RPM, $metadata: meta(429) }), { "retry-after": "3" }))
    assert.strictEqual(err.reason._tag, "Throttled")
    const reason = err.reason as BedrockError.Throttled
    assert.strictEqual(reason.kind, "requests")
    assert.isDefined(reason.retryAfter)
    assert.strictEqual(Duration.toMillis(reason.retryAfter!), 3000)
  })

  it("reads x-amz-retry-after (milliseconds) from $response.headers", () => {
    const err = classify(withResponse(new ThrottlingException({ message: TPM, $metadata: meta(429) }), { "x-amz-retry-after": "1500" }))
    const reason = err.reason as BedrockError.Throttled
    assert.strictEqual(reason.kind, "tokens")
    assert.strictEqual(Duration.toMillis(reason.retryAfter!), 1500)
  })

  it("header names are case-insensitive; fractional seconds work", () => {
    const err = classify(withResponse(new ThrottlingException({ message: RPM, $metadata: meta(429) }), { "Retry-After": "0.25" }))
    assert.strictEqual(Duration.toMillis((err.reason as BedrockError.Throttled).retryAfter!), 250)
  })

  it("no retryAfter without the headers, or when they do not parse", () => {
    const none = classify(new ThrottlingException({ message: RPM, $metadata: meta(429) }))
    assert.isFalse("retryAfter" in none.reason)
    const bad = classify(withResponse(new ThrottlingException({ message: RPM, $metadata: meta(429) }), { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" }))
    assert.isFalse("retryAfter" in bad.reason)
    const negative = classify(withResponse(new ThrottlingException({ message: RPM, $metadata: meta(429) }), { "x-amz-retry-after": "-5" }))
    assert.isFalse("retryAfter" in negative.reason)
  })

  it("retryAfterOf on its own", () => {
    assert.isTrue(Option.isNone(BedrockError.retryAfterOf(undefined)))
    assert.isTrue(Option.isNone(BedrockError.retryAfterOf({ "content-type": "application/json" })))
    assert.deepStrictEqual(BedrockError.retryAfterOf({ "retry-after": "2" }), Option.some(Duration.seconds(2)))
    assert.deepStrictEqual(BedrockError.retryAfterOf({ "x-amz-retry-after": "750" }), Option.some(Duration.millis(750)))
  })
})

describe("fromSdkError: context-window validation", () => {
  const contextWindow = [
    "Input is too long for requested model.",
    "prompt is too long: 215000 tokens > 200000 maximum",
    "Too many input tokens. Max input tokens: 8192, request input token count: 9051",
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    "The input length exceeds the context window of the model"
  ]
  const other = [
    "Malformed input request: #: extraneous key [foo] is not permitted, please reformat your input and try again.",
    "The provided model identifier is invalid.",
    "Invocation of model ID anthropic.claude-3-5-sonnet-20241022-v2:0 with on-demand throughput isn't supported. Retry your request with the ID or ARN of an inference profile that contains this model."
  ]
  for (const message of contextWindow) {
    it(`context-window: ${message}`, () => {
      const err = classify(new ValidationException({ message, $metadata: meta(400) }))
      assert.deepStrictEqual(err.reason, new BedrockError.Validation({ kind: "context-window" }))
      assert.isTrue(err.decision.largerContextOnly)
      assert.isTrue(err.decision.failover)
    })
  }
  for (const message of other) {
    it(`other: ${message.slice(0, 50)}`, () => {
      const err = classify(new ValidationException({ message, $metadata: meta(400) }))
      assert.deepStrictEqual(err.reason, new BedrockError.Validation({ kind: "other" }))
      assert.isFalse(err.decision.failover)
    })
  }
})

describe("fromSdkError: transport faults", () => {
  it("ECONNRESET before the response", () => {
    const err = classify(netError("read ECONNRESET", "ECONNRESET"))
    assert.deepStrictEqual(err.reason, new BedrockError.Network({ phase: "before-response", code: "ECONNRESET" }))
    assert.isUndefined(err.httpStatusCode)
  })

  it("ECONNRESET with Node's \"aborted\" message is after the response began", () => {
    const err = classify(netError("aborted", "ECONNRESET"))
    assert.deepStrictEqual(err.reason, new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }))
  })

  it("the phase argument marks stream-iterator faults after-response", () => {
    const err = classify(netError("socket hang up", "ECONNRESET"), "after-response")
    assert.deepStrictEqual(err.reason, new BedrockError.Network({ phase: "after-response", code: "ECONNRESET" }))
  })

  it("ECONNREFUSED", () => {
    assert.deepStrictEqual(
      classify(netError("connect ECONNREFUSED 127.0.0.1:443", "ECONNREFUSED")).reason,
      new BedrockError.Network({ phase: "before-response", code: "ECONNREFUSED" })
    )
  })

  it("ERR_HTTP2_STREAM_ERROR", () => {
    assert.deepStrictEqual(
      classify(netError("Stream closed with error code NGHTTP2_INTERNAL_ERROR", "ERR_HTTP2_STREAM_ERROR")).reason,
      new BedrockError.Network({ phase: "before-response", code: "ERR_HTTP2_STREAM_ERROR" })
    )
  })

  it("a network code nested in cause", () => {
    const err = classify(new Error("fetch failed", { cause: netError("getaddrinfo ENOTFOUND x", "ENOTFOUND") }))
    assert.deepStrictEqual(err.reason, new BedrockError.Network({ phase: "before-response", code: "ENOTFOUND" }))
  })

  it("TimeoutError (SDK socket/connection timeout)", () => {
    const err = classify(Object.assign(new Error("Connection timed out after 1000 ms"), { name: "TimeoutError" }))
    assert.deepStrictEqual(err.reason, new BedrockError.Network({ phase: "before-response", code: "TimeoutError" }))
  })

  it("SyntaxError on a 200 body is an incomplete (malformed) body", () => {
    const err = classify(
      Object.assign(new SyntaxError("Unexpected end of JSON input"), { $metadata: { httpStatusCode: 200, requestId: "q" } })
    )
    assert.deepStrictEqual(err.reason, new BedrockError.Incomplete({ detail: "malformed-body" }))
    assert.strictEqual(err.httpStatusCode, 200)
    assert.strictEqual(err.requestId, "q")
  })

  it("SyntaxError on a 503 (HTML error page) is classified by the status", () => {
    const err = classify(Object.assign(new SyntaxError("Unexpected token <"), { $metadata: { httpStatusCode: 503 } }))
    assert.deepStrictEqual(err.reason, new BedrockError.ServiceUnavailable())
    assert.strictEqual(err.httpStatusCode, 503)
  })

  it("a truncated event-stream frame", () => {
    const err = classify(new Error("Truncated event message received."), "after-response")
    assert.deepStrictEqual(err.reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
  })

  it("an unknown exception name with status 500 is InternalServer, with 400 it is Unknown", () => {
    const e500 = classify(Object.assign(new Error("boom"), { name: "SomethingNewException", $metadata: { httpStatusCode: 500 } }))
    assert.deepStrictEqual(e500.reason, new BedrockError.InternalServer())
    assert.strictEqual(e500.httpStatusCode, 500)
    const e400 = classify(Object.assign(new Error("boom"), { name: "SomethingNewException", $metadata: { httpStatusCode: 400 } }))
    assert.deepStrictEqual(e400.reason, new BedrockError.Unknown({ name: "SomethingNewException" }))
  })

  it("the SDK's generic service exception is classified by status", () => {
    const sdk = new BedrockRuntimeServiceException({ name: "Unknown", $fault: "client", message: "?", $metadata: { httpStatusCode: 429 } })
    assert.deepStrictEqual(classify(sdk).reason, new BedrockError.Throttled({ kind: "unknown" }))
  })

  it("non-errors become Unknown", () => {
    assert.deepStrictEqual(classify("boom").reason, new BedrockError.Unknown({ name: "Error" }))
    assert.strictEqual(classify("boom").message, "Error: boom")
    assert.deepStrictEqual(classify(undefined).reason, new BedrockError.Unknown({ name: "Error" }))
  })
})

describe("fromSdkError: in-stream exception events (lowerCamel names)", () => {
  const event = (name: string, message: string, extra: object = {}) => ({ name, message, $metadata: {}, ...extra })
  const cases: ReadonlyArray<readonly [string, string, BedrockError.Reason]> = [
    ["throttlingException", TPM, new BedrockError.Throttled({ kind: "tokens" })],
    ["serviceUnavailableException", "unavailable", new BedrockError.ServiceUnavailable()],
    ["internalServerException", "internal", new BedrockError.InternalServer()],
    ["validationException", "Input is too long for requested model.", new BedrockError.Validation({ kind: "context-window" })],
    ["modelTimeoutException", "timeout", new BedrockError.ModelTimeout()]
  ]
  for (const [name, message, expected] of cases) {
    it(name, () => {
      const err = classify(event(name, message), "after-response")
      assert.deepStrictEqual(err.reason, expected)
      assert.isUndefined(err.httpStatusCode)
    })
  }
  it("modelStreamErrorException keeps originalStatusCode", () => {
    const err = classify(event("modelStreamErrorException", "x", { originalStatusCode: 429 }), "after-response")
    assert.deepStrictEqual(err.reason, new BedrockError.ModelStreamError({ originalStatusCode: 429 }))
  })
})

describe("decisionOf", () => {
  const d = BedrockError.decisionOf

  it("throttles never count toward the breaker and fail over, whatever the kind", () => {
    for (const kind of ["requests", "tokens", "daily", "unknown"] as const) {
      const decision = d(new BedrockError.Throttled({ kind, retryAfter: Duration.seconds(1) }))
      assert.deepStrictEqual(decision, { retrySame: 0, failover: true, breaker: false, largerContextOnly: false })
    }
  })

  it("validation (other) and access denied fail fast without the breaker", () => {
    assert.deepStrictEqual(d(new BedrockError.Validation({ kind: "other" })), { retrySame: 0, failover: false, breaker: false, largerContextOnly: false })
    assert.deepStrictEqual(d(new BedrockError.AccessDenied()), { retrySame: 0, failover: false, breaker: false, largerContextOnly: false })
  })

  it("context-window fails over to larger-context models only, without the breaker", () => {
    assert.deepStrictEqual(d(new BedrockError.Validation({ kind: "context-window" })), {
      retrySame: 0,
      failover: true,
      breaker: false,
      largerContextOnly: true
    })
  })

  it("InternalServer retries the same model once, then fails over (breaker)", () => {
    assert.deepStrictEqual(d(new BedrockError.InternalServer()), { retrySame: 1, failover: true, breaker: true, largerContextOnly: false })
  })

  it("ModelError: a 4xx original fails fast, 5xx / 429 / none fail over", () => {
    for (const code of [400, 404, 422, 499]) {
      assert.deepStrictEqual(d(new BedrockError.ModelError({ originalStatusCode: code })), {
        retrySame: 0,
        failover: false,
        breaker: false,
        largerContextOnly: false
      })
    }
    for (const reason of [
      new BedrockError.ModelError({ originalStatusCode: 500 }),
      new BedrockError.ModelError({ originalStatusCode: 503 }),
      new BedrockError.ModelError({ originalStatusCode: 429 }),
      new BedrockError.ModelError({})
    ]) {
      assert.deepStrictEqual(d(reason), { retrySame: 0, failover: true, breaker: true, largerContextOnly: false })
    }
  })

  it("DeadlineExceeded: request scope is terminal, the others fail over", () => {
    const after = Duration.seconds(5)
    assert.deepStrictEqual(d(new BedrockError.DeadlineExceeded({ scope: "request", after })), {
      retrySame: 0,
      failover: false,
      breaker: false,
      largerContextOnly: false
    })
    for (const scope of ["attempt", "first-token", "stall"] as const) {
      const decision = d(new BedrockError.DeadlineExceeded({ scope, after }))
      assert.isTrue(decision.failover)
      assert.isTrue(decision.breaker)
    }
  })

  it("the rest of the table", () => {
    const failover = { retrySame: 0, failover: true, breaker: true, largerContextOnly: false }
    assert.deepStrictEqual(d(new BedrockError.ServiceUnavailable()), failover)
    assert.deepStrictEqual(d(new BedrockError.ModelTimeout()), failover)
    assert.deepStrictEqual(d(new BedrockError.ModelStreamError({})), failover)
    assert.deepStrictEqual(d(new BedrockError.Incomplete({ detail: "no-message-stop" })), failover)
    assert.deepStrictEqual(d(new BedrockError.Unknown({})), failover)
    assert.deepStrictEqual(d(new BedrockError.ModelNotReady()), { retrySame: 2, failover: true, breaker: false, largerContextOnly: false })
    assert.deepStrictEqual(d(new BedrockError.ResourceNotFound()), { retrySame: 0, failover: true, breaker: false, largerContextOnly: false })
    assert.deepStrictEqual(d(new BedrockError.ServiceQuotaExceeded()), { retrySame: 0, failover: true, breaker: false, largerContextOnly: false })
    assert.deepStrictEqual(d(new BedrockError.Network({ phase: "before-response" })), { retrySame: 1, failover: true, breaker: true, largerContextOnly: false })
    assert.deepStrictEqual(d(new BedrockError.Network({ phase: "after-response" })), failover)
  })

  it("Refused fails over without the breaker (a refusal says nothing about health)", () => {
    for (const score of [0, 0.5, 1]) {
      assert.deepStrictEqual(d(new BedrockError.Refused({ score, classifier: "keywords" })), {
        retrySame: 0,
        failover: true,
        breaker: false,
        largerContextOnly: false
      })
    }
  })

  it("Local fails fast, never counts toward a breaker, never fails over, whatever the kind", () => {
    for (const kind of ["credentials", "region", "endpoint", "serialization", "other"] as const) {
      assert.deepStrictEqual(d(new BedrockError.Local({ kind })), { retrySame: 0, failover: false, breaker: false, largerContextOnly: false })
    }
  })

  it("the BedrockError.decision getter reads the table", () => {
    const err = BedrockError.make(new BedrockError.Validation({ kind: "other" }), "bad")
    assert.isFalse(err.decision.failover)
    assert.strictEqual(err.message, "bad")
  })

  it("catchReason can select a reason", () =>
    Effect.runSync(
      Effect.fail(BedrockError.fromSdkError(new ThrottlingException({ message: DAILY, $metadata: meta(429) }))).pipe(
        Effect.catchReason("BedrockError", "Throttled", (r) => Effect.succeed(r.kind)),
        Effect.map((kind) => assert.strictEqual(kind, "daily"))
      )
    ))

  it("every reason tag has a decision", () => {
    const samples: ReadonlyArray<BedrockError.Reason> = [
      new BedrockError.Throttled({ kind: "requests" }),
      new BedrockError.ServiceUnavailable(),
      new BedrockError.InternalServer(),
      new BedrockError.ModelNotReady(),
      new BedrockError.ModelTimeout(),
      new BedrockError.ModelError({}),
      new BedrockError.ModelStreamError({}),
      new BedrockError.Validation({ kind: "other" }),
      new BedrockError.AccessDenied(),
      new BedrockError.ResourceNotFound(),
      new BedrockError.ServiceQuotaExceeded(),
      new BedrockError.Network({ phase: "before-response" }),
      new BedrockError.DeadlineExceeded({ scope: "attempt", after: Duration.seconds(1) }),
      new BedrockError.Incomplete({ detail: "missing-output" }),
      new BedrockError.Refused({ score: 0.9, classifier: "keywords" }),
      new BedrockError.Local({ kind: "credentials" }),
      new BedrockError.Unknown({})
    ]
    assert.deepStrictEqual(samples.map((r) => r._tag), [...BedrockError.reasonTags])
    for (const r of samples) {
      const decision = d(r)
      assert.isAtLeast(decision.retrySame, 0)
      assert.isBoolean(decision.failover)
    }
  })
})

describe("fromSdkError never throws", () => {
  const check = (u: unknown, phase: "before-response" | "after-response") => {
    const err = BedrockError.fromSdkError(u, "m", phase)
    if (!(err instanceof BedrockError.BedrockError)) return false
    if (!BedrockError.reasonTags.includes(err.reason._tag)) return false
    if (typeof err.message !== "string") return false
    if (err.httpStatusCode !== undefined && typeof err.httpStatusCode !== "number") return false
    if (err.requestId !== undefined && typeof err.requestId !== "string") return false
    const decision = BedrockError.decisionOf(err.reason)
    return typeof decision.failover === "boolean" && Number.isInteger(decision.retrySame)
  }

  it("hostile values that once broke String(u) and header parsing", () => {
    const hostile: ReadonlyArray<unknown> = [
      Object.create(null),
      { toString: 1 },
      { toString: null, valueOf: null },
      { name: "ThrottlingException", message: RPM, $response: { headers: null } },
      { name: "ThrottlingException", message: RPM, $response: { headers: { "retry-after": { toString: null } } } },
      { name: "ThrottlingException", $response: { headers: "retry-after: 3" } },
      { $metadata: { httpStatusCode: { valueOf: null, toString: null }, requestId: 42 } },
      { _tag: "BedrockError" },
      { _tag: "BedrockError", reason: { _tag: "Nope" } },
      Symbol("s"),
      10n,
      [1, 2, 3]
    ]
    for (const u of hostile) {
      assert.isTrue(check(u, "before-response"), String(typeof u))
    }
  })

  const names = [
    "ThrottlingException",
    "throttlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelNotReadyException",
    "ModelTimeoutException",
    "ModelErrorException",
    "modelStreamErrorException",
    "ValidationException",
    "AccessDeniedException",
    "ResourceNotFoundException",
    "ServiceQuotaExceededException",
    "TimeoutError",
    "SyntaxError",
    "Unknown",
    "BedrockRuntimeServiceException",
    "Error"
  ]
  const sdkLike: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    error: fc.record(
      {
        name: fc.oneof(fc.constantFrom(...names), fc.string(), fc.anything()),
        message: fc.oneof(
          fc.constantFrom(RPM, TPM, DAILY, "aborted", "Truncated event message received.", "Input is too long for requested model."),
          fc.string(),
          fc.anything()
        ),
        code: fc.oneof(fc.constantFrom("ECONNRESET", "ECONNREFUSED", "ERR_HTTP2_STREAM_ERROR", "EPIPE"), fc.anything()),
        originalStatusCode: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.anything()),
        $metadata: fc.oneof(
          fc.record({ httpStatusCode: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.anything()), requestId: fc.anything() }, {
            requiredKeys: []
          }),
          fc.anything()
        ),
        $response: fc.oneof(
          fc.record({
            statusCode: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.anything()),
            headers: fc.oneof(
              fc.dictionary(fc.constantFrom("retry-after", "x-amz-retry-after", "Retry-After", "x"), fc.oneof(fc.string(), fc.anything())),
              fc.anything()
            )
          }, { requiredKeys: [] }),
          fc.anything()
        ),
        cause: fc.oneof({ depthSize: "small" }, fc.anything(), tie("error"))
      },
      { requiredKeys: [] }
    )
  })).error

  const anything = fc.anything({
    withNullPrototype: true,
    withBoxedValues: true,
    withMap: true,
    withSet: true,
    withDate: true,
    withTypedArray: true,
    withSparseArray: true,
    withBigInt: true,
    withObjectString: true
  })

  it("property: arbitrary input → a BedrockError with a known reason tag", () => {
    fc.assert(
      fc.property(fc.oneof(anything, sdkLike), fc.constantFrom("before-response" as const, "after-response" as const), check),
      { numRuns: 2000, seed: 20240611 }
    )
  })

  it("property: real SDK exception classes with arbitrary messages and statuses", () => {
    const ctors = [
      ThrottlingException,
      ServiceUnavailableException,
      InternalServerException,
      ModelNotReadyException,
      ModelTimeoutException,
      ModelErrorException,
      ModelStreamErrorException,
      ValidationException,
      AccessDeniedException,
      ResourceNotFoundException,
      ServiceQuotaExceededException,
      ConflictException
    ] as const
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: ctors.length - 1 }),
        fc.string(),
        fc.option(fc.integer({ min: 100, max: 599 }), { nil: undefined }),
        (i, message, status) => {
          const Ctor = ctors[i]! as unknown as new(o: object) => Error
          const sdk = new Ctor({ message, $metadata: status === undefined ? {} : { httpStatusCode: status } })
          const err = BedrockError.fromSdkError(sdk)
          // a modelled exception is never classified by status or as Unknown
          return check(sdk, "before-response") && err.cause === sdk && err.reason._tag !== "Unknown" &&
            err.httpStatusCode === status
        }
      ),
      { numRuns: 500, seed: 7 }
    )
  })
})

describe("fromSdkError: local failures (the messages the SDK really throws)", () => {
  const cases: ReadonlyArray<readonly [string, () => unknown, BedrockError.LocalKind]> = [
    ["the default chain found nothing", () => Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError", tryNextLink: false }), "credentials"],
    ["a provider returned a partial object (after the retry step: $metadata)", () => Object.assign(new Error("Resolved credential object is not valid"), { $metadata: { attempts: 1, totalRetryDelay: 0 } }), "credentials"],
    ["a token provider", () => Object.assign(new Error("SSO token expired"), { name: "TokenProviderError" }), "credentials"],
    ["no region", () => new Error("Region is missing"), "region"],
    ["a region that is not a hostname", () => new Error("Region not accepted: region=\"not a region!\" is not a valid hostname component."), "region"],
    ["a region provider that yields none", () => new Error("expected `region` to be configured for `aws.auth#sigv4`"), "region"],
    ["an endpoint that is not a URL", () => Object.assign(new TypeError("Invalid URL"), { code: "ERR_INVALID_URL", input: "not a url" }), "endpoint"],
    ["an unsupported protocol on HTTP/2", () => Object.assign(new Error("protocol \"ftp:\" is unsupported."), { code: "ERR_HTTP2_UNSUPPORTED_PROTOCOL", $metadata: { attempts: 1 } }), "endpoint"],
    ["a circular request", () => new RangeError("Maximum call stack size exceeded"), "serialization"],
    ["no modelId for the path", () => new Error("No value provided for input HTTP label: modelId."), "serialization"],
    ["anything thrown before the retry step", () => new Error("boom"), "other"]
  ]
  for (const [label, make, kind] of cases) {
    it(`${label}: Local ${kind}, the cause kept, a message that says it was not sent`, () => {
      const sdk = make()
      const err = classify(sdk)
      assert.deepStrictEqual(err.reason, new BedrockError.Local({ kind }))
      assert.strictEqual(err.cause, sdk)
      assert.match(err.message, /; the request was not sent \(/)
      assert.include(err.message, (sdk as Error).message)
      assert.isFalse(err.decision.failover)
      assert.isFalse(err.decision.breaker)
    })
  }

  it("not local: anything with an HTTP status, after the response began, an abort, a non-error", () => {
    assert.strictEqual(classify(Object.assign(new Error("credential scope invalid"), { $metadata: { httpStatusCode: 400 } })).reason._tag, "Unknown")
    assert.strictEqual(classify(new Error("boom"), "after-response").reason._tag, "Unknown")
    assert.strictEqual(classify(Object.assign(new Error("The operation was aborted"), { name: "AbortError" })).reason._tag, "Unknown")
    assert.strictEqual(classify("boom").reason._tag, "Unknown")
    // a transport fault is still a network error, whatever the message says
    assert.strictEqual(classify(netError("connect ECONNREFUSED 127.0.0.1:9 (region us-east-1)", "ECONNREFUSED")).reason._tag, "Network")
  })

  it("an auth failure Bedrock answered with 403 (expired token, bad signature) is AccessDenied, never an outage", () => {
    for (const name of ["UnrecognizedClientException", "ExpiredTokenException", "InvalidSignatureException"]) {
      const sdk = new BedrockRuntimeServiceException({ name, $fault: "client", message: "The security token included in the request is invalid.", $metadata: meta(403) })
      const err = classify(sdk)
      assert.deepStrictEqual(err.reason, new BedrockError.AccessDenied())
      assert.isFalse(err.decision.breaker)
    }
  })

  it("a frame that fails its CRC is Incomplete (malformed-frame), with the SDK's two messages", () => {
    for (
      const message of [
        "The message checksum (2921508420) did not match the expected value of 2921508555",
        "The prelude checksum specified in the message (1) does not match the calculated CRC32 checksum (2)"
      ]
    ) {
      assert.deepStrictEqual(classify(new Error(message), "after-response").reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
      // thrown by send() when it is the first frame (status 200)
      assert.deepStrictEqual(
        classify(Object.assign(new Error(message), { $metadata: { httpStatusCode: 200 } })).reason,
        new BedrockError.Incomplete({ detail: "malformed-frame" })
      )
    }
  })
})

// --- over the real SDK ----------------------------------------------------------------------------

/** A credentials provider from the SDK's own chain that cannot find its profile (files that do not exist). */
const missingProfile = fromIni({
  profile: "effect-bedrock-mux-test-no-such-profile",
  filepath: path.join(os.tmpdir(), "effect-bedrock-mux-no-such-credentials"),
  configFilepath: path.join(os.tmpdir(), "effect-bedrock-mux-no-such-config")
})

const script = { models: { a: { answer: "a b c d" }, b: { answer: "from b" } } }
const hello = [{ role: "user" as const, content: [{ text: "hello" }] }]

/** One converse through a real client built from `clientConfig`, pointed at the fake; the error and what the fake saw. */
const localFailure = (clientConfig: BedrockRuntimeClientConfig, input: Partial<ConverseCommandInput> = {}) =>
  Effect.gen(function*() {
    const rt = yield* BedrockRuntime
    const fake = yield* FakeBedrock.FakeBedrock
    const error = yield* Effect.flip(rt.converse({ modelId: "a", messages: hello, ...input } as ConverseCommandInput))
    return { error, sent: fake.attempts().length }
  }).pipe(Effect.provide(FakeBedrock.layerRuntime(script, clientConfig)))

describe("local failures over the real SDK: classified Local, nothing sent", () => {
  it.effect("credentials the SDK's provider cannot load (CredentialsProviderError)", () =>
    Effect.gen(function*() {
      const { error, sent } = yield* localFailure({ credentials: missingProfile })
      assert.deepStrictEqual(error.reason, new BedrockError.Local({ kind: "credentials" }))
      assert.strictEqual((error.cause as Error).name, "CredentialsProviderError")
      assert.match(error.message, /^AWS credentials could not be loaded; the request was not sent \(CredentialsProviderError: Could not resolve credentials using profile/)
      assert.strictEqual(sent, 0)
    }))

  it.effect("a credentials provider that throws, and one that resolves to no secret", () =>
    Effect.gen(function*() {
      const thrown = new Error("boom: no session")
      const throws = yield* localFailure({ credentials: () => Promise.reject(thrown) })
      assert.deepStrictEqual(throws.error.reason, new BedrockError.Local({ kind: "other" }))
      assert.strictEqual(throws.error.cause, thrown)
      assert.strictEqual(throws.sent, 0)
      const partial = yield* localFailure({ credentials: () => Promise.resolve({ accessKeyId: "a" } as { accessKeyId: string; secretAccessKey: string }) })
      assert.deepStrictEqual(partial.error.reason, new BedrockError.Local({ kind: "credentials" }))
      assert.strictEqual(partial.sent, 0)
    }))

  it.effect("no region, and a region that is not one", () =>
    Effect.gen(function*() {
      const none = yield* localFailure({ region: (() => Promise.resolve(undefined)) as unknown as () => Promise<string> })
      assert.deepStrictEqual(none.error.reason, new BedrockError.Local({ kind: "region" }))
      assert.strictEqual(none.sent, 0)
      const bad = yield* localFailure({ region: () => Promise.resolve("not a region!") })
      assert.deepStrictEqual(bad.error.reason, new BedrockError.Local({ kind: "region" }))
      assert.match(bad.error.message, /^no valid AWS Region is configured; the request was not sent \(Error: Region not accepted/)
    }))

  it.effect("an endpoint that is not a URL; an unsupported protocol on the SDK's HTTP/2 handler", () =>
    Effect.gen(function*() {
      const notUrl = yield* localFailure({ endpoint: "not a url" })
      assert.deepStrictEqual(notUrl.error.reason, new BedrockError.Local({ kind: "endpoint" }))
      assert.strictEqual((notUrl.error.cause as { code?: string }).code, "ERR_INVALID_URL")
      assert.strictEqual(notUrl.sent, 0)
      const ftp = yield* localFailure({ endpoint: "ftp://127.0.0.1:9", requestHandler: new NodeHttp2Handler() })
      assert.deepStrictEqual(ftp.error.reason, new BedrockError.Local({ kind: "endpoint" }))
    }))

  it.effect("a request the SDK cannot serialize (a circular structure)", () =>
    Effect.gen(function*() {
      const circular: Record<string, unknown> = {}
      circular.self = circular
      const { error, sent } = yield* localFailure({}, { additionalModelRequestFields: circular as never })
      assert.deepStrictEqual(error.reason, new BedrockError.Local({ kind: "serialization" }))
      assert.instanceOf(error.cause, RangeError)
      assert.strictEqual(sent, 0)
    }))
})

describe("a local failure through the mux fails fast: one attempt, no failover, no breaker, health stays up", () => {
  const layer = BedrockMux.layer({
    models: [{ modelId: "a" }, { modelId: "b", isFallback: true }],
    breaker: { failures: 2 }
  }).pipe(Layer.provideMerge(FakeBedrock.layerRuntime(script, { credentials: missingProfile })))

  it.effect("credentials that cannot be loaded, ten requests in a row", () =>
    Effect.gen(function*() {
      const mux = yield* BedrockMux
      const fake = yield* FakeBedrock.FakeBedrock
      for (let i = 0; i < 10; i++) {
        const error = yield* Effect.flip(mux.converse({ messages: hello }))
        assert.strictEqual(error.reason._tag, "Failed")
        assert.deepStrictEqual(error.attempts.map((a) => [a.modelId, a.reason, a.decision]), [["a", "Local", "fail-fast"]])
        // the original cause is kept: the SDK's error, under the BedrockError
        assert.strictEqual(error.last?.reason._tag, "Local")
        assert.strictEqual((error.last?.cause as Error).name, "CredentialsProviderError")
        assert.include(error.message, "AWS credentials could not be loaded")
      }
      const health = yield* mux.health
      assert.strictEqual(health.status, "healthy")
      assert.deepStrictEqual(health.models.map((m) => [m.modelId, m.breaker, m.available, m.failures]), [["a", "closed", true, 0], ["b", "closed", true, 0]])
      assert.deepStrictEqual(yield* mux.simpleHealth, { status: "healthy", code: 200 })
      assert.strictEqual(fake.attempts().length, 0)
    }).pipe(Effect.provide(layer)))
})

describe("a frame with a bad CRC over the real SDK is Incomplete (malformed-frame), not Unknown", () => {
  const badFrame = (afterTokens: number) => ({
    models: { m: { answer: "a b c d", faults: [{ do: { kind: "malformed" as const, afterTokens, frame: "checksum" as const } }] } }
  })
  const stream = Effect.gen(function*() {
    const rt = yield* BedrockRuntime
    const events: Array<string> = []
    const error = yield* rt.converseStream({ modelId: "m", messages: hello }).pipe(
      Stream.runForEach((ev) => Effect.sync(() => events.push(Object.keys(ev)[0]!))),
      Effect.flip
    )
    return { error, events }
  })

  it.effect("after a token: thrown from the event iterator", () =>
    Effect.gen(function*() {
      const { error, events } = yield* stream
      assert.deepStrictEqual(error.reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
      assert.match(error.message, /checksum.*did not match/)
      assert.deepStrictEqual(events, ["messageStart", "contentBlockDelta"])
      assert.strictEqual((yield* FakeBedrock.FakeBedrock).attempts()[0]!.outcome, "malformed")
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(badFrame(1)))))

  it.effect("as the first frame: thrown by send()", () =>
    Effect.gen(function*() {
      const { error, events } = yield* stream
      assert.deepStrictEqual(error.reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
      assert.deepStrictEqual(events, [])
    }).pipe(Effect.provide(FakeBedrock.layerRuntime(badFrame(0)))))

  it.effect("the in-memory simulator agrees", () =>
    Effect.gen(function*() {
      const { error, events } = yield* stream
      assert.deepStrictEqual(error.reason, new BedrockError.Incomplete({ detail: "malformed-frame" }))
      assert.match(error.message, /checksum.*did not match/)
      assert.deepStrictEqual(events, ["messageStart", "contentBlockDelta"])
    }).pipe(Effect.provide(BedrockSimulator.layer(badFrame(1)))))
})
