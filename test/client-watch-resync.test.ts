// When the service refuses the watch's token, the client relists and watches
// from now, against two replicas of the real binary: a token older than the
// retention (the service's own retention job prunes events the test has
// aged), a token from another event log, and one that is not a token at all.
// And the codes after which resuming cannot help end the iterator at once.

import { describe, expect, it } from "vitest";
import { MemoryTokenStore, ProfileClient, status, type ServiceError } from "../client/src/index.js";
import { WatchConsumer } from "./support/client-consumer.js";
import { addressOf, ClientReplicas } from "./support/client-replicas.js";
import { committedEventIds, type Replica } from "./support/replicas.js";
import { randomUserId } from "./support/service.js";

const replicas = ClientReplicas.use("client_resync", {
  WATCH_PROGRESS_INTERVAL_SECONDS: "1",
  // The shortest retention there is, pruned every second: the test ages events instead of waiting an hour.
  EVENT_RETENTION_HOURS: "1",
  EVENT_PRUNE_INTERVAL_SECONDS: "1",
});

async function write(client: ProfileClient, bio: string): Promise<void> {
  await client.updateProfile({ profile: { bio } });
}

/** A real bookmark token of this event log, for `user`. */
async function currentToken(user: string): Promise<string> {
  const consumer = new WatchConsumer(await replicas.clientFor(user, [addressOf(replicas.set.replicas[0]!)]), {
    userIds: [user],
  });
  await consumer.until(() => consumer.bookmarks > 0, 15_000, "a bookmark");
  await consumer.stop();
  return consumer.items.find((i) => i.type === "bookmark")!.resumeToken;
}

describe("a token older than the retention", () => {
  it("FAILED_PRECONDITION: relists once the new watch is live, then every event after it, once, in order", async () => {
    const [r1, r2] = replicas.set.replicas as [Replica, Replica];
    const user = randomUserId();
    const writer = await replicas.clientFor(user, [addressOf(r2)]);
    const store = new MemoryTokenStore();
    const relists: { bio: string; eventsBefore: number }[] = [];
    const reader = await replicas.clientFor(user, [addressOf(r2)]);
    // The watch knows only r1, so while r1 is down it is cut off and its token ages.
    const consumer = new WatchConsumer(
      await replicas.clientFor(user, [addressOf(r1)]),
      { userIds: [user] },
      {
        tokenStore: store,
        relist: async () => {
          const profile = (await reader.getProfile({})).profile!;
          relists.push({ bio: profile.bio, eventsBefore: consumer.events.length });
          // The new stream is live already: a write made during the re-read still reaches the consumer.
          await write(writer, "written during the relist");
        },
      },
    );
    replicas.consumers.push(consumer);
    await consumer.until(() => consumer.bookmarks > 0, 15_000, "the first bookmark");

    for (let n = 0; n < 5; n++) await write(writer, `before ${n}`);
    await consumer.until(() => consumer.events.length === 5, 15_000, "the first five events");
    const beforeGap = await committedEventIds(replicas.db, user);
    expect(consumer.events.map((e) => e.eventId)).toEqual(beforeGap);

    r1.kill("SIGKILL");
    await r1.exited();
    for (let n = 0; n < 5; n++) await write(writer, `in the gap ${n}`);
    const inGap = (await committedEventIds(replicas.db, user)).slice(5);
    // An hour passes, as far as retention can tell: the service's own pruning deletes them all.
    await replicas.db.query("UPDATE profile_events SET created_at = created_at - interval '2 hours'");
    await expect
      .poll(async () => (await replicas.db.query("SELECT count(*)::int AS n FROM profile_events")).rows[0].n, {
        timeout: 15_000,
      })
      .toBe(0);
    const pruned = (await replicas.db.query("SELECT id::text AS id FROM profile_events_pruned")).rows[0];
    expect(pruned.id).toBe(inGap.at(-1));

    await r1.start();
    await consumer.until(() => relists.length === 1, 20_000, "the relist");
    for (let n = 0; n < 5; n++) await write(writer, `after ${n}`);
    const afterRelist = await committedEventIds(replicas.db, user);
    expect(afterRelist).toHaveLength(6);
    await consumer.until(() => consumer.events.length >= 5 + 6, 15_000, "the events after the relist");
    const bookmarks = consumer.bookmarks;
    await consumer.until(() => consumer.bookmarks >= bookmarks + 2, 10_000, "two more bookmarks");

    const refused = consumer.retries.filter((r) => r.resync);
    console.log(
      `watch client across a pruned gap: ${beforeGap.length} events before, ${inGap.length} pruned in the gap ` +
        `(relist read bio "${relists[0]!.bio}"), ${afterRelist.length} after; delivered ${consumer.events.length}; ` +
        `ends ${JSON.stringify(consumer.retries.map((r) => `${status[r.code!] ?? "none"}${r.resync ? " (resync)" : ""}`))}`,
    );
    expect(refused).toHaveLength(1);
    expect(refused[0]!.code).toBe(status.FAILED_PRECONDITION);
    expect(relists).toEqual([{ bio: "in the gap 4", eventsBefore: 5 }]);
    expect(consumer.events.map((e) => e.eventId)).toEqual([...beforeGap, ...afterRelist]);
    // The store holds the token of the last item processed (or of the one before, while the loop hands it over).
    expect(consumer.items.slice(-2).map((i) => i.resumeToken)).toContain(store.token);
  }, 90_000);
});

describe("a token that is not this event log's", () => {
  /** The same token naming another event log (its log id changed: the MAC is not even looked at). */
  function foreign(token: string): string {
    const bytes = Buffer.from(token, "base64url");
    bytes[2]! ^= 0xff;
    return bytes.toString("base64url");
  }

  for (const [label, spoil, code] of [
    ["from another event log (FAILED_PRECONDITION)", foreign, status.FAILED_PRECONDITION],
    ["not a token at all (INVALID_ARGUMENT on resume_token)", () => "garbage", status.INVALID_ARGUMENT],
  ] as const) {
    it(`${label}: without a relist callback, yields a resync marker, and saves the new token only after it`, async () => {
      const user = randomUserId();
      const store = new MemoryTokenStore(spoil(await currentToken(user)));
      const refusedToken = store.token;
      const tokensAtItems: (string | undefined)[] = [];
      const consumer = new WatchConsumer(
        await replicas.clientFor(user, replicas.set.replicas.map(addressOf)),
        { userIds: [user] },
        { tokenStore: store },
        async () => {
          tokensAtItems.push(store.token);
        },
      );
      replicas.consumers.push(consumer);
      await consumer.until(() => consumer.items.length > 0, 15_000, "the first item");
      const first = consumer.items[0]!;
      expect(first.type).toBe("resync");
      if (first.type !== "resync") return;
      expect(first.reason.code).toBe(code);
      // While the consumer re-reads, the refused token is still the one stored: a crash now relists again.
      expect(tokensAtItems[0]).toBe(refusedToken);
      const writer = await replicas.clientFor(user, replicas.set.replicas.map(addressOf));
      await write(writer, "after the resync");
      await consumer.until(() => consumer.events.length === 1, 15_000, "the event");
      expect(tokensAtItems.at(-1)).not.toBe(refusedToken);
      expect(consumer.events.map((e) => e.eventId)).toEqual(await committedEventIds(replicas.db, user));
      expect(consumer.retries.map((r) => [r.code, r.resync])).toEqual([[code, true]]);
    });
  }
});

describe("codes that resuming cannot fix", () => {
  it("PERMISSION_DENIED ends the iterator with that error, with no retry", async () => {
    const consumer = new WatchConsumer(await replicas.clientFor(randomUserId(), replicas.set.replicas.map(addressOf)), {
      userIds: [randomUserId()],
    });
    replicas.consumers.push(consumer);
    await consumer.ended();
    expect((consumer.error as ServiceError).code).toBe(status.PERMISSION_DENIED);
    expect(consumer.retries).toEqual([]);
  });
});
