// F-http2: the cheapest gRPC reply node:http2 can give. It reads the request,
// then answers with fixed bytes (headers, one message, grpc-status 0) and no
// decoding, routing or protobuf at all.

import * as http2 from "node:http2";
import { grpcFrame } from "../calls.js";
import { HOST, PORT, REPLY, ready } from "./env.js";

const frame = grpcFrame(REPLY);
const server = http2.createServer();
server.on("stream", (stream) => {
  stream.on("error", () => {});
  stream.once("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame);
  });
  stream.resume();
});
server.listen(PORT, HOST, ready);
