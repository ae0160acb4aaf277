/**
 * Runs once before the test workers start. When REDIS_URL is unset and
 * `redis-server` is on the PATH, it starts one on a free loopback port and
 * sets REDIS_URL for the workers (they inherit this process's environment),
 * as .ci/run does; it kills it when the run ends. With no redis-server it
 * prints one line saying how to get one, and the Redis tests skip (unless
 * CI=true: there they fail without a Redis).
 */
import { findRedisServer, HOW_TO_GET_REDIS, startRedisServer } from "./fixtures/redisServer.ts"

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env["REDIS_URL"] !== undefined) return undefined
  const bin = findRedisServer()
  if (bin === undefined) {
    console.warn(HOW_TO_GET_REDIS)
    return undefined
  }
  const server = await startRedisServer(bin)
  process.env["REDIS_URL"] = server.url
  return () => server.stop()
}
