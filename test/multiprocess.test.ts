/**
 * Four worker processes (test/fixtures/worker.ts, run by node's type
 * stripping) share one Redis store: one client-side quota across processes.
 *
 * Each worker runs a mux (same config name, so the same keys) over its own
 * simulator on virtual time starting at 0, with its own Random seed, and
 * sends 30 requests spread over the simulated minute [0, 60 s). The primary's
 * rpm 20 is shared: across the four workers it admits 20 in total, not 80;
 * everything else goes to the fallback. The simulators have no limits of
 * their own, so a throttle could only come from a quota the mux let through.
 *
 * Without a Redis (REDIS_URL; `npm test` starts one when redis-server is on
 * the PATH) this skips, saying how to get one; with CI=true it always runs.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { createClient } from "redis"
import { afterAll, assert, describe, it } from "vitest"
import { HOW_TO_GET_REDIS, ON_CI } from "./fixtures/redisServer.ts"
import type { WorkerReport } from "./fixtures/worker.ts"

const REDIS_URL = process.env["REDIS_URL"]
const SKIP = REDIS_URL === undefined && !ON_CI

const WORKERS = 4
const REQUESTS = 30
const RPM = 20

const worker = fileURLToPath(new URL("./fixtures/worker.ts", import.meta.url))
// the pinned node 22 (type stripping), else the node running the tests
const pinnedNode = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url))
const node = existsSync(pinnedNode) ? pinnedNode : process.execPath

const runWorker = (url: string, prefix: string, seed: string) =>
  new Promise<WorkerReport>((resolve, reject) => {
    const child = spawn(node, ["--disable-warning=ExperimentalWarning", worker, seed, String(REQUESTS), "3"], {
      env: { ...process.env, REDIS_URL: url, MUX_PREFIX: prefix },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (err += d))
    child.on("error", reject)
    child.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "))
      if (code !== 0 || line === undefined) {
        return reject(new Error(`worker ${seed} exited with ${code}\nstdout:\n${out}\nstderr:\n${err}`))
      }
      resolve(JSON.parse(line.slice("RESULT ".length)) as WorkerReport)
    })
  })

describe.skipIf(SKIP)(`four processes share one Redis store${SKIP ? `: ${HOW_TO_GET_REDIS}` : ""}`, () => {
  const prefix = `ebm-test:multiprocess:${process.pid}:${Date.now().toString(36)}:`

  afterAll(async () => {
    if (REDIS_URL === undefined) return
    const client = createClient({ url: REDIS_URL })
    await client.connect()
    const keys = await client.keys(`${prefix}*`)
    if (keys.length > 0) await client.del(keys)
    await client.close()
  })

  it(`the primary's rpm ${RPM} holds across ${WORKERS} worker processes in one simulated minute`, async () => {
    assert.isDefined(REDIS_URL, "REDIS_URL must be set when CI=true")
    const reports = await Promise.all(
      Array.from({ length: WORKERS }, (_, i) => runWorker(REDIS_URL!, prefix, `worker-${i}`))
    )
    const summary = JSON.stringify(reports)
    const total = (model: string) => reports.reduce((n, r) => n + (r.successes[model] ?? 0), 0)

    // the shared limit: at most 20 in total (not 80), and the primary was used
    assert.isAtMost(total("primary"), RPM, summary)
    assert.isAtLeast(total("primary"), 1, summary)
    // all 120 requests fall in the same minute, so exactly the 20 slots were taken
    assert.strictEqual(total("primary"), RPM, summary)
    // everything else went to the fallback and succeeded
    assert.strictEqual(total("fallback"), WORKERS * REQUESTS - RPM, summary)
    for (const r of reports) {
      assert.deepStrictEqual(r.failures, {}, summary)
      assert.strictEqual((r.successes["primary"] ?? 0) + (r.successes["fallback"] ?? 0), REQUESTS, summary)
      // no call was sent that the shared quota had no room for
      assert.strictEqual(r.throttled, 0, summary)
      assert.strictEqual(r.calls["primary"] ?? 0, r.successes["primary"] ?? 0, summary)
      assert.isBelow(r.lastAt, 60_000, "every request falls in the first simulated minute")
    }
  })
})
