#!/usr/bin/env node
/**
 * The `bedrock-mux` bin: runs the command tree of `./command.ts` on the
 * process's argv. `bedrock-mux --help` lists the commands. Exit codes: 0
 * done, 1 a check or gate failed, 2 bad input (a command line the parser
 * rejects included).
 *
 * `@effect/platform-node` is an optional peer dependency of the library;
 * the bin needs it, and says so when it is missing.
 */
import { Effect } from "effect"
import { Command } from "effect/cli"
import { readFileSync } from "node:fs"
import { cli, reportOnStderr, usageErrorExit } from "./command.ts"

const platform = await import("@effect/platform-node").catch(() => undefined)
if (platform === undefined) {
  process.stderr.write("bedrock-mux needs @effect/platform-node: npm install @effect/platform-node@4.1.0\n")
  process.exit(1)
}
const { NodeRuntime, NodeServices } = platform

// src/cli/main.ts and dist/cli/main.js both sit two levels below package.json
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  readonly version: string
}

// a command line the parser rejects exits 2 (effect/cli says 1, the gate's "failed"); --help exits 0;
// stdout is for results: logs, warnings and an unexpected failure's report go to stderr
Command.run(cli, { version }).pipe(
  usageErrorExit,
  reportOnStderr,
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
