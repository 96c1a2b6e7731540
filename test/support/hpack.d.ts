// The part of hpack.js (no types of its own) that raw-frames.ts uses.
declare module "hpack.js" {
  interface Header {
    name: string;
    value: string;
    huffman?: boolean;
    neverIndex?: boolean;
  }
  interface Compressor {
    write(headers: Header[]): void;
    read(): Buffer;
  }
  interface Decompressor {
    write(block: Buffer): void;
    execute(): void;
    read(): Header | null;
  }
  const hpack: {
    compressor: { create(options: { table: { size: number } }): Compressor };
    decompressor: { create(options: { table: { size: number } }): Decompressor };
  };
  export default hpack;
}
