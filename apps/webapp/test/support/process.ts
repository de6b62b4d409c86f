import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Spawned {
  child: ChildProcess;
  /** Every JSON log line written to stdout so far. */
  logs: Array<Record<string, unknown>>;
  /** Calls `fn` for each later log line. */
  onLog(fn: (entry: Record<string, unknown>) => void): void;
  stderr: () => string;
  exited: Promise<Exit>;
}

export interface RunningServer extends Spawned {
  port: number;
  url: string;
}

const started = new Set<ChildProcess>();

/** Environment of a spawned app: nothing inherited but PATH, so no stray FAULT_* or PORT leaks in. */
export function appEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env };
}

/** Runs `node <script>` with the Node running the tests (20 or 24). */
export function spawnNode(script: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Spawned {
  const child = spawn(process.execPath, [script, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const logs: Array<Record<string, unknown>> = [];
  const listeners: Array<(entry: Record<string, unknown>) => void> = [];
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      entry = { raw: line };
    }
    logs.push(entry);
    for (const fn of listeners) fn(entry);
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, logs, onLog: (fn) => listeners.push(fn), stderr: () => stderr, exited };
}

/** Starts a built bundle on port 0 and resolves once its "listening" line names the port. */
export async function startBundle(bundle: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const spawned = spawnNode(bundle, [], appEnv(env));
  const port = await new Promise<number>((resolve, reject) => {
    spawned.onLog((entry) => {
      if (entry.msg === 'listening' && typeof entry.port === 'number') resolve(entry.port);
    });
    spawned.exited.then((exit) =>
      reject(new Error(`app exited before listening (${JSON.stringify(exit)}): ${spawned.stderr()}`)),
    );
  });
  return { ...spawned, port, url: `http://127.0.0.1:${port}` };
}

/** Kills whatever a test started and left running (by pid, only ours). */
export async function stopAll(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of started) {
    waits.push(new Promise((resolve) => child.once('exit', resolve)));
    child.kill('SIGKILL');
  }
  await Promise.all(waits);
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

/** One GET; with a keep-alive agent it reports whether an existing connection carried it. */
export function get(url: string, agent?: http.Agent, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: agent ?? false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reusedSocket: req.reusedSocket }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** A loopback port that was free a moment ago (for the cases where the app cannot report its own). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Retries a GET until the server accepts connections (or `exited` settles first). */
export async function waitUntilServing(url: string, exited: Promise<Exit>): Promise<Reply> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  for (;;) {
    try {
      return await get(url);
    } catch (err) {
      if (gone || (err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw err;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
