import type { Socket } from "node:net";

/**
 * Tracks a proxied connection's two sockets in `open` and ties their ends
 * together: when either closes, both are destroyed, as a real hop would.
 */
export function linkSockets(client: Socket, upstream: Socket, open: Set<Socket>): void {
  for (const s of [client, upstream]) {
    open.add(s);
    s.on("error", () => {});
    s.on("close", () => {
      open.delete(s);
      client.destroy();
      upstream.destroy();
    });
  }
}
