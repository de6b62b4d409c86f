/**
 * `rollout`: the command the Makefile and scripts call. Exit codes (docs/ARCHITECTURE.md): 0 ok, 1 verification
 * failed / lint findings / could not start, 2 bad input (unknown command, option or stage: nothing changed).
 */
import { parseArgs } from 'node:util';
import { BadStageError, ConfigError, MissingBuildError, PortInUseError } from '@rollouts/local-mesh';
import { ManifestError, UnknownStageError } from '@rollouts/stages';
import { demoCommand } from './commands/demo.js';
import {
  expectCommand,
  explainCommand,
  fieldCommand,
  lintCommand,
  pathCommand,
  rollbackTargetCommand,
  STAGE_FIELDS,
  stagesCommand,
} from './commands/info.js';
import { localDown, localUp } from './commands/local.js';
import { progressCommand } from './commands/progress.js';
import { runCommand } from './commands/run.js';
import { applyCommand, rollbackCommand, statusCommand, verifyCommand } from './commands/stage.js';
import { type Io, parseDuration, planRequest, repoRoot, resolveApi, stdio } from './context.js';
import { CliError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';

export const HELP = `Usage: rollout <command> [options]

Stages (read from istio/stages/*.yaml)
  stages [--json | --markdown]       every stage, its strategy and expected split (with and without override header)
  path <stage> [--api A]             the stage's manifest path (A: virtualservice, the default, or gateway-api)
  field <stage> <name> [--api A]     one fact of the stage, one value a line, for scripts: file, resource (what
                                     kubectl reads the applied stage from), stage-header, hosts
  expect <stage> [--json] [PLAN]     expected split per request profile and the sample plan (k6 reads --json)
  explain <stage> [--json]           the route table Istio's ingress gateway gets for the stage (Envoy's shape; --json
                                     compares field by field with istioctl proxy-config routes ... -o json)
  rollback-target <stage>            the stage a rollback returns to: the one of its strategy labelled
                                     rollouts/stable: "true" (stable, green)
  lint [--stage S] [--rendered FILE] lint istio/ against the chart (values, or helm template output);
                                     --stage: only that stage's file and istio/base; --api gateway-api: the
                                     HTTPRoutes (each against its VirtualService's split)

Local path (no Docker): v1, v2 and a gateway that applies the same manifests
  local up [--stage S] [--scenario N]
                                     start v1, v2 and the gateway in the background (pid files in $ROLLOUT_STATE_DIR/local/,
                                     default .state/local/); --scenario: v2 with a release fault (below)
  local down                         stop them (by pid) and check they are gone
  apply <stage> [--target local] [--no-verify] [--json FILE] [PLAN]
                                     switch the local gateway to <stage> (admin API), then verify it
  rollback [--target local] [--no-verify] [PLAN]
                                     back to stable (canary) or green (blue-green), then verify
  verify [--stage S] [--json FILE] [--target local|cluster] [PLAN]
                                     measure the applied stage through the gateway; JSON in .state/verify/<stage>.json
  status [--target local|cluster] [--json]
                                     the applied stage and its expected split
  demo [--scenario N] [--bake D] [--analysis FILE] [--api A] [--json FILE] [PLAN]
                                     start everything, walk every stage with verification and canary analysis, roll
                                     back (at once when an analysis fails), stop
  run <version>                      one app build in the foreground on its local-path port (V1_PORT, ...; PORT wins)

Progressive delivery (canary analysis at every step; thresholds in analysis.yaml)
  progress [--strategy canary|blue-green] [--bake D] [--scenario N] [--analysis FILE] [--target local|cluster] [--api A] [--json FILE] [PLAN]
                                     walk the strategy's stages (stable → canary-10 → ... → canary-100, or green →
                                     blue-preview → blue): split check, bake D with traffic (default 2s), analysis;
                                     a failed analysis rolls back at once (exit 1, with the report); Ctrl-C goes back
                                     to the stable stage. Uses the running local path, else starts its own
  Scenarios (--scenario, else $SCENARIO): bad-v2 (v2 answers 5 % of requests with 500), slow-v2 (v2 150 ms slower)

Sample plan [PLAN] (sample sizes follow from it): --family-alpha A (ROLLOUT_FAMILY_ALPHA, default 0.001: chance
that a correct mesh fails any check), --delta D (ROLLOUT_DELTA, default 0.05: split deviation to catch),
--power P (ROLLOUT_POWER, default 0.999: chance of catching it). Out of range: exit 2.
ROLLOUT_EXPLAIN=1: after each verdict, how each check was decided (the test, the plan, the statistic); a failed
check always says it.
API: --api, else $API (gateway-api: the HTTPRoutes of istio/stages/gateway-api/).
Target: --target, else $TARGET. cluster: GATEWAY_URL, KUBE_CONTEXT and kubectl.
The defaults of API, TARGET, KUBE_CONTEXT, GATEWAY_PORT and GATEWAY_URL: defaults.env (shared with make and scripts/).
Ports of the local path: GATEWAY_PORT (defaults.env), ADMIN_PORT (15000), and per version of the chart V<N>_PORT
(3000 + N: V1_PORT 3001, V2_PORT 3002).
Exit codes: 0 ok; 1 verification failed, lint findings or a process could not start; 2 bad input;
130 / 143 interrupted (SIGINT / SIGTERM) during a verification.
Analysis thresholds: --analysis FILE, else $ROLLOUT_ANALYSIS, else analysis.yaml; a bad value exits 2.`;

type Parsed = ReturnType<typeof parseArgs>;

function parse(args: string[], options: NonNullable<Parameters<typeof parseArgs>[0]>['options']): Parsed {
  try {
    return parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function positional(parsed: Parsed, count: number, usage: string): string[] {
  if (parsed.positionals.length !== count) {
    throw new UsageError(`usage: rollout ${usage}`);
  }
  return parsed.positionals;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The sample plan's inputs, on every command that verifies (or prints the plan for k6). */
const PLAN_OPTIONS = {
  'family-alpha': { type: 'string' },
  delta: { type: 'string' },
  power: { type: 'string' },
} as const;
const PLAN_USAGE = '[--family-alpha A] [--delta D] [--power P]';

/** The canary analysis' options, on demo and progress. */
const ANALYSIS_OPTIONS = {
  scenario: { type: 'string' },
  bake: { type: 'string' },
  analysis: { type: 'string' },
} as const;

function analysisOptionsOf(p: Parsed, defaultBakeMs: number) {
  const bake = str(p.values.bake);
  return {
    ...optional('scenario', str(p.values.scenario)),
    ...optional('analysisFile', str(p.values.analysis)),
    bakeMs: bake === undefined ? defaultBakeMs : parseDuration('--bake', bake),
  };
}

function planOf(p: Parsed) {
  return planRequest({
    ...optional('family-alpha', str(p.values['family-alpha'])),
    ...optional('delta', str(p.values.delta)),
    ...optional('power', str(p.values.power)),
  });
}

export async function run(argv: string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      (command === undefined ? io.err : io.out)(HELP);
      return command === undefined ? EXIT_USAGE : EXIT_OK;
    }
    const root = repoRoot();
    switch (command) {
      case 'stages': {
        const usage = 'stages [--json | --markdown]';
        const p = parse(rest, { json: { type: 'boolean' }, markdown: { type: 'boolean' } });
        if (p.values.help) return help(io, usage);
        positional(p, 0, usage);
        if (p.values.json && p.values.markdown) throw new UsageError(`usage: rollout ${usage}`);
        return stagesCommand(root, io, p.values.json ? 'json' : p.values.markdown ? 'markdown' : 'text');
      }
      case 'lint': {
        const usage = 'lint [--stage S] [--rendered FILE] [--api virtualservice|gateway-api]';
        const p = parse(rest, {
          rendered: { type: 'string' },
          stage: { type: 'string' },
          api: { type: 'string' },
        });
        if (p.values.help) return help(io, usage);
        positional(p, 0, usage);
        return lintCommand(
          root,
          io,
          str(p.values.rendered),
          str(p.values.stage),
          resolveApi(str(p.values.api)),
        );
      }
      case 'path': {
        const usage = 'path <stage> [--api virtualservice|gateway-api]';
        const p = parse(rest, { api: { type: 'string' } });
        if (p.values.help) return help(io, usage);
        const [stage] = positional(p, 1, usage);
        return pathCommand(root, io, stage as string, resolveApi(str(p.values.api)));
      }
      case 'field': {
        const usage = `field <stage> <${STAGE_FIELDS.join('|')}> [--api virtualservice|gateway-api]`;
        const p = parse(rest, { api: { type: 'string' } });
        if (p.values.help) return help(io, usage);
        const [stage, name] = positional(p, 2, usage);
        return fieldCommand(root, io, stage as string, name as string, resolveApi(str(p.values.api)));
      }
      case 'expect': {
        const usage = `expect <stage> [--json] ${PLAN_USAGE}`;
        const p = parse(rest, { json: { type: 'boolean' }, ...PLAN_OPTIONS });
        if (p.values.help) return help(io, usage);
        const [stage] = positional(p, 1, usage);
        return expectCommand(root, io, stage as string, p.values.json === true, planOf(p));
      }
      case 'explain': {
        const usage = 'explain <stage> [--json]';
        const p = parse(rest, { json: { type: 'boolean' } });
        if (p.values.help) return help(io, usage);
        const [stage] = positional(p, 1, usage);
        return explainCommand(root, io, stage as string, p.values.json === true);
      }
      case 'rollback-target': {
        const p = parse(rest, {});
        if (p.values.help) return help(io, 'rollback-target <stage>');
        const [stage] = positional(p, 1, 'rollback-target <stage>');
        return rollbackTargetCommand(root, io, stage as string);
      }
      case 'apply': {
        // --force-weights is a test hook (packages/local-mesh/README.md), not in the usage users see.
        const usage = `apply <stage> [--target local] [--no-verify] [--json FILE] ${PLAN_USAGE}`;
        const p = parse(rest, {
          target: { type: 'string' },
          'no-verify': { type: 'boolean' },
          json: { type: 'string' },
          'force-weights': { type: 'string' },
          ...PLAN_OPTIONS,
        });
        if (p.values.help) return help(io, usage);
        const [stage] = positional(p, 1, usage);
        return await applyCommand(root, io, stage as string, {
          ...optional('target', str(p.values.target)),
          verify: p.values['no-verify'] !== true,
          ...optional('jsonFile', str(p.values.json)),
          ...optional('forceWeights', str(p.values['force-weights'])),
          plan: planOf(p),
        });
      }
      case 'rollback': {
        const usage = `rollback [--target local] [--no-verify] [--json FILE] ${PLAN_USAGE}`;
        const p = parse(rest, {
          target: { type: 'string' },
          'no-verify': { type: 'boolean' },
          json: { type: 'string' },
          ...PLAN_OPTIONS,
        });
        if (p.values.help) return help(io, usage);
        positional(p, 0, usage);
        return await rollbackCommand(root, io, {
          ...optional('target', str(p.values.target)),
          verify: p.values['no-verify'] !== true,
          ...optional('jsonFile', str(p.values.json)),
          plan: planOf(p),
        });
      }
      case 'verify': {
        const usage = `verify [--stage S] [--json FILE] [--target local|cluster] ${PLAN_USAGE}`;
        const p = parse(rest, {
          stage: { type: 'string' },
          json: { type: 'string' },
          target: { type: 'string' },
          ...PLAN_OPTIONS,
        });
        if (p.values.help) return help(io, usage);
        positional(p, 0, usage);
        return await verifyCommand(root, io, {
          ...optional('target', str(p.values.target)),
          ...optional('stage', str(p.values.stage)),
          ...optional('jsonFile', str(p.values.json)),
          plan: planOf(p),
        });
      }
      case 'status': {
        const usage = 'status [--target local|cluster] [--json]';
        const p = parse(rest, { target: { type: 'string' }, json: { type: 'boolean' } });
        if (p.values.help) return help(io, usage);
        positional(p, 0, usage);
        return await statusCommand(root, io, {
          ...optional('target', str(p.values.target)),
          json: p.values.json === true,
        });
      }
      case 'local': {
        const usage = 'local up [--stage S] [--scenario N] [--api virtualservice|gateway-api] | local down';
        const p = parse(rest, {
          stage: { type: 'string' },
          scenario: { type: 'string' },
          api: { type: 'string' },
        });
        if (p.values.help) return help(io, usage);
        const [action] = positional(p, 1, usage);
        if (action === 'up')
          return await localUp(root, io, {
            ...optional('stage', str(p.values.stage)),
            ...optional('scenario', str(p.values.scenario)),
            ...optional('api', str(p.values.api)),
          });
        if (action === 'down') {
          if (p.values.stage !== undefined || p.values.scenario !== undefined || p.values.api !== undefined)
            throw new UsageError(`usage: rollout ${usage}`);
          return await localDown(root, io);
        }
        throw new UsageError(`usage: rollout ${usage}`);
      }
      case 'demo': {
        const usage = `demo [--scenario N] [--bake D] [--analysis FILE] [--api virtualservice|gateway-api] [--json FILE] ${PLAN_USAGE}`;
        const p = parse(rest, {
          json: { type: 'string' },
          api: { type: 'string' },
          ...ANALYSIS_OPTIONS,
          ...PLAN_OPTIONS,
        });
        if (p.values.help) return help(io, usage);
        positional(p, 0, usage);
        return await demoCommand(root, io, {
          ...optional('jsonFile', str(p.values.json)),
          ...optional('api', str(p.values.api)),
          ...analysisOptionsOf(p, 0),
          plan: planOf(p),
        });
      }
      case 'progress': {
        const usage = `progress [--strategy canary|blue-green] [--bake D] [--scenario N] [--analysis FILE] [--target local|cluster] [--api virtualservice|gateway-api] [--json FILE] ${PLAN_USAGE}`;
        const p = parse(rest, {
          strategy: { type: 'string' },
          target: { type: 'string' },
          api: { type: 'string' },
          json: { type: 'string' },
          ...ANALYSIS_OPTIONS,
          ...PLAN_OPTIONS,
        });
        if (p.values.help) return help(io, usage);
        positional(p, 0, usage);
        return await progressCommand(root, io, {
          ...optional('strategy', str(p.values.strategy)),
          ...optional('target', str(p.values.target)),
          ...optional('api', str(p.values.api)),
          ...optional('jsonFile', str(p.values.json)),
          ...analysisOptionsOf(p, 2000),
          plan: planOf(p),
        });
      }
      case 'run': {
        const usage = 'run <version>';
        const p = parse(rest, {});
        if (p.values.help) return help(io, usage);
        const [version] = positional(p, 1, usage);
        return await runCommand(root, io, version as string);
      }
      default:
        throw new UsageError(
          `unknown command ${JSON.stringify(command)}; commands: stages, path, expect, explain, rollback-target, lint, local, apply, rollback, verify, status, demo, progress, run (rollout help)`,
        );
    }
  } catch (err) {
    return report(io, err);
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function help(io: Io, usage: string): number {
  io.out(`usage: rollout ${usage}\n\n${HELP}`);
  return EXIT_OK;
}

function report(io: Io, err: unknown): number {
  if (err instanceof UsageError || err instanceof UnknownStageError || err instanceof BadStageError) {
    io.err(`rollout: ${err.message}`);
    return EXIT_USAGE;
  }
  if (err instanceof ConfigError) {
    io.err(`rollout: ${err.message}`);
    return EXIT_USAGE;
  }
  if (err instanceof CliError) {
    io.err(`rollout: ${err.message}`);
    return err.exitCode;
  }
  if (err instanceof PortInUseError || err instanceof MissingBuildError || err instanceof ManifestError) {
    io.err(`rollout: ${err.message}`);
    return EXIT_FAIL;
  }
  const e = err as Error;
  io.err(`rollout: ${process.env.DEBUG ? (e.stack ?? e.message) : e.message}`);
  return EXIT_FAIL;
}
