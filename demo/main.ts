/**
 * `npm run demo [scenario...] [--json] [--live --region us-east-1]`
 *
 * Runs the demo scenarios on the built-in simulator (virtual time: instant
 * and reproducible) and prints a table for each. `--live` runs the
 * BedrockRuntime workload against real Bedrock with the default AWS
 * credential chain.
 */
import { Effect } from "effect"
import { BedrockRuntime } from "../src/BedrockRuntime.ts"
import { runtimeWorkload, scenarios, type Table } from "./scenarios.ts"

const args = process.argv.slice(2)
const json = args.includes("--json")
const live = args.includes("--live")
const regionAt = args.indexOf("--region")
const region = regionAt >= 0 ? args[regionAt + 1] : undefined
const names = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--region")

const unknown = names.filter((n) => !(n in scenarios))
if (unknown.length > 0) {
  console.error(`unknown scenario(s): ${unknown.join(", ")}; known: ${Object.keys(scenarios).join(", ")}`)
  process.exit(2)
}

const render = (t: Table): string => {
  const cells = [t.columns.map(String), ...t.rows.map((r) => r.map(String))]
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)))
  const line = (r: ReadonlyArray<string>) => "  " + r.map((c, i) => c.padEnd(widths[i]!)).join("  ")
  return [
    `${t.ok ? "PASS" : "FAIL"}  ${t.title}`,
    `      expected: ${t.expectation}`,
    line(cells[0]!),
    "  " + widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.slice(1).map(line),
    "  " + Object.entries(t.summary).map(([k, v]) => `${k}=${v}`).join("  "),
    ""
  ].join("\n")
}

const selected: Array<[string, Effect.Effect<Table, unknown>]> = live
  ? [["runtime (live)", runtimeWorkload(BedrockRuntime.layer(region === undefined ? {} : { region }))]]
  : (names.length === 0 ? Object.keys(scenarios) : names).map((n) => [n, scenarios[n]!])

const program = Effect.gen(function*() {
  const results: Array<Table & { readonly name: string }> = []
  for (const [name, scenario] of selected) {
    if (!json) process.stderr.write(`running ${name}...\r`)
    const table = yield* scenario
    results.push({ name, ...table })
    if (!json) console.log(render(table))
  }
  if (json) console.log(JSON.stringify(results, null, 2))
  return results.every((r) => r.ok)
})

Effect.runPromise(program).then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
