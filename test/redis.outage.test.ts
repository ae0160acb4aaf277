/**
 * Shutdown and recovery when Redis goes away, against a real redis-server of
 * each test's own (started on a free loopback port, then killed mid-run).
 *
 * - Shutdown: a child process (test/fixtures/redisOutage.ts) runs a mux over
 *   a Redis store with requests in flight; the test kills its Redis (SIGKILL:
 *   connections reset) or stops it (SIGSTOP: connections stay open, nothing
 *   answers); the child disposes its runtime once its requests see the
 *   outage. Disposal must take at most the store's timeout plus 1 s, and the
 *   process must then exit by itself (it is kept alive only while disposal
 *   runs, as under `NodeRuntime.runMain`). Plain `NodeRedis.layer` fails this
 *   (its disposal never settles), so it is not a case here; run the fixture
 *   with `NodeRedis` to see the hang.
 * - Recovery: `layerRedisClient` fails at once while Redis is down and works
 *   again once it is back, without a restart.
 *
 * They need `redis-server` on the PATH; without it they skip, saying how to
 * get one (with CI=true they fail instead).
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, References, Schedule, Schema } from "effect"
import * as RedisClient from "../src/internal/redisClient.ts"
import * as MuxStore from "../src/MuxStore.ts"
import { findRedisServer, HOW_TO_GET_REDIS, ON_CI, type RedisServer, startRedisServer } from "./fixtures/redisServer.ts"

const BIN = findRedisServer()
const SKIP = BIN === undefined && !ON_CI
const bin = (): string => {
  if (BIN === undefined) throw new Error("redis-server must be on the PATH when CI=true (the Redis tests are mandatory on CI)")
  return BIN
}

const fixture = fileURLToPath(new URL("./fixtures/redisOutage.ts", import.meta.url))
// the pinned node 22 (type stripping), else the node running the tests
const pinnedNode = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url))
const node = existsSync(pinnedNode) ? pinnedNode : process.execPath

/** The store's timeout in the child. */
const TIMEOUT_MS = 200
/** How long the child's requests run against the dead Redis before it shuts down. */
const OUTAGE_MS = 300
/** A bound for a hung child, not a measure of speed: a healthy run takes about 2 s. */
const OUTER_LIMIT_MS = 60_000

interface ChildRun {
  readonly code: number | null
  readonly lines: ReadonlyArray<string>
  readonly stderr: string
  /** what disposal took in the child (wall clock) */
  readonly disposedMs: number | undefined
}

/** Runs the fixture over `server`, sending it `signal` once the child's requests succeed through Redis. */
const runChild = (client: string, server: RedisServer, signal: NodeJS.Signals) =>
  new Promise<ChildRun>((resolve, reject) => {
    const child = spawn(
      node,
      ["--disable-warning=ExperimentalWarning", fixture, client, String(TIMEOUT_MS), String(OUTAGE_MS)],
      { env: { ...process.env, REDIS_URL: server.url }, stdio: ["ignore", "pipe", "pipe"] }
    )
    const lines: Array<string> = []
    let partial = ""
    let stderr = ""
    child.stdout.on("data", (d) => {
      partial += d
      const parts = partial.split("\n")
      partial = parts.pop()!
      for (const line of parts) {
        lines.push(line)
        if (line === "UP") server.kill(signal)
      }
    })
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    const limit = setTimeout(() => child.kill("SIGKILL"), OUTER_LIMIT_MS)
    child.on("exit", (code) => {
      clearTimeout(limit)
      const disposed = lines.find((l) => l.startsWith("DISPOSED "))
      resolve({ code, lines, stderr, disposedMs: disposed === undefined ? undefined : Number(disposed.slice(9)) })
    })
  })

describe.skipIf(SKIP)(`Redis outage: shutdown and recovery${SKIP ? `: ${HOW_TO_GET_REDIS}` : ""}`, () => {
  const cases: ReadonlyArray<readonly [client: string, signal: NodeJS.Signals]> = [
    ["layerRedisClient", "SIGKILL"],
    ["layerRedisClient", "SIGSTOP"],
    // the recipe for a user-provided client (docs/operations.md): no offline queue
    ["NodeRedis+disableOfflineQueue", "SIGKILL"]
  ]
  for (const [client, signal] of cases) {
    it(`${client}, Redis ${signal} mid-run: disposal within timeout + 1 s, then the process exits by itself`, async () => {
      const server = await startRedisServer(bin())
      try {
        const run = await runChild(client, server, signal)
        const report = `stdout:\n${run.lines.join("\n")}\nstderr:\n${run.stderr}`
        assert.deepStrictEqual(run.lines.filter((l) => !l.startsWith("DISPOSED ")), ["UP", "DOWN"], report)
        assert.isDefined(run.disposedMs, `disposal never settled\n${report}`)
        assert.isBelow(run.disposedMs!, TIMEOUT_MS + 1_000, report)
        // it ended by itself (the outer limit kills with SIGKILL: code null), with nothing unsettled
        assert.strictEqual(run.code, 0, report)
        assert.notInclude(run.stderr, "unsettled", report)
      } finally {
        await server.stop()
      }
    }, OUTER_LIMIT_MS + 10_000)
  }

  it.live("layerRedisClient: while Redis is down a command fails at once (no offline queue); it works again once Redis is back", () =>
    Effect.gen(function*() {
      const first = yield* Effect.acquireRelease(Effect.promise(() => startRedisServer(bin())), (s) => Effect.promise(() => s.stop()))
      // a timeout no command could reach by waiting: a failure below is the client's, at once
      const ctx = yield* Layer.build(MuxStore.layerRedisClient({ url: first.url, prefix: `ebm-test:recovery:${process.pid}:`, timeout: "1 minute" }))
        .pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
      const store = Context.get(ctx, MuxStore.MuxStore)!
      const counters = store.states("test-counter", Schema.Struct({ n: Schema.Number }))
      const write = (n: number) => counters.modify("k", () => [n, { n }] as const)
      assert.strictEqual(yield* write(1), 1)

      yield* Effect.promise(() => first.stop()) // SIGKILL
      const started = Date.now()
      const errors = yield* Effect.forEach([2, 3, 4], (n) => Effect.flip(write(n)))
      for (const e of errors) {
        assert.instanceOf(e, MuxStore.StoreError)
        assert.notInclude(e.message, "did not answer", "failed by the client, not by the store's timeout")
      }
      assert.isBelow(Date.now() - started, 30_000, "nowhere near the 1 minute timeout")

      // Redis is back on the same port (empty: it kept nothing); the client reconnects by itself
      const second = yield* Effect.acquireRelease(
        Effect.promise(() => startRedisServer(bin(), first.port)),
        (s) => Effect.promise(() => s.stop())
      )
      assert.strictEqual(second.url, first.url)
      // reconnect delays are at most 1.1 s; a generous bound for a loaded machine
      const back = yield* write(6).pipe(
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: "20 seconds" })))
      )
      assert.strictEqual(back, 6)
      assert.deepStrictEqual(yield* counters.getMany(["k"]), [{ n: 6 }])
    }))
})

// no Redis needed
describe("MuxStore.layerRedisClient at startup", () => {
  it.live("layerRedisClient: a Redis that is down when the layer is built fails the layer with RedisError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(MuxStore.layerRedisClient({ url: "redis://127.0.0.1:1" })))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(exit), "RedisError")
    }))
})

describe("redisClient.reconnectDelay", () => {
  it("50 ms doubling, capped at 1 s, plus the process's offset", () => {
    assert.deepStrictEqual([0, 1, 2, 3, 4, 5, 6, 30].map((n) => RedisClient.reconnectDelay(n, 0)), [50, 100, 200, 400, 800, 1_000, 1_000, 1_000])
    assert.strictEqual(RedisClient.reconnectDelay(2, 37), 237)
    assert.strictEqual(RedisClient.reconnectDelay(40, 99), 1_099)
  })
})
