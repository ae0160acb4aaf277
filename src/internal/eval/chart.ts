/**
 * The report's chart, as a hand-written SVG string: mean score (with its
 * 95 % interval) against cost per 1 000 cases, and against p50 latency, one
 * point per model (numbered, the legend below names them), the bar as a
 * dashed line. Promoted models are green, the others red. Pure.
 */
import type { Report } from "./types.ts"

const W = 380
const H = 280
const M = { left: 48, right: 16, top: 30, bottom: 44 }

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const colorOf = (promoted: boolean) => (promoted ? "#1a7f37" : "#cf222e")

const num = (x: number): string => (Math.round(x * 10) / 10).toString()

const tick = (x: number): string =>
  x === 0 ? "0" : x >= 100 ? Math.round(x).toString() : x >= 1 ? x.toFixed(1) : x.toPrecision(2)

interface Point {
  readonly n: number
  readonly label: string
  readonly x: number
  readonly y: number
  readonly lo: number
  readonly hi: number
  readonly promoted: boolean
}

const panel = (offset: number, title: string, axis: string, points: ReadonlyArray<Point>, bar: number): string => {
  const pw = W - M.left - M.right
  const ph = H - M.top - M.bottom
  const maxX = Math.max(...points.map((p) => p.x), 0) * 1.15 || 1
  const sx = (x: number) => offset + M.left + (x / maxX) * pw
  const sy = (y: number) => M.top + (1 - y) * ph
  const parts: Array<string> = [
    `<text x="${num(offset + W / 2)}" y="18" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${num(offset + M.left)}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`
  ]
  for (const y of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<text x="${num(offset + M.left - 6)}" y="${num(sy(y) + 4)}" text-anchor="end">${y}</text>`)
  }
  for (const x of [0, maxX / 2, maxX]) {
    parts.push(`<text x="${num(sx(x))}" y="${num(M.top + ph + 16)}" text-anchor="middle">${tick(x)}</text>`)
  }
  parts.push(`<text x="${num(offset + M.left + pw / 2)}" y="${H - 8}" text-anchor="middle">${esc(axis)}</text>`)
  parts.push(
    `<line x1="${num(sx(0))}" x2="${num(sx(maxX))}" y1="${num(sy(bar))}" y2="${num(sy(bar))}" stroke="#555" stroke-dasharray="4 3"/>`,
    `<text x="${num(sx(maxX) - 4)}" y="${num(sy(bar) - 4)}" text-anchor="end" fill="#555">bar ${bar}</text>`
  )
  for (const p of points) {
    const color = colorOf(p.promoted)
    const x = sx(p.x)
    // the number on the side with room: left of a point in the right half
    const right = x < offset + M.left + pw / 2
    parts.push(
      `<line x1="${num(x)}" x2="${num(x)}" y1="${num(sy(p.lo))}" y2="${num(sy(p.hi))}" stroke="${color}"/>`,
      `<circle cx="${num(x)}" cy="${num(sy(p.y))}" r="4" fill="${color}"><title>${esc(`${p.label}: ${p.y.toFixed(3)} [${p.lo.toFixed(3)}, ${p.hi.toFixed(3)}]`)}</title></circle>`,
      `<text x="${num(right ? x + 7 : x - 7)}" y="${num(sy(p.y) + 4)}" text-anchor="${right ? "start" : "end"}" fill="${color}">${p.n}</text>`
    )
  }
  if (points.length === 0) {
    parts.push(`<text x="${num(offset + W / 2)}" y="${num(M.top + ph / 2)}" text-anchor="middle" fill="#555">no data</text>`)
  }
  return parts.join("\n")
}

/** The SVG chart of a report. */
export const chartOf = (report: Report): string => {
  const scored = report.models.filter((m) => m.summary.mean !== undefined && m.summary.ci !== undefined)
  const point = (m: typeof scored[number], x: number): Point => ({
    n: scored.indexOf(m) + 1,
    label: m.modelId,
    x,
    y: m.summary.mean!,
    lo: m.summary.ci![0],
    hi: m.summary.ci![1],
    promoted: m.promoted
  })
  const byCost = scored.flatMap((m) => (m.summary.costPer1kCases === undefined ? [] : [point(m, m.summary.costPer1kCases)]))
  const byLatency = scored.flatMap((m) => (m.summary.latencyMs === undefined ? [] : [point(m, m.summary.latencyMs.p50)]))
  const legend = scored.map((m, i) =>
    `<text x="${M.left}" y="${H + 16 * (i + 1)}" fill="${colorOf(m.promoted)}">${i + 1}  ${esc(m.modelId)} (${m.promoted ? "promoted" : "left out"}; mean ${
      m.summary.mean!.toFixed(2)
    } [${m.summary.ci![0].toFixed(2)}, ${m.summary.ci![1].toFixed(2)}])</text>`
  )
  const height = H + 16 * scored.length + 10
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${height}" viewBox="0 0 ${2 * W} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(0, "score against cost", "USD per 1 000 cases", byCost, report.bar),
    panel(W, "score against latency", "p50 latency (ms)", byLatency, report.bar),
    ...legend,
    `</svg>`,
    ""
  ].join("\n")
}
