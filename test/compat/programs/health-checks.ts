// Written against the aws-samples multiplexer's documented API (its README and public types); only the package name is ours.
/**
 * Health checks, as a load balancer probe and a dashboard read them:
 * `getSimpleHealthCheck()`, `isHealthy()`, `getHealthStatus()` and
 * `getModelHealthStatus(id)` (null for a model not in the pool).
 *
 * 1. A pool of three models that answer ("answered by <modelId>"): healthy,
 *    200, every model healthy with a closed breaker; after three requests the
 *    metrics count them.
 * 2. A pool of two models that both answer 503: every request is rejected;
 *    after five, both breakers are open and the pool reports unhealthy, 503.
 *    A sixth request is rejected without reaching Bedrock.
 */
import { CircuitBreakerState, createMultiplexer, MultiplexerError } from "effect-bedrock-mux"

const check = (what: string, ok: boolean) => { if (!ok) throw new Error(`check failed: ${what}`) }
const same = (what: string, got: unknown, want: unknown) => check(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, JSON.stringify(got) === JSON.stringify(want))

const clientConfig = { region: "us-east-1" }
const question = { messages: [{ role: "user" as const, content: [{ text: "ping" }] }] }

async function healthyPool(): Promise<void> {
  const ids = ["amazon.nova-2-lite-v1:0", "amazon.titan-text-express-v1", "amazon.nova-pro-v1:0"]
  const multiplexer = createMultiplexer(
    ids.map((modelId, i) => ({ modelId, weight: 100, isFallback: i === 2 })),
    { maxRetries: 3, clientConfig }
  )
  same("the simple check", multiplexer.getSimpleHealthCheck(), { status: "healthy", code: 200 })
  check("isHealthy()", multiplexer.isHealthy())
  const before = multiplexer.getHealthStatus()
  same(
    "the counts",
    [before.isHealthy, before.totalModels, before.healthyModels, before.degradedModels, before.unhealthyModels],
    [true, 3, 3, 0, 0]
  )
  check("the timestamp is a Date", before.timestamp instanceof Date)
  same("the models", Object.keys(before.models).sort(), [...ids].sort())
  same("their breakers", ids.map((id) => before.models[id]?.circuitState), ids.map(() => CircuitBreakerState.CLOSED))

  for (let i = 0; i < 3; i++) await multiplexer.processRequest(question)
  const after = multiplexer.getHealthStatus()
  same("requests and success rate", [after.metrics.totalRequests, after.metrics.successRate], [3, 1])
  const one = multiplexer.getModelHealthStatus(ids[0]!)
  same("one model's health", [one?.modelId, one?.isHealthy, one?.circuitState, one?.errorRate], [ids[0], true, CircuitBreakerState.CLOSED, 0])
  same("a model not in the pool", multiplexer.getModelHealthStatus("anthropic.claude-v2"), null)
  console.log("Healthy pool: { status: 'healthy', code: 200 }, 3 of 3 models healthy")
  await multiplexer.destroy()
}

async function poolDown(): Promise<void> {
  const ids = ["anthropic.claude-3-haiku-20240307-v1:0", "meta.llama3-8b-instruct-v1:0"]
  const multiplexer = createMultiplexer(
    ids.map((modelId, i) => ({ modelId, weight: 100, isFallback: i === 1 })),
    // ours: breakers that stay open for the program's whole run, however slow the machine (default probe: every 5 s)
    { maxRetries: 3, clientConfig, breaker: { window: "5 minutes", probeInterval: "5 minutes" } }
  )
  for (let i = 1; i <= 5; i++) {
    same(`the simple check before request ${i}`, multiplexer.getSimpleHealthCheck(), { status: "healthy", code: 200 })
    const error = await multiplexer.processRequest(question).then(() => undefined, (e: unknown) => e)
    check(`request ${i} rejects with NO_MODELS_AVAILABLE`, error instanceof MultiplexerError && error.code === "NO_MODELS_AVAILABLE")
  }
  same("the simple check", multiplexer.getSimpleHealthCheck(), { status: "unhealthy", code: 503 })
  check("isHealthy() is false", !multiplexer.isHealthy())
  const health = multiplexer.getHealthStatus()
  same("the counts", [health.isHealthy, health.healthyModels, health.unhealthyModels], [false, 0, 2])
  same("the breakers", ids.map((id) => health.models[id]?.circuitState), [CircuitBreakerState.OPEN, CircuitBreakerState.OPEN])
  same("the error rates", ids.map((id) => health.models[id]?.errorRate), [1, 1])
  const sixth = await multiplexer.processRequest(question).then(() => undefined, (e: unknown) => e)
  check("a sixth request rejects with NO_MODELS_AVAILABLE", sixth instanceof MultiplexerError && sixth.code === "NO_MODELS_AVAILABLE")
  console.log("Pool down: { status: 'unhealthy', code: 503 }, 2 of 2 models unhealthy")
  await multiplexer.destroy()
}

async function main(): Promise<void> {
  await healthyPool()
  await poolDown()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
