/**
 * A client of bin/istio-oracle (tooling/istio-oracle): one process, cases written as JSON lines, answers read by id.
 * Several cases may be in flight at once (the oracle reads on while it compiles), which keeps it busy while our
 * side compares the previous answers.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ORACLE_MISSING =
  'bin/istio-oracle is missing: run tooling/istio-oracle/build.sh (make test builds it)';

/** One request for Istio's simulation. */
export interface OracleRequest {
  authority: string;
  method: string;
  path: string;
  headers?: Record<string, string[]>;
}

export interface OracleInput {
  config: string;
  requests: OracleRequest[];
}

/** Istio's simulated routing decision for one request (tooling/istio-oracle/README.md, Output). */
export interface OracleDecision {
  listener: string | null;
  routeConfig: string | null;
  virtualHost: string | null;
  route: string | null;
  clusters: { name: string; weight: number }[];
  directResponse: { status: number } | null;
  redirect: unknown;
  error: string | null;
  notEvaluated: string[];
}

export interface OracleEndpoint {
  address: string;
  port: number;
  healthStatus: string;
  weight?: number;
  podLabels: Record<string, string> | null;
}

export type OracleAnswer =
  | {
      id: string;
      ok: true;
      warnings: string[];
      notes: string[];
      routes: Record<string, unknown>[];
      clusters: Record<string, { missing?: boolean; endpoints: OracleEndpoint[] }>;
      requests: OracleDecision[];
    }
  | { id: string; ok: false; errors: string[]; notes?: string[] };

interface Pending {
  resolve: (a: OracleAnswer) => void;
  reject: (e: Error) => void;
}

export class Oracle {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<string, Pending>();
  #next = 0;
  #stderr = '';
  #exited: Error | null = null;
  /** Cases answered so far. */
  answered = 0;

  private constructor(binary: string) {
    this.#child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (s: string) => {
      this.#stderr = (this.#stderr + s).slice(-4000);
    });
    const lines = createInterface({ input: this.#child.stdout, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on('line', (line) => this.#onLine(line));
    this.#child.on('error', (e) => this.#fail(new Error(`istio-oracle: ${e.message}`)));
    this.#child.on('exit', (code, signal) => {
      this.#fail(new Error(`istio-oracle exited (${signal ?? code}) ${this.#stderr.trim()}`.trim()));
    });
    // Writing to a process that died is reported by the exit handler; ignore EPIPE here.
    this.#child.stdin.on('error', () => {});
  }

  /** Starts bin/istio-oracle of the repository; throws {@link ORACLE_MISSING} when it is not built. */
  static start(root: string): Oracle {
    const binary = join(root, 'bin', 'istio-oracle');
    if (!existsSync(binary)) throw new Error(ORACLE_MISSING);
    return new Oracle(binary);
  }

  #onLine(line: string): void {
    if (line.trim() === '') return;
    let answer: OracleAnswer;
    try {
      answer = JSON.parse(line) as OracleAnswer;
    } catch {
      this.#fail(new Error(`istio-oracle printed a line that is not JSON: ${line.slice(0, 200)}`));
      return;
    }
    const id = String(answer.id);
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    this.answered++;
    p.resolve(answer);
  }

  #fail(error: Error): void {
    if (this.#exited === null) this.#exited = error;
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }

  /** Sends one case; the promise settles with the oracle's answer to it. */
  ask(input: OracleInput): Promise<OracleAnswer> {
    if (this.#exited !== null) return Promise.reject(this.#exited);
    const id = `c${this.#next++}`;
    return new Promise<OracleAnswer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.stdin.write(`${JSON.stringify({ id, config: input.config, requests: input.requests })}\n`);
    });
  }

  /** Ends the process: closes its input, and kills it when it does not exit within a few seconds. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
