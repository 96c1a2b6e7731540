// The machine a run measured, printed with every table: figures mean little without it.

import os from "node:os";

export interface Machine {
  hostname: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  /** 1-minute load average when the run started: other work on the box skews every figure. */
  loadAverageAtStart: number;
  loadAverageAtEnd?: number;
  h2load?: string;
  postgres?: string;
  redis?: string;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: loadAverage(),
  };
}

export const loadAverage = () => Math.round(os.loadavg()[0]! * 100) / 100;
