// watch(): WatchProfileEvents as an async iterator that never loses an event.
//
// The stream's contract (README, "Watching changes"): the first message is a
// bookmark, every event and bookmark carries a resume_token, and a watch
// reopened with the last token processed gets exactly the events after it, on
// any replica. This iterator leans on that and adds what each caller would
// otherwise write: it reopens the stream after every failure worth resuming,
// moving through the address list with backoff; it relists when the token is
// refused; and it hands the token to a store only after the consumer has
// finished with the item, so a restart of the caller resumes where processing
// stopped, not where receiving did.

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ProfileService,
  WatchProfileEventsRequestSchema,
  type ProfileEvent,
  type WatchProfileEventsResponse,
} from "../../gen/profile/v1/profile_pb.js";
import { backoffDelay, sleep, type BackoffOptions } from "./backoff.js";
import { wireOf, type Channels } from "./channels.js";
import { FINAL_WATCH_CODES, isServiceError, refusesToken } from "./errors.js";
import { StreamIdleError, StreamReader } from "./stream-reader.js";
import type { ResumeTokenStore } from "./token-store.js";

/** What to watch: the request without its resume_token, which the iterator owns. */
export type WatchRequest = Omit<MessageInitShape<typeof WatchProfileEventsRequestSchema>, "resumeToken" | "$typeName">;

export type WatchItem =
  /** A committed change. Process it, then ask for the next item: that is when its token is saved. */
  | { readonly type: "event"; readonly event: ProfileEvent; readonly resumeToken: string }
  /** Everything up to here has been delivered (only with `bookmarks: true`). */
  | { readonly type: "bookmark"; readonly resumeToken: string }
  /**
   * The token was refused, so events since it may be gone: re-read what you
   * keep, then ask for the next item. Only without a `relist` callback. The
   * stream behind it is already live, so no write made during your re-read is
   * missed; some may show up as events after it as well.
   */
  | { readonly type: "resync"; readonly resumeToken: string; readonly reason: grpc.ServiceError };

export interface WatchRetry {
  /** The address whose stream ended. */
  readonly address: string;
  /** The status it ended with (undefined for an idle connection or an end with no status). */
  readonly code: grpc.status | undefined;
  readonly details: string;
  /** How long the iterator waits before reopening. */
  readonly delayMs: number;
  /** Failures in a row, without a message in between. */
  readonly failures: number;
  /** The token was refused: the next stream starts from now, after a relist. */
  readonly resync: boolean;
}

export interface WatchOptions {
  /** Ends the watch: the iterator rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Where the token is loaded from at the start and saved to after each item. */
  tokenStore?: ResumeTokenStore;
  /** Start after this token when there is no store (or it holds none). */
  resumeToken?: string;
  /**
   * Called when the token is refused (FAILED_PRECONDITION), once the new
   * stream from now is live, before any of its events: re-read everything you
   * keep (BatchGetProfiles). Without it, the iterator yields a "resync" item
   * instead. If it throws, the iterator rejects with its error, and the stored
   * token stays the refused one, so a restart relists again.
   */
  relist?: (signal: AbortSignal) => Promise<void>;
  /** Yield bookmarks too (for a consumer that wants to know when it is live). */
  bookmarks?: boolean;
  /**
   * A stream that sends nothing for this long is treated as a broken
   * connection and reopened elsewhere (default 30 s). The service sends a
   * bookmark every WATCH_PROGRESS_INTERVAL_SECONDS (10 s by default) of
   * silence: keep this well above it.
   */
  idleTimeoutMs?: number;
  /** Waits between reopens (default 100 ms doubling up to 5 s, jittered). */
  backoff?: BackoffOptions;
  /** Called before each reopen, for logs and metrics. */
  onRetry?: (retry: WatchRetry) => void;
}

export interface WatchContext {
  readonly channels: Channels;
  metadata(signal?: AbortSignal): Promise<grpc.Metadata>;
}

const method = ProfileService.method.watchProfileEvents;
const wire = wireOf(method);

export async function* watchEvents(
  context: WatchContext,
  request: WatchRequest,
  options: WatchOptions = {},
): AsyncGenerator<WatchItem, never, undefined> {
  const { channels } = context;
  const signal = options.signal;
  const idleMs = options.idleTimeoutMs ?? 30_000;
  const backoff = { initialDelayMs: 100, maxDelayMs: 5000, ...options.backoff };
  // The relist callback gets a signal of its own that also ends if the caller stops iterating.
  const stopped = new AbortController();
  const relistSignal = signal === undefined ? stopped.signal : AbortSignal.any([signal, stopped.signal]);
  signal?.throwIfAborted();

  const store = options.tokenStore;
  let token = (await store?.load()) || options.resumeToken || "";
  let saved = token;
  const persist = async () => {
    if (store === undefined || token === "" || token === saved) return;
    await store.save(token);
    saved = token;
  };
  // Set when the token was refused: the next live stream starts with a relist.
  let refused: grpc.ServiceError | undefined;
  let failures = 0;

  try {
    for (;;) {
      const address = channels.preferred();
      const sent = token;
      const call = channels
        .client(address)
        .makeServerStreamRequest(
          wire.path,
          wire.serialize,
          wire.deserialize,
          create(WatchProfileEventsRequestSchema, { ...request, resumeToken: sent }),
          await context.metadata(signal),
          {},
        ) as grpc.ClientReadableStream<WatchProfileEventsResponse>;
      const reader = new StreamReader(call);
      let ending: Error | undefined;
      try {
        for (;;) {
          let message: WatchProfileEventsResponse | undefined;
          try {
            message = await reader.next(idleMs, signal);
          } catch (err) {
            ending = err as Error;
            break;
          }
          if (message === undefined) break; // ended with OK, which the service never does: resume all the same
          failures = 0;
          if (refused !== undefined) {
            // This stream started from now and is live: re-read, so nothing from the gap is lost.
            const reason = refused;
            if (message.kind.case === "bookmark") token = message.kind.value.resumeToken;
            if (options.relist !== undefined) await options.relist(relistSignal);
            else yield { type: "resync", resumeToken: token, reason };
            refused = undefined;
            await persist();
            if (message.kind.case === "bookmark") continue;
          }
          if (message.kind.case === "event") {
            const event = message.kind.value;
            yield { type: "event", event, resumeToken: event.resumeToken };
            // The consumer asked for the next item, so it is done with this one.
            token = event.resumeToken;
            await persist();
          } else if (message.kind.case === "bookmark") {
            token = message.kind.value.resumeToken;
            await persist();
            if (options.bookmarks === true) yield { type: "bookmark", resumeToken: token };
          }
        }
      } finally {
        reader.cancel();
      }

      if (signal?.aborted) throw signal.reason;
      if (isServiceError(ending) && sent !== "" && refusesToken(ending)) {
        // Resuming from this token can never work: watch from now, and relist once that is live.
        refused = ending;
        token = "";
        options.onRetry?.({
          address,
          code: ending.code,
          details: ending.details,
          delayMs: 0,
          failures,
          resync: true,
        });
        continue;
      }
      if (isServiceError(ending) && FINAL_WATCH_CODES.has(ending.code)) throw ending;
      if (ending !== undefined && !isServiceError(ending) && !(ending instanceof StreamIdleError)) throw ending;

      // A transient end: the replica went away, shut down, cut us off, or fell silent.
      if (ending instanceof StreamIdleError) channels.reset(address);
      channels.failed(address);
      const delayMs = backoffDelay(failures, backoff);
      failures++;
      options.onRetry?.({
        address,
        code: isServiceError(ending) ? ending.code : undefined,
        details: isServiceError(ending) ? ending.details : ending instanceof Error ? ending.message : "ended",
        delayMs,
        failures,
        resync: false,
      });
      await sleep(delayMs, signal);
    }
  } finally {
    stopped.abort();
  }
}
