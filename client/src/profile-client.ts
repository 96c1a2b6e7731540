// ProfileClient: profile.v1.ProfileService over gRPC (@grpc/grpc-js), with
// the generated protobuf-es messages. Every call has a deadline unless told
// otherwise; the methods the proto marks idempotent are retried after
// UNAVAILABLE, on the next address when there are several.

import { create, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ProfileService,
  type PreferencesSchema,
  type ProfileSchema,
  type Preferences,
  type Profile,
} from "../../gen/profile/v1/profile_pb.js";
import { backoffDelay, sleep, type BackoffOptions } from "./backoff.js";
import { Channels, DEFAULT_CHANNEL_OPTIONS, wireOf } from "./channels.js";
import { codeOf } from "./errors.js";
import { isIdempotent } from "./idempotency.js";
import { readModifyWrite, type ReadModifyWriteOptions } from "./read-modify-write.js";
import { watchEvents, type WatchItem, type WatchOptions, type WatchRequest } from "./watch.js";

type Methods = (typeof ProfileService)["method"];
type UnaryName = { [K in keyof Methods]: Methods[K]["methodKind"] extends "unary" ? K : never }[keyof Methods];
type Request<K extends UnaryName> = MessageInitShape<Methods[K]["input"]>;
type Response<K extends UnaryName> = MessageShape<Methods[K]["output"]>;

export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, the first one included (default 4). */
  maxAttempts?: number;
}

export interface ProfileClientOptions {
  /**
   * `host:port` of each replica, or of one balancer. Calls stay on one
   * address until it fails, then move to the next (in the order given).
   */
  addresses: string | readonly string[];
  /** The bearer token, or a function giving the current one (asked for every call and every reopen). */
  token?: string | ((signal?: AbortSignal) => string | Promise<string>);
  /** Default: insecure (h2c), as the service serves without TLS_CERT_FILE. */
  credentials?: grpc.ChannelCredentials;
  /** Merged over DEFAULT_CHANNEL_OPTIONS. */
  channelOptions?: grpc.ChannelOptions;
  /** Deadline of each unary call, its retries included (default 10 s). */
  timeoutMs?: number;
  /** Retries of idempotent methods after UNAVAILABLE (default 4 attempts, 50 ms doubling up to 1 s). */
  retry?: RetryOptions;
}

export interface CallOptions {
  /** This call's deadline, retries included, instead of the client's. */
  timeoutMs?: number;
  /** Cancels the call: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called before each retry, for logs and metrics. */
  onRetry?: (retry: { address: string; attempt: number; error: grpc.ServiceError; delayMs: number }) => void;
}

/** A profile write: the new values of the fields in `updateMask` (all of them when it is empty). */
export interface ProfileChange {
  profile: MessageInitShape<typeof ProfileSchema>;
  updateMask?: string[];
}

export interface PreferencesChange {
  preferences: MessageInitShape<typeof PreferencesSchema>;
  updateMask?: string[];
}

export class ProfileClient {
  private readonly channels: Channels;
  private readonly timeoutMs: number;
  private readonly retry: Required<RetryOptions>;

  constructor(private readonly options: ProfileClientOptions) {
    const addresses = typeof options.addresses === "string" ? [options.addresses] : [...options.addresses];
    this.channels = new Channels(addresses, options.credentials ?? grpc.credentials.createInsecure(), {
      ...DEFAULT_CHANNEL_OPTIONS,
      ...options.channelOptions,
    });
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retry = { maxAttempts: 4, initialDelayMs: 50, maxDelayMs: 1000, ...options.retry };
  }

  getProfile(request: Request<"getProfile">, options?: CallOptions): Promise<Response<"getProfile">> {
    return this.unary("getProfile", request, options);
  }

  batchGetProfiles(request: Request<"batchGetProfiles">, options?: CallOptions): Promise<Response<"batchGetProfiles">> {
    return this.unary("batchGetProfiles", request, options);
  }

  updateProfile(request: Request<"updateProfile">, options?: CallOptions): Promise<Response<"updateProfile">> {
    return this.unary("updateProfile", request, options);
  }

  deleteProfile(request: Request<"deleteProfile">, options?: CallOptions): Promise<Response<"deleteProfile">> {
    return this.unary("deleteProfile", request, options);
  }

  getPreferences(request: Request<"getPreferences">, options?: CallOptions): Promise<Response<"getPreferences">> {
    return this.unary("getPreferences", request, options);
  }

  updatePreferences(
    request: Request<"updatePreferences">,
    options?: CallOptions,
  ): Promise<Response<"updatePreferences">> {
    return this.unary("updatePreferences", request, options);
  }

  /**
   * Read-modify-write of a profile under its etag: `change` gets the current
   * profile (undefined when there is none) and returns the write to make, or
   * undefined for none. On ABORTED the profile is read again and `change` runs
   * again. Resolves to the profile as written (or as read, when nothing was).
   */
  async modifyProfile(
    userId: string,
    change: (current: Profile | undefined) => ProfileChange | undefined | Promise<ProfileChange | undefined>,
    options: ReadModifyWriteOptions & CallOptions = {},
  ): Promise<Profile | undefined> {
    return readModifyWrite(
      async () => orUndefined(this.getProfile({ userId }, options).then((r) => r.profile)),
      async (c: ProfileChange, etag) => {
        const res = await this.updateProfile(
          { userId, profile: c.profile, updateMask: { paths: c.updateMask ?? [] }, etag },
          options,
        );
        return res.profile!;
      },
      change,
      options,
    );
  }

  /** modifyProfile for preferences. */
  async modifyPreferences(
    userId: string,
    change: (
      current: Preferences | undefined,
    ) => PreferencesChange | undefined | Promise<PreferencesChange | undefined>,
    options: ReadModifyWriteOptions & CallOptions = {},
  ): Promise<Preferences | undefined> {
    return readModifyWrite(
      async () => orUndefined(this.getPreferences({ userId }, options).then((r) => r.preferences)),
      async (c: PreferencesChange, etag) => {
        const res = await this.updatePreferences(
          { userId, preferences: c.preferences, updateMask: { paths: c.updateMask ?? [] }, etag },
          options,
        );
        return res.preferences!;
      },
      change,
      options,
    );
  }

  /**
   * Every change matching `request`, as an async iterator that resumes on its
   * own after every transient failure (see watch.ts and the README's
   * "Watching changes"). Break out of the loop, or abort the signal, to stop.
   */
  watch(request: WatchRequest, options?: WatchOptions): AsyncGenerator<WatchItem, never, undefined> {
    return watchEvents({ channels: this.channels, metadata: (signal) => this.metadata(signal) }, request, options);
  }

  close(): void {
    this.channels.close();
  }

  private async unary<K extends UnaryName>(
    name: K,
    request: Request<K>,
    options: CallOptions = {},
  ): Promise<Response<K>> {
    const method = ProfileService.method[name];
    const message = create(method.input, request as never);
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    const retryable = isIdempotent(method);
    for (let attempt = 1; ; attempt++) {
      const address = this.channels.preferred();
      try {
        return (await this.callOnce(address, method, message, deadline, options.signal)) as Response<K>;
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (!retryable || codeOf(err) !== grpc.status.UNAVAILABLE || attempt >= this.retry.maxAttempts) throw err;
        this.channels.failed(address);
        const delayMs = backoffDelay(attempt - 1, this.retry);
        // A retry that could not finish before the deadline would only turn UNAVAILABLE into DEADLINE_EXCEEDED.
        if (Date.now() + delayMs >= deadline) throw err;
        options.onRetry?.({ address, attempt, error: err as grpc.ServiceError, delayMs });
        await sleep(delayMs, options.signal);
      }
    }
  }

  private async callOnce(
    address: string,
    method: Methods[UnaryName],
    message: unknown,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const metadata = await this.metadata(signal);
    const wire = wireOf(method);
    return new Promise((resolve, reject) => {
      const call = this.channels
        .client(address)
        .makeUnaryRequest(
          wire.path,
          wire.serialize,
          wire.deserialize,
          message as never,
          metadata,
          { deadline },
          (err, response) => {
            signal?.removeEventListener("abort", onAbort);
            if (err) reject(err);
            else resolve(response);
          },
        );
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private async metadata(signal?: AbortSignal): Promise<grpc.Metadata> {
    const metadata = new grpc.Metadata();
    const token = typeof this.options.token === "function" ? await this.options.token(signal) : this.options.token;
    if (token !== undefined && token !== "") metadata.set("authorization", `Bearer ${token}`);
    return metadata;
  }
}

/** The value, or undefined on NOT_FOUND. */
async function orUndefined<T>(read: Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (codeOf(err) === grpc.status.NOT_FOUND) return undefined;
    throw err;
  }
}
