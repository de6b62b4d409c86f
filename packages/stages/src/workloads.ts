/**
 * The workloads the chart renders (one per entry of `versions` in charts/webapp/values.yaml) and the pod labels
 * the DestinationRule subsets select them by.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { ManifestError } from './errors.js';
import type { DestinationRule, Subset } from './manifest.js';
import { NAMESPACE, paths } from './repo.js';

/** One Deployment of the chart: a version of the app. */
export interface Workload {
  /** The version key (v1, v2): the `version` label and the x-app-version the pods answer with. */
  version: string;
  /** Blue-green colour, when the version has one. */
  color: string | null;
  /** Image tag. */
  tag: string | null;
  /** Pod template labels (the ones subsets select). */
  labels: Record<string, string>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the chart's values (default charts/webapp/values.yaml under `root`, or `valuesFile`) and returns the
 * enabled versions with the labels the chart gives their pods: app=webapp, version=<key>, color=<color>,
 * app.kubernetes.io/name=webapp, app.kubernetes.io/version=<key>.
 */
export function loadWorkloads(root: string, valuesFile: string = paths.values(root)): Workload[] {
  if (!existsSync(valuesFile)) throw new ManifestError(valuesFile, '(file)', 'not found');
  let values: unknown;
  try {
    values = parseYaml(readFileSync(valuesFile, 'utf8'));
  } catch (error) {
    throw new ManifestError(valuesFile, '(file)', `invalid YAML: ${(error as Error).message}`);
  }
  if (!isRecord(values)) throw new ManifestError(valuesFile, '(document)', 'must be a mapping');
  const versions = values.versions;
  if (!isRecord(versions) || Object.keys(versions).length === 0) {
    throw new ManifestError(
      valuesFile,
      'versions',
      'must be a non-empty mapping of version name to settings',
    );
  }
  const defaults = isRecord(values.versionDefaults) ? values.versionDefaults : {};
  const name =
    typeof values.nameOverride === 'string' && values.nameOverride !== '' ? values.nameOverride : 'webapp';
  const out: Workload[] = [];
  for (const [version, raw] of Object.entries(versions)) {
    if (!isRecord(raw)) throw new ManifestError(valuesFile, `versions.${version}`, 'must be a mapping');
    const enabled = raw.enabled ?? defaults.enabled ?? true;
    if (enabled === false) continue;
    const color = raw.color ?? null;
    if (color !== null && typeof color !== 'string') {
      throw new ManifestError(valuesFile, `versions.${version}.color`, 'must be a string');
    }
    const imageTag = isRecord(raw.image) ? raw.image.tag : undefined;
    const tag = raw.tag ?? imageTag ?? null;
    const labels: Record<string, string> = {
      app: name,
      version,
      'app.kubernetes.io/name': name,
      'app.kubernetes.io/version': version,
    };
    if (color) labels.color = color;
    out.push({ version, color, tag: typeof tag === 'string' ? tag : null, labels });
  }
  return out;
}

/**
 * The workloads of a rendered chart (`helm template` output, several YAML documents): the pod template labels of
 * every Deployment, StatefulSet or DaemonSet whose pods carry a `version` label.
 */
export function workloadsFromRendered(rendered: string, source = '(rendered chart)'): Workload[] {
  const out: Workload[] = [];
  for (const doc of parseAllDocuments(rendered)) {
    if (doc.errors.length > 0) {
      throw new ManifestError(
        source,
        '(document)',
        `invalid YAML: ${doc.errors[0]?.message ?? 'parse error'}`,
      );
    }
    const obj: unknown = doc.toJS();
    if (!isRecord(obj) || !['Deployment', 'StatefulSet', 'DaemonSet'].includes(String(obj.kind))) continue;
    const spec = isRecord(obj.spec) ? obj.spec : {};
    const template = isRecord(spec.template) ? spec.template : {};
    const meta = isRecord(template.metadata) ? template.metadata : {};
    const labelsRaw = isRecord(meta.labels) ? meta.labels : {};
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(labelsRaw)) labels[k] = String(v);
    const version = labels.version;
    if (version === undefined) continue;
    out.push({ version, color: labels.color ?? null, tag: null, labels });
  }
  return out;
}

/** Whether a workload's pods carry every label of the subset. */
export function subsetSelects(subset: Subset, workload: Workload): boolean {
  return Object.entries(subset.labels).every(([k, v]) => workload.labels[k] === v);
}

/** The versions a subset selects (every workload when subset is null: the whole Service). */
export function versionsOfSubset(
  dr: DestinationRule | undefined,
  workloads: readonly Workload[],
  subset: string | null,
): string[] {
  if (subset === null) return workloads.map((w) => w.version);
  const s = dr?.spec.subsets.find((x) => x.name === subset);
  if (!s) return [];
  return workloads.filter((w) => subsetSelects(s, w)).map((w) => w.version);
}

/** The chart's Service: its FQDN (fullnameOverride, else "webapp", in namespace rollouts) and its port. */
export function appServiceFromValues(valuesFile: string): { host: string; port: number } {
  let values: unknown = {};
  try {
    values = parseYaml(readFileSync(valuesFile, 'utf8'));
  } catch {
    // the defaults below
  }
  const v = isRecord(values) ? values : {};
  const name =
    typeof v.fullnameOverride === 'string' && v.fullnameOverride !== '' ? v.fullnameOverride : 'webapp';
  const service = isRecord(v.service) ? v.service : {};
  const port = typeof service.port === 'number' && Number.isInteger(service.port) ? service.port : 80;
  return { host: `${name}.${NAMESPACE}.svc.cluster.local`, port };
}
