// A grpc-js ProfileService client whose every call carries an x-call-id
// header, so a test can find that call in a load balancer's log.

import { create, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import { genericClient, grpc } from "./grpc-client.js";

type Methods = (typeof ProfileService)["method"];
type UnaryName = Exclude<keyof Methods, "watchProfileEvents">;

export class TaggedClient {
  private readonly client: ReturnType<typeof genericClient>;

  constructor(
    address: string,
    private readonly token: string,
  ) {
    this.client = genericClient(ProfileService, address);
  }

  unary<M extends UnaryName>(
    method: M,
    callId: string,
    request: MessageInitShape<Methods[M]["input"]>,
    deadlineMs = 10_000,
  ): Promise<MessageShape<Methods[M]["output"]>> {
    const desc = ProfileService.method[method];
    return new Promise((resolve, reject) => {
      this.client[method]!.call(
        this.client,
        create(desc.input, request as never),
        this.metadata(callId),
        { deadline: Date.now() + deadlineMs },
        (err: grpc.ServiceError | null, res: never) => (err ? reject(err) : resolve(res)),
      );
    });
  }

  watch(
    callId: string,
    request: MessageInitShape<Methods["watchProfileEvents"]["input"]>,
  ): grpc.ClientReadableStream<MessageShape<Methods["watchProfileEvents"]["output"]>> {
    return this.client.watchProfileEvents!.call(
      this.client,
      create(ProfileService.method.watchProfileEvents.input, request),
      this.metadata(callId),
    ) as grpc.ClientReadableStream<never>;
  }

  close(): void {
    this.client.close();
  }

  private metadata(callId: string): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${this.token}`);
    md.set("x-call-id", callId);
    return md;
  }
}
