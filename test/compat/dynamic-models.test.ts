/**
 * The original's `addModel` / `removeModel` at run time, over the core's
 * `mux.addModel` / `mux.removeModel`: the pool, stats, health and events
 * follow; a request in flight on a removed model finishes; an emptied pool
 * is unhealthy; a re-added model starts with a fresh breaker; a bad entry is
 * a `MuxConfigError` (the original accepts anything).
 */
import { afterEach, describe, expect, it } from "vitest"
import { BedrockSimulator, CircuitBreakerState, createMultiplexer, MultiplexerError, MuxConfig } from "../../src/index.ts"
import { FakeBedrock } from "../../src/testing/index.ts"

const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!()
})
const input = { messages: [{ role: "user" as const, content: [{ text: "hi" }] }] }
const credentials = { accessKeyId: "fake", secretAccessKey: "fake" }

describe("addModel / removeModel", () => {
  it("adds and removes at run time, with model-added / model-removed, stats and health updated", async () => {
    const mux = createMultiplexer([{ modelId: "model-1", weight: 100, isFallback: false }], {
      bedrockRuntime: BedrockSimulator.layer({ models: { "model-1": {}, "model-2": {} } })
    })
    closers.push(() => mux.destroy())
    const events: Array<string> = []
    mux.on("model-added", (id) => events.push(`added:${id}`))
    mux.on("model-removed", (id) => events.push(`removed:${id}`))
    mux.on("model-selected", (id, isFallback) => events.push(`selected:${id}:${isFallback}`))
    mux.addModel({ modelId: "model-2", weight: 50, isFallback: true })
    expect(mux.getStats().modelStats["model-2"]?.isFallback).toBe(true)
    expect(mux.getHealthStatus().totalModels).toBe(2)
    expect(mux.getModelHealthStatus("model-2")).toMatchObject({ modelId: "model-2", isHealthy: true, circuitState: "CLOSED" })
    mux.removeModel("model-1")
    expect(mux.getStats().modelStats["model-1"]).toBeUndefined()
    expect(mux.getModelHealthStatus("model-1")).toBeNull()
    const res = await mux.processRequest(input)
    expect(res.routing.modelId).toBe("model-2")
    // the pool's only model now, so the route's first tier; model-selected still says fallback, as the original (the model's own flag)
    expect(res.routing.fallbackUsed).toBe(false)
    expect(() => mux.removeModel("non-existent")).not.toThrow()
    expect(events).toEqual(["added:model-2", "removed:model-1", "selected:model-2:true"])
  })

  it("a request in flight on a removed model finishes there; the next one goes elsewhere", async () => {
    const server = await FakeBedrock.start({ models: { slow: { latency: 200 }, other: {} } })
    closers.push(() => server.close())
    const mux = createMultiplexer([{ modelId: "slow", weight: 1, isFallback: false }, { modelId: "other", weight: 1, isFallback: true }], {
      clientConfig: { region: "us-east-1", endpoint: server.url, credentials }
    })
    closers.push(() => mux.destroy())
    const pending = mux.processRequest(input)
    while (server.inFlight() === 0) await new Promise((r) => setImmediate(r))
    mux.removeModel("slow")
    expect((await pending).routing.modelId).toBe("slow")
    expect((await mux.processRequest(input)).routing.modelId).toBe("other")
    expect(server.attempts().map((a) => a.modelId)).toEqual(["slow", "other"])
  })

  it("a pool emptied by removeModel is unhealthy (503), as processRequest rejects with NO_MODELS_AVAILABLE", async () => {
    const mux = createMultiplexer([{ modelId: "model-1", weight: 1, isFallback: false }, { modelId: "model-2", weight: 1, isFallback: true }], {
      bedrockRuntime: BedrockSimulator.layer({ models: { "model-1": {}, "model-2": {} } })
    })
    closers.push(() => mux.destroy())
    mux.removeModel("model-1")
    expect(mux.isHealthy()).toBe(true)
    mux.removeModel("model-2")
    expect(mux.isHealthy()).toBe(false)
    expect(mux.getSimpleHealthCheck()).toEqual({ status: "unhealthy", code: 503 })
    expect(mux.getHealthStatus()).toMatchObject({ isHealthy: false, totalModels: 0, healthyModels: 0 })
    const e = await mux.processRequest(input).then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(MultiplexerError)
    expect((e as MultiplexerError).code).toBe("NO_MODELS_AVAILABLE")
    mux.addModel({ modelId: "model-1", weight: 1, isFallback: false })
    expect(mux.getSimpleHealthCheck()).toEqual({ status: "healthy", code: 200 })
  })

  it("a removed and re-added model gets a fresh breaker, as the original: CLOSED with no failures, and it takes the next request", async () => {
    const server = await FakeBedrock.start({
      models: { a: { faults: [{ when: { calls: [1, 2] }, do: { kind: "error", error: "ServiceUnavailableException" } }], answer: "from a" }, b: { answer: "from b" } }
    })
    closers.push(() => server.close())
    const mux = createMultiplexer([{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: true }], {
      breaker: { failures: 2 },
      clientConfig: { region: "us-east-1", endpoint: server.url, credentials }
    })
    closers.push(() => mux.destroy())
    expect((await mux.processRequest(input)).routing.modelId).toBe("b")
    expect((await mux.processRequest(input)).routing.modelId).toBe("b")
    // the pair from the breaker's own state: OPEN on 2 failures reads 2, after resetStats too
    expect(mux.getCircuitBreakerStatus()["a"]).toEqual({ state: CircuitBreakerState.OPEN, failureCount: 2 })
    mux.resetStats()
    expect(mux.getCircuitBreakerStatus()["a"]).toEqual({ state: CircuitBreakerState.OPEN, failureCount: 2 })
    const skipped: Array<string> = []
    mux.on("model-circuit-open-skipped", (id) => skipped.push(id))
    mux.removeModel("a")
    mux.addModel({ modelId: "a", weight: 1, isFallback: false })
    expect(mux.getCircuitBreakerStatus()["a"]).toEqual({ state: CircuitBreakerState.CLOSED, failureCount: 0 })
    expect(mux.getModelHealthStatus("a")).toMatchObject({ isHealthy: true, circuitState: CircuitBreakerState.CLOSED })
    expect((await mux.processRequest(input)).routing.modelId).toBe("a")
    expect(skipped).toEqual([])
  })

  it("an entry is checked like a config entry: a bad one, or one already in the pool, throws MuxConfigError", async () => {
    const mux = createMultiplexer([{ modelId: "model-1", weight: 1, isFallback: false }], { bedrockRuntime: BedrockSimulator.layer({ models: { "model-1": {} } }) })
    closers.push(() => mux.destroy())
    const added: Array<string> = []
    mux.on("model-added", (id) => added.push(id))
    expect(() => mux.addModel({ modelId: "model-2", weight: -1, isFallback: false })).toThrow(MuxConfig.MuxConfigError)
    expect(() => mux.addModel({ modelId: "model-1", weight: 1, isFallback: false })).toThrow(/already in the pool/)
    expect(() => mux.addModel({ modelId: "model-3", weight: 1, isFallback: false, isFallbak: true } as never)).toThrow(/isFallbak/)
    expect(added).toEqual([])
    expect(mux.getHealthStatus().totalModels).toBe(1)
  })

  it("tierEscalation applies to a model added later; its counters start from zero after a resetStats", async () => {
    const mux = createMultiplexer([{ modelId: "model-1", weight: 1, isFallback: false }], {
      tierEscalation: { enabled: true, escalationTier: "priority" },
      bedrockRuntime: BedrockSimulator.layer({
        models: { "model-1": {}, "model-2": { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException" } }] } }
      })
    })
    closers.push(() => mux.destroy())
    mux.addModel({ modelId: "model-2", weight: 1, isFallback: false })
    mux.removeModel("model-1")
    const res = await mux.processRequest(input)
    expect(res.routing.attempts.map((a) => [a.modelId, a.decision, a.serviceTier])).toEqual([["model-2", "escalate", undefined], ["model-2", undefined, "priority"]])
    mux.resetStats()
    mux.removeModel("model-2")
    mux.addModel({ modelId: "model-2", weight: 1, isFallback: false })
    expect(mux.getStats().modelStats["model-2"]).toMatchObject({ successCount: 0, rateLimitCount: 0 })
  })
})
