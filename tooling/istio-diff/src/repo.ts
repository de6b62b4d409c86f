/**
 * The repository's inputs of every case, read once per run: the files of istio/base, the rendered chart, and the
 * Kubernetes objects the oracle needs to compile endpoints (the chart's Services and ServiceAccounts, one running
 * Pod per rendered Deployment and one EndpointSlice per Service that selects it, as tooling/istio-oracle/smoke.sh
 * builds them). Our side is derived from the very same objects: the DestinationRule and the Gateway parsed from the
 * texts the oracle gets, the workloads from the rendered chart (their labels checked against the Pods').
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AppService,
  type BackendService,
  type DestinationRule,
  type Gateway,
  type KubeGateway,
  parseDestinationRule,
  parseGateway,
  parseKubeGateway,
  servicesFromRenderedObjects,
  type Workload,
  workloadsFromRendered,
} from '@rollouts/stages';
import { parse, parseAllDocuments } from 'yaml';

/** A Kubernetes object as the oracle reads it (JSON). */
export type KubeObject = Record<string, unknown>;

export interface RepoInputs {
  root: string;
  /** istio/base/*.yaml, in name order: [file name, text]. */
  base: [file: string, text: string][];
  /** The chart's objects for the oracle: Services, ServiceAccounts, Pods, EndpointSlices. */
  kubeObjects: KubeObject[];
  destinationRules: DestinationRule[];
  gateway: Gateway;
  workloads: Workload[];
  service: AppService;
  /**
   * The Gateway API side (HTTPRoute cases): istio/base/*.yaml without the Istio Gateway plus
   * istio/base/gateway-api/*.yaml (the Gateway Istio deploys, its options), the Gateway parsed, and the chart's
   * Services a backendRef may name.
   */
  gatewayApiBase: [file: string, text: string][];
  kubeGateway: KubeGateway;
  services: BackendService[];
}

/** `helm template webapp charts/webapp --namespace rollouts` with bin/helm (or a helm on PATH). */
export function renderChart(root: string): string {
  const local = join(root, 'bin', 'helm');
  const helm = existsSync(local) ? local : 'helm';
  try {
    return execFileSync(
      helm,
      ['template', 'webapp', join(root, 'charts', 'webapp'), '--namespace', 'rollouts'],
      {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      },
    );
  } catch (error) {
    throw new Error(
      `cannot render charts/webapp with ${helm} (${(error as Error).message.split('\n')[0]}): run hack/ci-tools.sh helm (make test installs it)`,
    );
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});

function isHook(d: Obj): boolean {
  return 'helm.sh/hook' in obj(obj(d.metadata).annotations);
}

function selects(selector: Obj, labels: Obj): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/** The Kubernetes objects of the rendered chart the oracle needs, with one Pod and EndpointSlice per version. */
export function kubeObjectsOf(rendered: string): KubeObject[] {
  const docs = parseAllDocuments(rendered)
    .map((d) => d.toJS() as unknown)
    .filter(isObj);
  const services = docs.filter((d) => d.kind === 'Service' && !isHook(d));
  const out: KubeObject[] = docs.filter(
    (d) => (d.kind === 'Service' || d.kind === 'ServiceAccount') && !isHook(d),
  );
  const deployments = docs.filter((d) => d.kind === 'Deployment');
  for (const [i, dep] of deployments.entries()) {
    const meta = obj(dep.metadata);
    const template = obj(obj(dep.spec).template);
    const labels = obj(obj(template.metadata).labels);
    const tspec = obj(template.spec);
    const ns = String(meta.namespace);
    const ip = `10.244.0.${10 + i}`;
    const name = `${String(meta.name)}-oracle`;
    const spec: Obj = {};
    for (const k of ['serviceAccountName', 'containers']) if (k in tspec) spec[k] = tspec[k];
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels },
      spec,
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
    const containerPorts = new Map<unknown, unknown>();
    for (const c of (spec.containers as Obj[] | undefined) ?? []) {
      for (const p of (c.ports as Obj[] | undefined) ?? [])
        if ('name' in p) containerPorts.set(p.name, p.containerPort);
    }
    for (const svc of services) {
      const smeta = obj(svc.metadata);
      if (smeta.namespace !== ns || !selects(obj(obj(svc.spec).selector), labels)) continue;
      const ports = ((obj(svc.spec).ports as Obj[] | undefined) ?? []).map((p) => {
        const target = p.targetPort ?? p.port;
        return {
          name: p.name ?? '',
          port: containerPorts.get(target) ?? target,
          protocol: p.protocol ?? 'TCP',
          ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
        };
      });
      out.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: `${String(smeta.name)}-${String(meta.name)}`,
          namespace: ns,
          labels: { 'kubernetes.io/service-name': smeta.name },
        },
        addressType: 'IPv4',
        endpoints: [
          { addresses: [ip], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: ns, name } },
        ],
        ports,
      });
    }
  }
  return out;
}

/** The app's Service (the one selecting the versions' pods): its FQDN and first port. */
function appService(objects: readonly KubeObject[]): AppService {
  const pods = objects.filter((o) => o.kind === 'Pod');
  const svc = objects.find(
    (o) =>
      o.kind === 'Service' &&
      pods.some((p) => selects(obj(obj(o.spec).selector), obj(obj(p.metadata).labels))),
  );
  if (svc === undefined) throw new Error('the rendered chart has no Service selecting its pods');
  const meta = obj(svc.metadata);
  const port = ((obj(svc.spec).ports as Obj[] | undefined) ?? [])[0]?.port;
  return { host: `${String(meta.name)}.${String(meta.namespace)}.svc.cluster.local`, port: Number(port) };
}

/** Everything a case takes from the repository, for both sides. */
export function repoInputs(root: string, rendered: string): RepoInputs {
  const baseDir = join(root, 'istio', 'base');
  const base = readdirSync(baseDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f): [string, string] => [f, readFileSync(join(baseDir, f), 'utf8')]);
  const destinationRules: DestinationRule[] = [];
  let gateway: Gateway | undefined;
  for (const [file, text] of base) {
    const doc = parse(text) as Obj;
    if (doc.kind === 'DestinationRule')
      destinationRules.push(parseDestinationRule(doc, `istio/base/${file}`));
    if (doc.kind === 'Gateway') gateway = parseGateway(doc, `istio/base/${file}`);
  }
  if (gateway === undefined) throw new Error('istio/base has no Gateway');
  const kubeObjects = kubeObjectsOf(rendered);
  const workloads = workloadsFromRendered(rendered);
  // Our workloads and the oracle's Pods must carry the same labels (the endpoints are compared by them).
  const podLabels = kubeObjects
    .filter((o) => o.kind === 'Pod')
    .map((p) => JSON.stringify(sortKeys(obj(obj(p.metadata).labels))))
    .sort();
  const ourLabels = workloads.map((w) => JSON.stringify(sortKeys(w.labels))).sort();
  if (JSON.stringify(podLabels) !== JSON.stringify(ourLabels)) {
    throw new Error(`workload labels ${ourLabels.join(' ')} differ from the Pods' ${podLabels.join(' ')}`);
  }
  const gaDir = join(baseDir, 'gateway-api');
  const gaFiles = readdirSync(gaDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f): [string, string] => [`gateway-api/${f}`, readFileSync(join(gaDir, f), 'utf8')]);
  let kubeGateway: KubeGateway | undefined;
  for (const [file, text] of gaFiles) {
    const doc = parse(text) as Obj;
    if (doc.kind === 'Gateway') kubeGateway = parseKubeGateway(doc, `istio/base/${file}`);
  }
  if (kubeGateway === undefined) throw new Error('istio/base/gateway-api has no Gateway');
  const gatewayApiBase = [...base.filter(([, text]) => (parse(text) as Obj).kind !== 'Gateway'), ...gaFiles];
  const services = servicesFromRenderedObjects(parseAllDocuments(rendered).map((d) => d.toJS() as unknown));
  return {
    root,
    base,
    kubeObjects,
    destinationRules,
    gateway,
    workloads,
    service: appService(kubeObjects),
    gatewayApiBase,
    kubeGateway,
    services,
  };
}

export function sortKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(sortKeys) as T;
  if (isObj(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
    return out as T;
  }
  return v;
}
