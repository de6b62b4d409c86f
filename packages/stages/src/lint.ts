import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ManifestError, UnknownStageError } from './errors.js';
import { selectVirtualHost } from './hosts.js';
import type { GatewayApiLintRule } from './lint-gateway-api.js';
import type { DestinationRule, Gateway, ResponseHeaderOperations } from './manifest.js';
import { NAMESPACE, paths } from './repo.js';
import {
  loadDestinationRule,
  loadGateway,
  loadStageFile,
  orderedNames,
  STABLE_LABEL,
  STAGE_HEADER,
  STAGE_LABEL,
  STRATEGIES,
  type Stage,
  stableStages,
  stageNames,
} from './stages.js';
import { DEFAULT_GATEWAY, gatewayRouteTable } from './table.js';
import {
  appServiceFromValues,
  loadWorkloads,
  subsetSelects,
  type Workload,
  workloadsFromRendered,
} from './workloads.js';

export type LintRule =
  | 'manifest'
  | 'weights-sum'
  | 'unknown-subset'
  | 'subset-selects-nothing'
  | 'host-not-service'
  | 'no-gateway'
  | 'host-unreachable'
  | 'rollback-target'
  | 'stage-label'
  | 'stage-header'
  | 'virtual-service-name'
  // The Gateway API stages (lint-gateway-api.ts).
  | GatewayApiLintRule;

/** `error`: the stage is refused before it is applied (cluster and local path alike); `warning`: reported only. */
export type LintSeverity = 'error' | 'warning';

export interface Finding {
  /** Path relative to the repository root. */
  file: string;
  field: string;
  message: string;
  rule: LintRule;
  severity: LintSeverity;
}

/** The findings that refuse a stage (severity error). */
export function lintErrors(findings: readonly Finding[]): Finding[] {
  return findings.filter((f) => f.severity === 'error');
}

/** The Host the stages are checked with: what http://localhost:8080 (the gateway's URL) sends. */
const PROBE_HOST = 'localhost';

export interface LintOptions {
  /** `helm template` output (several YAML documents): workloads and Service are taken from it. */
  renderedChart?: string;
  /** Chart values to read when no rendered chart is given (default charts/webapp/values.yaml). */
  valuesFile?: string;
  /**
   * Lint only this stage: its file, istio/base and the chart. Findings in other stage files are not reported. UnknownStageError for a name without a file.
   */
  stage?: string;
}

export { NAMESPACE };

/** Names of the non-hook Services a rendered chart creates. */
function servicesFromRendered(rendered: string): string[] {
  const out: string[] = [];
  for (const doc of parseAllDocuments(rendered)) {
    const obj = doc.toJS() as {
      kind?: unknown;
      metadata?: { name?: unknown; annotations?: Record<string, unknown> };
    };
    if (obj?.kind !== 'Service' || typeof obj.metadata?.name !== 'string') continue;
    if (obj.metadata.annotations?.['helm.sh/hook'] !== undefined) continue;
    out.push(obj.metadata.name);
  }
  return out;
}

/** What is wrong with a route's stage header, or null when it sets x-rollouts-stage to `stage`. */
function headerEntry(map: Record<string, string> | undefined, name: string): [string, string] | undefined {
  return Object.entries(map ?? {}).find(([k]) => k.toLowerCase() === name);
}

function stageHeaderProblem(
  response: ResponseHeaderOperations | undefined,
  stage: string,
): { field: string; message: string } | null {
  const entry = headerEntry(response?.set, STAGE_HEADER);
  const set = entry?.[1];
  const field = `headers.response.set.${entry?.[0] ?? STAGE_HEADER}`;
  if (set === stage) return null;
  if (set !== undefined) {
    return {
      field,
      message: `${STAGE_HEADER} "${set}" differs from the ${STAGE_LABEL} label "${stage}": answers would name another stage`,
    };
  }
  const why = `so scripts/stage.sh and the verifiers can tell when the gateway serves this stage`;
  const added = headerEntry(response?.add, STAGE_HEADER);
  if (added !== undefined) {
    return {
      field: `headers.response.add.${added[0]}`,
      message: `${STAGE_HEADER} is added (appended to what the app sends), not set; use set: ${STAGE_HEADER}: ${stage}, ${why}`,
    };
  }
  return {
    field,
    message: `the route does not set the response header ${STAGE_HEADER}; set it to "${stage}" (the ${STAGE_LABEL} label), ${why}`,
  };
}

/**
 * Lints istio/ against the chart. Rules (all errors but weights-sum, a warning):
 * - manifest: a stage file, the DestinationRule or the Gateway cannot be loaded (bad YAML, wrong kind, a field
 *   Istio's validation refuses, or one the local gateway does not emulate);
 * - weights-sum (warning): the weights of a route with several destinations do not add up to 100 (or a lone
 *   destination has a weight other than 100). Istio accepts any total above 0 and splits proportionally;
 * - unknown-subset: a destination names a subset the DestinationRule does not define (Envoy answers 503);
 * - subset-selects-nothing: a DestinationRule subset whose labels match no workload the chart renders;
 * - host-not-service: a destination or DestinationRule host other than the chart's Service;
 * - no-gateway: a VirtualService not bound to the Gateway of istio/base (bound to the mesh only, or hidden from
 *   the gateway by exportTo): the gateway answers 404 to everything;
 * - host-unreachable: bound to the Gateway, but Host localhost (http://localhost:8080) selects none of the
 *   gateway's virtual hosts: `localhost` in `hosts` is a short name Istio reads as
 *   localhost.<namespace>.svc.cluster.local; use "*";
 * - rollback-target: not exactly one stage of a strategy is labelled rollouts/stable: "true";
 * - stage-label: the rollouts/stage label differs from the file name;
 * - stage-header: a route does not set the response header x-rollouts-stage (headers.response.set) to the stage's
 *   rollouts/stage label, so scripts/stage.sh and the verifiers could not tell which stage answered;
 * - virtual-service-name: a stage's VirtualService is not named like every other stage's (applying one must
 *   replace the previous);
 */
export function lint(root: string, options: LintOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const rel = (f: string) => relative(root, f) || f;
  const add = (
    file: string,
    field: string,
    rule: LintRule,
    message: string,
    severity: LintSeverity = 'error',
  ) => findings.push({ file: rel(file), field, rule, message, severity });
  const manifestFinding = (e: unknown, fallbackFile: string) => {
    if (e instanceof ManifestError) add(e.file, e.field, 'manifest', e.problem);
    else add(fallbackFile, '(file)', 'manifest', (e as Error).message);
  };

  // The chart: workloads and Service.
  let workloads: Workload[] = [];
  const valuesFile = options.valuesFile ?? paths.values(root);
  const appService = appServiceFromValues(valuesFile);
  let service = appService.host.split('.')[0] as string;
  if (options.renderedChart !== undefined) {
    try {
      workloads = workloadsFromRendered(options.renderedChart);
      service = servicesFromRendered(options.renderedChart)[0] ?? service;
    } catch (e) {
      manifestFinding(e, '(rendered chart)');
    }
  } else {
    try {
      workloads = loadWorkloads(root, valuesFile);
    } catch (e) {
      manifestFinding(e, valuesFile);
    }
  }
  const fqdn = `${service}.${NAMESPACE}.svc.cluster.local`;
  let gatewayManifest: Gateway = DEFAULT_GATEWAY;
  try {
    gatewayManifest = loadGateway(root);
  } catch (e) {
    manifestFinding(e, paths.gateway(root));
  }
  const chartSource = options.renderedChart !== undefined ? 'the rendered chart' : rel(valuesFile);

  // The DestinationRule.
  let dr: DestinationRule | undefined;
  const drFile = paths.destinationRule(root);
  try {
    dr = loadDestinationRule(root);
  } catch (e) {
    manifestFinding(e, drFile);
  }
  if (dr) {
    if (dr.spec.host !== fqdn) {
      add(
        drFile,
        'spec.host',
        'host-not-service',
        `host "${dr.spec.host}" is not the chart's Service "${fqdn}"`,
      );
    }
    if (workloads.length > 0) {
      for (const [i, s] of dr.spec.subsets.entries()) {
        if (!workloads.some((w) => subsetSelects(s, w))) {
          add(
            drFile,
            `spec.subsets[${i}].labels`,
            'subset-selects-nothing',
            `subset "${s.name}" (${JSON.stringify(s.labels)}) matches no workload of ${chartSource} ` +
              `(versions: ${workloads.map((w) => w.version).join(', ')})`,
          );
        }
      }
    }
  }

  // Every stage file.
  const names = (() => {
    try {
      return stageNames(root);
    } catch (e) {
      manifestFinding(e, paths.stagesDir(root));
      return [];
    }
  })();
  const only = options.stage;
  if (only !== undefined && !names.includes(only))
    throw new UnknownStageError(only, orderedNames(root, names));
  const gateway = gatewayManifest.metadata.name;
  const gatewayNamespace = gatewayManifest.metadata.namespace ?? NAMESPACE;
  const stages: Stage[] = [];
  for (const name of names) {
    const file = join(paths.stagesDir(root), `${name}.yaml`);
    try {
      stages.push(loadStageFile(root, file));
    } catch (e) {
      // With --stage, another stage's broken file is not this stage's finding.
      if (only === undefined || only === name) manifestFinding(e, file);
    }
  }
  // The VirtualService name every stage shares is read from all stages, also when linting one of them.
  const vsNames = new Map<string, number>();
  for (const s of stages)
    vsNames.set(s.virtualService.metadata.name, (vsNames.get(s.virtualService.metadata.name) ?? 0) + 1);
  const commonName = [...vsNames.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];

  for (const stage of stages) {
    if (only !== undefined && stage.name !== only) continue;
    const { file, virtualService: vs } = stage;
    if (stage.stageLabel !== stage.name) {
      add(
        file,
        `metadata.labels.${STAGE_LABEL}`,
        'stage-label',
        stage.stageLabel === null
          ? `label missing; it must be "${stage.name}" (the file name)`
          : `label "${stage.stageLabel}" differs from the file name "${stage.name}"`,
      );
    }
    if (commonName !== undefined && vs.metadata.name !== commonName) {
      add(
        file,
        'metadata.name',
        'virtual-service-name',
        `VirtualService "${vs.metadata.name}" differs from the other stages' "${commonName}": applying this stage would not replace the previous one`,
      );
    }
    // What the ingress gateway gets for this stage: bound at all, and reachable at http://localhost:8080?
    try {
      const table = gatewayRouteTable(vs, dr ? [dr] : [], workloads, {
        gateway: gatewayManifest,
        service: { host: fqdn, port: appService.port },
      });
      const vhosts = table.routeConfiguration.virtualHosts;
      if (table.unbound?.startsWith('spec.gateways')) {
        add(
          file,
          'spec.gateways',
          'no-gateway',
          `not bound to the Gateway "${gatewayNamespace}/${gateway}" (gateways: ${JSON.stringify(vs.spec.gateways)}): the ingress gateway gets no route from this stage and answers 404 to every request`,
        );
      } else if (table.unbound?.startsWith('spec.exportTo')) {
        add(
          file,
          'spec.exportTo',
          'no-gateway',
          `${table.unbound}: the ingress gateway answers 404 to every request`,
        );
      } else if (selectVirtualHost(vhosts, PROBE_HOST) === -1) {
        add(
          file,
          'spec.hosts',
          'host-unreachable',
          `Host ${PROBE_HOST} (http://localhost:8080) reaches no virtual host of the gateway (domains ${JSON.stringify(vhosts.flatMap((v) => v.domains))}): Istio reads a host without a dot as a short name (localhost is localhost.${vs.metadata.namespace ?? ''}.svc.cluster.local); write "*" to take every Host the Gateway accepts`,
        );
      }
    } catch (e) {
      // A destination host other than the Service is reported below (host-not-service).
      if (!(e instanceof ManifestError)) throw e;
    }
    const stageValue = stage.stageLabel ?? stage.name;
    for (const [ri, route] of vs.spec.http.entries()) {
      const headerFinding = stageHeaderProblem(route.headers?.response, stageValue);
      if (headerFinding !== null) {
        add(file, `spec.http[${ri}].${headerFinding.field}`, 'stage-header', headerFinding.message);
      }
      const given = route.route.map((d) => d.weight);
      if (route.route.length > 1) {
        const sum = given.reduce<number>((a, w) => a + (w ?? 0), 0);
        if (sum !== 100) {
          add(
            file,
            `spec.http[${ri}].route`,
            'weights-sum',
            `weights add up to ${sum}, not 100 (${given.map((w) => w ?? 'unset').join(' + ')}); Istio accepts it and splits in proportion (${given.map((w) => `${(((w ?? 0) / sum) * 100).toFixed(2).replace(/\.?0+$/, '')} %`).join(' / ')}), but write percentages`,
            'warning',
          );
        }
      } else if (given[0] !== undefined && given[0] !== 100) {
        add(
          file,
          `spec.http[${ri}].route[0].weight`,
          'weights-sum',
          `a lone destination takes all traffic; its weight ${given[0]} should be 100 or unset`,
          'warning',
        );
      }
      for (const [di, d] of route.route.entries()) {
        const field = `spec.http[${ri}].route[${di}].destination`;
        if (d.destination.host !== fqdn) {
          add(
            file,
            `${field}.host`,
            'host-not-service',
            `host "${d.destination.host}" is not the chart's Service "${fqdn}"`,
          );
        }
        const subset = d.destination.subset;
        if (subset !== undefined && dr && !dr.spec.subsets.some((s) => s.name === subset)) {
          add(
            file,
            `${field}.subset`,
            'unknown-subset',
            `subset "${subset}" is not defined in ${rel(drFile)} (defined: ${dr.spec.subsets.map((s) => s.name).join(', ')})`,
          );
        }
      }
    }
  }

  // The rollback target of each strategy: exactly one stage labelled rollouts/stable: "true".
  // With --stage: only the strategy of that stage (nothing when its file does not load).
  const strategies = new Set(
    stages.filter((st) => only === undefined || st.name === only).map((st) => st.strategy),
  );
  const stable = (() => {
    try {
      return stableStages(root);
    } catch {
      return [];
    }
  })();
  for (const strategy of STRATEGIES) {
    if (!strategies.has(strategy)) continue;
    const labelled = stable.filter((st) => st.strategy === strategy);
    if (labelled.length !== 1) {
      add(
        paths.stagesDir(root),
        `metadata.labels.${STABLE_LABEL}`,
        'rollback-target',
        labelled.length === 0
          ? `no ${strategy} stage is labelled ${STABLE_LABEL}: "true": \`make rollback\` would have nowhere to go`
          : `${labelled.length} ${strategy} stages are labelled ${STABLE_LABEL}: "true" (${labelled.map((st) => st.name).join(', ')}): exactly one is the rollback target`,
      );
    }
  }

  return findings;
}
