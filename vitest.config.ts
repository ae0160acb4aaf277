import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // starts a loopback redis-server for the Redis tests when REDIS_URL is unset
    globalSetup: ["test/globalSetup.ts"],
    // global.gc for test/chaos.test.ts's heap check
    execArgv: ["--expose-gc"],
    // bounds for a hung test, not for a slow machine: no test's result depends on its duration
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})
