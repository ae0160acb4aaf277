/**
 * The report as Markdown (for a PR comment) and as JSON (for machines).
 * Prompts and answers appear here, in the worst cases; of what the
 * evaluation writes, answers are also in the answer cache (`cache.ts`), and
 * prompts nowhere else. The evaluation logs none of them. Pure.
 */
import type { CaseResult, ModelReport, Report, Summary } from "./types.ts"

const f2 = (x: number | undefined): string => (x === undefined ? "–" : x.toFixed(2))
const pct = (x: number | undefined): string => (x === undefined ? "–" : `${Math.round(x * 100)} %`)
const ms = (p: { readonly p50: number; readonly p95: number } | undefined): string =>
  p === undefined ? "–" : `${Math.round(p.p50)} / ${Math.round(p.p95)} ms`
const usd = (x: number | undefined): string =>
  x === undefined ? "–" : x >= 100 ? `$${x.toFixed(0)}` : x >= 1 ? `$${x.toFixed(2)}` : `$${x.toPrecision(2)}`
const ci = (c: readonly [number, number] | undefined): string => (c === undefined ? "–" : `[${f2(c[0])}, ${f2(c[1])}]`)
const count = (x: number | undefined): string => (x === undefined ? "–" : String(x))
const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ")
const html = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
const code = (s: string): string => `\`${s.replace(/`/g, "'")}\``

/** A fence longer than any run of backticks in `text`. */
const fenced = (text: string, lang = ""): string => {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length))
  const fence = "`".repeat(longest + 1)
  return `${fence}${lang}\n${text}\n${fence}`
}

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s)

const table = (head: ReadonlyArray<string>, align: string, rows: ReadonlyArray<ReadonlyArray<string>>): Array<string> => [
  `| ${head.join(" | ")} |`,
  align,
  ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)
]

const status = (m: ModelReport): string => (m.promoted ? "✅ promoted" : "❌ left out")

const summaryCells = (s: Summary): Array<string> => [
  f2(s.mean),
  ci(s.ci),
  pct(s.passRate),
  ms(s.ttftMs),
  ms(s.latencyMs),
  usd(s.costPer1kCases),
  count(s.errors),
  count(s.refusals),
  count(s.judgeFailures)
]

/** The worst results of a model: the cases that did not pass, lowest score first (unscored last), then by line. */
export const worstOf = (results: ReadonlyArray<CaseResult>, n: number): ReadonlyArray<CaseResult> =>
  [...results]
    .filter((r) => r.pass !== true)
    .sort((a, b) => (a.score ?? 2) - (b.score ?? 2) || a.line - b.line)
    .slice(0, n)

/** Why a case did not pass: the failed call, or each check's verdict. */
export const whyOf = (r: CaseResult): string => {
  if (r.error !== undefined) return `call failed: ${r.error}`
  const notes = r.checks.map((k) =>
    k.status === "failed" ? `${k.scorer}: scorer failed (${k.failure})` : `${k.scorer} ${k.pass ? "✓" : "✗"}${k.detail === undefined ? "" : ` ${k.detail}`}`
  )
  return [...notes, ...(r.refusal === true ? ["refusal"] : [])].join("; ")
}

/** The models table, then why each model left out (or kept out of a route) fails; Markdown lines. */
export const modelsSection = (report: Report): Array<string> => {
  const out = [
    ...table(
      ["model", "status", "mean", "95 % CI", "pass rate", "TTFT p50 / p95", "latency p50 / p95", "per 1k cases", "errors", "refusals", "judge failures"],
      "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
      report.models.map((m) => [`${code(m.modelId)}${m.incumbent ? " (incumbent)" : ""}`, status(m), ...summaryCells(m.summary)])
    ),
    ""
  ]
  const left = report.models.filter((m) => !m.promoted || m.failedTags.length > 0)
  for (const m of left) out.push(`- ${code(m.modelId)}: ${m.reasons.length > 0 ? m.reasons.join("; ") : `fails ${m.failedTags.join(", ")} (kept out of those routes)`}`)
  if (left.length > 0) out.push("")
  return out
}

/** The "By tag" section (none without tags); Markdown lines. */
export const tagsSection = (report: Report): Array<string> => {
  if (report.tags.length === 0) return []
  return [
    "### By tag",
    "",
    `Cells: mean [95 % CI]; ✅ / ❌ against the bar on tags with at least ${report.minTagCases} cases (· not gated).`,
    "",
    ...table(
      ["tag", "cases", ...report.models.map((m) => code(m.modelId))],
      `|---|---:|${report.models.map(() => "---|").join("")}`,
      report.tags.map((t) => {
        const gated = report.gatedTags.includes(t)
        const n = report.models[0]?.tags[t]?.cases ?? 0
        return [
          t,
          String(n),
          ...report.models.map((m) => {
            const s = m.tags[t]
            if (s === undefined) return "–"
            return `${f2(s.mean)} ${ci(s.ci)} ${gated ? (s.passesBar ? "✅" : "❌") : "·"}`
          })
        ]
      })
    ),
    ""
  ]
}

/** The report as Markdown; `chart` is the SVG's path relative to the Markdown, when there is one. */
export const markdownOf = (report: Report, options: { readonly worst?: number; readonly chart?: string } = {}): string => {
  const worst = options.worst ?? 3
  const out: Array<string> = []
  out.push(`## Evaluation gate: ${report.gate.passed ? "✅ PASS" : "❌ FAIL"}`, "")
  if (report.gate.reasons.length > 0) {
    out.push(...report.gate.reasons.map((r) => `- ${r}`), "")
  }
  out.push(
    [
      `Bar **${report.bar}** on the lower bound of the 95 % interval`,
      `${report.cases} cases`,
      `${report.models.length} models`,
      ...(report.judge === undefined ? [] : [`judge ${code(report.judge)}`]),
      `weights \`${report.weights}\``,
      `seed ${code(report.seed)}, ${report.resamples} resamples`
    ].join(" · "),
    ""
  )
  out.push(...modelsSection(report))
  out.push(...tagsSection(report))
  if (report.comparisons.length > 0) {
    out.push("### Against the incumbent", "", "Paired bootstrap on the cases both models scored: better or worse only when the interval excludes 0.", "")
    out.push(
      ...table(
        ["candidate", "incumbent", "cases", "Δ mean", "95 % CI", "verdict"],
        "|---|---|---:|---:|---|---|",
        report.comparisons.map((c) => [code(c.candidate), code(c.incumbent), String(c.cases), `${c.diff >= 0 ? "+" : ""}${f2(c.diff)}`, ci(c.ci), c.verdict])
      ),
      ""
    )
  }
  out.push("### Next config", "")
  const diff = report.next.diff.map((d) => `${d.op === "~" ? "!" : d.op} ${d.text}`)
  out.push(fenced(diff.length === 0 ? "  (no change)" : diff.join("\n"), "diff"), "")
  if (report.next.problems.length > 0) {
    out.push("The next config does not validate:", "", ...report.next.problems.map((p) => `- ${code(p.path)}: ${p.message}`), "")
  }
  if (report.next.notes.length > 0) out.push(...report.next.notes.map((n) => `- ${n}`), "")
  out.push("<details><summary>next config (JSON)</summary>", "", fenced(JSON.stringify(report.next.input, null, 2), "json"), "", "</details>", "")
  if (options.chart !== undefined) out.push(`![score against cost and latency](${options.chart})`, "")
  const withWorst = report.models.map((m) => [m, worstOf(m.results, worst)] as const).filter(([, w]) => w.length > 0)
  if (withWorst.length > 0) {
    out.push("### Worst cases", "")
    for (const [m, cases] of withWorst) {
      // HTML, not Markdown, inside <summary>
      out.push(`<details><summary><code>${html(m.modelId)}</code>: ${cases.length} worst case${cases.length === 1 ? "" : "s"}</summary>`, "")
      for (const r of cases) {
        out.push(
          `**${code(r.caseId)}** (line ${r.line}${r.tags.length > 0 ? `, ${r.tags.join(", ")}` : ""}): score ${f2(r.score)}; ${whyOf(r)}`,
          "",
          "Prompt:",
          "",
          fenced(clip(r.prompt, 600)),
          "",
          ...(r.answer === undefined ? [] : ["Answer:", "", fenced(clip(r.answer, 1200)), ""])
        )
      }
      out.push("</details>", "")
    }
  }
  const c = report.cost
  out.push(
    "### Cost",
    "",
    [
      `Upper-bound estimate before the run: ${c.estimateUsd === undefined ? "unknown" : usd(c.estimateUsd)}`,
      `billed this run: ${usd(c.billedUsd)}`,
      `${c.calls} model calls (${c.cachedCalls} cached)`,
      ...(report.judge === undefined ? [] : [`${c.judgeCalls} judge calls (${c.judgeCachedCalls} cached)`])
    ].join(" · ") + (c.unpriced.length > 0 ? `. No price for ${c.unpriced.map(code).join(", ")}: not counted.` : ""),
    ""
  )
  return out.join("\n")
}

/** The report as JSON-ready data (the decoded config left out: `next.input` is its JSON). */
export const jsonOf = (report: Report): unknown => ({ ...report, next: { ...report.next, config: undefined } })
