/**
 * A small load generator on undici: keep-alive connections, bounded concurrency, a timeout per request.
 * Counts responses by the `x-app-version` header; any non-2xx answer or socket error is a failure, and so is a
 * 2xx answer without a header the caller expects (`expectHeaders`, e.g. the stage header of the stage measured).
 * With `serverErrorsAsAnswers`, a 5xx answer the app gave (it carries x-app-version and the expected headers)
 * counts as an answer of that version instead: the request reached it, and whether the version is healthy is the
 * canary analysis' question. Every request's status, version and latency can be observed (`onSample`).
 */
import { type Dispatcher, Pool } from 'undici';

export const VERSION_HEADER = 'x-app-version';
/** How a 2xx response without the version header is counted. */
export const NO_VERSION = '(none)';

export interface RequestFailure {
  /**
   * `status` for a non-2xx answer, `error` for a socket error, timeout or reset, `header` for a 2xx answer whose
   * header `header` is not the expected value.
   */
  kind: 'status' | 'error' | 'header';
  status?: number;
  /** Error code (UND_ERR_HEADERS_TIMEOUT, ECONNREFUSED, ...) or message. */
  error?: string;
  /** The x-app-version of the answer, when present. */
  version?: string;
  /** kind `header`: the header, the value expected, and the value received (absent: none was sent). */
  header?: string;
  expected?: string;
  received?: string;
}

export interface LoadClientOptions {
  /** Origin of the gateway, e.g. http://localhost:8080. */
  origin: string;
  /** Parallel connections and maximum requests in flight. Default 32. */
  concurrency?: number;
  /** Per-request limit for headers and for the body, ms. Default 5000. */
  timeoutMs?: number;
}

/** What one request gave: for the canary analysis. */
export interface ResponseSample {
  /** x-app-version of the answer (null: none, or no answer at all). */
  version: string | null;
  /** HTTP status (null: no answer: reset, timeout, refused). */
  status: number | null;
  /** From sending the request to the end of the body, ms. */
  latencyMs: number;
  /** How it was counted: the version (an answer), or the failure. */
  outcome: string | RequestFailure;
}

export interface BatchOptions {
  count: number;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  /** Response headers (lower case) every 2xx answer must carry with exactly these values, else a failure. */
  expectHeaders?: Readonly<Record<string, string>>;
  /** Stop early: no new requests, in-flight ones are aborted and counted as failures. */
  signal?: AbortSignal;
  /**
   * A 5xx answer carrying x-app-version (and the expected headers) counts as an answer of that version, not as a
   * failure (the app answered; the canary analysis judges its errors). Default false.
   */
  serverErrorsAsAnswers?: boolean;
  /** Called once per completed request, in completion order. */
  onSample?: (sample: ResponseSample) => void;
}

interface Totals {
  counts: Record<string, number>;
  completed: number;
  failures: RequestFailure[];
}

export interface RunOptions extends Omit<BatchOptions, 'count'> {
  /** Deliver successful outcomes to `onOutcome` in the order the requests were sent (see run()). */
  ordered?: boolean;
  /** Counts some failures as an answer instead (e.g. a 404 where no route is expected): the name, or null. */
  countAs?: ((failure: RequestFailure) => string | null) | undefined;
  /** Upper bound of requests (Infinity: until stopped). */
  maxCount: number;
  /** Called after each response with the running totals; return true to stop. */
  onOutcome?: (
    outcome: string | RequestFailure,
    totals: { counts: Record<string, number>; completed: number; failures: readonly RequestFailure[] },
  ) => boolean;
}

export interface ContinuousLoad {
  /** Requests completed so far. */
  completed(): number;
  /** Resolves once `n` requests have completed in total. */
  until(n: number): Promise<void>;
  stop(): Promise<BatchResult>;
}

export interface BatchResult {
  /** Successful (2xx) responses per x-app-version. */
  counts: Record<string, number>;
  /** Requests that completed, successfully or not. */
  completed: number;
  failures: RequestFailure[];
  durationMs: number;
}

export class LoadClient {
  readonly origin: string;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly #pool: Pool;

  constructor(options: LoadClientOptions) {
    this.origin = new URL(options.origin).origin;
    this.concurrency = options.concurrency ?? 32;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.#pool = new Pool(this.origin, {
      connections: this.concurrency,
      pipelining: 1,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connectTimeout: Math.min(this.timeoutMs, 5000),
      keepAliveTimeout: 10_000,
    });
  }

  /** Sends `count` requests with at most `concurrency` in flight; never throws for request errors. */
  async batch(options: BatchOptions): Promise<BatchResult> {
    return this.run({ ...options, maxCount: options.count });
  }

  /**
   * The general loop: keeps `concurrency` requests in flight until `maxCount` were sent, `signal` aborts, or
   * `onOutcome` returns true (stop: no new requests; those in flight complete and are counted).
   *
   * With `ordered`, successful outcomes reach `onOutcome` in the order the requests were sent, not the order they
   * completed: a sequential test then sees a prefix of an i.i.d. sequence even when one version answers more
   * slowly than the other (in completion order the slower version would be under-represented at every look).
   * Failures are reported at once either way.
   */
  async run(options: RunOptions): Promise<BatchResult> {
    const started = performance.now();
    const all: Totals = { counts: {}, completed: 0, failures: [] };
    const seen: Totals = { counts: {}, completed: 0, failures: [] };
    const buffer = new Map<number, string | RequestFailure>();
    let nextToDeliver = 0;
    let issued = 0;
    let stop = false;
    const path = options.path ?? '/';
    const method = options.method ?? 'GET';
    const headers = options.headers ?? {};
    const expectHeaders = Object.entries(options.expectHeaders ?? {});
    const { signal, maxCount, countAs, onOutcome, ordered, onSample } = options;
    const serverErrorsAsAnswers = options.serverErrorsAsAnswers ?? false;
    const tally = (t: Totals, outcome: string | RequestFailure) => {
      t.completed++;
      if (typeof outcome === 'string') t.counts[outcome] = (t.counts[outcome] ?? 0) + 1;
      else t.failures.push(outcome);
    };
    const worker = async () => {
      while (!stop && issued < maxCount && !signal?.aborted) {
        const seq = issued++;
        const answer = await this.#request(
          path,
          method,
          headers,
          signal,
          expectHeaders,
          serverErrorsAsAnswers,
        );
        let outcome = answer.outcome;
        if (countAs && typeof outcome !== 'string') outcome = countAs(outcome) ?? outcome;
        onSample?.({ version: answer.version, status: answer.status, latencyMs: answer.latencyMs, outcome });
        tally(all, outcome);
        if (!ordered) {
          if (onOutcome?.(outcome, all)) stop = true;
          continue;
        }
        if (typeof outcome !== 'string' && onOutcome?.(outcome, all)) stop = true;
        buffer.set(seq, outcome);
        while (!stop && buffer.has(nextToDeliver)) {
          const next = buffer.get(nextToDeliver) as string | RequestFailure;
          buffer.delete(nextToDeliver);
          nextToDeliver++;
          tally(seen, next);
          if (typeof next === 'string' && onOutcome?.(next, seen)) stop = true;
        }
      }
    };
    const workers = Math.max(
      1,
      Math.min(this.concurrency, Number.isFinite(maxCount) ? maxCount : this.concurrency),
    );
    await Promise.all(Array.from({ length: workers }, worker));
    return { ...all, durationMs: performance.now() - started };
  }

  /** One request: the version string on success, a failure otherwise. */
  async one(
    path: string,
    method: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
    expectHeaders: readonly (readonly [string, string])[] = [],
  ): Promise<string | RequestFailure> {
    return (await this.#request(path, method, headers, signal, expectHeaders, false)).outcome;
  }

  async #request(
    path: string,
    method: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    expectHeaders: readonly (readonly [string, string])[],
    serverErrorsAsAnswers: boolean,
  ): Promise<{
    outcome: string | RequestFailure;
    version: string | null;
    status: number | null;
    latencyMs: number;
  }> {
    const started = performance.now();
    let version: string | undefined;
    let status: number | null = null;
    const done = (outcome: string | RequestFailure) => ({
      outcome,
      version: version ?? null,
      status,
      latencyMs: performance.now() - started,
    });
    try {
      const res = await this.#pool.request({
        path,
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(signal ? { signal } : {}),
      });
      const raw = res.headers[VERSION_HEADER];
      version = Array.isArray(raw) ? raw.join(',') : raw;
      status = res.statusCode;
      await res.body.dump({ limit: 1 << 20 });
      const appError = serverErrorsAsAnswers && res.statusCode >= 500 && version !== undefined;
      if ((res.statusCode < 200 || res.statusCode >= 300) && !appError) {
        return done({ kind: 'status', status: res.statusCode, ...(version ? { version } : {}) });
      }
      for (const [header, expected] of expectHeaders) {
        const got = res.headers[header];
        const received = Array.isArray(got) ? got.join(',') : got;
        if (received !== expected) {
          return done({
            kind: 'header',
            header,
            expected,
            ...(received !== undefined ? { received } : {}),
            ...(version ? { version } : {}),
          });
        }
      }
      return done(version ?? NO_VERSION);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return done({ kind: 'error', error: e.code ?? e.message });
    }
  }

  /**
   * Runs requests continuously until `stop()` is called (for reliability checks under load). `until(n)`
   * resolves once n requests have completed (or at once if they have); `stop()` resolves with everything counted.
   */
  continuous(options: Omit<BatchOptions, 'count' | 'signal'> = {}): ContinuousLoad {
    let running = true;
    let completed = 0;
    const waiters: { n: number; resolve: () => void }[] = [];
    const done = this.run({
      ...options,
      maxCount: Number.POSITIVE_INFINITY,
      onOutcome: (_outcome, totals) => {
        completed = totals.completed;
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i] as { n: number; resolve: () => void };
          if (completed >= w.n) {
            waiters.splice(i, 1);
            w.resolve();
          }
        }
        return !running;
      },
    });
    return {
      completed: () => completed,
      until: (n) =>
        completed >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
      stop: async () => {
        running = false;
        const result = await done;
        for (const w of waiters.splice(0)) w.resolve();
        return result;
      },
    };
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}

/** What a failure is, in a few words: "status 503", "ECONNRESET", "x-rollouts-stage stable, not canary-25". */
function failureText(f: RequestFailure): string {
  if (f.kind === 'status') return `status ${f.status}`;
  if (f.kind === 'header') {
    return `${f.header} ${f.received === undefined ? 'missing' : JSON.stringify(f.received)}, not ${JSON.stringify(f.expected)}`;
  }
  return f.error ?? 'error';
}

/** Short text for a list of failures: "3 × status 503, 1 × ECONNRESET". */
export function summarizeFailures(failures: readonly RequestFailure[]): string {
  const byKind = new Map<string, number>();
  for (const f of failures) {
    const key = failureText(f);
    byKind.set(key, (byKind.get(key) ?? 0) + 1);
  }
  return [...byKind.entries()].map(([k, n]) => `${n} × ${k}`).join(', ');
}
