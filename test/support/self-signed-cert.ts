// A throwaway self-signed certificate (EC P-256, valid one day) for the TLS tests.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface CertFiles {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/**
 * Writes cert.pem and key.pem into `dir`, for CN=localhost and
 * `subjectAltName` (by default the loopback address and localhost; none
 * when null).
 */
export function selfSignedCert(dir: string, subjectAltName: string | null = "IP:127.0.0.1,DNS:localhost"): CertFiles {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=localhost"],
      ...(subjectAltName === null ? [] : ["-addext", `subjectAltName=${subjectAltName}`]),
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}
