// With --cpu-prof the main instance runs under `node --cpu-prof`; once it has
// exited, each measurement that targeted it gets the service's CPU time inside
// its measured window (warm-ups and other scenarios excluded).

import { copyFile, mkdir, readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { renderSummary, summarizeProfile, type CpuProfile } from "./cpuprofile-summary.js";
import type { Measurement } from "./measurement.js";

export async function attachServiceCpu(profileDir: string, measurements: Measurement[], copyTo: string): Promise<string> {
  const file = (await readdir(profileDir)).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error("the service wrote no .cpuprofile");
  await mkdir(dirname(copyTo), { recursive: true });
  await copyFile(join(profileDir, file), copyTo);
  const profile = JSON.parse(await readFile(join(profileDir, file), "utf8")) as CpuProfile;
  const out: string[] = [];
  for (const m of measurements) {
    if (m.serviceWindowsUs === undefined || m.requests === 0) continue;
    const s = summarizeProfile(profile, 25, m.serviceWindowsUs);
    m.serviceCpu = {
      busyMicrosecondsPerCall: Math.round((s.busyMs * 1000) / m.requests),
      busyShareOfWindow: s.totalMs === 0 ? 0 : Math.round((s.busyMs / s.totalMs) * 1000) / 1000,
      topLocations: s.byLocation.slice(0, 15),
      topFunctions: s.byFunction.slice(0, 25),
      inclusive: s.inclusive.slice(0, 20),
    };
    out.push(
      `=== ${m.name}: ${m.throughput} calls/s; service busy ${Math.round(m.serviceCpu.busyShareOfWindow * 100)}% ` +
        `of the window, ≈ ${m.serviceCpu.busyMicrosecondsPerCall} µs CPU per call\n${renderSummary(s)}`,
    );
  }
  return out.join("\n\n");
}
