// Everything a scenario needs: the running service and floor servers, the
// stores' clients for the store floors, tokens, and which profile indexes each
// scenario may touch (so a "cold" key really is cold).

import type { Redis } from "ioredis";
import type pg from "pg";
import type { FloorServers } from "./floors/servers.js";
import type { Generator } from "./measurement.js";
import type { RpcPlan, Window } from "./measure.js";
import type { BenchOptions } from "./options.js";
import type { ServiceInstance } from "./service.js";

export interface KeyRanges {
  /** The one key the fixed-call hit scenarios read (h2load cannot vary the body). */
  hot: number;
  /** [0, BATCH_SIZE): the batch's keys. */
  /** [from, to): random targets of the write scenario. */
  write: readonly [number, number];
  /** [from, to): consumed in order by the miss scenario, so each key is read once. */
  miss: readonly [number, number];
  /** A key nothing else reads: the stampede's. */
  stampede: number;
}

/** Profiles per BatchGetProfiles call. */
export const BATCH_SIZE = 100;

export function keyRanges(profiles: number): KeyRanges {
  const half = Math.floor(profiles / 2);
  return { hot: 0, write: [BATCH_SIZE, half], miss: [half, profiles - 1], stampede: profiles - 1 };
}

export interface BenchContext {
  readonly options: BenchOptions;
  /** For fixed calls at 64 in flight: h2load, or the Node client when h2load is missing. */
  readonly generator: Generator;
  readonly window: Window;
  readonly service: ServiceInstance;
  readonly floors: FloorServers;
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
  /** A token signed with the service's secret. */
  token(subject: string, scopes?: string[]): Promise<string>;
  readonly ranges: KeyRanges;
  say(message: string): void;
}

/** The load of the rows at 64 in flight: the run's generator and window, `connections` × `streamsPerConnection` calls. */
export function fixedLoad(ctx: BenchContext): Pick<RpcPlan, "generator" | "connections" | "concurrency" | "window"> {
  const o = ctx.options;
  return {
    generator: ctx.generator,
    connections: o.connections,
    concurrency: o.connections * o.streamsPerConnection,
    window: ctx.window,
  };
}
