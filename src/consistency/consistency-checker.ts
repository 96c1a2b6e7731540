// Measures how often the cache disagrees with PostgreSQL, instead of assuming
// it never does (Meta's Polaris, Uber's CacheFront). Every interval it reads
// what PostgreSQL committed for a few users, then their cache keys, and
// counts the keys older than the committed row that no write in flight
// explains.
//
// Why it can be trusted not to cry wolf: a disagreement is counted only after
// a second look that reads PostgreSQL (S2), then the cache (M2), then
// PostgreSQL again (S3). When S2 and S3 find the same committed version, that
// version held all through M2, so a cached value older than it was wrong at
// M2, whatever happened in between. It is excused while an event touching the
// key is not done yet (its DEL may not have landed) and younger than the
// in-flight window. An invalidation pending past the window does not excuse
// it: the key is stale right now, and it is reported as overdue.

import { errorSummary, type Logger } from "../log/logger.js";
import { rateLimited } from "../log/rate-limited.js";
import type { CacheType } from "../cache/cache-aside.js";
import type { Metrics } from "../metrics/metrics.js";
import type { CacheKeys } from "../cache/cache-keys.js";
import type { CacheStore } from "../store/cache-store.js";
import type { SqlExecutor } from "../store/database.js";
import { cachedState, type CachedState } from "./cached-state.js";
import { readCommitted, type RowState, type Snapshot } from "./committed-state.js";

export interface ConsistencyCheckerOptions {
  /** 0 turns the background rounds off; `runOnce` still works. */
  intervalMs: number;
  sampleSize: number;
  inFlightWindowMs: number;
}

export interface Inconsistency {
  userId: string;
  cacheType: CacheType;
  /** The cached row version, or null for a cached "no such row". */
  cachedVersion: number | null;
  /** The committed row version, or null when the row is gone. */
  committedVersion: number | null;
  /** Seconds from the newest committed change the cached value lacks to the check; null when unknown. */
  behindSeconds: number | null;
  /** The key's invalidation is pending for longer than the in-flight window. */
  overdueInvalidation: boolean;
}

export interface CheckReport {
  /** Users whose keys were read. */
  users: number;
  /** Keys holding a value or a "no such row" marker, compared with PostgreSQL. */
  checked: number;
  /** Keys holding one, left alone because a write to them is in flight. */
  inFlight: number;
  inconsistencies: Inconsistency[];
}

const cacheTypes: readonly CacheType[] = ["profile", "preferences"];

interface Candidate {
  userId: string;
  cacheType: CacheType;
  key: string;
}

export class ConsistencyChecker {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<unknown> | undefined;

  constructor(
    private readonly db: SqlExecutor,
    private readonly cache: Pick<CacheStore, "getMany">,
    private readonly keys: CacheKeys,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly options: ConsistencyCheckerOptions,
  ) {}

  start(): void {
    if (this.options.intervalMs === 0) return;
    this.timer = setInterval(() => this.tick(), this.options.intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.round;
  }

  /**
   * One round: the given users, or a sample (recent writes, overdue
   * invalidations, a random stretch of ids). Throws when PostgreSQL or the
   * cache does not answer; the background rounds count that instead.
   */
  async runOnce(options: { userIds?: readonly string[] } = {}): Promise<CheckReport> {
    const window = this.options.inFlightWindowMs;
    const first = await readCommitted(
      this.db,
      options.userIds === undefined ? { sampleSize: this.options.sampleSize } : { userIds: options.userIds },
      window,
    );
    const candidates: Candidate[] = [];
    let inFlight = 0;
    const checked = new Map<CacheType, number>(cacheTypes.map((t) => [t, 0]));
    const all = [...first.users].flatMap(([userId, rows]) =>
      cacheTypes.map((cacheType) => ({ userId, cacheType, key: this.keyOf(cacheType, userId), row: rows[cacheType] })),
    );
    const raws = await this.cache.getMany(all.map((k) => k.key));
    all.forEach(({ userId, cacheType, key, row }, i) => {
      const cached = cachedState(raws[i] ?? null);
      if (cached === undefined) return;
      if (row.inFlight) {
        inFlight++;
        return;
      }
      checked.set(cacheType, checked.get(cacheType)! + 1);
      if (olderThan(cached, row)) candidates.push({ userId, cacheType, key });
    });
    for (const [cache_type, n] of checked) this.metrics.consistencyChecks.inc({ cache_type }, n);

    const inconsistencies = candidates.length === 0 ? [] : await this.confirm(candidates);
    for (const found of inconsistencies) this.report(found);
    return {
      users: first.users.size,
      checked: [...checked.values()].reduce((a, b) => a + b, 0),
      inFlight,
      inconsistencies,
    };
  }

  /** The second look: PostgreSQL, the cache, PostgreSQL again (see the top of this file). */
  private async confirm(candidates: readonly Candidate[]): Promise<Inconsistency[]> {
    const userIds = [...new Set(candidates.map((c) => c.userId))];
    const window = this.options.inFlightWindowMs;
    const before = await readCommitted(this.db, { userIds }, window);
    const raws = await this.cache.getMany(candidates.map((c) => c.key));
    const after = await readCommitted(this.db, { userIds }, window);
    const found: Inconsistency[] = [];
    candidates.forEach((c, i) => {
      const row = before.users.get(c.userId)?.[c.cacheType];
      const again = after.users.get(c.userId)?.[c.cacheType];
      const cached = cachedState(raws[i] ?? null);
      if (row === undefined || again === undefined || cached === undefined) return;
      if (row.inFlight || again.inFlight || !sameChange(row, again) || !olderThan(cached, row)) return;
      found.push({
        userId: c.userId,
        cacheType: c.cacheType,
        cachedVersion: cached.kind === "value" ? cached.version : null,
        committedVersion: row.version,
        behindSeconds: behind(before, row),
        overdueInvalidation: row.overdue,
      });
    });
    return found;
  }

  private report(found: Inconsistency): void {
    this.metrics.inconsistencies.inc({ cache_type: found.cacheType });
    if (found.behindSeconds !== null) {
      this.metrics.inconsistencyBehind.observe({ cache_type: found.cacheType }, found.behindSeconds);
    }
    // The user id and versions only: never the cached data.
    this.log.warn(
      {
        user_id: found.userId,
        cache_type: found.cacheType,
        cached_version: found.cachedVersion,
        committed_version: found.committedVersion,
        behind_seconds: found.behindSeconds,
        overdue_invalidation: found.overdueInvalidation,
      },
      "cache inconsistency: the cached value is older than PostgreSQL's and no write to it is in flight",
    );
  }

  private tick(): void {
    if (this.round !== undefined) return; // a slow round is not stacked on
    this.round = this.runOnce()
      .catch((err: unknown) => {
        this.metrics.consistencyCheckErrors.inc();
        rateLimited(this.log).warn(
          "consistency check failed",
          { err: errorSummary(err) },
          "consistency check round failed; trying again at the next interval",
        );
      })
      .finally(() => (this.round = undefined));
  }

  private keyOf(cacheType: CacheType, userId: string): string {
    return cacheType === "profile" ? this.keys.profile(userId) : this.keys.preferences(userId);
  }
}

/** Whether the cached state lacks a change PostgreSQL has committed. */
function olderThan(cached: CachedState, row: RowState): boolean {
  if (cached.kind === "absent") return row.version !== null;
  return row.version === null || cached.version < row.version;
}

/** Nothing was committed to the key between the two reads (a delete and re-create would change the time). */
function sameChange(a: RowState, b: RowState): boolean {
  return a.version === b.version && a.changedAt?.getTime() === b.changedAt?.getTime();
}

function behind(snapshot: Snapshot, row: RowState): number | null {
  if (row.changedAt === null) return null;
  return Math.max(0, (snapshot.at.getTime() - row.changedAt.getTime()) / 1000);
}
