// What a client can see of stale reads: every write sets a profile's first
// name to `v<n>`, and a read is stale when it returns a version older than
// one whose write was acknowledged before the read began.

import type { TestService } from "./service.js";

export interface Read {
  /** performance.now() when the read began. */
  at: number;
  instance: string;
  userId: string;
  /** The version returned. */
  got: number;
  /** The newest version acknowledged before the read began. */
  acked: number;
}

export function versionOf(firstName: string | undefined): number {
  const match = /^v(\d+)$/.exec(firstName ?? "");
  if (match === null) throw new Error(`not a version: ${firstName}`);
  return Number(match[1]);
}

export class VersionLog {
  private readonly acked = new Map<string, number>();
  readonly reads: Read[] = [];

  constructor(
    readonly userIds: readonly string[],
    private readonly token: string,
  ) {}

  latest(userId: string): number {
    return this.acked.get(userId) ?? -1;
  }

  /** Writes version `n` through `svc` and records it once acknowledged. */
  async write(svc: TestService, userId: string, n: number): Promise<void> {
    await svc.grpc.unary(
      "updateProfile",
      { userId, profile: { firstName: `v${n}` }, updateMask: { paths: ["first_name"] } },
      this.token,
    );
    if (n > this.latest(userId)) this.acked.set(userId, n);
  }

  /** Reads `userId` through `svc` and records what came back against what was acknowledged. */
  async read(svc: TestService, instance: string, userId: string): Promise<Read> {
    const at = performance.now();
    const acked = this.latest(userId);
    const reply = await svc.grpc.unary("getProfile", { userId }, this.token);
    const read = { at, instance, userId, got: versionOf(reply.profile?.firstName), acked };
    this.reads.push(read);
    return read;
  }

  /** Reads random users through `svc`, one at a time, until `stop()` returns true. */
  async readLoop(svc: TestService, instance: string, stop: () => boolean): Promise<void> {
    while (!stop()) {
      const userId = this.userIds[Math.floor(Math.random() * this.userIds.length)]!;
      await this.read(svc, instance, userId);
    }
  }

  /** Reads `userIds` through `svc` with one BatchGetProfiles, recording each like a `read`. */
  async readBatch(svc: TestService, instance: string, userIds: readonly string[]): Promise<Read[]> {
    const at = performance.now();
    const acked = userIds.map((id) => this.latest(id));
    const reply = await svc.grpc.unary("batchGetProfiles", { userIds: [...userIds] }, this.token);
    const got = new Map(reply.profiles.map((p) => [p.userId, versionOf(p.firstName)]));
    const reads = userIds.map((userId, i) => ({ at, instance, userId, got: got.get(userId)!, acked: acked[i]! }));
    this.reads.push(...reads);
    return reads;
  }

  /** Reads three random users at a time through `svc` with BatchGetProfiles, until `stop()` returns true. */
  async batchReadLoop(svc: TestService, instance: string, stop: () => boolean): Promise<void> {
    const pick = () => this.userIds[Math.floor(Math.random() * this.userIds.length)]!;
    while (!stop()) await this.readBatch(svc, instance, [pick(), pick(), pick()]);
  }

  stale(filter: (r: Read) => boolean = () => true): Read[] {
    return this.reads.filter((r) => r.got < r.acked && filter(r));
  }
}
