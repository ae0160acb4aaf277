/**
 * The Promise facade, through the real SDK over loopback (FakeBedrock) and on
 * the simulator: aws-samples-compatible calls, error contract, health shapes,
 * and where it beats the original (5xx and timeouts fail over, a timeout
 * aborts the HTTP request, validation never opens a breaker).
 */
import { ServiceUnavailableException, ValidationException } from "@aws-sdk/client-bedrock-runtime"
import { afterEach, describe, expect, it } from "vitest"
import { BedrockSimulator, createMultiplexer, MuxConfig, MultiplexerError } from "../src/index.ts"
import { FakeBedrock } from "../src/testing/index.ts"

const input = { messages: [{ role: "user" as const, content: [{ text: "Explain quantum computing" }] }] }
const models = [
  { modelId: "primary", weight: 100, isFallback: false },
  { modelId: "fallback", weight: 30, isFallback: true }
]
const credentials = { accessKeyId: "fake", secretAccessKey: "fake" }

const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!()
})

const fake = async (script: Parameters<typeof FakeBedrock.start>[0]) => {
  const server = await FakeBedrock.start(script)
  closers.push(() => server.close())
  return server
}

describe("createMultiplexer over the real SDK", () => {
  it("fails over on a 503 (the original fails the request) and answers from the fallback", async () => {
    const server = await fake({
      models: {
        primary: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
        fallback: { answer: "from the fallback" }
      }
    })
    const mux = createMultiplexer(models, { clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
    closers.push(() => mux.destroy())
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("from the fallback")
    expect(res.routing.modelId).toBe("fallback")
    expect(res.routing.attempts.map((a) => [a.modelId, a.reason ?? "ok"])).toEqual([["primary", "ServiceUnavailable"], ["fallback", "ok"]])
    // SDK retries are off: one request per attempt
    expect(server.attempts().map((a) => a.modelId)).toEqual(["primary", "fallback"])
  })

  it("a timeout aborts the HTTP request and fails over", async () => {
    const server = await fake({ models: { primary: { faults: [{ do: { kind: "hang" } }] }, fallback: {} } })
    // the attempt timeout also bounds the fallback's answer: far above a loopback call on a loaded machine
    const mux = createMultiplexer(models, { defaultTimeoutMs: 1_000, clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
    closers.push(() => mux.destroy())
    const res = await mux.processRequest(input)
    expect(res.routing.modelId).toBe("fallback")
    expect(res.routing.attempts[0]).toMatchObject({ modelId: "primary", reason: "DeadlineExceeded" })
    expect(await server.waitForIdle(5_000)).toBe(true)
    expect(server.attempts().find((a) => a.modelId === "primary")?.outcome).toBe("interrupted")
  })

  it("a fail-fast error is thrown as the SDK's own error and never opens a breaker", async () => {
    const server = await fake({ models: { primary: { faults: [{ do: { kind: "error", error: "ValidationException" } }] }, fallback: {} } })
    const mux = createMultiplexer(models, { clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
    closers.push(() => mux.destroy())
    for (let i = 0; i < 8; i++) {
      const error = await mux.processRequest(input).then(() => undefined, (e: unknown) => e)
      expect(error).toBeInstanceOf(ValidationException)
    }
    const health = mux.getHealthStatus()
    expect(health.models["primary"]!.circuitState).toBe("CLOSED")
    expect(mux.getStats().failFastCount).toBe(8)
    expect(server.attempts().every((a) => a.modelId === "primary")).toBe(true)
  })

  it("NO_MODELS_AVAILABLE carries the attempts and the last SDK error", async () => {
    const down = { faults: [{ do: { kind: "error" as const, error: "ServiceUnavailableException" as const } }] }
    const server = await fake({ models: { primary: down, fallback: down } })
    const mux = createMultiplexer(models, { clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
    closers.push(() => mux.destroy())
    const error = await mux.processRequest(input).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(MultiplexerError)
    const e = error as MultiplexerError
    expect(e.code).toBe("NO_MODELS_AVAILABLE")
    expect((e.details["attempts"] as ReadonlyArray<unknown>).length).toBe(2)
    expect(e.sdkError).toBeInstanceOf(ServiceUnavailableException)
  })
})

describe("createMultiplexer shapes and config", () => {
  it("a bad config throws MuxConfigError from createMultiplexer itself, listing every problem", () => {
    let thrown: unknown
    try {
      createMultiplexer([{ modelId: "a", weight: -1, isFallback: true }, { modelId: "a", weight: 1, isFallback: true }])
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(MuxConfig.MuxConfigError)
    const paths = (thrown as MuxConfig.MuxConfigError).problems.map((p) => p.path)
    expect(paths).toEqual(expect.arrayContaining(["models[0].weight", "models[1].modelId", "models"]))
  })

  it("maxRetries n gives n + 1 attempts, then RETRIES_EXHAUSTED", async () => {
    const down = { faults: [{ do: { kind: "error" as const, error: "InternalServerException" as const } }] }
    const mux = createMultiplexer(
      [{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: false }, { modelId: "c", weight: 1, isFallback: true }],
      { maxRetries: 2, bedrockRuntime: BedrockSimulator.layer({ models: { a: down, b: down, c: down } }) }
    )
    closers.push(() => mux.destroy())
    const error = (await mux.processRequest(input).then(() => undefined, (e: unknown) => e)) as MultiplexerError
    expect(error.code).toBe("RETRIES_EXHAUSTED")
    expect((error.details["attempts"] as ReadonlyArray<unknown>).length).toBe(3)
  })

  it("getStats, getHealthStatus and getSimpleHealthCheck have the original's shapes", async () => {
    const mux = createMultiplexer(models, {
      bedrockRuntime: BedrockSimulator.layer({ models: { primary: { rpm: 1 }, fallback: {} } })
    })
    closers.push(() => mux.destroy())
    await mux.processRequest(input)
    await mux.processRequest(input)
    const stats = mux.getStats()
    expect(stats.successCount).toBe(2)
    expect(stats.rateLimitCount).toBe(1)
    expect(stats.modelStats["primary"]).toMatchObject({ modelId: "primary", successCount: 1, rateLimitCount: 1, isFallback: false })
    expect(stats.modelStats["fallback"]).toMatchObject({ successCount: 1, isFallback: true })
    expect(Object.keys(stats.latencyMetrics).sort()).toEqual(["average", "max", "min", "p50", "p95", "p99"])
    // the throttle put the primary in a cooldown: out of rotation, but its breaker stays closed (quota is not health)
    const health = mux.getHealthStatus()
    expect(health).toMatchObject({ isHealthy: true, totalModels: 2, healthyModels: 1, unhealthyModels: 1 })
    expect(health.models["primary"]).toMatchObject({ circuitState: "CLOSED", isHealthy: false })
    expect(health.models["fallback"]).toMatchObject({ circuitState: "CLOSED", isHealthy: true })
    expect(health.metrics.totalRequests).toBe(2)
    expect(mux.getSimpleHealthCheck()).toEqual({ status: "healthy", code: 200 })
  })
})
