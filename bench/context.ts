// Everything a scenario needs: the running service, the stores' clients for
// the floors, tokens, and which profile indexes each scenario may touch (so a
// "cold" key really is cold).

import type { Redis } from "ioredis";
import type pg from "pg";
import type { Generator } from "./fixed-call-load.js";
import type { BenchOptions } from "./options.js";
import type { ServiceProcess } from "./service.js";

export interface KeyRanges {
  /** The one key the fixed-body hit scenario reads (h2load cannot vary the body). */
  hot: number;
  /** [0, warm): keys warmed for the batch and the spread hit scenario. */
  warm: number;
  /** [from, to): random targets of the write scenario. */
  write: readonly [number, number];
  /** [from, to): consumed in order by the miss scenario, so each key is read once. */
  miss: readonly [number, number];
  /** A key nothing else reads: the stampede's. */
  stampede: number;
}

export function keyRanges(profiles: number, warmKeys: number): KeyRanges {
  const half = Math.floor(profiles / 2);
  return {
    hot: 0,
    warm: warmKeys,
    write: [warmKeys, half],
    miss: [half, profiles - 1],
    stampede: profiles - 1,
  };
}

export interface BenchContext {
  readonly options: BenchOptions;
  readonly generator: Generator;
  readonly service: ServiceProcess;
  /** The environment the service was started with, for more instances. */
  readonly serviceEnv: Readonly<Record<string, string>>;
  readonly workDir: string;
  readonly keyPrefix: string;
  readonly dbUrl: string;
  /** A client with the service's Redis settings (floors, cleanup). */
  readonly redis: Redis;
  /** A pool the size of the service's (floors). */
  readonly pgPool: pg.Pool;
  readonly tokens: {
    /** A backend caller with profiles:read. */
    readonly reader: string;
    /** A backend caller with profiles:read and profiles:write. */
    readonly writer: string;
    /** The hot key's own user (reads itself, no scope). */
    readonly hotUser: string;
  };
  readonly ranges: KeyRanges;
  say(message: string): void;
}
