/**
 * The three-way check of the local path: a real Prometheus (the `prometheus` binary, e.g. Debian's package)
 * scrapes the local gateway's /metrics (Istio's metric names) and both apps' /metrics while the demo runs, and after
 * every step the PromQL the cluster path uses (split-check's QUERIES, with the local gateway's workload) is run
 * against its HTTP API: per version, the requests the verifier counted, the gateway's istio_requests_total (and
 * its duration histogram's +Inf bucket) and the apps' http_requests_total must agree request for request.
 *
 * Prometheus gets a generated config (scrape every 250 ms), a free port and a temporary storage directory of its
 * own; it is stopped by its pid and the directory removed at the end. Each step's counts are the difference of the
 * counters at two instants, each read after a scrape of every target that started after the traffic stopped
 * (the targets API's lastScrape; no fixed sleep).
 *
 * ROLLOUT_PROMETHEUS: unset or `auto` (use `prometheus` from PATH when there is one), `off`, `required` (fail
 * without it: the test suite), or the path of a prometheus binary.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { findFreePort, type LocalMesh } from '@rollouts/local-mesh';
import {
  counterDelta,
  countsBy,
  LOCAL_GATEWAY_WORKLOAD,
  type MeshSelector,
  type PromSample,
  QUERIES,
} from '@rollouts/split-check';
import type { Io } from './context.js';
import { CliError, UsageError } from './errors.js';
import { promQuery, promTargets, waitForScrape } from './prometheus.js';

export const LOCAL_SELECTOR: MeshSelector = { gateway: LOCAL_GATEWAY_WORKLOAD, app: 'webapp' };

/** Where to find the binary, or null (with why) when the check is off or there is none. */
export function prometheusBinary(env: NodeJS.ProcessEnv = process.env): { bin: string | null; why: string } {
  const mode = (env.ROLLOUT_PROMETHEUS ?? 'auto').trim() || 'auto';
  if (mode === 'off') return { bin: null, why: 'ROLLOUT_PROMETHEUS=off' };
  if (mode !== 'auto' && mode !== 'required') return { bin: mode, why: 'ROLLOUT_PROMETHEUS' };
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'prometheus');
    const r = spawnSync(candidate, ['--version'], { stdio: 'ignore' });
    if (r.status === 0) return { bin: candidate, why: 'PATH' };
  }
  if (mode === 'required')
    throw new UsageError(
      'ROLLOUT_PROMETHEUS=required, but no prometheus is on PATH (apt-get install prometheus, or hack/ci-tools.sh debian)',
    );
  return { bin: null, why: 'no prometheus on PATH' };
}

interface Snapshot {
  gateway: PromSample[];
  buckets: PromSample[];
  apps: PromSample[];
}

export interface ThreeWayRow {
  step: string;
  /** Per version: the verifier's, the gateway's (istio_requests_total), its histogram's +Inf, the apps'. */
  versions: Record<string, { verifier: number; gateway: number; histogram: number; app: number }>;
  /** Gateway requests with another destination_version (no route, no upstream). */
  unattributed: number;
  agree: boolean;
}

export class LocalPrometheus {
  readonly rows: ThreeWayRow[] = [];
  #last: Snapshot | null = null;

  private constructor(
    readonly url: string,
    readonly version: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly targets: number,
  ) {}

  /**
   * Starts Prometheus scraping `gatewayMetrics` (the admin API's /metrics) and every app origin's /metrics; resolves
   * once it answers (its first scrapes come a few seconds later: the first step's wait covers them).
   */
  static async start(options: {
    bin: string;
    gatewayMetrics: string;
    apps: string[];
  }): Promise<LocalPrometheus> {
    const dir = mkdtempSync(join(tmpdir(), 'rollout-prometheus-'));
    const hostPort = (u: string) => new URL(u).host;
    const gw = new URL(options.gatewayMetrics);
    const config = [
      'global:',
      '  scrape_interval: 250ms',
      '  scrape_timeout: 200ms',
      'scrape_configs:',
      '  - job_name: local-gateway',
      `    metrics_path: ${gw.pathname}`,
      '    static_configs:',
      `      - targets: ['${gw.host}']`,
      '  - job_name: webapp',
      '    static_configs:',
      `      - targets: [${options.apps.map((a) => `'${hostPort(a)}'`).join(', ')}]`,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const probe = spawnSync(options.bin, ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new CliError(
        `prometheus (${options.bin}) did not start: ${probe.error?.message ?? `--version exited ${probe.status}: ${probe.stderr}`}`,
      );
    }
    const version = /version (\S+)/.exec(probe.stdout ?? '')?.[1];
    for (let attempt = 1; ; attempt++) {
      const port = await findFreePort();
      const child = spawn(
        options.bin,
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--storage.tsdb.retention.time=1h',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.once('error', (err) => {
        stderr += err.message;
      });
      child.stderr?.setEncoding('utf8').on('data', (c: string) => {
        stderr = (stderr + c).slice(-4000);
      });
      const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      const url = `http://127.0.0.1:${port}`;
      const ready = await waitReady(url, exited, 30_000);
      if (ready === 'ready') {
        return new LocalPrometheus(url, version ?? '?', child, dir, 1 + options.apps.length);
      }
      if (ready === 'timeout') child.kill('SIGKILL');
      await exited;
      if (attempt >= 3 || !/address already in use/.test(stderr)) {
        rmSync(dir, { recursive: true, force: true });
        throw new CliError(
          `prometheus (${options.bin}) did not start: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
    }
  }

  /** Every target scraped, healthy, after `afterMs`. */
  async scraped(afterMs: number): Promise<void> {
    await waitForScrape(this.url, afterMs, {
      match: () => true,
      what: 'the local gateway and both apps',
      timeoutMs: 30_000,
      pollMs: 50,
    });
    const active = await promTargets(this.url);
    if (active.length !== this.targets)
      throw new CliError(`Prometheus scrapes ${active.length} targets, expected ${this.targets}`);
  }

  async #snapshot(): Promise<Snapshot> {
    // Everything sent before now is in a scrape that started after it (the gateway and the apps count a request
    // before its answer ends).
    await this.scraped(Date.now());
    const [gateway, buckets, apps] = await Promise.all([
      promQuery(this.url, QUERIES.requests(LOCAL_SELECTOR)),
      promQuery(this.url, QUERIES.durationBuckets(LOCAL_SELECTOR)),
      promQuery(this.url, QUERIES.appRequests('webapp', '/')),
    ]);
    return { gateway, buckets, apps };
  }

  /**
   * The counters before the first step: zero, since the gateway and the apps were started with this Prometheus
   * and nothing has gone through them yet (their readiness probes have a route of their own). Not waiting for a
   * scrape here lets Prometheus' first scrapes (its target discovery takes a few seconds) overlap the first step.
   */
  begin(): void {
    this.#last = { gateway: [], buckets: [], apps: [] };
  }

  /** After a step: its counts from Prometheus against the verifier's `counted` (answers per version). */
  async step(step: string, counted: Record<string, number>): Promise<ThreeWayRow> {
    const before = this.#last ?? { gateway: [], buckets: [], apps: [] };
    const now = await this.#snapshot();
    this.#last = now;
    const gateway = countsBy(
      counterDelta(before.gateway, now.gateway, ['destination_version', 'response_code']),
      'destination_version',
    );
    const infOnly = (s: PromSample[]) => s.filter((x) => x.metric.le === '+Inf');
    const histogram = countsBy(
      counterDelta(infOnly(before.buckets), infOnly(now.buckets), ['destination_version', 'le']),
      'destination_version',
    );
    const app = countsBy(counterDelta(before.apps, now.apps, ['version']), 'version');
    const names = new Set([...Object.keys(counted), ...Object.keys(app)]);
    for (const v of Object.keys(gateway)) if (v !== 'unknown') names.add(v);
    const versions: ThreeWayRow['versions'] = {};
    let agree = true;
    for (const v of [...names].sort()) {
      const row = {
        verifier: counted[v] ?? 0,
        gateway: gateway[v] ?? 0,
        histogram: histogram[v] ?? 0,
        app: app[v] ?? 0,
      };
      versions[v] = row;
      if (!(row.verifier === row.gateway && row.gateway === row.histogram && row.histogram === row.app))
        agree = false;
    }
    const unattributed = gateway.unknown ?? 0;
    const row: ThreeWayRow = { step, versions, unattributed, agree };
    this.rows.push(row);
    return row;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((r) => this.child.once('close', () => r()));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitReady(
  url: string,
  exited: Promise<number | null>,
  timeoutMs: number,
): Promise<'ready' | 'exited' | 'timeout'> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) return 'exited';
    try {
      const res = await fetch(`${url}/-/ready`);
      if (res.ok) return 'ready';
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return 'timeout';
}

/** "v1 4021 = 4021 = 4021 = 4021, v2 ...": verifier = gateway = histogram = apps. */
export function formatThreeWay(row: ThreeWayRow): string {
  const parts = Object.entries(row.versions).map(
    ([v, r]) => `${v} ${r.verifier} / ${r.gateway} / ${r.histogram} / ${r.app}`,
  );
  return `${parts.join(', ')}${row.unattributed > 0 ? `; ${row.unattributed} to no version` : ''}: ${row.agree ? 'agree' : 'DISAGREE'}`;
}

/**
 * The three-way check of a local path the command started itself (`mesh`): a Prometheus scraping its gateway and
 * apps when `found` names a binary (prometheusBinary), else null. One line, `<command>: ...`, says which; `legend`
 * ends the first one.
 */
export async function startThreeWay(
  io: Io,
  command: string,
  mesh: LocalMesh,
  found: { bin: string | null; why: string },
  legend = '',
): Promise<LocalPrometheus | null> {
  if (!found.bin) {
    io.out(
      `${command}: Prometheus not found (${found.why}): the analysis uses the verifier's own counts and latencies, not cross-checked with PromQL`,
    );
    return null;
  }
  const prom = await LocalPrometheus.start({
    bin: found.bin,
    gatewayMetrics: `${mesh.adminUrl}/metrics`,
    apps: mesh.workloads.map((w) => w.url),
  });
  prom.begin();
  io.out(
    `${command}: Prometheus ${prom.version} (${found.bin}) at ${prom.url} scrapes the gateway and both apps: after every step the cluster path's PromQL must count what the verifier counted${legend}`,
  );
  return prom;
}

/** After a step: Prometheus' counts against the verifier's `answered`, one line (stderr when they disagree). */
export async function reportThreeWay(
  io: Io,
  command: string,
  prom: LocalPrometheus,
  step: string,
  answered: Record<string, number>,
): Promise<void> {
  const row = await prom.step(step, answered);
  const line = `${command}: three-way (Prometheus) ${step}: ${formatThreeWay(row)}`;
  if (row.agree) io.out(line);
  else io.err(line);
}
