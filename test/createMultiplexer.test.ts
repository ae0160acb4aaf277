/**
 * The Promise facade beyond the original's documented behaviour (that is
 * test/compat/): where it differs on purpose (5xx and timeouts fail over, a
 * timeout aborts the HTTP request, validation never opens a breaker), the
 * error shapes, strict options, the derived deadline, aborts, destroy,
 * escalation events, tracing. Through the real SDK over loopback
 * (FakeBedrock) unless the simulator is enough.
 */
import { BedrockRuntimeClient, ValidationException } from "@aws-sdk/client-bedrock-runtime"
import { trace } from "@opentelemetry/api"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Duration, Effect, Layer, Stream } from "effect"
import fc from "fast-check"
import { getEventListeners } from "node:events"
import { afterEach, describe, expect, it } from "vitest"
import {
  BedrockMux,
  BedrockRuntime,
  BedrockSimulator,
  CancelledError,
  createMultiplexer,
  type ErrorResponse,
  FailFastError,
  MuxConfig,
  MultiplexerError,
  type ModelConfiguration,
  type ModelOutcome,
  type MuxConfigFields,
  OutcomeType,
  Policy,
  TimeoutError
} from "../src/index.ts"
import { toMuxInput } from "../src/internal/facade/options.ts"
import { FakeBedrock } from "../src/testing/index.ts"

const input = { messages: [{ role: "user" as const, content: [{ text: "Explain quantum computing" }] }] }
const models = [
  { modelId: "primary", weight: 100, isFallback: false },
  { modelId: "fallback", weight: 30, isFallback: true }
]
const credentials = { accessKeyId: "fake", secretAccessKey: "fake" }
const error = (name: "ServiceUnavailableException" | "ValidationException" | "ThrottlingException" | "InternalServerException") => ({
  faults: [{ do: { kind: "error" as const, error: name } }]
})

const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!()
})

const fake = async (script: Parameters<typeof FakeBedrock.start>[0]) => {
  const server = await FakeBedrock.start(script)
  closers.push(() => server.close())
  return server
}
const over = (server: { readonly url: string }, options: Parameters<typeof createMultiplexer>[1] = {}, pool: Parameters<typeof createMultiplexer>[0] = models) => {
  const mux = createMultiplexer(pool, { ...options, clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
  closers.push(() => mux.destroy())
  return mux
}
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e)

describe("the facade's answer", () => {
  it("from a runtime other than the SDK's is a copy with a hidden routing: the runtime's objects are never changed", async () => {
    const frozen = Object.freeze({ output: { message: { role: "assistant" as const, content: [{ text: "hi" }] } }, stopReason: "end_turn" as const, usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 }, $metadata: {} })
    // a constant that already carries an enumerable routing of its own (another mux's answer, say)
    const withRouting = { ...frozen, routing: { modelId: "elsewhere" } }
    const shared = { ...frozen }
    let answer: object = frozen
    const runtime = Layer.succeed(BedrockRuntime, {
      converse: () => Effect.sync(() => answer),
      converseStream: () => Stream.empty
    } as unknown as BedrockRuntime["Service"])
    const mux = createMultiplexer([{ modelId: "a", weight: 1, isFallback: false }], { bedrockRuntime: runtime })
    closers.push(() => mux.destroy())
    const answers = []
    for (const a of [frozen, shared, shared, withRouting]) {
      answer = a
      const res = await mux.processRequest(input)
      expect(res).not.toBe(a)
      expect(res.routing.modelId).toBe("a")
      expect(Object.keys(res)).not.toContain("routing")
      expect(JSON.parse(JSON.stringify(res))).toEqual(JSON.parse(JSON.stringify(frozen)))
      answers.push(res)
    }
    expect(Object.getOwnPropertyNames(shared)).not.toContain("routing")
    expect(withRouting.routing).toEqual({ modelId: "elsewhere" })
    expect(new Set(answers.map((r) => r.routing.requestId)).size).toBe(4)
  })

  it("from a runtime of the user's own that offers sendConverse is a copy too: only the SDK runtime's fresh outputs carry routing themselves", async () => {
    const shared = { output: { message: { role: "assistant" as const, content: [{ text: "hi" }] } }, stopReason: "end_turn" as const, usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 }, $metadata: {} }
    let sent = 0
    const runtime = Layer.succeed(BedrockRuntime, {
      converse: () => Effect.sync(() => shared),
      sendConverse: () => {
        sent++
        return Promise.resolve(shared)
      },
      converseStream: () => Stream.empty
    } as unknown as BedrockRuntime["Service"])
    const mux = createMultiplexer([{ modelId: "a", weight: 1, isFallback: false }], { bedrockRuntime: runtime })
    closers.push(() => mux.destroy())
    const first = await mux.processRequest(input)
    const second = await mux.processRequest(input)
    expect(sent).toBe(2)
    for (const res of [first, second]) {
      expect(res).not.toBe(shared)
      expect(res.routing.modelId).toBe("a")
      expect(Object.keys(res)).not.toContain("routing")
    }
    expect(first.routing.requestId).not.toBe(second.routing.requestId)
    expect(Object.getOwnPropertyNames(shared)).not.toContain("routing")
  })

  it("from the SDK's own runtime is the SDK's output object itself, routing defined on it, hidden", async () => {
    const server = await fake({ models: { primary: { answer: "hello" } } })
    const client = new BedrockRuntimeClient({ region: "us-east-1", endpoint: server.url, credentials, maxAttempts: 1 })
    closers.push(async () => client.destroy())
    // the object client.send resolves with, as the SDK's outermost middleware sees it
    const outputs: Array<object> = []
    client.middlewareStack.add((next) => async (args) => {
      const result = await next(args)
      outputs.push(result.output as object)
      return result
    }, { step: "initialize" })
    const mux = createMultiplexer([{ modelId: "primary", weight: 1, isFallback: false }], { bedrockRuntime: BedrockRuntime.layerClient(client) })
    closers.push(() => mux.destroy())
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("hello")
    expect(outputs).toHaveLength(1)
    expect(res).toBe(outputs[0])
    expect(Object.getOwnPropertyDescriptor(res, "routing")).toMatchObject({ enumerable: false, writable: true, configurable: true })
    expect(res.routing.modelId).toBe("primary")
  })
})

describe("where the facade differs from the original on purpose", () => {
  it("fails over on a 503 and answers from the fallback; routing is there but not enumerable", async () => {
    const server = await fake({ models: { primary: error("ServiceUnavailableException"), fallback: { answer: "from the fallback" } } })
    const mux = over(server)
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("from the fallback")
    expect(res.routing.modelId).toBe("fallback")
    expect(res.routing.attempts.map((a) => [a.modelId, a.reason ?? "ok"])).toEqual([["primary", "ServiceUnavailable"], ["fallback", "ok"]])
    // JSON and key listings see the SDK's output only
    expect(Object.keys(res)).not.toContain("routing")
    expect(JSON.parse(JSON.stringify(res))).not.toHaveProperty("routing")
    expect(server.attempts().map((a) => a.modelId)).toEqual(["primary", "fallback"])
  })

  it("a timeout aborts the HTTP request and fails over", async () => {
    const server = await fake({ models: { primary: { faults: [{ do: { kind: "hang" } }] }, fallback: {} } })
    // the attempt timeout also bounds the fallback's answer: far above a loopback call on a loaded machine
    const mux = over(server, { defaultTimeoutMs: 1_000 })
    const res = await mux.processRequest(input)
    expect(res.routing.modelId).toBe("fallback")
    expect(res.routing.attempts[0]).toMatchObject({ modelId: "primary", reason: "DeadlineExceeded" })
    expect(await server.waitForIdle(5_000)).toBe(true)
    expect(server.attempts().find((a) => a.modelId === "primary")?.outcome).toBe("interrupted")
  })

  it("a fail-fast error is a FailFastError with the SDK exception as cause, and never opens a breaker", async () => {
    const server = await fake({ models: { primary: error("ValidationException"), fallback: {} } })
    const mux = over(server)
    for (let i = 0; i < 8; i++) {
      const e = await rejection(mux.processRequest(input))
      expect(e).toBeInstanceOf(FailFastError)
      const f = e as FailFastError
      expect(f.name).toBe("FailFastError")
      expect(f.cause).toBeInstanceOf(ValidationException)
      expect(f.message).toBe((f.cause as Error).message)
      expect(f.errorResponse).toMatchObject({ code: 400, details: { name: "ValidationException", reason: "Validation" } })
      expect(f.outcome).toMatchObject({ modelId: "primary", type: 2, error: f.errorResponse })
      expect(f.outcome.timestamp).toBeInstanceOf(Date)
    }
    expect(mux.getHealthStatus().models["primary"]!.circuitState).toBe("CLOSED")
    expect(mux.getCircuitBreakerStatus()["primary"]).toEqual({ state: "CLOSED", failureCount: 0 })
    expect(mux.getStats().failFastCount).toBe(8)
    expect(server.attempts().every((a) => a.modelId === "primary")).toBe(true)
  })
})

describe("errors", () => {
  it("a one-model pool whose attempt times out throws TimeoutError, not NO_MODELS_AVAILABLE", async () => {
    const server = await fake({ models: { only: { faults: [{ do: { kind: "hang" } }] } } })
    const mux = over(server, { defaultTimeoutMs: 150 }, [{ modelId: "only", weight: 1, isFallback: false }])
    const e = await rejection(mux.processRequest(input))
    expect(e).toBeInstanceOf(TimeoutError)
    const t = e as TimeoutError
    expect([t.name, t.message, t.code]).toEqual(["TimeoutError", "Request timed out after 150ms", "TIMEOUT"])
    expect(t.outcome).toMatchObject({ modelId: "only", type: 2 })
    expect(t.errorResponse).toMatchObject({ errorType: "TIMEOUT", retryable: true, modelId: "only" })
    expect(await server.waitForIdle(2_000)).toBe(true)
  })

  it("the request deadline throws TimeoutError naming the deadline", async () => {
    const server = await fake({ models: { primary: { faults: [{ do: { kind: "hang" } }] }, fallback: { faults: [{ do: { kind: "hang" } }] } } })
    const mux = over(server, { timeout: 150, deadline: 200 })
    const t = (await rejection(mux.processRequest(input))) as TimeoutError
    expect([t.name, t.message]).toEqual(["TimeoutError", "Request timed out after 200ms"])
  })

  it("NO_MODELS_AVAILABLE keeps the original's details keys next to ours, and the last SDK error", async () => {
    const server = await fake({ models: { primary: error("ServiceUnavailableException"), fallback: error("ServiceUnavailableException") } })
    const mux = over(server)
    const e = (await rejection(mux.processRequest(input))) as MultiplexerError
    expect(e).toBeInstanceOf(MultiplexerError)
    expect(e.code).toBe("NO_MODELS_AVAILABLE")
    expect(e.details).toMatchObject({ skippedModels: ["primary", "fallback"], totalSkipped: 2, reason: "NoModelsAvailable" })
    expect((e.details!["attempts"] as ReadonlyArray<unknown>).length).toBe(2)
    expect((e.sdkError as Error).name).toBe("ServiceUnavailableException")
  })

  it("maxRetries n gives n + 1 attempts, then RETRIES_EXHAUSTED with the original's keys", async () => {
    const down = error("InternalServerException")
    const mux = createMultiplexer(
      [{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: false }, { modelId: "c", weight: 1, isFallback: true }],
      { maxRetries: 2, bedrockRuntime: BedrockSimulator.layer({ models: { a: down, b: down, c: down } }) }
    )
    closers.push(() => mux.destroy())
    const e = (await rejection(mux.processRequest(input))) as MultiplexerError
    expect(e.code).toBe("RETRIES_EXHAUSTED")
    expect(e.message).toBe("All retry attempts exhausted (2 retries)")
    expect(e.details).toMatchObject({ maxRetries: 2, actualRetries: 2, totalSkipped: expect.any(Number), lastError: expect.any(String) })
    expect((e.details!["attempts"] as ReadonlyArray<unknown>).length).toBe(3)
  })

  it("every model throttled until the attempts run out: NO_MODELS_AVAILABLE, the original's code for a pool with no model left", async () => {
    const throttled = error("ThrottlingException")
    const mux = createMultiplexer(models, { maxRetries: 3, bedrockRuntime: BedrockSimulator.layer({ models: { primary: throttled, fallback: throttled } }) })
    closers.push(() => mux.destroy())
    const e = (await rejection(mux.processRequest(input))) as MultiplexerError
    // the original's example 03 backs off and retries on exactly this code
    expect(e.code).toBe("NO_MODELS_AVAILABLE")
    expect(e.details).toMatchObject({ skippedModels: expect.arrayContaining(["primary", "fallback"]), totalSkipped: 2, reason: "AttemptsExhausted" })
    expect((e.details!["attempts"] as ReadonlyArray<{ readonly reason?: string }>).map((a) => a.reason)).toEqual(["Throttled", "Throttled", "Throttled", "Throttled"])
    // each model of the route, why it is out, and when the first one is back
    // (the shape of the engine's NoModelsAvailable models)
    const out = e.details!["models"] as ReadonlyArray<{ readonly modelId: string; readonly breaker: string; readonly excluded: string; readonly recoversAt?: number }>
    expect(out.map((m) => [m.modelId, m.breaker, m.excluded]).sort()).toEqual([["fallback", "closed", "cooldown"], ["primary", "closed", "cooldown"]])
    expect(out.every((m) => m.recoversAt !== undefined)).toBe(true)
    expect(e.details!["earliestRecovery"]).toBe(Math.min(...out.map((m) => m.recoversAt!)))
    expect(mux.isHealthy()).toBe(false)
  })

  it("a model added since the start that could take the request: RETRIES_EXHAUSTED, not NO_MODELS_AVAILABLE", async () => {
    const throttled = error("ThrottlingException")
    const mux = createMultiplexer(
      [{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: false }],
      { maxRetries: 1, bedrockRuntime: BedrockSimulator.layer({ models: { a: throttled, b: throttled, c: {} } }) }
    )
    closers.push(() => mux.destroy())
    mux.addModel({ modelId: "c", weight: 1, isFallback: true })
    const e = (await rejection(mux.processRequest(input))) as MultiplexerError
    expect(e.code).toBe("RETRIES_EXHAUSTED")
    expect(mux.isHealthy()).toBe(true)
  })

  it("a labelled request: NO_MODELS_AVAILABLE when every model of its route is out, whatever the rest of the pool", async () => {
    const throttled = error("ThrottlingException")
    const mux = createMultiplexer(
      [{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: false }, { modelId: "c", weight: 1, isFallback: false }],
      { maxRetries: 3, routes: { pair: ["a", "b"] }, bedrockRuntime: BedrockSimulator.layer({ models: { a: throttled, b: throttled, c: {} } }) }
    )
    closers.push(() => mux.destroy())
    const e = (await rejection(mux.processRequest(input, { label: "pair" }))) as MultiplexerError
    expect(e.code).toBe("NO_MODELS_AVAILABLE")
    expect((e.details!["models"] as ReadonlyArray<{ readonly modelId: string }>).map((m) => m.modelId).sort()).toEqual(["a", "b"])
    // c could take traffic all along
    expect(mux.isHealthy()).toBe(true)
  })

  it("the attempts run out while a model could still take the request: RETRIES_EXHAUSTED", async () => {
    const throttled = error("ThrottlingException")
    const mux = createMultiplexer(
      [{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: false }, { modelId: "c", weight: 1, isFallback: true }],
      { maxRetries: 1, bedrockRuntime: BedrockSimulator.layer({ models: { a: throttled, b: throttled, c: {} } }) }
    )
    closers.push(() => mux.destroy())
    const e = (await rejection(mux.processRequest(input))) as MultiplexerError
    expect(e.code).toBe("RETRIES_EXHAUSTED")
    expect(e.details).toMatchObject({ maxRetries: 1, actualRetries: 1, skippedModels: expect.arrayContaining(["a", "b"]) })
    expect(mux.isHealthy()).toBe(true)
  })

  it("MultiplexerError keeps the original's constructor (message, code, details?)", () => {
    const e = new MultiplexerError("no capacity", "NO_MODELS_AVAILABLE", { skippedModels: ["a"] })
    expect([e.name, e.message, e.code, e.details]).toEqual(["MultiplexerError", "no capacity", "NO_MODELS_AVAILABLE", { skippedModels: ["a"] }])
    expect(e).toBeInstanceOf(Error)
    expect(new MultiplexerError("x", "Y").details).toBeUndefined()
  })
})

describe("options", () => {
  const problemsOf = (f: () => unknown) => {
    try {
      f()
    } catch (e) {
      expect(e).toBeInstanceOf(MuxConfig.MuxConfigError)
      return (e as MuxConfig.MuxConfigError).problems
    }
    throw new Error("expected a MuxConfigError")
  }
  const sim = BedrockSimulator.layer({ models: { primary: {}, fallback: {} } })

  it("a bad config throws MuxConfigError listing every problem", () => {
    const paths = problemsOf(() =>
      createMultiplexer([{ modelId: "a", weight: -1, isFallback: true }, { modelId: "a", weight: 1, isFallback: true }])
    ).map((p) => p.path)
    expect(paths).toEqual(expect.arrayContaining(["models[0].weight", "models[1].modelId", "models"]))
  })

  it("an option we don't support is an error with a suggestion, at every depth of the facade's own options", () => {
    const problems = problemsOf(() =>
      createMultiplexer(models, {
        region: "us-east-1",
        defaultTimeoutMS: 5_000,
        tracing: { enabled: false, captureBody: true },
        tierEscalation: { enabled: true, escalationTier: "premium" },
        refusalDetection: { enabled: false, confidenceThreshold: 2 }
      } as never)
    )
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]))
    expect(byPath["region"]).toMatch(/clientConfig\.region/)
    expect(byPath["defaultTimeoutMS"]).toMatch(/did you mean `defaultTimeoutMs`\?/)
    expect(byPath["tracing.captureBody"]).toMatch(/did you mean `captureBodies`\?/)
    expect(byPath["tierEscalation.escalationTier"]).toMatch(/"priority" or "reserved"/)
    expect(byPath["refusalDetection.confidenceThreshold"]).toMatch(/\[0, 1\]/)
  })

  it("the original's failover example as it is: a top-level maxAttempts: 1 beside clientConfig.maxAttempts: 1", async () => {
    const server = await fake({ models: { primary: { answer: "from primary", ...error("ThrottlingException") }, fallback: { answer: "from fallback" } } })
    // aws-samples src/examples/03: `createMultiplexer(models, { maxRetries: 3, maxAttempts: 1, clientConfig: { region, maxAttempts: 1 } })`
    const mux = createMultiplexer(models, {
      maxRetries: 3,
      maxAttempts: 1,
      clientConfig: { region: "us-east-1", endpoint: server.url, credentials, maxAttempts: 1 }
    })
    closers.push(() => mux.destroy())
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("from fallback")
    expect(server.attempts().map((a) => a.modelId)).toEqual(["primary", "fallback"])
  })

  it("a top-level maxAttempts is the SDK's attempts per call, as clientConfig.maxAttempts", async () => {
    // the primary throttles its first call only: with 2 SDK attempts the SDK retries it, and the mux sees one success
    const server = await fake({
      models: {
        primary: { answer: "from primary", faults: [{ when: { calls: 1 }, do: { kind: "error", error: "ThrottlingException" } }] },
        fallback: { answer: "from fallback" }
      }
    })
    const mux = createMultiplexer(models, { maxAttempts: 2, clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
    closers.push(() => mux.destroy())
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("from primary")
    expect(res.routing.attempts).toHaveLength(1)
    expect(server.attempts().map((a) => a.modelId)).toEqual(["primary", "primary"])
  })

  it("maxAttempts: not a positive integer, contradicting clientConfig, or beside a bedrockRuntime of the caller's, is a problem", () => {
    // a bedrockRuntime of the caller's unless `own` takes it away (the facade's own client, never called here)
    const message = (options: Record<string, unknown>, path: string) => {
      try {
        const mux = createMultiplexer(models, { bedrockRuntime: sim, ...options } as Parameters<typeof createMultiplexer>[1])
        closers.push(() => mux.destroy())
        return undefined
      } catch (e) {
        expect(e).toBeInstanceOf(MuxConfig.MuxConfigError)
        return (e as MuxConfig.MuxConfigError).problems.find((p) => p.path === path)?.message
      }
    }
    const own = { bedrockRuntime: undefined }
    expect(message({ ...own, maxAttempts: 0 }, "maxAttempts")).toMatch(/integer >= 1/)
    expect(message({ ...own, maxAttempts: 1.5 }, "maxAttempts")).toMatch(/integer >= 1/)
    expect(message({ ...own, maxAttempts: 2, clientConfig: { maxAttempts: 1 } }, "maxAttempts")).toMatch(/contradicts clientConfig\.maxAttempts 1/)
    expect(message({ maxAttempts: 1 }, "maxAttempts")).toMatch(/not used with bedrockRuntime/)
    expect(message({ clientConfig: { region: "us-east-1" } }, "clientConfig")).toMatch(/not used with bedrockRuntime/)
    // the same number in both places is fine: it builds
    const same = createMultiplexer(models, { maxAttempts: 1, clientConfig: { region: "us-east-1", maxAttempts: 1 } })
    closers.push(() => same.destroy())
    expect(same.getModelHealthStatus("primary")).not.toBeNull()
  })

  it("the options type spells out every field of the JSON config, and the model type every field of a model entry", () => {
    type Json = Omit<Exclude<MuxConfig.Input, ReadonlyArray<unknown>>, "models">
    type JsonKeys = keyof Json
    type FacadeKeys = keyof MuxConfigFields
    const sameKeys: [JsonKeys] extends [FacadeKeys] ? ([FacadeKeys] extends [JsonKeys] ? true : false) : false = true
    // deeply: every JSON config is a facade options object (nested sections included)
    const deep: [Json] extends [MuxConfigFields] ? true : false = true
    type Entry = Exclude<MuxConfig.Input, ReadonlyArray<unknown>>["models"][number]
    const modelKeys: [keyof Entry] extends [keyof ModelConfiguration] ? ([keyof ModelConfiguration] extends [keyof Entry] ? true : false) : false = true
    type SameKeys<A, B> = [keyof NonNullable<A>] extends [keyof NonNullable<B>] ? ([keyof NonNullable<B>] extends [keyof NonNullable<A>] ? true : false) : false
    const breaker: SameKeys<Json["breaker"], MuxConfigFields["breaker"]> = true
    const cooldowns: SameKeys<Json["cooldowns"], MuxConfigFields["cooldowns"]> = true
    const stream: SameKeys<Json["stream"], MuxConfigFields["stream"]> = true
    const retry: SameKeys<Json["retry"], MuxConfigFields["retry"]> = true
    const sections = [breaker, cooldowns, stream, retry]
    expect([sameKeys, deep, modelKeys, ...sections].every((b) => b)).toBe(true)
  })

  it("defaultTimeoutMs: 120000 is valid: the deadline is derived from the timeout and the attempts, by MuxConfig's rule", () => {
    const long = createMultiplexer(models, { defaultTimeoutMs: 120_000, bedrockRuntime: sim })
    closers.push(() => long.destroy())
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300_000 }),
        fc.integer({ min: 0, max: 10 }),
        fc.option(fc.integer({ min: 1, max: 300_000 }), { nil: undefined }),
        (timeout, maxRetries, modelTimeout) => {
          const pool = modelTimeout === undefined ? models : [{ ...models[0]!, timeout: modelTimeout }, models[1]!]
          const options = { defaultTimeoutMs: timeout, maxRetries }
          const config = MuxConfig.decodeSync(toMuxInput(pool, options))
          // the same JSON through MuxConfig alone (BedrockMux.layerConfig's path) decodes to the same deadline
          const json = MuxConfig.decodeSync({ models: pool, ...options })
          const longest = Math.max(timeout, modelTimeout ?? 0) * (maxRetries + 1)
          return Duration.toMillis(config.deadline) === Math.max(60_000, longest) &&
            Duration.toMillis(json.deadline) === Duration.toMillis(config.deadline) &&
            Duration.toMillis(config.timeout) === timeout
        }
      ),
      { seed: 12 }
    )
    // an explicit deadline is kept, and still checked against the timeout
    expect(Duration.toMillis(MuxConfig.decodeSync(toMuxInput(models, { defaultTimeoutMs: 1_000, deadline: 5_000 })).deadline)).toBe(5_000)
    expect(problemsOf(() => createMultiplexer(models, { defaultTimeoutMs: 10_000, deadline: 5_000, bedrockRuntime: sim })).map((p) => p.path))
      .toEqual(["defaultTimeoutMs"])
  })

  it("tierEscalation sets escalate on every model without its own", () => {
    const config = MuxConfig.decodeSync(toMuxInput(
      [...models, { modelId: "third", weight: 1, isFallback: true, escalate: "reserved" }],
      { tierEscalation: { enabled: true, escalationTier: "priority" } }
    ))
    expect(Policy.models(config).map((m) => m.escalate)).toEqual(["priority", "priority", "reserved"])
    expect(Policy.models(MuxConfig.decodeSync(toMuxInput(models, { tierEscalation: { enabled: false, escalationTier: "priority" } }))).map((m) => m.escalate))
      .toEqual([undefined, undefined])
  })

  it("refusalDetection.classifier must be a function or a Refusal.Classifier, and not given with a modelPath", () => {
    const paths = (refusalDetection: unknown) =>
      problemsOf(() => createMultiplexer(models, { refusalDetection, bedrockRuntime: sim } as never)).map((p) => [p.path, p.message])
    expect(paths({ enabled: true, classifier: 0.5 })).toEqual([["refusalDetection.classifier", expect.stringMatching(/a function .* or a Refusal\.Classifier/)]])
    expect(paths({ enabled: true, classifier: { name: "", score: () => 0 } })).toHaveLength(1)
    expect(paths({ enabled: true, classifier: () => 0, modelPath: "m.onnx" })).toEqual([["refusalDetection.classifier", "give either classifier or modelPath, not both"]])
    const fine = createMultiplexer(models, { refusalDetection: { enabled: true, classifier: () => 0 }, bedrockRuntime: sim })
    closers.push(() => fine.destroy())
  })

  it("an unknown per-call option rejects with INVALID_REQUEST before any call", async () => {
    const server = await fake({ models: { primary: {}, fallback: {} } })
    const mux = over(server)
    const e = (await rejection(mux.processRequest(input, { abortSignall: new AbortController().signal } as never))) as MultiplexerError
    expect(e.code).toBe("INVALID_REQUEST")
    expect(e.message).toMatch(/abortSignall.*did you mean `abortSignal`\?/)
    expect(server.attempts()).toEqual([])
  })
})

describe("abort and destroy", () => {
  it("an abort closes the upstream request and rejects with CancelledError", async () => {
    const server = await fake({ models: { primary: { faults: [{ do: { kind: "hang" } }] }, fallback: {} } })
    const mux = over(server)
    const controller = new AbortController()
    const pending = rejection(mux.processRequest(input, { abortSignal: controller.signal }))
    while (server.inFlight() === 0) await new Promise((r) => setImmediate(r))
    controller.abort(new Error("user left"))
    const e = (await pending) as CancelledError
    expect(e).toBeInstanceOf(CancelledError)
    expect([e.name, e.message, (e.cause as Error).message, e.errorResponse.errorType]).toEqual(["CancelledError", "Request cancelled", "user left", "CANCELLED"])
    expect(await server.waitForIdle(2_000)).toBe(true)
    expect(server.attempts().map((a) => [a.modelId, a.outcome])).toEqual([["primary", "interrupted"]])
  })

  it("an abort after a failover (the rest of the call in its fiber) closes the fallback's request", async () => {
    const server = await fake({ models: { primary: error("ServiceUnavailableException"), fallback: { faults: [{ do: { kind: "hang" } }] } } })
    const mux = over(server)
    const controller = new AbortController()
    const pending = rejection(mux.processRequest(input, { abortSignal: controller.signal }))
    while (server.attempts().length < 2 || server.inFlight() === 0) await new Promise((r) => setImmediate(r))
    controller.abort()
    expect(await pending).toBeInstanceOf(CancelledError)
    expect(await server.waitForIdle(2_000)).toBe(true)
    expect(server.attempts().map((a) => [a.modelId, a.outcome])).toEqual([["primary", "ServiceUnavailableException"], ["fallback", "interrupted"]])
  })

  it("a call's abort listener goes when the call ends, answered or failed: a later abort changes nothing", async () => {
    const server = await fake({ models: { primary: { faults: [{ when: { calls: [2] }, do: { kind: "error", error: "ValidationException" } }] }, fallback: {} } })
    const mux = over(server, {}, [{ modelId: "primary", weight: 1, isFallback: false }])
    const controller = new AbortController()
    const res = await mux.processRequest(input, { abortSignal: controller.signal })
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0)
    expect(await rejection(mux.processRequest(input, { abortSignal: controller.signal }))).toBeInstanceOf(FailFastError)
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0)
    controller.abort()
    expect(res.routing.modelId).toBe("primary")
    expect([mux.getStats().successCount, mux.getStats().failFastCount]).toEqual([1, 1])
  })

  describe("an abort from the runtime's own code, while the call is starting or handing over", () => {
    const answer = { output: { message: { role: "assistant" as const, content: [{ text: "hi" }] } }, stopReason: "end_turn" as const, usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 }, $metadata: {} }
    const down = () => Promise.reject(Object.assign(new Error("down"), { name: "ServiceUnavailableException", $metadata: { httpStatusCode: 503 } }))
    /** a runtime whose model `abortsIn` aborts the caller's controller from inside its send, then waits for its own abort */
    const aborting = (abortsIn: string, controller: AbortController, log: Array<string>) =>
      Layer.succeed(BedrockRuntime, {
        converse: () => Effect.die("not used"),
        sendConverse: (request: { readonly modelId: string }, signal: AbortSignal) => {
          log.push(`send ${request.modelId}`)
          if (request.modelId !== abortsIn) return down()
          return new Promise((_, reject) => {
            signal.addEventListener("abort", () => {
              log.push(`${request.modelId} aborted`)
              reject(Object.assign(new Error("aborted"), { name: "AbortError" }))
            })
            controller.abort()
          })
        },
        converseStream: () => Stream.empty
      } as unknown as BedrockRuntime["Service"])
    const pool = [{ modelId: "a", weight: 1, isFallback: false }, { modelId: "b", weight: 1, isFallback: true }]

    it.each([
      ["the first attempt, before the call has started", "a", ["send a", "a aborted"]],
      ["the attempt after a failover, in the fiber's first steps", "b", ["send a", "send b", "b aborted"]]
    ])("during %s: CancelledError, and that attempt is aborted", async (_, abortsIn, expected) => {
      const controller = new AbortController()
      const log: Array<string> = []
      const mux = createMultiplexer(pool, { bedrockRuntime: aborting(abortsIn, controller, log) })
      closers.push(() => mux.destroy())
      expect(await rejection(mux.processRequest(input, { abortSignal: controller.signal }))).toBeInstanceOf(CancelledError)
      expect(log).toEqual(expected)
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0)
    })

    it.each([
      ["the fiber-less start", {}, {}],
      ["a call in its own fiber (a tenant quota)", { tenants: { t: { rpm: 1_000 } } }, { tenant: "t" }]
    ])("a destroy from the runtime's own code while %s sends rejects the call with DESTROYED and aborts that attempt", async (_, options, callOptions) => {
      const log: Array<string> = []
      let mux: ReturnType<typeof createMultiplexer> | undefined
      let destroyed: Promise<void> | undefined
      const runtime = Layer.succeed(BedrockRuntime, {
        converse: () => Effect.die("not used"),
        sendConverse: (request: { readonly modelId: string }, signal: AbortSignal) =>
          new Promise((_, reject) => {
            signal.addEventListener("abort", () => {
              log.push(`${request.modelId} aborted`)
              reject(Object.assign(new Error("aborted"), { name: "AbortError" }))
            })
            destroyed = mux!.destroy()
          }),
        converseStream: () => Stream.empty
      } as unknown as BedrockRuntime["Service"])
      mux = createMultiplexer(pool, { ...options, bedrockRuntime: runtime })
      const e = (await rejection(mux.processRequest(input, callOptions))) as MultiplexerError
      expect([e.name, e.code]).toEqual(["MultiplexerError", "DESTROYED"])
      expect(log).toEqual(["a aborted"])
      await destroyed
    })

    it("a runtime whose send throws before its Promise fails that attempt, on the facade and on mux.converse alike: the request ends, the next model answers", async () => {
      const runtime = Layer.succeed(BedrockRuntime, {
        converse: () => Effect.die("not used"),
        sendConverse: (request: { readonly modelId: string }) => {
          if (request.modelId === "a") throw Object.assign(new Error("sync boom"), { name: "ServiceUnavailableException", $metadata: { httpStatusCode: 503 } })
          return Promise.resolve({ ...answer })
        },
        converseStream: () => Stream.empty
      } as unknown as BedrockRuntime["Service"])
      const facade = createMultiplexer(pool, { bedrockRuntime: runtime })
      closers.push(() => facade.destroy())
      const res = await facade.processRequest(input)
      expect(res.routing.attempts.map((a) => [a.modelId, a.outcome])).toEqual([["a", "failure"], ["b", "success"]])
      const viaEffect = await Effect.runPromise(
        Effect.gen(function*() {
          const mux = yield* BedrockMux
          const out = yield* mux.converse(input)
          return { attempts: out.routing.attempts.map((a) => [a.modelId, a.outcome]), stats: yield* mux.stats }
        }).pipe(Effect.provide(BedrockMux.layer({ models: [{ modelId: "a", tier: 0 }, { modelId: "b", tier: 1 }] }).pipe(Layer.provide(runtime))))
      )
      expect(viaEffect.attempts).toEqual([["a", "failure"], ["b", "success"]])
      expect([viaEffect.stats.requests, viaEffect.stats.successes]).toEqual([1, 1])
    })
  })

  it("an already aborted signal rejects without calling Bedrock", async () => {
    const server = await fake({ models: { primary: {}, fallback: {} } })
    const mux = over(server)
    expect(await rejection(mux.processRequest(input, { abortSignal: AbortSignal.abort() }))).toBeInstanceOf(CancelledError)
    expect(server.attempts()).toEqual([])
  })

  it("destroy rejects a request in flight with DESTROYED and aborts it; later calls throw DESTROYED", async () => {
    const server = await fake({ models: { primary: { faults: [{ do: { kind: "hang" } }] }, fallback: {} } })
    const mux = over(server)
    const pending = rejection(mux.processRequest(input))
    while (server.inFlight() === 0) await new Promise((r) => setImmediate(r))
    const destroyed = mux.destroy()
    expect(mux.destroy()).toBe(destroyed)
    const e = (await pending) as MultiplexerError
    expect([e.name, e.code]).toEqual(["MultiplexerError", "DESTROYED"])
    await destroyed
    expect(await server.waitForIdle(2_000)).toBe(true)
    expect(server.attempts()[0]?.outcome).toBe("interrupted")
    const after = (await rejection(mux.processRequest(input))) as MultiplexerError
    expect([after.constructor, after.code]).toEqual([MultiplexerError, "DESTROYED"])
    for (const call of [() => mux.getStats(), () => mux.getHealthStatus(), () => mux.getSimpleHealthCheck(), () => mux.isHealthy(), () => mux.resetStats(), () => mux.getCircuitBreakerStatus(), () => mux.getModelHealthStatus("primary")]) {
      expect(call).toThrow(expect.objectContaining({ name: "MultiplexerError", code: "DESTROYED" }))
    }
  })
})

describe("property: the facade's calls over any fault script, aborted or destroyed mid-attempt", () => {
  type Step = "ok" | "hang" | "ServiceUnavailableException" | "InternalServerException" | "ThrottlingException" | "ValidationException"
  const step = fc.constantFrom<Step>("ok", "ok", "hang", "ServiceUnavailableException", "InternalServerException", "ThrottlingException", "ValidationException")
  const faultsOf = (steps: ReadonlyArray<Step>) =>
    steps.flatMap((s, i) =>
      s === "ok" ? [] : [{ when: { calls: [i + 1] }, do: s === "hang" ? { kind: "hang" as const } : { kind: "error" as const, error: s } }]
    )

  it("every call ends in exactly one outcome, matching its promise; an aborted attempt's HTTP request is closed; no listener is left on the signal", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 4, maxLength: 4 }),
        fc.array(step, { minLength: 4, maxLength: 4 }),
        fc.constantFrom("abort" as const, "destroy" as const),
        fc.integer({ min: 1, max: 3 }),
        async (primary, fallback, stop, calls) => {
          const server = await FakeBedrock.start({ models: { primary: { faults: faultsOf(primary) }, fallback: { faults: faultsOf(fallback) } } })
          const mux = createMultiplexer(models, { clientConfig: { region: "us-east-1", endpoint: server.url, credentials } })
          try {
            const outcomes: Array<string> = []
            mux.on("success", () => outcomes.push("success"))
            // a failed attempt is error(response, outcome); the call's own failure error(error, null)
            mux.on("error", (_e: unknown, outcome: unknown) => {
              if (outcome === null) outcomes.push("error")
            })
            let stopped = false
            for (let c = 0; c < calls && !stopped; c++) {
              const controller = new AbortController()
              let settled: "resolved" | "rejected" | undefined
              let error: unknown
              const before = outcomes.length
              const call = mux.processRequest(input, { abortSignal: controller.signal }).then(
                () => (settled = "resolved"),
                (e: unknown) => {
                  settled = "rejected"
                  error = e
                }
              )
              // an attempt held by the fake is stopped the way the case says; anything else ends by itself
              while (settled === undefined && !server.attempts().some((a) => a.outcome === "hang")) await new Promise((r) => setImmediate(r))
              if (settled === undefined) {
                stopped = true
                if (stop === "abort") controller.abort()
                else void mux.destroy()
              }
              await call
              expect(outcomes.slice(before)).toEqual([settled === "resolved" ? "success" : "error"])
              if (stopped && stop === "abort") expect(error).toBeInstanceOf(CancelledError)
              if (stopped && stop === "destroy") expect([error instanceof MultiplexerError, (error as MultiplexerError).code]).toEqual([true, "DESTROYED"])
              expect(getEventListeners(controller.signal, "abort")).toHaveLength(0)
              expect(await server.waitForIdle(2_000)).toBe(true)
              expect(server.attempts().filter((a) => a.outcome === "hang" || a.outcome === "pending")).toEqual([])
              // an interrupted request is not counted (the caller gave up: no outcome to count)
              if (stop === "abort" || !stopped) expect(mux.getHealthStatus().metrics.totalRequests).toBe(stopped ? c : c + 1)
            }
          } finally {
            await mux.destroy()
            await server.close()
          }
        }
      ),
      { numRuns: 40, seed: 11 }
    )
  })
})

describe("events beyond the basics", () => {
  /** The original's example 03: two primaries and a fallback, with tier escalation. */
  const example03 = [
    { modelId: "a", weight: 100, isFallback: false },
    { modelId: "b", weight: 50, isFallback: false },
    { modelId: "fallback", weight: 30, isFallback: true }
  ]
  const escalating = { tierEscalation: { enabled: true, escalationTier: "priority" as const } }

  it("a failed attempt's error event carries the SDK error's message, name and metadata, as the original's", async () => {
    const message = "Too many requests, please wait before trying again."
    const server = await fake({ models: { primary: { faults: [{ do: { kind: "error", error: "ThrottlingException", message } }] }, fallback: {} } })
    const mux = over(server)
    const seen: Array<[ErrorResponse | null, ModelOutcome | null]> = []
    mux.on("error", (e, outcome) => seen.push([e, outcome]))
    await mux.processRequest(input)
    expect(seen).toHaveLength(1)
    const [e, outcome] = seen[0]!
    expect(e).toMatchObject({ code: 429, message, details: { name: "ThrottlingException", fault: "client", metadata: { httpStatusCode: 429 } } })
    expect(e!.details!["stack"]).toEqual(expect.stringContaining("ThrottlingException"))
    expect(outcome).toMatchObject({ modelId: "primary", type: OutcomeType.RATE_LIMIT, error: e })
  })

  it("tierEscalation: a throttle retries the same model at the tier, with tier-escalation and tier-escalation-success", async () => {
    const server = await fake({ models: { primary: { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ThrottlingException" } }] }, fallback: {} } })
    const mux = over(server, { tierEscalation: { enabled: true, escalationTier: "priority" } })
    const seen: Array<unknown> = []
    mux.on("tier-escalation", (...args) => seen.push(["tier-escalation", ...args]))
    mux.on("tier-escalation-success", (...args) => seen.push(["tier-escalation-success", ...args]))
    const res = await mux.processRequest(input)
    expect(res.routing.attempts.map((a) => [a.modelId, a.decision])).toEqual([["primary", "escalate"], ["primary", undefined]])
    expect(seen).toEqual([["tier-escalation", "primary", "default", "priority"], ["tier-escalation-success", "primary", "priority"]])
  })

  it("tierEscalation: an escalation is not one of the maxRetries, as in the original (its example 03: both primaries throttled at every tier, the fallback answers)", async () => {
    const throttled = error("ThrottlingException")
    const server = await fake({ models: { a: throttled, b: throttled, fallback: { answer: "from the fallback" } } })
    const mux = over(server, { maxRetries: 3, ...escalating }, example03)
    const selected: Array<[boolean, number]> = []
    const started: Array<string> = []
    mux.on("model-selected", (_id, isFallback, retryCount) => selected.push([isFallback, retryCount]))
    mux.on("model-invocation-start", (id) => started.push(id))
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("from the fallback")
    // as the original reports it: three selections, retry counts 0, 1, 2; the escalations are sent without one
    expect(selected).toEqual([[false, 0], [false, 1], [true, 2]])
    expect(started.sort()).toEqual(["a", "b", "fallback"])
    // each primary, then each again at the priority tier (not counted), then the fallback: 3 of the 4 attempts
    const tried = res.routing.attempts.map((a) => [a.modelId, a.serviceTier ?? "default"])
    expect(tried).toHaveLength(5)
    expect(tried.at(-1)).toEqual(["fallback", "default"])
    expect(tried.slice(0, 4).sort()).toEqual([["a", "default"], ["a", "priority"], ["b", "default"], ["b", "priority"]])
  })

  it("tierEscalation with refusal detection on: escalations are still not retries", async () => {
    const throttled = error("ThrottlingException")
    const mux = createMultiplexer(example03, {
      maxRetries: 3,
      ...escalating,
      refusalDetection: { enabled: true, classifier: () => 0 },
      bedrockRuntime: BedrockSimulator.layer({ models: { a: throttled, b: throttled, fallback: { answer: "from the fallback" } } })
    })
    closers.push(() => mux.destroy())
    const res = await mux.processRequest(input)
    expect(res.output?.message?.content?.[0]?.text).toBe("from the fallback")
    expect(res.routing.attempts).toHaveLength(5)
  })

  it("tierEscalation: RETRIES_EXHAUSTED counts the retries as the original does, escalations aside", async () => {
    const throttled = error("ThrottlingException")
    const server = await fake({ models: { a: throttled, b: throttled, c: { answer: "unused" } } })
    const mux = over(server, { maxRetries: 1, ...escalating }, [
      { modelId: "a", weight: 1, isFallback: false },
      { modelId: "b", weight: 1, isFallback: false },
      { modelId: "c", weight: 1, isFallback: true }
    ])
    const e = (await rejection(mux.processRequest(input))) as MultiplexerError
    expect(e.code).toBe("RETRIES_EXHAUSTED")
    expect(e.message).toBe("All retry attempts exhausted (1 retries)")
    expect(e.details).toMatchObject({ maxRetries: 1, actualRetries: 1 })
    expect((e.details!["attempts"] as ReadonlyArray<unknown>)).toHaveLength(4)
  })

  it("model-circuit-open-skipped names a model passed over because its breaker is open", async () => {
    const server = await fake({ models: { primary: error("ServiceUnavailableException"), fallback: {} } })
    const mux = over(server, { breaker: { failures: 2 } })
    const skipped: Array<string> = []
    mux.on("model-circuit-open-skipped", (id) => skipped.push(id))
    await mux.processRequest(input)
    await mux.processRequest(input) // the second counted failure opens the primary's breaker
    expect(skipped).toEqual([])
    expect(mux.getCircuitBreakerStatus()["primary"]!.state).toBe("OPEN")
    const res = await mux.processRequest(input)
    expect(res.routing.attempts.map((a) => a.modelId)).toEqual(["fallback"])
    expect(skipped).toEqual(["primary"])
  })

  it("a listener added later is served, and removing the last one stops the bridge without losing the built-in error listener", async () => {
    const mux = createMultiplexer(models, { bedrockRuntime: BedrockSimulator.layer({ models: { primary: {}, fallback: {} } }) })
    closers.push(() => mux.destroy())
    await mux.processRequest(input)
    const started: Array<string> = []
    const listener = (modelId: string) => started.push(modelId)
    mux.on("model-invocation-start", listener)
    await mux.processRequest(input)
    mux.off("model-invocation-start", listener)
    await mux.processRequest(input)
    mux.removeAllListeners()
    // a failed attempt emits `error`; with no listener of the user's that must not throw
    const down = createMultiplexer(models, { bedrockRuntime: BedrockSimulator.layer({ models: { primary: error("ServiceUnavailableException"), fallback: {} } }) })
    closers.push(() => down.destroy())
    down.on("model-selected", () => {})
    down.removeAllListeners("model-selected")
    down.on("model-selected", () => {})
    expect((await down.processRequest(input)).routing.modelId).toBe("fallback")
    expect(started).toEqual(["primary"])
  })

  it("resetStats starts getStats from zero, emits stats-reset, and leaves health alone", async () => {
    const mux = createMultiplexer(models, { bedrockRuntime: BedrockSimulator.layer({ models: { primary: {}, fallback: {} } }) })
    closers.push(() => mux.destroy())
    await mux.processRequest(input)
    await mux.processRequest(input)
    let resets = 0
    mux.on("stats-reset", () => resets++)
    mux.resetStats()
    expect(resets).toBe(1)
    expect(mux.getStats()).toMatchObject({ successCount: 0, rateLimitCount: 0, failFastCount: 0, latencyMetrics: { average: 0, max: 0 } })
    expect(mux.getHealthStatus().metrics.totalRequests).toBe(2)
    await mux.processRequest(input)
    expect(mux.getStats().successCount).toBe(1)
  })
})

describe("tracing", () => {
  it("tracing.enabled sends our spans to the global OpenTelemetry provider; captureBodies adds the messages", async () => {
    const exporter = new InMemorySpanExporter()
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    trace.setGlobalTracerProvider(provider)
    closers.push(async () => trace.disable())
    const server = await fake({ models: { primary: error("ServiceUnavailableException"), fallback: {} } })
    const plain = over(server, { tracing: { enabled: true, serviceName: "my-service" } })
    await plain.processRequest(input)
    const spans = exporter.getFinishedSpans()
    expect(spans.map((s) => s.name).sort()).toEqual(["chat bedrock-mux", "chat fallback", "chat primary"])
    const request = spans.find((s) => s.name === "chat bedrock-mux")!
    expect(request.instrumentationScope.name).toBe("my-service")
    expect(request.attributes["gen_ai.response.model"]).toBe("fallback")
    expect(request.attributes["gen_ai.input.messages"]).toBeUndefined()
    expect(spans.find((s) => s.name === "chat primary")!.parentSpanContext?.spanId).toBe(request.spanContext().spanId)
    exporter.reset()
    const bodies = over(server, { tracing: { enabled: true, captureBodies: true } })
    await bodies.processRequest(input)
    const withBodies = exporter.getFinishedSpans().find((s) => s.name === "chat bedrock-mux")!
    expect(JSON.parse(String(withBodies.attributes["gen_ai.input.messages"]))).toEqual(input.messages)
    exporter.reset()
    const off = over(server)
    await off.processRequest(input)
    expect(exporter.getFinishedSpans()).toEqual([])
  })
})
