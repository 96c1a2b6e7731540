// One watch stream's rules (src/events/watcher.ts), against a source of its
// own instead of the hub: what it queues, in which order, with which tokens,
// and when it gives up. test/watch*.test.ts cover the same through the RPC.

import { afterEach, describe, expect, it } from "vitest";
import type { ChangeEvent, ChangeType } from "../src/events/change-event.js";
import type { EventFilter } from "../src/events/outbox.js";
import type { Position } from "../src/events/position.js";
import { WatchLimitError, WatchShutdownError } from "../src/events/watch-errors.js";
import { Watcher, type CatchUpSource, type WatchItem } from "../src/events/watcher.js";

const at = (n: number): Position => ({ xid: BigInt(n), id: BigInt(n) });

function event(n: number, userId = "alice", type: ChangeType = "profile_updated"): ChangeEvent {
  return { eventId: String(n), position: at(n), type, userId, updatedFields: ["bio"], time: new Date(0) };
}

type Page = Awaited<ReturnType<CatchUpSource["replay"]>>;

/** The hub's side, scripted: replay pages are handed out in order, then "complete". */
class Source implements CatchUpSource {
  readonly pages: Page[] = [];
  readonly replays: Position[] = [];
  readonly live = new Set<Watcher>();
  readonly detached: Watcher[] = [];
  livePosition = at(0);

  replay(cursor: Position): Promise<Page> {
    this.replays.push(cursor);
    return Promise.resolve(this.pages.shift() ?? { events: [], readThrough: cursor, complete: true });
  }
  goLive(watcher: Watcher): boolean {
    watcher.markLive();
    this.live.add(watcher);
    return true;
  }
  detach(watcher: Watcher): void {
    this.detached.push(watcher);
    this.live.delete(watcher);
  }
  resumeToken(position: Position): string {
    return `token@${position.id}`;
  }
}

const watchers: Watcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
});

function open(o: { from?: number; filter?: EventFilter; capacity?: number; live?: boolean; progressMs?: number } = {}) {
  const source = new Source();
  const resets: string[] = [];
  const watcher = new Watcher(
    o.filter ?? {},
    at(o.from ?? 0),
    o.capacity ?? 10,
    source,
    (reason) => resets.push(reason),
    o.progressMs ?? 60_000,
  );
  watchers.push(watcher);
  if (o.live ?? true) source.goLive(watcher);
  const items = watcher[Symbol.asyncIterator]();
  /** The next `n` items the client would read. */
  const read = async (n: number): Promise<WatchItem[]> => {
    const out: WatchItem[] = [];
    for (let i = 0; i < n; i++) {
      const next = await items.next();
      if (next.done === true) break;
      out.push(next.value);
    }
    return out;
  };
  return { watcher, source, resets, read, items };
}

const described = (items: WatchItem[]) =>
  items.map((i) => (i.kind === "event" ? `event ${i.event.eventId}` : `bookmark ${i.position.id}`));

describe("a watcher", () => {
  it("starts with a bookmark at its starting position", async () => {
    const { read } = open({ from: 5 });
    expect(await read(1)).toEqual([{ kind: "bookmark", position: at(5), resumeToken: "token@5" }]);
  });

  it("queues live events in order, each with the resume token of its position", async () => {
    const { watcher, read } = open();
    watcher.offer(event(1));
    watcher.offer(event(2));
    const items = await read(3);
    expect(described(items)).toEqual(["bookmark 0", "event 1", "event 2"]);
    expect(items.map((i) => i.resumeToken)).toEqual(["token@0", "token@1", "token@2"]);
  });

  it("drops an event at or before its position (a duplicate or one already replayed)", async () => {
    const { watcher, read } = open({ from: 3 });
    watcher.offer(event(2));
    watcher.offer(event(3));
    watcher.offer(event(4));
    expect(described(await read(2))).toEqual(["bookmark 3", "event 4"]);
  });

  it("queues only the users and types it filters on", async () => {
    const { watcher, read } = open({ filter: { userIds: ["alice"], types: ["profile_deleted"] } });
    watcher.offer(event(1, "bob", "profile_deleted"));
    watcher.offer(event(2, "alice", "profile_updated"));
    watcher.offer(event(3, "alice", "profile_deleted"));
    expect(described(await read(2))).toEqual(["bookmark 0", "event 3"]);
  });

  it("moves past events it filters out, so its next bookmark covers them", async () => {
    const { watcher, read } = open({ filter: { userIds: ["alice"] } });
    await read(1);
    watcher.offer(event(7, "bob"));
    watcher.bookmark(at(0));
    expect(described(await read(1))).toEqual(["bookmark 7"]);
  });

  it("sends a bookmark only when it says something new, unless asked to repeat", async () => {
    const { watcher, read } = open({ from: 4 });
    await read(1);
    watcher.bookmark(at(4));
    watcher.bookmark(at(3));
    watcher.offer(event(5));
    expect(described(await read(1))).toEqual(["event 5"]);
    watcher.bookmark(at(5), true);
    expect(described(await read(1))).toEqual(["bookmark 5"]);
  });

  it("keeps only the newest of bookmarks queued one behind another", async () => {
    const { watcher, read } = open();
    watcher.bookmark(at(1));
    watcher.bookmark(at(2));
    watcher.offer(event(3));
    expect(described(await read(2))).toEqual(["bookmark 2", "event 3"]);
  });

  it("ends a client that falls a queue behind with RESOURCE_EXHAUSTED", async () => {
    const { watcher, read } = open({ capacity: 2 });
    watcher.offer(event(1)); // the queue now holds the first bookmark and this event
    watcher.offer(event(2));
    // api/errors.ts answers it RESOURCE_EXHAUSTED.
    await expect(read(1)).rejects.toBeInstanceOf(WatchLimitError);
  });

  it("lets go of a client that falls a queue behind: its stream is reset, the hub forgets it", () => {
    const { watcher, source, resets } = open({ capacity: 2 });
    watcher.offer(event(1));
    watcher.offer(event(2));
    expect(resets).toEqual(["overflow"]);
    expect(source.detached).toEqual([watcher]);
  });

  it("ends after what is queued with a final bookmark, then the error it was given", async () => {
    const { watcher, read } = open();
    watcher.offer(event(1));
    watcher.finish(new WatchShutdownError("shutting down"));
    expect(described(await read(3))).toEqual(["bookmark 0", "event 1", "bookmark 1"]);
    await expect(read(1)).rejects.toBeInstanceOf(WatchShutdownError);
  });

  it("detaches from the hub when the client goes away", async () => {
    const { watcher, source, items, read } = open();
    await read(1);
    await items.return(undefined);
    expect(source.detached).toContain(watcher);
  });
});

describe("a watcher that resumes behind the hub", () => {
  const resuming = () => {
    const opened = open({ from: 1, live: false });
    opened.source.pages.push(
      { events: [event(2), event(3)], readThrough: at(3), complete: false },
      { events: [event(5)], readThrough: at(9), complete: true },
    );
    return opened;
  };

  it("replays one page per read, each from where the last one ended", async () => {
    const { source, read } = resuming();
    expect(described(await read(4))).toEqual(["bookmark 1", "event 2", "event 3", "event 5"]);
    expect(source.replays).toEqual([at(1), at(3)]);
  });

  it("goes live once caught up, with a bookmark where it caught up", async () => {
    const { watcher, read } = resuming();
    expect(described(await read(5)).at(-1)).toBe("bookmark 9");
    expect(watcher.isLive).toBe(true);
  });
});

describe("an idle watcher", () => {
  it("is sent a bookmark at the hub's position after the progress interval without a message", async () => {
    const { source, read } = open({ progressMs: 50 });
    await read(1);
    source.livePosition = at(8);
    const started = performance.now();
    expect(described(await read(1))).toEqual(["bookmark 8"]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(40);
  });

  it("is not sent one while it is still catching up", async () => {
    const { watcher, source } = open({ live: false, progressMs: 20 });
    source.livePosition = at(8);
    await new Promise((r) => setTimeout(r, 80));
    // Bookmarks coalesce: had it been sent one, that would have replaced the first.
    const first = await watcher[Symbol.asyncIterator]().next();
    expect(first.value).toMatchObject({ kind: "bookmark", position: at(0) });
    expect(source.replays).toEqual([]);
  });
});
