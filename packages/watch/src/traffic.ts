/**
 * The watch server's own traffic: a steady, bounded stream of GET / through the gateway. Requests are sent at
 * `rate` per second on a fixed schedule (not as fast as answers come back), at most `maxInFlight` at once: when
 * that many are still waiting, the next slot is skipped, so a slow gateway gets fewer requests, never a queue.
 * Each answer is read like the verifier reads it (x-app-version, x-rollouts-stage) plus the app's `color`.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { Answer } from './page/protocol.js';

/** Bodies longer than this are not read further (the app's answers are a few hundred bytes). */
const MAX_BODY = 64 * 1024;

export interface TrafficOptions {
  /** Origin of the gateway, e.g. http://localhost:8080 (a path is ignored). */
  gatewayUrl: string;
  /** Requests per second. */
  rate: number;
  maxInFlight?: number;
  /** Per request, ms. Default 5000. */
  timeoutMs?: number;
  /** The override headers to send with the next request, and their profile key. */
  headers: () => { profile: string; headers: Record<string, string> };
  onAnswer: (answer: Answer) => void;
}

export interface TrafficStats {
  running: boolean;
  sent: number;
  answered: number;
  failed: number;
  inFlight: number;
  skipped: number;
}

export class Traffic {
  readonly origin: string;
  readonly maxInFlight: number;
  readonly timeoutMs: number;
  #rate: number;
  #pool: Pool;
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  #anchor = 0;
  #slots = 0;
  #seq = 0;
  #inFlight = 0;
  #stats = { sent: 0, answered: 0, failed: 0, skipped: 0 };
  #idle: (() => void)[] = [];
  #aborts = new Set<AbortController>();

  constructor(private readonly options: TrafficOptions) {
    this.origin = new URL(options.gatewayUrl).origin;
    this.maxInFlight = options.maxInFlight ?? 8;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.#rate = options.rate;
    this.#pool = new Pool(this.origin, {
      connections: this.maxInFlight,
      pipelining: 1,
      keepAliveTimeout: 10_000,
      connectTimeout: this.timeoutMs,
    });
  }

  get rate(): number {
    return this.#rate;
  }

  get running(): boolean {
    return this.#running;
  }

  stats(): TrafficStats {
    return { running: this.#running, inFlight: this.#inFlight, ...this.#stats };
  }

  /** Changes the rate from now on (the schedule restarts from this moment). */
  setRate(rate: number): void {
    this.#rate = rate;
    if (this.#running) {
      this.#reanchor();
      this.#schedule();
    }
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#reanchor();
    this.#tick();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops, aborts what is in flight and closes the connections. */
  async close(): Promise<void> {
    this.stop();
    for (const a of this.#aborts) a.abort();
    await this.idle();
    await this.#pool.close();
  }

  #reanchor(): void {
    this.#anchor = performance.now();
    this.#slots = 0;
  }

  #schedule(): void {
    if (!this.#running) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    // Slot k is due at anchor + k / rate; slots 0 .. slots − 1 are done.
    const next = this.#anchor + (this.#slots * 1000) / this.#rate;
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, next - performance.now()));
  }

  #tick(): void {
    this.#timer = null;
    if (!this.#running) return;
    const now = performance.now();
    const due = Math.floor(((now - this.#anchor) * this.#rate) / 1000) + 1 - this.#slots;
    // After a stall (a busy machine, a suspended laptop) the missed slots are not made up in a burst.
    const send = Math.min(due, 2);
    if (due > 2) this.#stats.skipped += due - 2;
    this.#slots += Math.max(due, 0);
    for (let i = 0; i < send; i++) {
      if (this.#inFlight >= this.maxInFlight) this.#stats.skipped++;
      else void this.#send();
    }
    this.#schedule();
  }

  async #send(): Promise<void> {
    const seq = ++this.#seq;
    const { profile, headers } = this.options.headers();
    this.#inFlight++;
    this.#stats.sent++;
    const abort = new AbortController();
    this.#aborts.add(abort);
    const timer = setTimeout(() => abort.abort(new Error('timeout')), this.timeoutMs);
    const started = performance.now();
    let answer: Answer;
    try {
      const res = await this.#pool.request({
        method: 'GET',
        path: '/',
        headers: { accept: 'application/json', 'user-agent': 'rollouts-watch', ...headers },
        signal: abort.signal,
      });
      const body = await readLimited(res.body);
      const status = res.statusCode;
      answer = {
        seq,
        at: Date.now(),
        profile,
        status,
        version: header(res.headers['x-app-version']),
        stage: header(res.headers['x-rollouts-stage']),
        latencyMs: round(performance.now() - started),
        color: status >= 200 && status < 300 ? colorOf(body) : null,
        error: status >= 200 && status < 300 ? null : `HTTP ${status}`,
      };
    } catch (err) {
      answer = {
        seq,
        at: Date.now(),
        profile,
        status: 0,
        version: null,
        stage: null,
        latencyMs: round(performance.now() - started),
        color: null,
        error: describeFailure(err, abort.signal),
      };
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(abort);
      this.#inFlight--;
    }
    this.#stats.answered++;
    if (answer.error !== null) this.#stats.failed++;
    try {
      this.options.onAnswer(answer);
    } finally {
      if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function header(value: string | string[] | undefined): string | null {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? null : v;
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The app's `color` (a CSS hex colour), or null when the body is not the app's JSON. */
export function colorOf(body: string): string | null {
  try {
    const color = (JSON.parse(body) as { color?: unknown }).color;
    return typeof color === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : null;
  } catch {
    return null;
  }
}

function describeFailure(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason = signal.reason as Error | undefined;
    return reason?.message === 'timeout' ? 'timeout' : 'aborted';
  }
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'timeout';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    default:
      return code ? `${code}: ${e.message}` : e.message;
  }
}
