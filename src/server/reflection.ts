// gRPC server reflection (v1, and v1alpha which older clients still use) over
// the protobuf-es file registry of the generated code: clients such as buf curl
// and grpcurl can list the services and call them without local .proto files.

import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescFile,
  type DescService,
  type FileRegistry,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflection,
  type ServerReflectionRequest,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Response = MessageInitShape<typeof ServerReflectionResponseSchema>;
type MessageResponse = Response["messageResponse"];

/** `files` and, transitively, everything they import, by file name. */
export function withDependencies(files: readonly DescFile[]): Map<string, DescFile> {
  const byName = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (byName.has(file.proto.name)) return;
    byName.set(file.proto.name, file);
    file.dependencies.forEach(visit);
  };
  files.forEach(visit);
  return byName;
}

/** A registry holding `files` and, transitively, everything they import. */
export function fileRegistryOf(files: readonly DescFile[]): FileRegistry {
  const byName = withDependencies(files);
  return createFileRegistry(
    ...[...byName.values()].map((file) => createFileRegistry(file.proto, (name) => byName.get(name))),
  );
}

export class Reflection {
  constructor(
    private readonly registry: FileRegistry,
    /** Fully qualified names of the services this server answers. */
    private readonly serviceNames: readonly string[],
  ) {}

  v1(): ServiceImpl<typeof ServerReflection> {
    return {
      serverReflectionInfo: (requests) => this.serve(requests),
    };
  }

  // v1alpha's messages are v1's, field for field and number for number, so
  // converting through the wire format is exact.
  v1alpha(): ServiceImpl<typeof v1alpha.ServerReflection> {
    const serve = (requests: AsyncIterable<ServerReflectionRequest>) => this.serve(requests);
    return {
      async *serverReflectionInfo(requests) {
        async function* asV1() {
          for await (const req of requests) {
            yield fromBinary(ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, req));
          }
        }
        for await (const res of serve(asV1())) {
          const v1 = create(ServerReflectionResponseSchema, res);
          yield fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(ServerReflectionResponseSchema, v1));
        }
      },
    };
  }

  private async *serve(requests: AsyncIterable<ServerReflectionRequest>): AsyncGenerator<Response> {
    // As grpc-go does: on one stream, each file is sent once; later answers
    // leave out the dependencies the client already has.
    const sent = new Set<string>();
    for await (const req of requests) {
      yield { validHost: req.host, originalRequest: req, messageResponse: this.answer(req, sent) };
    }
  }

  private answer(req: ServerReflectionRequest, sent: Set<string>): MessageResponse {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: this.serviceNames.map((name) => ({ name })) },
        };
      case "fileByFilename": {
        const file = this.registry.getFile(r.value);
        return file === undefined ? notFound(`file "${r.value}"`) : this.files(file, sent);
      }
      case "fileContainingSymbol": {
        const file = this.fileOfSymbol(r.value);
        return file === undefined ? notFound(`symbol "${r.value}"`) : this.files(file, sent);
      }
      case "fileContainingExtension": {
        const extendee = this.registry.getMessage(r.value.containingType);
        const extension = extendee && this.registry.getExtensionFor(extendee, r.value.extensionNumber);
        return extension === undefined
          ? notFound(`extension ${r.value.extensionNumber} of "${r.value.containingType}"`)
          : this.files(extension.file, sent);
      }
      case "allExtensionNumbersOfType": {
        if (this.registry.getMessage(r.value) === undefined) return notFound(`type "${r.value}"`);
        const numbers: number[] = [];
        for (const desc of this.registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === r.value) numbers.push(desc.number);
        }
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: r.value, extensionNumber: numbers.sort((a, b) => a - b) },
        };
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "empty or unknown reflection request" },
        };
    }
  }

  /** The file first, then every file it imports, transitively, minus those already sent. */
  private files(file: DescFile, sent: Set<string>): MessageResponse {
    const out: Uint8Array[] = [];
    const visit = (f: DescFile, requested: boolean) => {
      // The requested file is sent even if sent before: the client asked for it again.
      if (!requested && sent.has(f.proto.name)) return;
      sent.add(f.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const dep of f.dependencies) if (!sent.has(dep.proto.name)) visit(dep, false);
    };
    visit(file, true);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  /** Types and services, and their members (methods, fields, oneofs, enum values). */
  private fileOfSymbol(symbol: string): DescFile | undefined {
    const desc = this.registry.get(symbol);
    if (desc !== undefined) return desc.file;
    const dot = symbol.lastIndexOf(".");
    if (dot < 0) return undefined;
    const parentName = symbol.slice(0, dot);
    const member = symbol.slice(dot + 1);
    const parent = this.registry.get(parentName);
    if (parent?.kind === "service" && parent.methods.some((m) => m.name === member)) return parent.file;
    if (parent?.kind === "message" && [...parent.fields, ...parent.oneofs].some((f) => f.name === member)) {
      return parent.file;
    }
    // Enum values are scoped beside their enum: pkg.Enum's VALUE is pkg.VALUE.
    for (const d of this.registry) {
      if (d.kind === "enum" && d.typeName.slice(0, d.typeName.lastIndexOf(".")) === parentName) {
        if (d.values.some((v) => v.name === member)) return d.file;
      }
    }
    return undefined;
  }
}

function notFound(what: string): MessageResponse {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
}

/**
 * Reflection for a server answering `services` (list the reflection services
 * too). `extraFiles` adds files no service imports, such as error details.
 */
export function reflectionFor(services: readonly DescService[], extraFiles: readonly DescFile[] = []): Reflection {
  const registry = fileRegistryOf([...services.map((s) => s.file), ...extraFiles]);
  return new Reflection(registry, [...new Set(services.map((s) => s.typeName))]);
}
