/**
 * A workload of the local path kept running the way kubelet keeps a pod's container running, and taken in and out
 * of the gateway's rotation the way Kubernetes' endpoints follow readiness:
 * - `restartPolicy: Always`: whenever the process exits (crash, kill, or a clean exit after SIGTERM), it is started
 *   again after a back-off that doubles from `backoff.initialMs` up to `backoff.maxMs` (kubelet's CrashLoopBackOff,
 *   10 s doubling to 5 min, scaled down for a laptop), reset once a run has stayed up for `backoff.resetAfterMs`;
 * - readiness probe: GET /readyz every `probe.periodMs`; `probe.failureThreshold` failures in a row (an answer
 *   other than 200, or none within `probe.timeoutMs`) take the endpoint out of rotation, one success brings it
 *   back; an exited process is out at once;
 * - the first start is not retried: a workload that exits or never answers before its first ready is an error
 *   for the caller (a missing build, a bad environment), with the end of its output.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { startWorkload, type WorkloadProcess, type WorkloadProcessOptions } from './processes.js';

export interface ProbeOptions {
  path?: string;
  periodMs?: number;
  timeoutMs?: number;
  failureThreshold?: number;
}

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  resetAfterMs?: number;
}

export interface SupervisedWorkloadOptions extends Omit<WorkloadProcessOptions, 'detached'> {
  probe?: ProbeOptions;
  backoff?: BackoffOptions;
  log?: (line: string) => void;
}

export type WorkloadState = 'starting' | 'ready' | 'unready' | 'waiting-restart' | 'stopping' | 'stopped';

/** What GET /workloads and `rollout status` show of a workload. */
export interface WorkloadHealth {
  version: string;
  url: string;
  pid: number | null;
  state: WorkloadState;
  ready: boolean;
  restarts: number;
  readySince: string | null;
  lastExit: { code: number | null; signal: string | null; at: string } | null;
  nextRestartAt: string | null;
}

/**
 * The local path's defaults. The probe fails a draining workload (its /readyz answers 503 for SHUTDOWN_DRAIN_MS,
 * 1500 ms locally) well before it closes: 2 × 200 ms, as the chart's 2 × 2 s fits its 5 s drain.
 */
export const LOCAL_PROBE: Required<ProbeOptions> = {
  path: '/readyz',
  periodMs: 200,
  timeoutMs: 1000,
  failureThreshold: 2,
};
export const LOCAL_BACKOFF: Required<BackoffOptions> = { initialMs: 250, maxMs: 8000, resetAfterMs: 10_000 };

export class SupervisedWorkload {
  readonly version: string;
  readonly url: string;
  #options: SupervisedWorkloadOptions;
  readonly #probe: Required<ProbeOptions>;
  readonly #backoff: Required<BackoffOptions>;
  readonly #log: (line: string) => void;
  #process: WorkloadProcess | null = null;
  #state: WorkloadState = 'starting';
  #ready = false;
  #everReady = false;
  #restarts = 0;
  #crashes = 0;
  #readySince: number | null = null;
  #startedAt = 0;
  #lastExit: WorkloadHealth['lastExit'] = null;
  #nextRestartAt: number | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  #stopping = false;
  #replacing = false;
  #listeners = new Set<() => void>();
  #firstReady: Promise<void>;
  #resolveFirst!: () => void;
  #rejectFirst!: (err: Error) => void;

  constructor(options: SupervisedWorkloadOptions) {
    this.#options = options;
    this.version = options.version;
    this.url = `http://127.0.0.1:${options.port}`;
    this.#probe = { ...LOCAL_PROBE, ...options.probe };
    this.#backoff = { ...LOCAL_BACKOFF, ...options.backoff };
    this.#log = options.log ?? (() => {});
    this.#firstReady = new Promise<void>((resolve, reject) => {
      this.#resolveFirst = resolve;
      this.#rejectFirst = reject;
    });
    this.#firstReady.catch(() => {}); // observed by firstReady(); never an unhandled rejection
    this.#run();
  }

  /** Whether the gateway may send it requests now. */
  get ready(): boolean {
    return this.#ready;
  }

  get pid(): number | null {
    return this.#process?.pid ?? null;
  }

  /** Calls `listener` whenever readiness or the process changes. Returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once the first start answers its probe; rejects when it exits first or `timeoutMs` passes. */
  async firstReady(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`workload ${this.version} (${this.url}) did not become ready within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#firstReady, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  health(): WorkloadHealth {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      version: this.version,
      url: this.url,
      pid: this.#state === 'waiting-restart' || this.#state === 'stopped' ? null : this.pid,
      state: this.#state,
      ready: this.#ready,
      restarts: this.#restarts,
      readySince: iso(this.#readySince),
      lastExit: this.#lastExit,
      nextRestartAt: iso(this.#nextRestartAt),
    };
  }

  /**
   * Replaces the process with a new one, with `env` merged into its environment (as a changed Deployment rolls
   * its pod): SIGTERM, then a fresh start at once. Resolves once the new process is ready.
   */
  async restart(env: Record<string, string> = {}, timeoutMs = 15_000): Promise<void> {
    this.#options = { ...this.#options, env: { ...this.#options.env, ...env } };
    this.#replacing = true;
    const p = this.#process;
    if (p && p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
    this.#replacing = false;
    if (this.#stopping) return;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    this.#nextRestartAt = null;
    this.#restarts++;
    this.#run();
    const deadline = Date.now() + timeoutMs;
    while (!this.#ready) {
      if (Date.now() > deadline)
        throw new Error(`workload ${this.version} was not ready ${timeoutMs} ms after its restart`);
      await delay(20);
    }
  }

  /** Stops supervising: SIGTERM (the app drains), SIGKILL after `graceMs`, no restart. */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#nextRestartAt = null;
    const p = this.#process;
    this.#set('stopping', false);
    if (p && p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
      await p.exited;
      clearTimeout(timer);
    }
    this.#set('stopped', false);
    this.#rejectFirst(new Error(`workload ${this.version} was stopped before it became ready`));
  }

  #set(state: WorkloadState, ready: boolean): void {
    const changed = state !== this.#state || ready !== this.#ready;
    this.#state = state;
    if (ready && !this.#ready) this.#readySince = Date.now();
    if (!ready) this.#readySince = null;
    this.#ready = ready;
    if (changed) for (const l of this.#listeners) l();
  }

  #run(): void {
    const { probe: _p, backoff: _b, log: _l, ...start } = this.#options;
    let p: WorkloadProcess;
    try {
      p = startWorkload(start);
    } catch (err) {
      if (!this.#everReady) {
        this.#set('stopped', false);
        this.#rejectFirst(err as Error);
      } else {
        this.#log(`workload ${this.version}: ${(err as Error).message}`);
        this.#scheduleRestart();
      }
      return;
    }
    this.#process = p;
    this.#startedAt = Date.now();
    this.#set('starting', false);
    void p.exited.then(({ code, signal }) => this.#exited(p, code, signal));
    void this.#probeLoop(p);
  }

  #exited(p: WorkloadProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#process !== p) return;
    this.#lastExit = { code, signal, at: new Date().toISOString() };
    if (this.#stopping) return;
    if (this.#replacing) {
      this.#set('starting', false);
      return;
    }
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    if (!this.#everReady) {
      const tail = p.stderrTail();
      this.#set('stopped', false);
      this.#rejectFirst(
        new Error(
          `workload ${this.version} (${this.url}) ${how} before it became ready${tail ? `; its stderr:\n${tail}` : ''}`,
        ),
      );
      return;
    }
    this.#log(`workload ${this.version} (pid ${p.pid}) ${how}: out of rotation`);
    if (Date.now() - this.#startedAt >= this.#backoff.resetAfterMs) this.#crashes = 0;
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#stopping) return;
    const wait = Math.min(this.#backoff.initialMs * 2 ** this.#crashes, this.#backoff.maxMs);
    this.#crashes++;
    this.#nextRestartAt = Date.now() + wait;
    this.#set('waiting-restart', false);
    this.#log(`workload ${this.version}: restarting in ${wait} ms (restart ${this.#restarts + 1})`);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      this.#nextRestartAt = null;
      if (this.#stopping) return;
      this.#restarts++;
      this.#run();
    }, wait);
    this.#restartTimer.unref?.();
  }

  async #probeLoop(p: WorkloadProcess): Promise<void> {
    let failures = 0;
    let alive = true;
    void p.exited.then(() => {
      alive = false;
    });
    while (alive && !this.#stopping && this.#process === p) {
      let ok = false;
      try {
        const res = await request(`${this.url}${this.#probe.path}`, {
          headersTimeout: this.#probe.timeoutMs,
          bodyTimeout: this.#probe.timeoutMs,
          reset: true,
        });
        await res.body.dump();
        ok = res.statusCode === 200;
      } catch {
        ok = false;
      }
      if (!alive || this.#stopping || this.#process !== p) return;
      if (ok) {
        failures = 0;
        if (!this.#ready) {
          if (this.#everReady)
            this.#log(`workload ${this.version} (pid ${p.pid}) ready again: back in rotation`);
          this.#everReady = true;
          this.#set('ready', true);
          this.#resolveFirst();
        }
      } else if (this.#ready && ++failures >= this.#probe.failureThreshold) {
        this.#log(`workload ${this.version} (pid ${p.pid}) failed its readiness probe: out of rotation`);
        this.#set('unready', false);
      }
      // Before the first ready, poll quickly (start-up is what the user waits for); then at the probe period.
      await delay(this.#everReady ? this.#probe.periodMs : 25);
    }
  }
}

/** Each workload's health, in order. */
export function workloadsHealth(workloads: readonly SupervisedWorkload[]): WorkloadHealth[] {
  return workloads.map((w) => w.health());
}
