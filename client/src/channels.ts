// One grpc-js channel per address, and which address to use next. Calls stay
// on one address until it fails, then move to the next one in the list, so a
// replica that went away costs one failed attempt, not one per call.

import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescMethod, type Message } from "@bufbuild/protobuf";

/**
 * Channel settings that suit a list of replicas that come and go: grpc-js's own
 * reconnect backoff starts at 1 s and grows to 120 s, which would keep a
 * restarted replica unused long after it is back. Keepalive pings find a
 * connection whose peer vanished without a FIN or RST (a lost node, a
 * partition), which otherwise looks healthy until the kernel gives up.
 */
export const DEFAULT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 2000,
  "grpc.keepalive_time_ms": 20_000,
  "grpc.keepalive_timeout_ms": 10_000,
};

export class Channels {
  private readonly clients = new Map<string, grpc.Client>();
  private current = 0;
  private closed = false;

  constructor(
    readonly addresses: readonly string[],
    private readonly credentials: grpc.ChannelCredentials,
    private readonly options: grpc.ChannelOptions,
  ) {
    if (addresses.length === 0) throw new Error("at least one address is needed");
  }

  /** The address calls go to now. */
  preferred(): string {
    return this.addresses[this.current]!;
  }

  /** `address` failed: the next call goes to the next address (unless another failure moved on already). */
  failed(address: string): void {
    if (this.addresses[this.current] === address) this.current = (this.current + 1) % this.addresses.length;
  }

  /**
   * Drops the channel to `address`, so the next call there opens a new
   * connection: for a connection that stopped answering without breaking.
   */
  reset(address: string): void {
    this.clients.get(address)?.close();
    this.clients.delete(address);
  }

  client(address: string): grpc.Client {
    if (this.closed) throw new Error("the client is closed");
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new grpc.Client(address, this.credentials, this.options);
      this.clients.set(address, client);
    }
    return client;
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** The gRPC path and protobuf-es (de)serializers of a method. */
export function wireOf(method: DescMethod) {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    serialize: (message: Message) => Buffer.from(toBinary(method.input, message)),
    deserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
  };
}
