// What the writers could not finish waits here for the relay (src/events/unfinished-events.ts).

import { describe, expect, it } from "vitest";
import type { ChangeEvent } from "../src/events/change-event.js";
import { UnfinishedEvents } from "../src/events/unfinished-events.js";
import { SuspectKeys } from "../src/cache/suspect-keys.js";

const event = (id: number): ChangeEvent => ({
  eventId: String(id),
  position: { xid: BigInt(id), id: BigInt(id) },
  type: "profile_updated",
  userId: "alice",
  updatedFields: ["bio"],
  time: new Date(0),
});

describe("unfinished events", () => {
  it("are handed to the relay oldest first, until each is done", () => {
    const held = new UnfinishedEvents(new SuspectKeys(), 10);
    held.hold(event(3));
    held.hold(event(5));
    held.hold(event(4));
    expect(held.held()).toEqual(["3", "5", "4"]);
    held.done("5");
    expect(held.held()).toEqual(["3", "4"]);
  });

  it("past the bound, are not held: the outbox scan finishes them after the grace", () => {
    const held = new UnfinishedEvents(new SuspectKeys(), 2);
    for (const id of [1, 2, 3]) held.hold(event(id));
    expect(held.held()).toEqual(["1", "2"]);
  });

  it("past the bound, make every key suspect until the outbox has caught up with them", () => {
    const suspect = new SuspectKeys();
    const held = new UnfinishedEvents(suspect, 2);
    held.hold(event(1));
    held.hold(event(2));
    expect(suspect.empty).toBe(true);
    held.hold(event(3));
    expect(suspect.has("profile:anyone")).toBe(true);
    expect(suspect.coveredThrough).toBe(3n);
  });
});
