// F-grpc-js: a bare @grpc/grpc-js server with one unary method, GetProfile,
// answering a fixed message. The protobuf-es schemas in gen/ are its
// serializers, as they would be in a grpc-js service.

import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GetProfileRequestSchema, GetProfileResponseSchema } from "../../gen/profile/v1/profile_pb.js";
import { GET_PROFILE, HOST, PORT, REPLY, ready } from "./env.js";

const codec = <D extends DescMessage>(schema: D) => ({
  serialize: (m: MessageShape<D>) => Buffer.from(toBinary(schema, m)),
  deserialize: (b: Buffer) => fromBinary(schema, b),
});
const request = codec(GetProfileRequestSchema);
const response = codec(GetProfileResponseSchema);
const reply = fromBinary(GetProfileResponseSchema, REPLY);

const server = new grpc.Server();
server.addService(
  {
    getProfile: {
      path: GET_PROFILE,
      requestStream: false,
      responseStream: false,
      requestSerialize: request.serialize,
      requestDeserialize: request.deserialize,
      responseSerialize: response.serialize,
      responseDeserialize: response.deserialize,
    },
  },
  { getProfile: (_call: unknown, callback: grpc.sendUnaryData<typeof reply>) => callback(null, reply) },
);
server.bindAsync(`${HOST}:${PORT}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err !== null) throw err;
  ready();
});
