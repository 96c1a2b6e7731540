// Hit, gRPC, at 64 in flight, on fresh instances side by side in alternating
// rounds: one with tracing off (the default: no OTEL_EXPORTER_OTLP_ENDPOINT),
// one exporting every call's trace (the default sampler,
// parentbased_always_on, samples every root) over OTLP to a local sink that
// accepts and discards it (otlp-sink.ts), and with --baseline DIR one running
// another checkout's service (say, the commit before tracing existed), to
// show what "off" costs. Same database, Redis, key and request bytes as the
// Hit row.

import { getProfile } from "../calls.js";
import { fixedLoad, type BenchContext } from "../context.js";
import { profileId } from "../ids.js";
import { measureRpc } from "../measure.js";
import { inRounds, type MeasureId, type Measurement } from "../measurement.js";
import { startOtlpSink } from "../otlp-sink.js";
import { startService, type ServiceInstance } from "../service.js";
import { refill } from "./hit.js";

export async function tracingCost(ctx: BenchContext): Promise<Measurement[]> {
  const o = ctx.options;
  const hotId = profileId(ctx.ranges.hot);
  const call = getProfile("grpc", hotId, ctx.tokens.hotUser);
  const sink = await startOtlpSink();
  const untraced = Object.fromEntries(Object.entries(ctx.serviceEnv).filter(([k]) => !k.startsWith("OTEL_")));
  const instances: ServiceInstance[] = [];
  const start = async (...args: Parameters<typeof startService>) => {
    const instance = await startService(...args);
    instances.push(instance);
    return instance;
  };
  try {
    const off = await start("trace-off", untraced, ctx.workDir);
    const on = await start("trace-on", { ...untraced, OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint }, ctx.workDir);
    const baseline =
      o.baselineEntry === undefined
        ? undefined
        : await start("baseline", untraced, ctx.workDir, undefined, o.baselineEntry);
    const run = (id: MeasureId, service: ServiceInstance) => () =>
      measureRpc(
        {
          id,
          kind: "scenario",
          cache: "hit",
          before: () => refill(ctx, [hotId]),
          endpoint: service.endpoint("grpc"),
          call,
          ...fixedLoad(ctx),
        },
        ctx.workDir,
      );
    const from = { ...sink.received };
    const rows = await inRounds(o.rounds, [
      run("hit-trace-off", off),
      run("hit-trace-on", on),
      ...(baseline === undefined ? [] : [run("hit-baseline", baseline)]),
    ]);
    // Stopping flushes the exporter's last batch into the sink.
    await on.stop();
    const requests = sink.received.requests - from.requests;
    const bytes = sink.received.bytes - from.bytes;
    const onRow = rows[1]!;
    onRow.extra.otlpExports = requests;
    onRow.extra.otlpBytes = bytes;
    // Warm-up calls and refills are exported too: per measured call, this slightly overstates.
    onRow.notes.push(
      `OTLP: ${requests} exports, about ${Math.round(bytes / Math.max(1, onRow.requests))} bytes per call`,
    );
    if (baseline !== undefined) rows[2]!.notes.push(`service: ${o.baselineEntry}`);
    return rows;
  } finally {
    await Promise.allSettled(instances.map((i) => i.stop()));
    await sink.close();
  }
}
