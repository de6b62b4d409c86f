/**
 * Prometheus for the canary analysis: its HTTP API (instant queries, scrape targets), a wait for a scrape after a
 * moment (never a fixed sleep: the targets' lastScrape is read until every one of them is past it), the snapshot of
 * the analysis' counters (split-check's QUERIES, the same PromQL on both paths), and the kubectl port-forward that
 * reaches the cluster's Prometheus (started and ended by the command that needs it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  type MeshSelector,
  type MeshSnapshot,
  PromQueryError,
  type PromSample,
  parseVector,
  QUERIES,
} from '@rollouts/split-check';
import { CliError } from './errors.js';

export interface ScrapeTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: string;
  lastScrape: string;
  lastError: string;
}

async function getJson(url: string, signal?: AbortSignal): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new CliError(`Prometheus at ${new URL(url).origin} does not answer: ${(err as Error).message}`);
  }
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(
      `Prometheus at ${new URL(url).origin} answered ${res.status} without JSON: ${text.slice(0, 200)}`,
    );
  }
}

/** An instant query (now, or at `time`, seconds since the epoch). */
export async function promQuery(
  base: string,
  query: string,
  options: { time?: number; signal?: AbortSignal } = {},
): Promise<PromSample[]> {
  const params = new URLSearchParams({ query });
  if (options.time !== undefined) params.set('time', String(options.time));
  const body = await getJson(`${base}/api/v1/query?${params}`, options.signal);
  try {
    return parseVector(body, query);
  } catch (err) {
    if (err instanceof PromQueryError) throw new CliError(err.message);
    throw err;
  }
}

export async function promTargets(base: string, signal?: AbortSignal): Promise<ScrapeTarget[]> {
  const body = (await getJson(`${base}/api/v1/targets?state=active`, signal)) as {
    status?: string;
    data?: { activeTargets?: ScrapeTarget[] };
  };
  if (body.status !== 'success' || !Array.isArray(body.data?.activeTargets))
    throw new CliError(
      `Prometheus at ${base} answered no scrape targets: ${JSON.stringify(body).slice(0, 200)}`,
    );
  return body.data.activeTargets;
}

/**
 * Waits until every target `match` selects (at least one) has been scraped, healthy, after `afterMs` (epoch ms):
 * its counters then hold everything sent before. Polls the targets API; gives up after `timeoutMs` naming what
 * it saw.
 */
export async function waitForScrape(
  base: string,
  afterMs: number,
  options: {
    match: (t: ScrapeTarget) => boolean;
    what: string;
    timeoutMs: number;
    signal?: AbortSignal;
    pollMs?: number;
  },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last: ScrapeTarget[] = [];
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason;
    last = (await promTargets(base, options.signal)).filter(options.match);
    if (last.length > 0 && last.every((t) => t.health === 'up' && Date.parse(t.lastScrape) > afterMs)) return;
    if (Date.now() > deadline) {
      const seen =
        last.length === 0
          ? 'no such target'
          : last
              .map(
                (t) =>
                  `${t.scrapeUrl} ${t.health} last scraped ${t.lastScrape}${t.lastError ? ` (${t.lastError})` : ''}`,
              )
              .join('; ');
      throw new CliError(
        `Prometheus at ${base} did not scrape ${options.what} within ${Math.round(options.timeoutMs / 1000)} s after ${new Date(afterMs).toISOString()}: ${seen}`,
      );
    }
    await new Promise<void>((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}

/** The analysis' counters at one instant (now): requests by version and code, duration buckets by version. */
export async function meshSnapshot(
  base: string,
  sel: MeshSelector,
  signal?: AbortSignal,
): Promise<MeshSnapshot> {
  const [requests, buckets] = await Promise.all([
    promQuery(base, QUERIES.requests(sel), signal ? { signal } : {}),
    promQuery(base, QUERIES.durationBuckets(sel), signal ? { signal } : {}),
  ]);
  return { requests, buckets };
}

export interface PortForward {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * `kubectl port-forward svc/<service> :<port>` in the namespace (kubectl picks a free local port and prints it);
 * resolves once it forwards, with the local URL. Fails with kubectl's own words when it exits first (the service
 * missing: `make up` installs Prometheus) or prints nothing within `timeoutMs`.
 */
export async function portForward(options: {
  kubectl?: string;
  context: string;
  namespace: string;
  service: string;
  port: number;
  timeoutMs?: number;
}): Promise<PortForward> {
  const kubectl = options.kubectl ?? 'kubectl';
  const args = [
    '--context',
    options.context,
    '-n',
    options.namespace,
    'port-forward',
    `svc/${options.service}`,
    `:${options.port}`,
  ];
  let child: ChildProcess;
  try {
    child = spawn(kubectl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new CliError(`cannot run ${kubectl}: ${(err as Error).message}`);
  }
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(
        new CliError(
          `kubectl port-forward svc/${options.service} printed no local port within ${Math.round((options.timeoutMs ?? 30_000) / 1000)} s${stderr ? `: ${stderr.trim()}` : ''}`,
        ),
      );
    }, options.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new CliError(`cannot run ${kubectl}: ${err.message} (make tools installs kubectl)`));
    });
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(
        new CliError(
          `kubectl port-forward svc/${options.service} -n ${options.namespace} exited (${code}): ${stderr.trim() || out.trim() || 'no output'}${/not found/.test(stderr) ? ` (is Prometheus installed? make up installs it)` : ''}`,
        ),
      );
    });
  }).catch(async (err) => {
    await stop();
    throw err;
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid as number, stop };
}
