// F-connect: a bare Connect-ES server (connectNodeAdapter, no interceptors) on
// the same kind of port the service serves Connect on today (cleartext
// HTTP/2), with one method, GetProfile, answering a fixed message.

import * as http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { GetProfileResponseSchema, ProfileService } from "../../gen/profile/v1/profile_pb.js";
import { HOST, PORT, REPLY, ready } from "./env.js";

const reply = fromBinary(GetProfileResponseSchema, REPLY);
const handler = connectNodeAdapter({ routes: (router) => router.service(ProfileService, { getProfile: () => reply }) });
http2.createServer(handler).listen(PORT, HOST, ready);
