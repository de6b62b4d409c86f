/** Commands that only read files: stages, lint, path, expect, rollback-target. */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import {
  type PlanRequest,
  profileCheck,
  stageExpectation,
  table,
  verificationPlan,
} from '@rollouts/local-mesh';
import {
  expectedSplit,
  formatSplit,
  lint,
  listStages,
  profiles,
  type Stage,
  stageTable,
  UnknownStageError,
} from '@rollouts/stages';
import { type Io, stageByName } from '../context.js';
import { CliError, EXIT_FAIL, EXIT_OK, UsageError } from '../errors.js';

export function stagesCommand(root: string, io: Io, format: 'text' | 'json' | 'markdown'): number {
  const rows = stageTable(root);
  if (format === 'json') {
    io.out(JSON.stringify(rows, null, 2));
    return EXIT_OK;
  }
  if (format === 'markdown') {
    io.out(markdownTable(rows));
    return EXIT_OK;
  }
  const lines = [['stage', 'strategy', 'requests without header', 'with override header', 'file']];
  for (const row of rows) {
    const overrides = row.overrides.map((o) => `${o.profile.name} → ${formatSplit(o.split)}`).join('; ');
    lines.push([row.stage, row.strategy, formatSplit(row.default), overrides || '-', row.file]);
  }
  io.out(table(lines));
  return EXIT_OK;
}

/**
 * The stage table as Markdown for README.md (between <!-- stages:begin --> and <!-- stages:end -->), padded the
 * way biome formats Markdown tables so the generated text and the formatted file are the same.
 */
export function markdownTable(rows: ReturnType<typeof stageTable>): string {
  const cells = [['stage', 'strategy', 'requests without header', 'with override header', 'manifest']];
  for (const row of rows) {
    const overrides = row.overrides.map((o) => `\`${o.profile.name}\` → ${formatSplit(o.split)}`).join('; ');
    cells.push([
      `\`${row.stage}\``,
      row.strategy,
      formatSplit(row.default),
      overrides || '—',
      `[${row.file}](${row.file})`,
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
    findings = lint(root, {
      ...(renderedChart !== undefined ? { renderedChart } : {}),
      ...(stage !== undefined ? { stage } : {}),
    });
  } catch (err) {
    if (err instanceof UnknownStageError) throw new UsageError(err.message);
    throw err;
  }
  const against = rendered !== undefined ? `the rendered chart ${rendered}` : 'charts/webapp/values.yaml';
  if (findings.length === 0) {
    io.out(
      stage !== undefined
        ? `lint: istio/stages/${stage}.yaml and istio/base are consistent with ${against} and the Makefile`
        : `lint: istio/ is consistent with ${against} and the Makefile (${listStages(root).length} stages)`,
    );
    return EXIT_OK;
  }
  for (const f of findings) io.err(`${f.file}: ${f.field}: ${f.message} [${f.rule}]`);
  io.err(`lint: ${findings.length} finding(s) against ${against}`);
  return EXIT_FAIL;
}

export function pathCommand(root: string, io: Io, name: string): number {
  io.out(stageByName(root, name).file);
  return EXIT_OK;
}

/** The stage to roll back to: the first stage (lowest share of the new version) of the same strategy. */
export function rollbackTargetOf(root: string, stage: Stage): string {
  const first = listStages(root).find((s) => s.strategy === stage.strategy);
  if (!first) throw new CliError(`no ${stage.strategy} stage found to roll back to`);
  return first.name;
}

export function rollbackTargetCommand(root: string, io: Io, name: string): number {
  io.out(rollbackTargetOf(root, stageByName(root, name)));
  return EXIT_OK;
}

/** The expected split per profile and the sample plan, as the local verifier and k6 use them. */
export function expectDocument(root: string, stage: Stage, request: PlanRequest = {}) {
  const plan = verificationPlan(root, request);
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
      return {
        name: p.name,
        headers: p.headers,
        method: p.method ?? 'GET',
        path: p.path ?? '/',
        routeIndex: split.routeIndex,
        routeName: split.routeName,
        subsets: split.subsets,
        versions: split.versions,
        unresolved: split.unresolved,
        // Headers every answer must carry (the route's headers.response.set: x-rollouts-stage: <stage>).
        responseHeaders: p.responseHeaders ?? {},
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
    else if (c.kind === 'random')
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
