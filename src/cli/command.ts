/**
 * The `bedrock-mux` command tree (effect/cli). Importing this module runs
 * nothing: `main.ts` runs `cli` on the process's argv, tests run it with
 * `Command.runWith`.
 *
 * - `bedrock-mux demo [scenario...] [--json] [--live] [--region r] [--models a,b]`
 * - `bedrock-mux validate-config <file | ENV_VAR> [--json]`
 * - `bedrock-mux eval <golden.jsonl> --models a,b,c [...]` (see `eval.ts`)
 *
 * Every output goes through `Console` (the TTY progress line excepted):
 * results on stdout, everything else (errors, the estimate, progress, and
 * every log and warning: the tree runs with `Logger.LogToStderr`) on stderr,
 * so the `--json` output of any command always parses. A failing run fails
 * with `CliExit`, which carries the exit code and is not logged again by the
 * runtime (what had to be said was already printed). A command line the
 * parser rejects exits 2 (`usageErrorExit`).
 */
import { Cause, Config, Console, Data, Duration, Effect, FileSystem, Layer, Logger, Option, Result, Runtime } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { BedrockRuntime } from "../BedrockRuntime.ts"
import type * as Guard from "../Guard.ts"
import * as MuxConfig from "../MuxConfig.ts"
import * as Policy from "../Policy.ts"
import * as Route from "../Route.ts"
import { evalFlags, runEval } from "./eval.ts"
import { Progress, type ProgressReporter, request, type Scenario, type Table } from "./scenarioKit.ts"
import { defaultLiveModels, muxWorkload, runtimeWorkload, scenarios } from "./scenarios.ts"

/** A run that failed after printing why: the process exits with `code`. */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number }> {
  override readonly [Runtime.errorExitCode] = this.code
  override readonly [Runtime.errorReported] = false
}

/**
 * A command line the parser rejects (an unknown flag, a flag value that does
 * not parse, a missing argument) exits 2, the usage-error code, after
 * effect/cli printed the usage and the errors; effect/cli's own code for it
 * is 1, which is the gate's "failed". Help asked for (`--help`, a bare
 * `bedrock-mux`) still exits 0.
 *
 * @example
 * ```ts
 * Command.run(cli, { version }).pipe(usageErrorExit, Effect.provide(NodeServices.layer), NodeRuntime.runMain)
 * ```
 */
export const usageErrorExit = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | CliExit, R> =>
  Effect.catchIf(self, isUsageError, () => Effect.fail(new CliExit({ code: 2 })))

const isUsageError = (e: unknown): boolean => CliError.isCliError(e) && e._tag === "ShowHelp" && e.errors.length > 0

/**
 * Logs to stderr, and reports a failure nobody reported (a defect) there
 * too: what the runtime's own report would print on stdout. Run the program
 * with `NodeRuntime.runMain({ disableErrorReporting: true })`.
 *
 * @example
 * ```ts
 * Command.run(cli, { version }).pipe(usageErrorExit, reportOnStderr, Effect.provide(NodeServices.layer),
 *   NodeRuntime.runMain({ disableErrorReporting: true }))
 * ```
 */
export const reportOnStderr = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  self.pipe(
    Effect.tapCause((cause) =>
      Cause.hasInterruptsOnly(cause) || !Runtime.getErrorReported(Cause.squash(cause)) ? Effect.void : Effect.logError(cause)
    ),
    Effect.provideService(Logger.LogToStderr, true)
  )

/** A readable one-liner for any error. */
export const describeError = (e: unknown): string => {
  if (e instanceof Error) {
    const tag = (e as { _tag?: unknown })._tag
    return typeof tag === "string" || e.name === "Error" ? e.message : `${e.name}: ${e.message}`
  }
  if (typeof e === "object" && e !== null && "message" in e && typeof e.message === "string") return e.message
  return String(e)
}

// ---------------------------------------------------------------------------
// rendering

const grid = (columns: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): Array<string> => {
  const cells = [columns.map(String), ...rows.map((r) => r.map(String))]
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)))
  const line = (r: ReadonlyArray<string>) => "  " + r.map((c, i) => c.padEnd(widths[i]!)).join("  ")
  return [line(cells[0]!), "  " + widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)]
}

/** A scenario's table as text: PASS/FAIL and title, expectation, columns, rows, summary, then its details. */
export const renderTable = (t: Table): string =>
  [
    `${t.ok ? "PASS" : "FAIL"}  ${t.title}`,
    `      expected: ${t.expectation}`,
    ...grid(t.columns, t.rows),
    "  " + Object.entries(t.summary).map(([k, v]) => `${k}=${v}`).join("  "),
    ...(t.details === undefined ? [] : ["", ...t.details.map((l) => (l === "" ? "" : `  ${l}`))]),
    ""
  ].join("\n")

// ---------------------------------------------------------------------------
// demo

type ProgressMode = "tty" | "lines" | "none"

/** What the progress line shows: `name  done/total requests`, redrawn over itself (`\r`, clear to the end of the line). */
export const progressLine = (name: string, done: number, total: number): string =>
  `\r\x1b[K${name.padEnd(20)} ${done}/${total} requests`

/** Whether to redraw: the first and the last count always, the others at most every `interval` ms. */
export const progressDue = (done: number, total: number, sinceLastMs: number, interval = 50): boolean =>
  done === 0 || done === total || sinceLastMs >= interval

/** Draws the progress line on stderr (a TTY), at most every 50 ms. */
const ttyReporter = (name: string): ProgressReporter => {
  let last = Number.NEGATIVE_INFINITY
  return {
    report: (done, total) =>
      Effect.sync(() => {
        const now = performance.now()
        if (!progressDue(done, total, now - last)) return
        last = now
        process.stderr.write(progressLine(name, done, total))
      })
  }
}

const withProgress = (name: string, scenario: Scenario, mode: ProgressMode): Scenario => {
  switch (mode) {
    case "none":
      return scenario
    case "lines":
      return Console.error(`running ${name}...`).pipe(Effect.andThen(scenario))
    case "tty":
      return scenario.pipe(
        Effect.provideService(Progress, ttyReporter(name)),
        Effect.ensuring(Effect.sync(() => process.stderr.write("\r\x1b[K")))
      )
  }
}

/** One request straight to Bedrock: fails with a readable message when there is no access at all. */
const liveCheck = (live: Layer.Layer<BedrockRuntime>, modelId: string) =>
  Effect.gen(function*() {
    const bedrock = yield* BedrockRuntime
    yield* bedrock.converse({ ...request, modelId, inferenceConfig: { maxTokens: 16 } })
  }).pipe(
    Effect.provide(live),
    Effect.timeout("30 seconds"),
    // a throttle means Bedrock answered: access is fine
    Effect.catchIf((e) => e._tag === "BedrockError" && e.reason._tag === "Throttled", () => Effect.void)
  )

const scenarioArg = Argument.String("scenario").pipe(
  Argument.withDescription(`scenarios to run (default: all): ${Object.keys(scenarios).join(", ")}`),
  Argument.variadic()
)

export const demo = Command.make(
  "demo",
  {
    names: scenarioArg,
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the results as a JSON array on stdout")),
    live: Flag.Boolean("live").pipe(
      Flag.withDefault(false),
      Flag.withDescription("run a small workload against real Bedrock (default AWS credential chain)")
    ),
    region: Flag.String("region").pipe(Flag.withDescription("AWS region for --live"), Flag.optional),
    models: Flag.String("models").pipe(
      Flag.withDescription("comma-separated model ids of the --live mux pool (first = primary)"),
      Flag.withDefault(defaultLiveModels.join(","))
    )
  },
  Effect.fn("bedrock-mux.demo")(function*({ json, live, models, names, region }) {
    const unknown = names.filter((n) => !Object.hasOwn(scenarios, n))
    if (unknown.length > 0) {
      yield* Console.error(`unknown scenario(s): ${unknown.join(", ")}; known: ${Object.keys(scenarios).join(", ")}`)
      return yield* new CliExit({ code: 2 })
    }
    let selected: Array<readonly [string, Scenario]>
    if (live) {
      if (names.length > 0) yield* Console.error(`--live runs the live workloads; ignoring ${names.join(", ")}`)
      const pool = models.split(",").map((m) => m.trim()).filter((m) => m.length > 0)
      if (pool.length === 0) {
        yield* Console.error("--models needs at least one model id")
        return yield* new CliExit({ code: 2 })
      }
      const where = Option.match(region, { onNone: () => "the default region", onSome: (r) => r })
      const layer = BedrockRuntime.layer(Option.match(region, { onNone: () => ({}), onSome: (r) => ({ region: r }) }))
      if (!json) yield* Console.error(`checking Bedrock access (${where}, ${pool[0]})...`)
      const check = yield* Effect.result(liveCheck(layer, pool[0]!))
      if (Result.isFailure(check)) {
        yield* Console.error(
          [
            `cannot call Bedrock in ${where} with ${pool[0]}: ${describeError(check.failure)}`,
            "  credentials come from the default AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO,",
            "  instance or task role); the region from --region or AWS_REGION; the model must be enabled in that region."
          ].join("\n")
        )
        return yield* new CliExit({ code: 1 })
      }
      selected = [["runtime (live)", runtimeWorkload(layer)], ["mux (live)", muxWorkload(layer, pool)]]
    } else {
      selected = (names.length === 0 ? Object.keys(scenarios) : names).map((n) => [n, scenarios[n]!] as const)
    }
    const mode: ProgressMode = json ? "none" : process.stderr.isTTY === true ? "tty" : "lines"
    const results: Array<(Table & { readonly name: string }) | { readonly name: string; readonly ok: false; readonly error: string }> = []
    for (const [name, scenario] of selected) {
      const outcome = yield* Effect.result(withProgress(name, scenario, mode))
      if (Result.isFailure(outcome)) {
        const error = describeError(outcome.failure)
        results.push({ name, ok: false, error })
        yield* Console.error(`ERROR ${name}: ${error}`)
        continue
      }
      results.push({ name, ...outcome.success })
      if (!json) yield* Console.log(renderTable(outcome.success))
    }
    if (json) yield* Console.log(JSON.stringify(results, null, 2))
    if (!results.every((r) => r.ok)) return yield* new CliExit({ code: 1 })
  })
).pipe(
  Command.withDescription(
    "Run the demo scenarios on the built-in Bedrock simulator (virtual time: instant and reproducible) and print a table each; exit 1 if any fails"
  )
)

// ---------------------------------------------------------------------------
// validate-config

class SourceError extends Data.TaggedError("SourceError")<{ readonly message: string }> {}

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/

/** The JSON text of `source`: a file if one exists at that path, else the environment variable of that name. */
const readSource = Effect.fnUntraced(function*(source: string) {
  const fs = yield* FileSystem.FileSystem
  if (yield* fs.exists(source).pipe(Effect.orElseSucceed(() => false))) {
    const text = yield* fs.readFileString(source).pipe(
      Effect.mapError((e) => new SourceError({ message: `cannot read ${source}: ${e.message}` }))
    )
    return { from: `file ${source}`, text }
  }
  if (!envName.test(source)) return yield* new SourceError({ message: `no such file: ${source}` })
  const value = yield* Config.option(Config.String(source)).pipe(
    Effect.mapError((e) => new SourceError({ message: `cannot read environment variable ${source}: ${e.message}` }))
  )
  if (Option.isNone(value)) {
    return yield* new SourceError({
      message: `no file named ${source}, and environment variable ${source} is not set`
    })
  }
  return { from: `environment variable ${source}`, text: value.value }
})

const fmt = (d: Duration.Duration): string => Duration.format(d)

/** The streaming settings as plain JSON (durations in ms). */
const streamToJson = (s: Policy.Streaming) => ({
  firstTokenTimeoutMs: Duration.toMillis(s.firstToken),
  stallTimeoutMs: Duration.toMillis(s.stall),
  metadataGraceMs: Duration.toMillis(s.metadataGrace),
  onInterrupt: s.onInterrupt,
  hedge: s.hedge === undefined
    ? null
    : { after: s.hedge.after === "p95" ? "p95" : Duration.toMillis(s.hedge.after), budget: s.hedge.budget }
})

/** A config as decoded, or a policy composed in code (without the sections kept as written). */
type Printable = Policy.Policy & Partial<Pick<MuxConfig.MuxConfig, "decisions" | "retrySettings" | "backoffSettings">>

/** What `Policy.defaultRetry` is (`Policy.exponentialRetry({ base: "100 millis" })`), for a config without `retry`. */
const DEFAULT_RETRY = "default (100ms doubling, jittered, at least the retry-after)"

/** The same-model retry schedule: its settings as written, the default, or one composed in code. */
const retryOf = <A>(c: Printable, settings: (s: MuxConfig.RetrySettings) => A): A | string =>
  c.retrySettings !== undefined ? settings(c.retrySettings) : c.retry === Policy.defaultRetry ? DEFAULT_RETRY : "custom"

/** A guard's settings as plain JSON (durations in ms); undefined for a guard without settings of its own. */
const settingsToJson = (settings: unknown): unknown => {
  if (typeof settings !== "object" || settings === null) return settings
  return Object.fromEntries(
    Object.entries(settings).map(([k, v]) => (Duration.isDuration(v) ? [`${k}Ms`, Duration.toMillis(v)] : [k, v]))
  )
}

const routeToJson = (r: Route.Route) => r.tiers.map((tier) => tier.map((m) => m.target))

/** The decoded config as plain JSON (durations in ms), every section. */
export const configToJson = (c: Printable) => {
  const models = Policy.models(c)
  const guard = (name: string) => c.guards.find((g) => g.name === name)?.settings
  return {
    name: c.name,
    models: models.map((m) => ({
      target: m.target,
      modelId: m.modelId,
      tier: m.tier,
      weight: m.weight,
      timeoutMs: Duration.toMillis(m.timeout ?? c.timeout),
      timeoutFrom: m.timeout === undefined ? "policy" : "model",
      ...(m.client === undefined ? {} : { client: m.client }),
      ...(m.contextWindow === undefined ? {} : { contextWindow: m.contextWindow }),
      ...(m.rpm === undefined ? {} : { rpm: m.rpm }),
      ...(m.tpm === undefined ? {} : { tpm: m.tpm }),
      maxTokens: m.maxTokens,
      labels: m.labels,
      ...(m.escalate === undefined ? {} : { escalate: m.escalate }),
      ...(m.price === undefined ? {} : { price: m.price })
    })),
    route: routeToJson(c.route),
    policy: {
      attempts: c.attempts,
      timeoutMs: Duration.toMillis(c.timeout),
      deadlineMs: Duration.toMillis(c.deadline),
      selection: c.selector.name,
      retry: retryOf(c, (r) => ({ baseMs: Duration.toMillis(r.base), maxMs: r.max === undefined ? null : Duration.toMillis(r.max) })),
      backoff: c.backoffSettings !== undefined
        ? { baseMs: Duration.toMillis(c.backoffSettings.base), maxMs: Duration.toMillis(c.backoffSettings.max), times: c.backoffSettings.times }
        : c.backoff !== undefined
        ? "custom"
        : null,
      waitForRecovery: c.waitForRecovery,
      guards: c.guards.map((g) => g.name),
      breaker: settingsToJson(guard("breaker")) ?? null,
      decisions: c.decisions ?? {}
    },
    stream: streamToJson(c.stream),
    routes: Object.fromEntries([...c.routes].map(([label, r]) => [label, Route.models(r).map((m) => m.target)])),
    tenants: Object.fromEntries(c.tenants.limits),
    ...(c.tenants.default === undefined ? {} : { defaultTenant: c.tenants.default }),
    onStoreError: c.onStoreError,
    cooldowns: settingsToJson(guard("cooldown")) ?? null,
    captureBodies: c.captureBodies
  }
}

const limits = (l: MuxConfig.TenantLimits): string =>
  [l.rpm === undefined ? undefined : `rpm ${l.rpm}`, l.tpm === undefined ? undefined : `tpm ${l.tpm}`]
    .filter((x) => x !== undefined).join(", ") || "unlimited"

const decision = (d: Partial<Record<string, number | boolean>>): string =>
  Object.entries(d).map(([k, v]) => `${k} ${String(v)}`).join(", ")

/** The decoded config as text, every section. */
export const renderConfig = (c: Printable): string => {
  const s = c.stream
  const models = Policy.models(c)
  const backoff = c.backoffSettings !== undefined
    ? `exponential from ${fmt(c.backoffSettings.base)} up to ${fmt(c.backoffSettings.max)}, ${c.backoffSettings.times} time(s)`
    : c.backoff === undefined
    ? "none"
    : "custom"
  const opt = (x: string | number | undefined) => (x === undefined ? "-" : String(x))
  const tierOf = (target: string) => c.route.tiers.findIndex((t) => t.some((m) => m.target === target))
  const b = c.guards.find((g) => g.name === "breaker")?.settings as Guard.BreakerSettings | undefined
  const cd = c.guards.find((g) => g.name === "cooldown")?.settings as Guard.CooldownSettings | undefined
  return [
    `name: ${c.name}`,
    `models (${models.length}):`,
    ...grid(
      ["target", "tier", "weight", "timeout", "rpm", "tpm", "maxTokens", "contextWindow", "labels", "escalate"],
      models.map((m) => [
        m.target,
        tierOf(m.target) === 0 ? "0 (primary)" : `${tierOf(m.target)} (fallback)`,
        m.weight,
        m.timeout === undefined ? `${fmt(c.timeout)} (policy)` : fmt(m.timeout),
        opt(m.rpm),
        opt(m.tpm),
        m.maxTokens,
        opt(m.contextWindow),
        m.labels.length === 0 ? "-" : m.labels.join(","),
        opt(m.escalate)
      ])
    ),
    `policy: attempts ${c.attempts}, attempt timeout ${fmt(c.timeout)}, deadline ${fmt(c.deadline)}, selection ${c.selector.name}, backoff ${backoff}, waitForRecovery ${c.waitForRecovery}`,
    `retry: ${
      retryOf(c, (r) => `${fmt(r.base)} doubling${r.max === undefined ? "" : ` up to ${fmt(r.max)}`}, jittered, at least the retry-after`)
    }`,
    `guards: ${c.guards.map((g) => g.name).join(", ") || "none"}`,
    b === undefined
      ? "breaker: none"
      : `breaker: opens after ${b.failures} failures in ${fmt(b.window)}, a probe every ${fmt(b.probeInterval)} while open (a slow failure doubles it, up to ${
        fmt(b.probeIntervalMax)
      }), ${b.halfOpen} half-open probe(s), ramp-up ${fmt(b.rampUp)}`,
    c.decisions === undefined || Object.keys(c.decisions).length === 0
      ? "decisions: defaults (docs/concepts.md)"
      : ["decisions (overrides of the defaults):", ...Object.entries(c.decisions).map(([tag, d]) => `  ${tag}: ${decision(d ?? {})}`)].join("\n"),
    `stream: first token within ${fmt(s.firstToken)}, stall after ${fmt(s.stall)}, metadata grace ${fmt(s.metadataGrace)}, on interrupt ${s.onInterrupt}, hedge ${
      s.hedge === undefined ? "off" : `after ${s.hedge.after === "p95" ? "p95" : fmt(s.hedge.after)}, budget ${s.hedge.budget}`
    }`,
    c.routes.size === 0
      ? "routes: none"
      : ["routes:", ...[...c.routes].map(([label, r]) => `  ${label} -> ${Route.models(r).map((m) => m.target).join(", ")}`)].join("\n"),
    c.tenants.limits.size === 0 && c.tenants.default === undefined
      ? "tenants: none (unlimited)"
      : [
        "tenants:",
        ...[...c.tenants.limits].map(([t, l]) => `  ${t}: ${limits(l)}`),
        `  (any other): ${c.tenants.default === undefined ? "unlimited" : limits(c.tenants.default)}`
      ].join("\n"),
    cd === undefined
      ? `throttle cooldowns: none; on store error: ${c.onStoreError}`
      : `throttle cooldowns: from ${fmt(cd.base)}, doubling up to requests ${fmt(cd.requests)}, tokens ${fmt(cd.tokens)}, unknown ${
        fmt(cd.unknown)
      }; daily ${fmt(cd.daily)}; on store error: ${c.onStoreError}`,
    `capture bodies: ${c.captureBodies}`
  ].join("\n")
}

export const validateConfig = Command.make(
  "validate-config",
  {
    source: Argument.String("source").pipe(
      Argument.withDescription("a JSON config file, or the name of an environment variable holding the JSON")
    ),
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON on stdout"))
  },
  Effect.fn("bedrock-mux.validate-config")(function*({ json, source }) {
    const read = yield* Effect.result(readSource(source).pipe(
      Effect.flatMap(({ from, text }) =>
        Effect.try({
          try: () => ({ from, raw: JSON.parse(text) as unknown }),
          catch: (e) => new SourceError({ message: `${from}: not valid JSON: ${describeError(e)}` })
        })
      )
    ))
    if (Result.isFailure(read)) {
      if (json) yield* Console.log(JSON.stringify({ ok: false, source, error: read.failure.message }, null, 2))
      else yield* Console.error(`error: ${read.failure.message}`)
      return yield* new CliExit({ code: 1 })
    }
    const { from, raw } = read.success
    const decoded = yield* Effect.result(MuxConfig.decode(raw))
    if (Result.isFailure(decoded)) {
      const problems = decoded.failure.problems
      if (json) yield* Console.log(JSON.stringify({ ok: false, source: from, problems }, null, 2))
      else {
        yield* Console.log(
          [
            `INVALID  ${from}: ${problems.length} problem${problems.length === 1 ? "" : "s"}`,
            ...problems.map((p) => `  ${p.path}: ${p.message}`)
          ].join("\n")
        )
      }
      return yield* new CliExit({ code: 1 })
    }
    if (json) yield* Console.log(JSON.stringify({ ok: true, source: from, config: configToJson(decoded.success) }, null, 2))
    else yield* Console.log(`VALID  ${from}\n${renderConfig(decoded.success)}`)
  })
).pipe(Command.withDescription("Decode a mux config (JSON file or environment variable) and print it, or every problem"))

// ---------------------------------------------------------------------------
// eval (the run lives in eval.ts)

export const evaluate = Command.make(
  "eval",
  evalFlags,
  Effect.fn("bedrock-mux.eval")(function*(args) {
    const progress = process.stderr.isTTY === true ? ttyReporter("eval") : undefined
    const code = yield* runEval(args, { progress, renderTable, describeError })
    if (code !== 0) return yield* new CliExit({ code })
  })
).pipe(
  Command.withDescription(
    "The evaluation gate: run candidates on a golden set, score them, print the report and write the next config; exit 0 pass, 1 fail, 2 bad input"
  )
)

// ---------------------------------------------------------------------------

export const cli = Command.make("bedrock-mux").pipe(
  Command.withDescription("Resilience layer for Amazon Bedrock Converse: demo scenarios, config validation, the evaluation gate"),
  Command.withSubcommands([demo, validateConfig, evaluate]),
  // stdout is for results: every command's logs and warnings (a damaged answer cache, a daily quota) go to stderr
  Command.provideSync(Logger.LogToStderr, true)
)
