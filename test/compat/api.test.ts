/**
 * Compatibility with the aws-samples multiplexer's documented public API
 * (its README, its exported types, its examples): what a migrating user's
 * code relies on, through the real SDK against the loopback fake. The
 * behaviours where we differ on purpose are in test/createMultiplexer.test.ts
 * and docs/migration.md.
 */
import { afterEach, describe, expect, it } from "vitest"
import {
  BedrockMultiplexer,
  CircuitBreakerState,
  createMultiplexer,
  ErrorType,
  type ErrorResponse,
  type ModelConfiguration,
  type ModelOutcome,
  MultiplexerError,
  OutcomeType,
  VERSION
} from "../../src/index.ts"
import { FakeBedrock } from "../../src/testing/index.ts"

const credentials = { accessKeyId: "fake", secretAccessKey: "fake" }
const pool: Array<ModelConfiguration> = [
  { modelId: "model-primary-1", weight: 100, isFallback: false },
  { modelId: "model-primary-2", weight: 50, isFallback: false },
  { modelId: "model-fallback-1", weight: 100, isFallback: true }
]
const healthy = { models: { "model-primary-1": { answer: "Hello!" }, "model-primary-2": { answer: "Hello!" }, "model-fallback-1": { answer: "Hello!" } } }
const input = { messages: [{ role: "user" as const, content: [{ text: "test" }] }] }

const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!()
})
const setup = async (script: Parameters<typeof FakeBedrock.start>[0] = healthy, options: Parameters<typeof createMultiplexer>[1] = {}, models = pool) => {
  const server = await FakeBedrock.start(script)
  closers.push(() => server.close())
  const mux = createMultiplexer(models, { maxRetries: 3, ...options, clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
  closers.push(() => mux.destroy())
  return { server, mux }
}

describe("exports", () => {
  it("VERSION is a semver string", () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it("the enum-likes have the original's values", () => {
    expect([OutcomeType.SUCCESS, OutcomeType.RATE_LIMIT, OutcomeType.FAIL_FAST, OutcomeType.REFUSAL]).toEqual([0, 1, 2, 3])
    expect(CircuitBreakerState).toEqual({ CLOSED: "CLOSED", OPEN: "OPEN", HALF_OPEN: "HALF_OPEN" })
    expect(Object.values(ErrorType)).toEqual([
      "VALIDATION", "THROTTLING", "MODEL_UNAVAILABLE", "TIMEOUT", "CANCELLED", "CIRCUIT_OPEN", "INTERNAL", "AUTHENTICATION", "NETWORK", "UNKNOWN"
    ])
  })

  it("createMultiplexer and new BedrockMultiplexer build the same thing, with defaults or overrides", async () => {
    const { mux } = await setup()
    expect(mux).toBeInstanceOf(BedrockMultiplexer)
    const direct = new BedrockMultiplexer({ models: pool, defaultTimeoutMs: 60_000, maxRetries: 5 })
    closers.push(() => direct.destroy())
    expect(Object.keys(direct.getStats().modelStats)).toHaveLength(3)
    expect(() => new BedrockMultiplexer({} as never)).toThrow()
  })

  it("the tracing option is accepted", async () => {
    const { mux } = await setup(healthy, { tracing: { enabled: false, serviceName: "test-service" } })
    expect(mux.isHealthy()).toBe(true)
  })
})

describe("processRequest", () => {
  it("resolves with the SDK's ConverseCommandOutput", async () => {
    const { mux } = await setup()
    const res = await mux.processRequest(input)
    expect(res.output?.message).toEqual({ role: "assistant", content: [{ text: "Hello!" }] })
    expect(res.stopReason).toBe("end_turn")
    expect(res.usage?.outputTokens).toBeGreaterThan(0)
  })

  it("emits request, model-selected, model-invocation-start/-complete, success then stats, in order, before it resolves", async () => {
    const { mux } = await setup()
    const log: Array<string> = []
    let requestArg: unknown
    mux.on("request", (i) => {
      requestArg = i
      log.push("request")
    })
    mux.on("model-selected", (_id, isFallback, retryCount) => log.push(`model-selected ${isFallback} ${retryCount}`))
    mux.on("model-invocation-start", (_id, requestId) => log.push(`start ${typeof requestId}`))
    mux.on("model-invocation-complete", (_id, _requestId, latency) => log.push(`complete ${typeof latency}`))
    mux.on("stats", (s) => log.push(`stats ${s.successCount}`))
    mux.on("success", (response, outcome: ModelOutcome) => log.push(`success ${outcome.type} ${response.stopReason}`))
    await mux.processRequest(input)
    expect(requestArg).toBe(input)
    // the original's order: its reportOutcome emits `success`, then `stats` (the success counted)
    expect(log).toEqual(["request", "model-selected false 0", "start string", "complete number", `success ${OutcomeType.SUCCESS} end_turn`, "stats 1"])
  })

  it("a failed attempt emits error then stats; the answer after it success then stats", async () => {
    const unavailableFirst = { faults: [{ when: { calls: [1] }, do: { kind: "error" as const, error: "ServiceUnavailableException" as const } }], answer: "Hello!" }
    const { mux } = await setup({ models: { "model-primary-1": unavailableFirst, "model-primary-2": unavailableFirst, "model-fallback-1": { answer: "Hello!" } } })
    const log: Array<string> = []
    mux.on("model-invocation-complete", () => log.push("complete"))
    mux.on("error", (e, outcome) => log.push(`error ${e?.code} ${outcome?.type}`))
    mux.on("stats", (s) => log.push(`stats ${s.failFastCount}/${s.successCount}`))
    mux.on("success", () => log.push("success"))
    await mux.processRequest(input)
    expect(log).toEqual(["complete", `error 503 ${OutcomeType.FAIL_FAST}`, "stats 1/0", "complete", `error 503 ${OutcomeType.FAIL_FAST}`, "stats 2/0", "complete", "success", "stats 2/1"])
  })

  it("an attempt cut off at its timeout emits error(timeout response, FAIL_FAST) then stats, as the original; the fallback answers", async () => {
    const models: Array<ModelConfiguration> = [{ modelId: "hangs", weight: 1, isFallback: false }, { modelId: "answers", weight: 1, isFallback: true }]
    const { mux } = await setup({ models: { hangs: { faults: [{ do: { kind: "hang" } }] }, answers: { answer: "Hello!" } } }, { defaultTimeoutMs: 300 }, models)
    const log: Array<string> = []
    const errors: Array<[ErrorResponse | null, ModelOutcome | null]> = []
    mux.on("model-invocation-complete", (id) => log.push(`complete ${id}`))
    mux.on("error", (e, outcome) => {
      errors.push([e, outcome])
      log.push("error")
    })
    mux.on("stats", (s) => log.push(`stats ${s.failFastCount}`))
    mux.on("success", () => log.push("success"))
    const res = await mux.processRequest(input)
    expect(res.routing.modelId).toBe("answers")
    expect(log).toEqual(["complete hangs", "error", "stats 1", "complete answers", "success", "stats 1"])
    expect(errors).toHaveLength(1)
    const [error, outcome] = errors[0]!
    expect(error).toMatchObject({ code: 500, message: "Request timed out after 300ms", details: { name: "TimeoutError" }, errorType: ErrorType.TIMEOUT, retryable: true, modelId: "hangs" })
    expect(outcome).toMatchObject({ modelId: "hangs", type: OutcomeType.FAIL_FAST, error })
    expect(outcome!.latency).toBeGreaterThanOrEqual(290)
    expect(mux.getStats().failFastCount).toBe(1)
    expect(mux.getCircuitBreakerStatus()["hangs"]).toEqual({ state: CircuitBreakerState.CLOSED, failureCount: 1 })
  })

  it("an attempt the caller gives up on did not fail: no error event with an outcome, only the request's final error(error, null)", async () => {
    const models: Array<ModelConfiguration> = [{ modelId: "hangs", weight: 1, isFallback: false }]
    const { server, mux } = await setup({ models: { hangs: { faults: [{ do: { kind: "hang" } }] } } }, {}, models)
    const outcomes: Array<ModelOutcome | null> = []
    mux.on("error", (_e, outcome) => outcomes.push(outcome))
    const controller = new AbortController()
    const pending = mux.processRequest(input, { abortSignal: controller.signal }).then(() => undefined, (e: unknown) => e)
    while (server.inFlight() === 0) await new Promise((r) => setImmediate(r))
    controller.abort()
    expect((await pending as Error).name).toBe("CancelledError")
    expect(outcomes).toEqual([null])
    expect(mux.getStats().failFastCount).toBe(0)
  })

  it("fails over on a throttle: the next model answers, retryCount counts the attempts before", async () => {
    const throttleFirst = { faults: [{ when: { calls: [1] }, do: { kind: "error" as const, error: "ThrottlingException" as const } }], answer: "Success!" }
    const { mux } = await setup({ models: { "model-primary-1": throttleFirst, "model-primary-2": throttleFirst, "model-fallback-1": { answer: "Success!" } } })
    const selected: Array<[string, boolean, number]> = []
    const errors: Array<[number | undefined, number | undefined]> = []
    mux.on("model-selected", (id, fb, n) => selected.push([id, fb, n]))
    mux.on("error", (e, outcome) => errors.push([e?.code, outcome?.type]))
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("Success!")
    expect(selected.map(([, fb, n]) => [fb, n])).toEqual([[false, 0], [false, 1], [true, 2]])
    expect(errors).toEqual([[429, OutcomeType.RATE_LIMIT], [429, OutcomeType.RATE_LIMIT]])
    expect(mux.getStats().rateLimitCount).toBe(2)
  })

  it("rejects after exhausting the retries, emitting error with a null outcome last", async () => {
    const throttle = { faults: [{ do: { kind: "error" as const, error: "ThrottlingException" as const } }] }
    const { mux } = await setup({ models: { "model-primary-1": throttle, "model-primary-2": throttle, "model-fallback-1": throttle } }, { maxRetries: 2 })
    const outcomes: Array<ModelOutcome | null> = []
    mux.on("error", (_e, outcome) => outcomes.push(outcome))
    const e = await mux.processRequest(input).then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(MultiplexerError)
    expect(["NO_MODELS_AVAILABLE", "RETRIES_EXHAUSTED"]).toContain((e as MultiplexerError).code)
    expect(outcomes.length).toBe(4)
    expect(outcomes.at(-1)).toBeNull()
  })
})

describe("stats", () => {
  it("start at zero with one entry per model", async () => {
    const { mux } = await setup()
    const s = mux.getStats()
    expect([s.successCount, s.rateLimitCount, s.failFastCount, s.refusalCount]).toEqual([0, 0, 0, 0])
    expect(Object.keys(s.modelStats).sort()).toEqual(["model-fallback-1", "model-primary-1", "model-primary-2"])
    expect(s.modelStats["model-fallback-1"]).toEqual({
      modelId: "model-fallback-1",
      successCount: 0,
      rateLimitCount: 0,
      failFastCount: 0,
      refusalCount: 0,
      averageLatency: 0,
      isFallback: true
    })
  })

  it("count successes and latency; resetStats starts again and emits stats-reset", async () => {
    const { mux } = await setup()
    await mux.processRequest(input)
    await mux.processRequest(input)
    const s = mux.getStats()
    expect(s.successCount).toBe(2)
    expect(Object.keys(s.latencyMetrics).sort()).toEqual(["average", "max", "min", "p50", "p95", "p99"])
    expect(s.latencyMetrics.average).toBeGreaterThanOrEqual(0)
    let reset = false
    mux.on("stats-reset", () => (reset = true))
    mux.resetStats()
    expect(reset).toBe(true)
    expect(mux.getStats().successCount).toBe(0)
  })
})

describe("health", () => {
  it("getHealthStatus has the original's shape", async () => {
    const { mux } = await setup()
    const h = mux.getHealthStatus()
    expect(h).toMatchObject({ isHealthy: true, totalModels: 3, healthyModels: 3, degradedModels: 0, unhealthyModels: 0 })
    expect(h.timestamp).toBeInstanceOf(Date)
    expect(Object.keys(h.metrics).sort()).toEqual(["averageLatencyMs", "p99LatencyMs", "successRate", "totalRequests"])
    expect(Object.keys(h.models["model-primary-1"]!).sort()).toEqual(
      ["avgResponseTimeMs", "circuitState", "errorRate", "isHealthy", "modelId", "requestsPerMinute"]
    )
  })

  it("getModelHealthStatus returns the model's health, or null for an unknown model", async () => {
    const { mux } = await setup()
    await mux.processRequest(input)
    const m = mux.getModelHealthStatus("model-primary-1")!
    expect(m).toMatchObject({ modelId: "model-primary-1", circuitState: CircuitBreakerState.CLOSED, isHealthy: true })
    expect(mux.getModelHealthStatus("unknown")).toBeNull()
  })

  it("getSimpleHealthCheck and isHealthy: 200 / true on a fresh pool, a single model included", async () => {
    const { mux } = await setup()
    expect(mux.getSimpleHealthCheck()).toEqual({ status: "healthy", code: 200 })
    expect(mux.isHealthy()).toBe(true)
    const { mux: single } = await setup(healthy, {}, [pool[0]!])
    expect(single.isHealthy()).toBe(true)
  })

  it("getCircuitBreakerStatus gives state and failure count per model; failures are counted once each", async () => {
    const down = { faults: [{ do: { kind: "error" as const, error: "ServiceUnavailableException" as const } }] }
    const { mux } = await setup({ models: { "model-primary-1": down, "model-primary-2": down, "model-fallback-1": down } })
    expect(mux.getCircuitBreakerStatus()["model-primary-1"]).toEqual({ state: CircuitBreakerState.CLOSED, failureCount: 0 })
    await mux.processRequest(input).catch(() => undefined)
    const status = mux.getCircuitBreakerStatus()
    expect(Object.values(status).reduce((n, s) => n + s.failureCount, 0)).toBe(3)
    expect(Object.values(status).every((s) => s.state === CircuitBreakerState.CLOSED)).toBe(true)
  })
})

describe("events API", () => {
  it("on, once and off behave as on any EventEmitter", async () => {
    const { mux } = await setup()
    let on = 0
    let once = 0
    const listener = () => on++
    mux.on("request", listener)
    mux.once("request", () => once++)
    await mux.processRequest(input)
    mux.off("request", listener)
    await mux.processRequest(input)
    expect([on, once]).toEqual([1, 1])
  })
})
