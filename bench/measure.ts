// One measurement of calls to an endpoint (the service or a floor server), the
// same way for every row: a sample call whose reply is checked, the load from
// the chosen generator, the server's CPU over the window, and afterwards the
// service's per-RPC log, which must show only OK replies (and, for hit and miss
// scenarios, only hits or only misses).

import type { Call } from "./calls.js";
import { wireLength } from "./calls.js";
import { sleep } from "./child.js";
import { closedLoop, type LoadRun } from "./closed-loop.js";
import { probeWindow } from "./cpu.js";
import { H2Client } from "./h2-client.js";
import { runH2load } from "./h2load.js";
import { MEASURES, measurement, type Generator, type MeasureId, type Measurement } from "./measurement.js";
import type { Endpoint } from "./service.js";
import { bypassNote, hitRatio, tallyLog } from "./service-log.js";

export class BenchFailure extends Error {
  override name = "BenchFailure";
}

export interface Window {
  warmupMs: number;
  durationMs: number;
}

export interface RpcPlan {
  id: MeasureId;
  kind: Measurement["kind"];
  endpoint: Endpoint;
  generator: Generator;
  connections: number;
  /** Calls in flight, spread evenly over the connections. */
  concurrency: number;
  window: Window;
  /** The same call every time (all h2load can send), or one per operation. */
  call: Call | ((seq: number) => Call);
  /** What the service's log must show for every read of the run. */
  cache?: "hit" | "miss";
  itemsPerCall?: number;
  notes?: string[];
  /** Runs before the sample call (a hit scenario drops its keys, so the sample refills them with a full TTL). */
  before?: () => Promise<unknown>;
}

export async function measureRpc(plan: RpcPlan, workDir: string): Promise<Measurement> {
  const { endpoint: ep, window: w } = plan;
  const name = `${MEASURES[plan.id].name} (${ep.label})`;
  const fixed = plan.call;
  const next = typeof fixed === "function" ? fixed : () => fixed;
  await plan.before?.();
  const client = await H2Client.connect(ep.url, plan.generator === "node" ? plan.connections : 1);
  try {
    const sample = next(0);
    let replyLength: number;
    try {
      const reply = await client.call(sample);
      sample.expect(reply);
      replyLength = reply.length;
    } catch (err) {
      throw new BenchFailure(`${name}: the sample call ${sample.path} failed: ${String(err)}`);
    }
    const logFrom = ep.process.logSize();
    let measuredFrom = logFrom;
    const mark = setTimeout(() => (measuredFrom = ep.process.logSize()), w.warmupMs);
    const cpu = probeWindow(w.warmupMs, w.durationMs, ep.process.pid);
    let run: LoadRun;
    if (plan.generator === "h2load") {
      const shape = { connections: plan.connections, streamsPerConnection: plan.concurrency / plan.connections, ...w };
      const r = await runH2load(ep.url, sample, shape, workDir);
      // A trailers-only gRPC error has no DATA; h2load would still count it as a success.
      const expected = r.requests * wireLength(sample.protocol, replyLength);
      if (r.dataBytes < expected)
        throw new BenchFailure(`${name}: ${r.dataBytes} reply bytes for ${r.requests} calls, expected ${expected}`);
      run = r;
    } else {
      run = await closedLoop({ concurrency: plan.concurrency, ...w, op: (seq) => client.call(next(seq)) });
    }
    clearTimeout(mark);
    const { foreignCpu, targetCpuMs } = await cpu;
    if (run.errors > 0) throw new BenchFailure(`${name}: ${run.errors} failed calls; first: ${run.firstError}`);

    const extra: Record<string, unknown> = { replyBytes: replyLength };
    if (run.exhausted === true) extra.inputExhausted = true;
    const notes = [...(plan.notes ?? [])];
    if (ep.logsRpcs) {
      await sleep(100); // let the last log lines land
      const to = ep.process.logSize();
      const all = tallyLog(ep.process.logFile, logFrom, to);
      // A timed run ends by cancelling the calls still in flight; the service logs those as Canceled.
      if (Object.keys(all.codes).some((code) => code !== "OK" && code !== "Canceled"))
        throw new BenchFailure(`${name}: the service logged ${JSON.stringify(all.codes)}`);
      const wrong = plan.cache === "hit" ? all.cache.miss : plan.cache === "miss" ? all.cache.hit : undefined;
      if ((wrong ?? 0) > 0)
        throw new BenchFailure(`${name}: expected every read to be a ${plan.cache}, got ${JSON.stringify(all.cache)}`);
      const measured = tallyLog(ep.process.logFile, measuredFrom, to);
      extra.cacheHitRatio = hitRatio(measured);
      extra.cacheStatuses = measured.cache;
      notes.push(...bypassNote(all));
    }
    return measurement(plan.id, run, {
      kind: plan.kind,
      generator: plan.generator,
      concurrency: plan.concurrency,
      itemsPerCall: plan.itemsPerCall,
      cpuMs: targetCpuMs,
      foreignCpu,
      extra,
      notes,
    });
  } finally {
    client.close();
  }
}

/** A store floor: `op` from this process (no server of ours in between), one at a time. */
export async function measureOp(
  id: MeasureId,
  concurrency: number,
  w: Window,
  op: (seq: number) => Promise<void>,
  notes: string[],
): Promise<Measurement> {
  const cpu = probeWindow(w.warmupMs, w.durationMs);
  const run = await closedLoop({ concurrency, ...w, op });
  const { foreignCpu } = await cpu;
  if (run.errors > 0)
    throw new BenchFailure(`${MEASURES[id].name}: ${run.errors} operations failed; first: ${run.firstError}`);
  return measurement(id, run, { kind: "floor", generator: "node", concurrency, foreignCpu, notes });
}
