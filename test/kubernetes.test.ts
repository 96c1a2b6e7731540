// The Kubernetes manifests under deploy/kubernetes/, parsed and checked
// against the service itself: every variable they set is one the service
// reads, their values pass its own validation, the probes and ports are the
// ones it listens on, and the pod outlives the service's own shutdown.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../src/config/config.js";
import { LIVENESS } from "../src/server/health.js";
import { parseDockerfile } from "./support/dockerfile.js";

const DIR = "deploy/kubernetes";

// The parts of the manifests this test reads.
type Labels = Record<string, string>;
interface Probe {
  grpc?: { port: number; service?: string };
}
interface Container {
  env?: { name: string; value?: string }[];
  envFrom: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: { runAsNonRoot?: boolean; allowPrivilegeEscalation?: boolean };
}
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Labels };
  resources?: string[];
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec: {
    selector: Labels & { matchLabels: Labels };
    strategy: { rollingUpdate: { maxSurge: number } };
    template: {
      metadata: { labels: Labels };
      spec: {
        terminationGracePeriodSeconds: number;
        securityContext: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: Container[];
      };
    };
    ports: { targetPort: string }[];
    scaleTargetRef: { kind: string; name: string };
    minReplicas: number;
    maxReplicas: number;
    metrics: { resource?: { name: string } }[];
  };
}

const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml"));
const manifests: Manifest[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return doc.toJS() as Manifest;
  }),
);

function only(kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
}

const deployment = only("Deployment");
const configMap = only("ConfigMap");
const secret = only("Secret");
const pod = deployment.spec.template.spec;
const container = pod.containers[0]!;
const configEnv: Record<string, string> = { ...configMap.data };
const secretEnv: Record<string, string> = { ...secret.stringData, ...secret.data };
// What the container's environment is, as the kubelet builds it from envFrom and env.
const podEnv: Record<string, string> = {
  ...configEnv,
  ...secretEnv,
  ...Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? ""])),
};

/** The names loadConfig reads, recorded by handing it an environment that notes every lookup. */
function variablesTheServiceReads(): Set<string> {
  const read = new Set<string>();
  const env = new Proxy<Record<string, string | undefined>>(
    {},
    {
      get(_, name) {
        if (typeof name === "string") read.add(name);
        return undefined;
      },
    },
  );
  loadConfig(env);
  return read;
}

describe("deploy/kubernetes", () => {
  it("is listed whole in its kustomization", () => {
    const kustomization = manifests.find((m) => m.kind === "Kustomization")!;
    expect(new Set(kustomization.resources)).toEqual(new Set(files.filter((f) => f !== "kustomization.yaml")));
    for (const kind of [
      "Deployment",
      "Service",
      "PodDisruptionBudget",
      "HorizontalPodAutoscaler",
      "ConfigMap",
      "Secret",
    ]) {
      only(kind);
    }
  });

  it("sets only variables the service reads, with values its own validation accepts", () => {
    const known = variablesTheServiceReads();
    expect(known.size).toBeGreaterThan(30);
    for (const name of Object.keys(podEnv)) expect(known, `${name} is not read by loadConfig`).toContain(name);
    // The placeholders are well-formed: the service would start on them.
    const config = loadConfig(podEnv);
    expect(config.nodeEnv).toBe("production");
  });

  it("keeps DATABASE_URL, REDIS_URL and JWT_SECRET in the Secret, and the rest in the ConfigMap", () => {
    for (const name of ["DATABASE_URL", "REDIS_URL", "JWT_SECRET"]) {
      expect(Object.keys(secretEnv)).toContain(name);
      expect(Object.keys(configEnv)).not.toContain(name);
    }
    const sources = container.envFrom.map((s) => s.configMapRef?.name ?? s.secretRef?.name);
    expect(sources).toEqual(expect.arrayContaining([configMap.metadata.name, secret.metadata.name]));
  });

  it("probes Health/Check over gRPC on the port the service listens on", () => {
    const config = loadConfig(podEnv);
    const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
    expect(ports.grpc).toBe(config.port);
    expect(ports.http).toBe(config.httpPort);
    expect(ports.metrics).toBe(config.metricsPort);
    for (const probe of ["readinessProbe", "startupProbe"] as const) {
      expect(container[probe]?.grpc, probe).toEqual({ port: config.port });
    }
    expect(container.livenessProbe?.grpc).toEqual({ port: config.port, service: LIVENESS });
  });

  it("gives the pod longer than the preStop sleep plus SHUTDOWN_GRACE_SECONDS", () => {
    const config = loadConfig(podEnv);
    const preStop: string[] = container.lifecycle?.preStop?.exec?.command ?? [];
    const sleep = preStop[0] === "sleep" ? Number(preStop[1]) : (container.lifecycle?.preStop?.sleep?.seconds ?? 0);
    expect(sleep).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(sleep + config.shutdownGraceSeconds);
  });

  it("sets resources, and runs as the image's non-root user", () => {
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.requests.memory).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    const user = parseDockerfile(readFileSync("Dockerfile", "utf8"))
      .at(-1)!
      .instructions.filter((i) => i.keyword === "USER")
      .at(-1)!.args;
    expect(pod.securityContext.runAsUser).toBe(Number(user.split(":")[0]));
    expect(pod.securityContext.runAsUser).not.toBe(0);
  });

  it("points the Service, PDB and HPA at the Deployment's pods", () => {
    const labels: Record<string, string> = deployment.spec.template.metadata.labels;
    expect(labels).toMatchObject(deployment.spec.selector.matchLabels);
    const service = only("Service");
    expect(labels).toMatchObject(service.spec.selector);
    const portNames = container.ports.map((p) => p.name);
    for (const port of service.spec.ports) expect(portNames).toContain(port.targetPort);
    expect(labels).toMatchObject(only("PodDisruptionBudget").spec.selector.matchLabels);
    const hpa = only("HorizontalPodAutoscaler");
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: "Deployment", name: deployment.metadata.name });
    expect(hpa.spec.metrics.map((m) => m.resource?.name)).toContain("cpu");
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it("fits PostgreSQL's default max_connections at the HPA's maximum during a rollout", () => {
    const config = loadConfig(podEnv);
    const pods = only("HorizontalPodAutoscaler").spec.maxReplicas + deployment.spec.strategy.rollingUpdate.maxSurge;
    // Each replica: its pool plus the health probe's own connection. PostgreSQL's default
    // max_connections is 100, of which superuser_reserved_connections keeps 3.
    expect(pods * (config.dbPoolSize + 1)).toBeLessThanOrEqual(100 - 3);
  });
});
