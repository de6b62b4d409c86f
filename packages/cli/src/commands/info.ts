/** Commands that only read files: stages, lint, path, expect, rollback-target. */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import {
  headerOps,
  type PlanRequest,
  profileCheck,
  stageExpectation,
  table,
  verificationPlan,
} from '@rollouts/local-mesh';
import {
  type ClusterInfo,
  type CompiledRouteTable,
  compileRouteTable,
  expectedSplit,
  formatSplit,
  type GatewayRouteTable,
  type HeaderMatcher,
  httpRouteStageRouteTable,
  lint,
  lintErrors,
  lintGatewayApi,
  listStages,
  loadHttpRouteStage,
  ManifestError,
  type Profile,
  profileRequest,
  profiles,
  type Route,
  rollbackTarget,
  routeRequest,
  type Stage,
  type StageApi,
  type Strategy,
  scanStages,
  stageRouteTable,
  stageStrategy,
  stageTable,
  UnknownStageError,
} from '@rollouts/stages';
import { type Io, stageByName } from '../context.js';
import { CliError, EXIT_FAIL, EXIT_OK, UsageError } from '../errors.js';

/** Stage files that do not load, on stderr (the others are still listed): exit 1 when there is one. */
function reportBroken(root: string, io: Io): number {
  const { broken } = scanStages(root);
  for (const b of broken) io.err(`rollout: stage ${b.name} left out: ${b.error.message}`);
  return broken.length > 0 ? EXIT_FAIL : EXIT_OK;
}

export function stagesCommand(root: string, io: Io, format: 'text' | 'json' | 'markdown'): number {
  const rows = stageTable(root);
  if (format === 'json') {
    io.out(JSON.stringify(rows, null, 2));
    return reportBroken(root, io);
  }
  if (format === 'markdown') {
    io.out(markdownTable(rows));
    return reportBroken(root, io);
  }
  const lines = [['stage', 'strategy', 'requests without header', 'with override header', 'file']];
  for (const row of rows) {
    const overrides = row.overrides.map((o) => `${o.profile.name} → ${formatSplit(o.split)}`).join('; ');
    lines.push([row.stage, row.strategy, formatSplit(row.default), overrides || '-', row.file]);
  }
  io.out(table(lines));
  return reportBroken(root, io);
}

/**
 * The stage table as Markdown for README.md (between <!-- stages:begin --> and <!-- stages:end -->), padded the
 * way biome formats Markdown tables so the generated text and the formatted file are the same.
 */
export function markdownTable(rows: ReturnType<typeof stageTable>): string {
  const cells = [['stage', 'strategy', 'requests without header', 'with override header', 'manifests']];
  for (const row of rows) {
    const overrides = row.overrides.map((o) => `\`${o.profile.name}\` → ${formatSplit(o.split)}`).join('; ');
    cells.push([
      `\`${row.stage}\``,
      row.strategy,
      formatSplit(row.default),
      overrides || '—',
      row.httpRouteFile === null
        ? `[VirtualService](${row.file})`
        : `[VirtualService](${row.file}) · [HTTPRoute](${row.httpRouteFile})`,
    ]);
  }
  const widths = cells[0]?.map((_, i) => Math.max(3, ...cells.map((r) => [...(r[i] ?? '')].length))) ?? [];
  const line = (r: string[]) =>
    `| ${r.map((c, i) => c + ' '.repeat((widths[i] ?? 0) - [...c].length)).join(' | ')} |`;
  const [head, ...body] = cells;
  return [line(head ?? []), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join(
    '\n',
  );
}

export function lintCommand(
  root: string,
  io: Io,
  rendered: string | undefined,
  stage?: string | undefined,
  api: StageApi = 'virtualservice',
): number {
  let renderedChart: string | undefined;
  if (rendered !== undefined) {
    try {
      renderedChart = readFileSync(rendered, 'utf8');
    } catch (err) {
      throw new UsageError(`--rendered ${rendered}: cannot read: ${(err as Error).message}`);
    }
  }
  let findings: ReturnType<typeof lint>;
  try {
    const options = {
      ...(renderedChart !== undefined ? { renderedChart } : {}),
      ...(stage !== undefined ? { stage } : {}),
    };
    // gateway-api: the HTTPRoute stage(s), the Gateway, and each HTTPRoute against its VirtualService's split.
    findings = api === 'gateway-api' ? lintGatewayApi(root, options) : lint(root, options);
  } catch (err) {
    if (err instanceof UnknownStageError) throw new UsageError(err.message);
    throw err;
  }
  const against = rendered !== undefined ? `the rendered chart ${rendered}` : 'charts/webapp/values.yaml';
  // Warnings (weights that do not add up to 100) are reported; only errors refuse the stage.
  for (const f of findings.filter((x) => x.severity === 'warning'))
    io.out(`warning: ${f.file}: ${f.field}: ${f.message} [${f.rule}]`);
  findings = lintErrors(findings);
  if (findings.length === 0) {
    io.out(
      api === 'gateway-api'
        ? `lint: ${stage !== undefined ? `istio/stages/gateway-api/${stage}.yaml` : 'istio/stages/gateway-api/'} and istio/base/gateway-api are consistent with ${against} and the VirtualService stages`
        : stage !== undefined
          ? `lint: istio/stages/${stage}.yaml and istio/base are consistent with ${against}`
          : `lint: istio/ is consistent with ${against} (${listStages(root).length} stages)`,
    );
    return EXIT_OK;
  }
  for (const f of findings) io.err(`${f.file}: ${f.field}: ${f.message} [${f.rule}]`);
  io.err(`lint: ${findings.length} finding(s) against ${against}`);
  return EXIT_FAIL;
}

/** The file of a stage: its VirtualService, or with --api gateway-api its HTTPRoute. */
export function stageFile(root: string, name: string, api: StageApi): string {
  const vs = stageByName(root, name); // an unknown stage is bad input (exit 2) with the list
  if (api === 'virtualservice') return vs.file;
  try {
    return loadHttpRouteStage(root, name).file;
  } catch (err) {
    if (err instanceof UnknownStageError) throw new UsageError(err.message);
    if (err instanceof ManifestError) throw new CliError(err.message);
    throw err;
  }
}

export function pathCommand(root: string, io: Io, name: string, api: StageApi = 'virtualservice'): number {
  io.out(stageFile(root, name, api));
  return EXIT_OK;
}

/** The kubectl resource of each API's route object (the applied stage is its rollouts/stage label). */
export const ROUTE_RESOURCE: Record<StageApi, string> = {
  virtualservice: 'virtualservice.networking.istio.io',
  'gateway-api': 'httproute.gateway.networking.k8s.io',
};

/** What `rollout field <stage> <name>` answers, so that scripts ask instead of parsing YAML or JSON. */
export const STAGE_FIELDS = ['file', 'resource', 'stage-header', 'hosts'] as const;
export type StageField = (typeof STAGE_FIELDS)[number];

/**
 * One fact about a stage, one value a line: `file` (the manifest), `resource` (what kubectl reads the applied
 * stage from), `stage-header` (the response header every route sets to the stage's name, empty when none does),
 * `hosts` (the Host values its routes answer; `*` for any).
 */
export function fieldCommand(root: string, io: Io, name: string, field: string, api: StageApi): number {
  if (!(STAGE_FIELDS as readonly string[]).includes(field)) {
    throw new UsageError(`field must be one of ${STAGE_FIELDS.join(', ')}, got ${JSON.stringify(field)}`);
  }
  const file = stageFile(root, name, api);
  const vs = stageByName(root, name);
  let table: GatewayRouteTable;
  let hosts: string[];
  let resource: string;
  if (api === 'gateway-api') {
    const route = loadHttpRouteStage(root, name);
    table = httpRouteStageRouteTable(route);
    hosts = ['*']; // an HTTPRoute without hostnames answers every Host of its Gateway's listener
    resource = `${ROUTE_RESOURCE[api]}/${route.httpRoute.metadata.name}`;
  } else {
    table = stageRouteTable(vs);
    hosts = vs.virtualService.spec.hosts;
    resource = `${ROUTE_RESOURCE[api]}/${vs.virtualService.metadata.name}`;
  }
  const values: Record<StageField, string[]> = {
    file: [file],
    resource: [resource],
    hosts,
    'stage-header': stageHeader(table, name),
  };
  for (const v of values[field as StageField]) io.out(v);
  return EXIT_OK;
}

/** The response header every route of the table sets to `stage` (Envoy's OVERWRITE ops), or none. */
function stageHeader(table: GatewayRouteTable, stage: string): string[] {
  const routes = table.routeConfiguration.virtualHosts.flatMap((vh) => vh.routes);
  // The route's `set` operations as the local gateway applies them (local-mesh's headerOps).
  const setsOf = (r: Route) =>
    new Set(
      (headerOps(r.responseHeadersToAdd)?.set ?? [])
        .filter(([, value]) => value === stage)
        .map(([name]) => name),
    );
  if (routes.length === 0) return [];
  const [first, ...rest] = routes.map(setsOf);
  const common = [...(first as Set<string>)].filter((h) => rest.every((s) => s.has(h)));
  return common.slice(0, 1);
}

/**
 * The stage to roll back to: the stage of the same strategy labelled `rollouts/stable: "true"` (stable, green).
 * Only labels are read, so a broken stage file (the applied one included) does not stop a rollback.
 */
export function rollbackTargetOf(root: string, stage: Stage | string): string {
  let strategy: Strategy;
  try {
    strategy = typeof stage === 'string' ? stageStrategy(root, stage) : stage.strategy;
  } catch (err) {
    if (err instanceof UnknownStageError) throw new UsageError(err.message);
    throw err;
  }
  return rollbackTarget(root, strategy);
}

export function rollbackTargetCommand(root: string, io: Io, name: string): number {
  io.out(rollbackTargetOf(root, name));
  return EXIT_OK;
}

/** The istioctl command that prints the same route configuration on the cluster. */
export function istioctlRoutesCommand(routeName: string): string {
  return `istioctl proxy-config routes deploy/istio-ingressgateway -n istio-system --name ${routeName} -o json`;
}

function describeHeader(h: HeaderMatcher): string {
  let what: string;
  if (h.stringMatch?.exact !== undefined) what = `exact ${JSON.stringify(h.stringMatch.exact)}`;
  else if (h.stringMatch?.prefix !== undefined) what = `prefix ${JSON.stringify(h.stringMatch.prefix)}`;
  else if (h.stringMatch?.safeRegex !== undefined)
    what = `regex ${JSON.stringify(h.stringMatch.safeRegex.regex)}`;
  else what = 'present';
  const missing = h.treatMissingHeaderAsEmpty ? ' (missing = "")' : '';
  return `${h.invertMatch ? 'NOT ' : ''}header ${h.name} ${what}${missing}`;
}

function describeMatch(route: Route): string {
  const m = route.match;
  const path =
    m.path !== undefined
      ? `path ${JSON.stringify(m.path)}`
      : m.safeRegex !== undefined
        ? `path regex ${JSON.stringify(m.safeRegex.regex)}`
        : `prefix ${JSON.stringify(m.prefix ?? '')}`;
  const cs = m.caseSensitive === false && m.safeRegex === undefined ? ' (any case)' : '';
  return [path + cs, ...(m.headers ?? []).map(describeHeader)].join(', ');
}

function describeClusters(route: Route, clusters: readonly ClusterInfo[]): string {
  const weighted =
    route.route.cluster !== undefined
      ? [{ name: route.route.cluster, weight: 1 }]
      : (route.route.weightedClusters?.clusters ?? []);
  const total = weighted.reduce((a, w) => a + w.weight, 0);
  return weighted
    .map((w) => {
      const c = clusters.find((x) => x.name === w.name);
      const behind = !c
        ? ''
        : !c.exists
          ? ` (no such cluster: ${c.missing}: 503)`
          : c.endpoints.length === 0
            ? ' (no endpoint: 503)'
            : ` (${c.endpoints.map((e) => e.workload).join(', ')})`;
      const share = ((w.weight / total) * 100).toFixed(2).replace(/\.?0+$/, '');
      return `${w.name} ${share} %${route.route.weightedClusters ? ` (weight ${w.weight})` : ''}${behind}`;
    })
    .join(', ');
}

/** The route table of a stage, readably: what `rollout explain` prints. */
export function explainText(stage: Stage, root: string, t: GatewayRouteTable): string[] {
  const rc = t.routeConfiguration;
  const lines = [
    `stage ${stage.name} (${relative(root, stage.file)}): route configuration ${rc.name} of the ingress gateway`,
  ];
  if (t.unbound !== null) lines.push(`  the VirtualService gives the gateway no route: ${t.unbound}`);
  for (const vh of rc.virtualHosts) {
    lines.push('', `virtual host ${vh.name}`, `  domains: ${vh.domains.join(', ')}`);
    if (vh.routes.length === 0) lines.push('  no routes: every request gets 404');
    for (const [i, r] of vh.routes.entries()) {
      const retry = r.route.retryPolicy;
      lines.push(
        `  ${i + 1}. ${r.name ?? '(unnamed)'}`,
        `     match: ${describeMatch(r)}`,
        `     to: ${describeClusters(r, t.clusters)}`,
        `     retries: ${retry === undefined ? 'none' : `${retry.numRetries} on ${retry.retryOn}${retry.retriableStatusCodes ? ` (codes ${retry.retriableStatusCodes.join(', ')})` : ''}${retry.perTryTimeout ? `, per try ${retry.perTryTimeout}` : ''}`}; timeout ${r.route.timeout === '0s' ? 'none' : r.route.timeout}`,
      );
      const add = r.responseHeadersToAdd ?? [];
      const ops = [
        ...(r.responseHeadersToRemove ?? []).map((n) => `remove ${n}`),
        ...add.map(
          (h) =>
            `${h.appendAction ? 'set' : 'add'} ${h.header.key}: ${h.header.value ?? '(empty: Envoy sets nothing)'}`,
        ),
      ];
      if (ops.length > 0) lines.push(`     response headers: ${ops.join('; ')}`);
    }
  }
  lines.push(
    '',
    'The same on the cluster (Envoy prints more fields: metadata, decorator; `--json` here prints them too):',
    `  ${istioctlRoutesCommand(rc.name)} --context kind-rollouts`,
  );
  return lines;
}

/** `rollout explain <stage> [--json]`: the ingress gateway's route table for a stage. */
export function explainCommand(root: string, io: Io, name: string, json: boolean): number {
  const stage = stageByName(root, name);
  const t = stageRouteTable(stage);
  if (json) {
    io.out(
      JSON.stringify(
        {
          stage: stage.name,
          file: relative(root, stage.file),
          command: istioctlRoutesCommand(t.routeConfiguration.name),
          ...t,
        },
        null,
        2,
      ),
    );
    return EXIT_OK;
  }
  for (const line of explainText(stage, root, t)) io.out(line);
  return EXIT_OK;
}

/** The expected split per profile and the sample plan, as the local verifier and k6 use them. */
function routeOfProfile(compiled: CompiledRouteTable, profile: Profile | undefined): Route | null {
  if (profile === undefined) return null;
  const d = routeRequest(compiled, profileRequest(profile));
  return d.kind === 'route' ? d.route : null;
}

export function expectDocument(root: string, stage: Stage, request: PlanRequest = {}) {
  const plan = verificationPlan(root, request);
  const compiled = compileRouteTable(stageRouteTable(stage));
  const expectation = stageExpectation(root, stage);
  const ps = profiles(stage);
  return {
    stage: stage.name,
    strategy: stage.strategy,
    file: relative(root, stage.file),
    plan: {
      familyAlpha: plan.familyAlpha,
      delta: plan.delta,
      power: plan.power,
      beta: plan.beta,
      alphaPerStage: plan.alphaPerStage,
      confidence: 1 - plan.alphaPerStage,
      randomChecks: plan.randomStageNames,
      deterministicN: plan.deterministicN,
    },
    profiles: expectation.profiles.map((p, i) => {
      const profile = ps[i];
      const split = expectedSplit(stage, profile);
      const route = routeOfProfile(compiled, profile);
      const request = profileRequest(p);
      return {
        name: p.name,
        headers: p.headers,
        method: request.method,
        path: request.target,
        routeIndex: split.routeIndex,
        routeName: split.routeName,
        subsets: split.subsets,
        versions: split.versions,
        unresolved: split.unresolved,
        // Headers every answer must carry (the route's headers.response.set: x-rollouts-stage: <stage>).
        responseHeaders: p.responseHeaders ?? {},
        // The gateway route's retry policy and timeout (Istio's default: 2 retries on connect-failure, ...;
        // no timeout). The local gateway applies them to requests without a body.
        retryPolicy: route?.route.retryPolicy ?? null,
        timeout: route?.route.timeout ?? null,
        check: profileCheck(plan, p),
      };
    }),
  };
}

export function expectCommand(
  root: string,
  io: Io,
  name: string,
  json: boolean,
  request: PlanRequest = {},
): number {
  const stage = stageByName(root, name);
  const doc = expectDocument(root, stage, request);
  if (json) {
    io.out(JSON.stringify(doc, null, 2));
    return EXIT_OK;
  }
  io.out(`stage ${doc.stage} (${doc.strategy}, ${doc.file})`);
  const rows = [['profile', 'expected split', 'check']];
  for (const p of doc.profiles) {
    const c = p.check;
    let check: string;
    if (c.kind === 'deterministic') check = `deterministic: ${c.n} requests, every one to ${c.version}`;
    else if (c.kind === 'no-route') check = `${c.n} requests, every one answered 404 (no route)`;
    else if (c.kind === 'binomial')
      check = `${c.version} share ${c.p0}: SPRT (at most ${c.sprtMaxN} requests); fixed n ${c.n}, pass if the ${c.version} count is in ${c.band?.lo}..${c.band?.hi}`;
    else check = `chi-square at alpha ${c.alpha} with ${c.n} requests`;
    rows.push([p.name, formatSplit(expectedSplit(stage, stageProfile(stage, p.name))), check]);
  }
  io.out(
    table(rows)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  const plan = doc.plan;
  const retried = doc.profiles.find((p) => p.retryPolicy !== null)?.retryPolicy;
  if (retried) {
    io.out(
      `gateway retries: ${retried.numRetries} on ${retried.retryOn} (Istio's route retry policy; the local gateway retries the same failures, for requests without a body)`,
    );
  }
  io.out(
    `plan: family alpha ${plan.familyAlpha} over ${plan.randomChecks.length} random checks (${plan.randomChecks.join(', ') || 'none'}): alpha ${plan.alphaPerStage} each; power ${plan.power} against a share ${plan.delta * 100} points off`,
  );
  return EXIT_OK;
}

function stageProfile(stage: Stage, name: string) {
  const p = profiles(stage).find((x) => x.name === name);
  if (!p) throw new CliError(`profile ${name} not found in ${stage.name}`);
  return p;
}
