// WATCH_MAX_STREAMS_PER_CONNECTION and WATCH_MAX_STREAMS_PER_CALLER, through
// real clients: each Connect transport below has its own HTTP/2 connection.

import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({
    label: "watch_limits",
    env: { WATCH_MAX_STREAMS_PER_CONNECTION: "2", WATCH_MAX_STREAMS_PER_CALLER: "3" },
  });
});
afterAll(async () => {
  await svc?.close();
});

function connection(): Client<typeof ProfileService> {
  return createClient(ProfileService, createGrpcTransport({ baseUrl: svc.baseUrl }));
}

interface OpenWatch {
  /** Resolves once the stream is live (its first bookmark), or rejects with its error. */
  live: Promise<void>;
  close(): void;
}

function watch(client: Client<typeof ProfileService>, user: string, token: string): OpenWatch {
  const abort = new AbortController();
  let resolveLive!: () => void;
  let rejectLive!: (err: unknown) => void;
  const live = new Promise<void>((resolve, reject) => {
    resolveLive = resolve;
    rejectLive = reject;
  });
  void (async () => {
    try {
      for await (const _ of client.watchProfileEvents(
        { userIds: [user] },
        { headers: { authorization: `Bearer ${token}` }, signal: abort.signal },
      )) {
        resolveLive();
      }
    } catch (err) {
      rejectLive(err);
    }
  })().catch(() => {});
  return { live, close: () => abort.abort() };
}

async function refusal(w: OpenWatch): Promise<ConnectError> {
  const err = await w.live.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  if (err === undefined) throw new Error("the watch was accepted");
  return err;
}

describe("watch stream limits", () => {
  it("refuse a watch past the per-connection and per-caller limits with RESOURCE_EXHAUSTED naming the limit", async () => {
    const alice = randomUserId();
    const bob = randomUserId();
    const aliceToken = await mintToken(alice);
    const bobToken = await mintToken(bob);
    const first = connection();
    const second = connection();
    const opened: OpenWatch[] = [];
    try {
      opened.push(watch(first, alice, aliceToken), watch(first, alice, aliceToken));
      await Promise.all(opened.map((w) => w.live));

      const thirdOnFirst = watch(first, alice, aliceToken);
      const perConnection = await refusal(thirdOnFirst);
      expect(perConnection.code).toBe(Code.ResourceExhausted);
      expect(perConnection.rawMessage).toContain("WATCH_MAX_STREAMS_PER_CONNECTION");

      // Another connection has room, up to the caller's limit of 3 in all.
      opened.push(watch(second, alice, aliceToken));
      await opened[2]!.live;
      const fourth = await refusal(watch(second, alice, aliceToken));
      expect(fourth.code).toBe(Code.ResourceExhausted);
      expect(fourth.rawMessage).toContain("WATCH_MAX_STREAMS_PER_CALLER");

      // Other callers have their own budget.
      opened.push(watch(second, bob, bobToken));
      await opened[3]!.live;

      // A closed watch gives its slots back.
      opened[0]!.close();
      await expect
        .poll(
          async () => {
            const again = watch(first, alice, aliceToken);
            const ok = await again.live.then(
              () => true,
              () => false,
            );
            if (ok) opened.push(again);
            return ok;
          },
          { timeout: 5000 },
        )
        .toBe(true);
    } finally {
      for (const w of opened) w.close();
    }
  });
});
