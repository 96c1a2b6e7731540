// A Redis Cluster delivers every PUBLISH to every node, so one connection to
// any node hears every channel. ioredis' own cluster subscriber moves to
// another node silently when its node dies; this one says so, because what
// was published in between is lost and the owner must catch up (the watch hub
// reads the outbox).

import { Redis, type Cluster } from "ioredis";

const SUBSCRIBE_TIMEOUT_MS = 5000;

export class ClusterSubscription {
  private connection: Redis | undefined;
  private closed = false;
  private attempt = 0;
  private nextNode = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private subscribed: (() => void) | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly channels: readonly string[],
    private readonly onMessage: (channel: string, message: string) => void,
    private readonly onStatus: ((live: boolean) => void) | undefined,
  ) {}

  /** Connects; resolves once the first SUBSCRIBE succeeded (it keeps trying until closed). */
  start(): Promise<void> {
    const first = new Promise<void>((resolve) => (this.subscribed = resolve));
    this.connect();
    return first;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.connection?.disconnect();
    this.connection = undefined;
  }

  private connect(): void {
    if (this.closed) return;
    // The cluster's view of its nodes; a dead node stays in it until the next
    // slots refresh, so each attempt takes the next one.
    const nodes = this.cluster.nodes("all");
    if (nodes.length === 0) return this.retry();
    const { host, port } = nodes[this.nextNode++ % nodes.length]!.options;
    const connection = new Redis({
      ...this.cluster.options.redisOptions,
      host,
      port,
      enableAutoPipelining: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      // One node, one try: on failure the next attempt goes to another node.
      retryStrategy: () => null,
      lazyConnect: false,
    });
    this.connection = connection;
    let live = false;
    const timeout = setTimeout(() => connection.disconnect(), SUBSCRIBE_TIMEOUT_MS);
    connection.on("error", () => {});
    connection.on("message", (channel: string, message: string) => this.onMessage(channel, message));
    connection.once("close", () => {
      clearTimeout(timeout);
      if (live && !this.closed) this.onStatus?.(false);
      live = false;
    });
    connection.once("end", () => {
      if (this.connection === connection) this.retry();
    });
    connection.subscribe(...this.channels).then(
      () => {
        clearTimeout(timeout);
        if (this.closed || this.connection !== connection) return;
        live = true;
        this.attempt = 0;
        this.onStatus?.(true);
        this.subscribed?.();
      },
      () => connection.disconnect(),
    );
  }

  private retry(): void {
    if (this.closed) return;
    this.connection = undefined;
    this.retryTimer = setTimeout(() => this.connect(), Math.min(50 * ++this.attempt, 1000));
    this.retryTimer.unref();
  }
}
