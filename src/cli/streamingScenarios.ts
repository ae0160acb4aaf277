/**
 * The demo's streaming scenarios (slow first token, stall, cut): owned by the
 * streaming work; filled in with `BedrockMux.converseStream`.
 */
import type { Effect } from "effect"
import type { Table } from "./scenarioKit.ts"

export const streamingScenarios: Record<string, Effect.Effect<Table, unknown>> = {}
