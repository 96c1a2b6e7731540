// What every bare floor server shares: its port, and the reply it answers
// with. That reply is the service's own GetProfile reply for the hot profile
// (captured by the bench), so a floor moves the same bytes as a hit.

export const PORT = Number(process.env.PORT);
export const HOST = "127.0.0.1";
export const REPLY: Uint8Array = Buffer.from(process.env.FLOOR_REPLY ?? "", "base64");
export const GET_PROFILE = "/profile.v1.ProfileService/GetProfile";

/** Tells the bench the server is up (see ../child.ts). */
export function ready(): void {
  process.once("SIGTERM", () => process.exit(0));
  process.stdout.write("listening\n");
}
