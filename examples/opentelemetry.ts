/**
 * Traces and metrics through @effect/opentelemetry. The mux needs no
 * telemetry setup of its own: it makes spans with Effect's tracer and keeps
 * its metrics in Effect's `Metric` registry, and `NodeSdk.layer` exports both.
 *
 * Here the primary answers 503, the request fails over to the fallback, and
 * the program prints what was exported: the request span `chat bedrock-mux`
 * with one `chat <modelId>` span per attempt under it (the failed one with
 * `error.type`), and the metrics (`gen_ai.client.operation.duration`,
 * `gen_ai.client.token.usage`, `bedrock_mux.*`).
 *
 * The exporters are in-memory so the example can print what they got. In
 * production, swap them for OTLP ones (packages
 * `@opentelemetry/exporter-trace-otlp-http` and
 * `@opentelemetry/exporter-metrics-otlp-http`):
 *   spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()),
 *   metricReader: new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() })
 *
 * On the simulator; for real Bedrock replace the simulator layer with
 * `BedrockRuntime.layer({ region: "us-east-1" })`.
 *
 * Run: node examples/opentelemetry.ts
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { SpanStatusCode } from "@opentelemetry/api"
import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Console, Effect, Layer } from "effect"
import { BedrockMux, BedrockSimulator } from "../src/index.ts"

const MuxLive = BedrockMux.layer({
  models: [
    { modelId: "amazon.nova-2-lite-v1:0", weight: 100 },
    { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
  ]
}).pipe(Layer.provide(BedrockSimulator.layer({
  models: {
    "amazon.nova-2-lite-v1:0": { faults: [{ when: { calls: [1] }, do: { kind: "error", error: "ServiceUnavailableException" } }] },
    "amazon.nova-pro-v1:0": { answer: "Hello from Nova Pro." }
  }
})))

/** One exported span: its name, its parent's name, and the attributes worth printing. */
export interface ExportedSpan {
  readonly name: string
  readonly parent: string | undefined
  readonly status: "unset" | "ok" | "error"
  readonly model: string | undefined
  readonly errorType: string | undefined
}

/** The app: one request, then what the exporters got. */
const app = (
  spanExporter: InMemorySpanExporter,
  metricExporter: InMemoryMetricExporter,
  metricReader: PeriodicExportingMetricReader
) =>
  Effect.gen(function*() {
    const mux = yield* BedrockMux
    const res = yield* mux.converse({ messages: [{ role: "user", content: [{ text: "Say hello." }] }] })
    yield* Console.log(`${res.routing.modelId} answered (${res.routing.attempts.map((a) => `${a.modelId}:${a.reason ?? a.outcome}`).join(" → ")})`)

    // read the spans while the SDK is up: closing the layer shuts the provider down, which clears the exporter
    const finished = spanExporter.getFinishedSpans()
    const nameOf = new Map(finished.map((s) => [s.spanContext().spanId, s.name]))
    const spans = finished.map((s): ExportedSpan => {
      const parentId = s.parentSpanContext?.spanId
      const model = s.attributes["gen_ai.request.model"] ?? s.attributes["gen_ai.response.model"]
      const errorType = s.attributes["error.type"]
      return {
        name: s.name,
        parent: parentId === undefined ? undefined : nameOf.get(parentId),
        status: s.status.code === SpanStatusCode.ERROR ? "error" : s.status.code === SpanStatusCode.OK ? "ok" : "unset",
        model: model === undefined ? undefined : String(model),
        errorType: errorType === undefined ? undefined : String(errorType)
      }
    })
    // spans end (and are exported) children first; print the tree root first
    yield* Console.log("spans:")
    const line = (s: ExportedSpan, indent: string) =>
      Console.log(`${indent}${s.name} [${s.status}]${s.model !== undefined ? ` model=${s.model}` : ""}${
        s.errorType !== undefined ? ` error.type=${s.errorType}` : ""}`)
    for (const root of spans.filter((s) => s.parent === undefined)) {
      yield* line(root, "  ")
      for (const child of spans.filter((s) => s.parent === root.name)) yield* line(child, "    ")
    }

    // a metric reader exports on its interval; force one export now
    yield* Effect.promise(() => metricReader.forceFlush())
    const exported = metricExporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
    const metrics = [...new Set(exported.map((m) => m.descriptor.name))].sort()
    yield* Console.log("metrics:")
    for (const m of exported) {
      yield* Console.log(`  ${m.descriptor.name}: ${m.dataPoints.length} series`)
    }
    return { answeredBy: res.routing.modelId, spans, metrics }
  })

/** Exporters and SDK per run: a metric reader cannot be bound again after its SDK shut down. */
export const program = Effect.suspend(() => {
  const spanExporter = new InMemorySpanExporter()
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const metricReader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 })
  const OtelLive = NodeSdk.layer(() => ({
    resource: { serviceName: "bedrock-mux-example", serviceVersion: "0.1.0" },
    spanProcessor: new SimpleSpanProcessor(spanExporter),
    metricReader
  }))
  return app(spanExporter, metricExporter, metricReader).pipe(Effect.provide(MuxLive), Effect.provide(OtelLive))
})

if (import.meta.main) Effect.runPromise(program)
