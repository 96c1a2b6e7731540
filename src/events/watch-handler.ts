import { Code, ConnectError } from "@connectrpc/connect";

// WatchProfileEvents is declared in the contract; its behaviour lands with the event outbox.
// eslint-disable-next-line require-yield
export async function* watchUnimplemented(): AsyncGenerator<never> {
  throw new ConnectError("WatchProfileEvents is not implemented yet", Code.Unimplemented);
}
