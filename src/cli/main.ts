#!/usr/bin/env node
/**
 * The `bedrock-mux` bin: runs the command tree of `./command.ts` on the
 * process's argv. `bedrock-mux --help` lists the commands.
 *
 * `@effect/platform-node` is an optional peer dependency of the library;
 * the bin needs it, and says so when it is missing.
 */
import { Effect } from "effect"
import { Command } from "effect/cli"
import { readFileSync } from "node:fs"
import { cli } from "./command.ts"

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

Command.run(cli, { version }).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
