/**
 * The live traffic page (browser only): loads /api/config, follows /api/events and renders the grid, the share
 * per version against the applied stage's band, errors and latency per version, the stage timeline and the
 * controls. The logic lives in model.ts; this file only touches the DOM.
 */
import {
  appendWindow,
  cellOf,
  formatMs,
  learnColors,
  percent,
  type ShareVerdict,
  StepSamples,
  shareVerdict,
  sortVersions,
  stepAnalysis,
  switchDelay,
  versionHealth,
  windowCounts,
} from './model.js';
import {
  type Answer,
  profileKey,
  type Snapshot,
  type StageChange,
  type StageInfo,
  type SwitchResult,
  type TrafficStatus,
  type WatchConfig,
  type WatchSettings,
} from './protocol.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

interface State {
  config: WatchConfig;
  settings: WatchSettings;
  recent: Answer[];
  timeline: StageChange[];
  colors: Record<string, string>;
  status: TrafficStatus | null;
  /** Answers received since the grid was last rebuilt: the next square is `arrived % windowSize`. */
  arrived: number;
  paused: boolean;
  hidden: boolean;
  connection: 'connecting' | 'open' | 'reconnecting' | 'closed';
  switching: string | null;
}

let state: State;
let source: EventSource | null = null;
let cells: HTMLDivElement[] = [];
let newest: HTMLDivElement | null = null;
let renderQueued = false;
let samples = new StepSamples();
let analysisAt = 0;
let analysisDirty = true;

async function boot(): Promise<void> {
  const config = (await (await fetch('/api/config')).json()) as WatchConfig;
  state = {
    config,
    settings: { rate: 20, overrides: [] },
    recent: [],
    timeline: [],
    colors: {},
    status: null,
    arrived: 0,
    paused: false,
    hidden: document.visibilityState === 'hidden',
    connection: 'connecting',
    switching: null,
  };
  buildGrid(config.windowSize);
  buildStages(config);
  buildOverrides(config);
  buildRate(config);
  document.addEventListener('visibilitychange', () => {
    state.hidden = document.visibilityState === 'hidden';
    syncStream();
  });
  syncStream();
  queueRender();
}

/** Connected while the tab is visible and not paused: the server sends requests only while a page listens. */
function syncStream(): void {
  const want = !state.paused && !state.hidden;
  if (want && source === null) {
    state.connection = 'connecting';
    const es = new EventSource('/api/events');
    source = es;
    es.addEventListener('open', () => {
      state.connection = 'open';
      queueRender();
    });
    es.addEventListener('error', () => {
      state.connection = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
      queueRender();
    });
    es.addEventListener('snapshot', (e) => onSnapshot(JSON.parse((e as MessageEvent).data) as Snapshot));
    es.addEventListener('answers', (e) => onAnswers(JSON.parse((e as MessageEvent).data) as Answer[]));
    es.addEventListener('stage', (e) => onStage(JSON.parse((e as MessageEvent).data) as StageChange));
    es.addEventListener('settings', (e) => onSettings(JSON.parse((e as MessageEvent).data) as WatchSettings));
    es.addEventListener('status', (e) => {
      state.status = JSON.parse((e as MessageEvent).data) as TrafficStatus;
      queueRender();
    });
    es.addEventListener('switch', (e) => onSwitch(JSON.parse((e as MessageEvent).data) as SwitchResult));
  } else if (!want && source !== null) {
    source.close();
    source = null;
    state.connection = 'closed';
  }
  document.body.dataset.streaming = String(want);
  queueRender();
}

function onSnapshot(s: Snapshot): void {
  state.settings = s.settings;
  state.timeline = [...s.timeline];
  state.status = s.status;
  state.recent = [];
  state.arrived = 0;
  samples = new StepSamples();
  for (const c of cells) resetCell(c);
  onAnswers(s.answers);
  onSettings(s.settings);
}

function onAnswers(answers: Answer[]): void {
  learnColors(state.colors, answers);
  state.recent = appendWindow(state.recent, answers, state.config.windowSize);
  samples.add(answers, state.timeline.at(-1)?.stage ?? null);
  analysisDirty = true;
  for (const a of answers) paintCell(a);
  queueRender();
}

function onStage(change: StageChange): void {
  state.timeline.push(change);
  analysisAt = 0; // a new step: its analysis starts over at once
  const name = $('stage');
  name.classList.add('flash');
  setTimeout(() => name.classList.remove('flash'), 1200);
  showSwitchDelay();
  queueRender();
}

function onSettings(s: WatchSettings): void {
  state.settings = s;
  const rate = $<HTMLInputElement>('rate');
  if (document.activeElement !== rate) rate.value = String(s.rate);
  $('rate-out').textContent = `${s.rate} req/s`;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#overrides button')) {
    b.setAttribute('aria-pressed', String(s.overrides.includes(b.dataset.override ?? '')));
  }
  queueRender();
}

let lastSwitch: SwitchResult | null = null;

function onSwitch(r: SwitchResult): void {
  lastSwitch = r;
  const msg = $('switch-msg');
  msg.dataset.state = r.ok ? 'ok' : 'error';
  msg.replaceChildren(
    r.ok ? `✓ ${r.message}` : `✕ ${r.stage} refused: ${r.message}`,
    ...r.findings.slice(0, 2).map((f) => el('div', { class: 'finding' }, f)),
  );
  showSwitchDelay();
}

/** "first answer from canary-50 0.04 s after the switch": how fast the gateway serves a new stage. */
function showSwitchDelay(): void {
  if (!lastSwitch?.ok) return;
  const delay = switchDelay(lastSwitch, state.timeline);
  if (delay === null) return;
  const msg = $('switch-msg');
  msg.dataset.delayMs = String(delay);
  msg.textContent = `✓ ${lastSwitch.message}; first answer ${(delay / 1000).toFixed(2)} s later`;
}

function buildGrid(size: number): void {
  const grid = $('grid');
  grid.style.gridTemplateColumns = `repeat(${Math.ceil(size / 16)}, var(--cell))`;
  cells = Array.from({ length: size }, () => el('div', { class: 'cell' }));
  grid.replaceChildren(...cells);
}

function resetCell(c: HTMLDivElement): void {
  c.className = 'cell';
  c.textContent = '';
  c.removeAttribute('title');
  c.style.background = '';
  for (const k of Object.keys(c.dataset)) delete c.dataset[k];
}

function paintCell(a: Answer): void {
  const c = cells[state.arrived % cells.length];
  state.arrived++;
  if (!c) return;
  const cell = cellOf(a, state.colors);
  c.className = 'cell';
  c.textContent = cell.label;
  c.title = cell.title;
  c.setAttribute('aria-label', cell.title);
  c.style.background = cell.kind === 'version' ? (cell.color ?? '#616161') : '';
  c.dataset.kind = cell.kind;
  c.dataset.seq = String(a.seq);
  c.dataset.version = a.version ?? '';
  c.dataset.status = String(a.status);
  c.dataset.profile = a.profile;
  c.dataset.stage = a.stage ?? '';
  newest?.classList.remove('newest');
  c.classList.add('newest');
  newest = c;
}

function buildStages(config: WatchConfig): void {
  const box = $('stages');
  $('stages-hint').textContent = config.canSwitch
    ? 'click to switch the local gateway'
    : 'on the cluster: click for the command to run';
  box.replaceChildren(
    ...config.stages.map((s) => {
      const b = el(
        'button',
        { type: 'button', 'data-stage': s.name, title: `${s.file} — ${s.command}` },
        s.name,
      );
      b.addEventListener('click', () => void clickStage(s));
      return b;
    }),
  );
  if (config.brokenStages.length > 0) {
    const msg = $('switch-msg');
    msg.dataset.state = 'error';
    msg.textContent = `not loaded: ${config.brokenStages.map((b) => b.name).join(', ')}`;
  }
}

async function clickStage(s: StageInfo): Promise<void> {
  const msg = $('switch-msg');
  if (!state.config.canSwitch) {
    msg.dataset.state = 'command';
    msg.replaceChildren('run in a terminal: ', el('code', { 'data-command': s.command }, s.command));
    void navigator.clipboard?.writeText(s.command).catch(() => {});
    return;
  }
  state.switching = s.name;
  msg.dataset.state = 'pending';
  msg.textContent = `switching to ${s.name}…`;
  queueRender();
  try {
    const { json } = await post('/api/stage', { stage: s.name });
    onSwitch(json as unknown as SwitchResult);
  } catch (err) {
    onSwitch({
      stage: s.name,
      ok: false,
      status: 0,
      message: (err as Error).message,
      findings: [],
      at: Date.now(),
    });
  } finally {
    state.switching = null;
    queueRender();
  }
}

function buildOverrides(config: WatchConfig): void {
  const box = $('overrides');
  if (config.overrides.length === 0) {
    box.textContent = 'none in the stages';
    return;
  }
  box.replaceChildren(
    ...config.overrides.map((o) => {
      const b = el('button', { type: 'button', 'aria-pressed': 'false', 'data-override': o.name }, o.name);
      b.addEventListener('click', () => {
        const on = state.settings.overrides.includes(o.name);
        const next = on
          ? state.settings.overrides.filter((n) => n !== o.name)
          : [...state.settings.overrides, o.name];
        void post('/api/settings', { overrides: next });
      });
      return b;
    }),
  );
}

function buildRate(config: WatchConfig): void {
  const rate = $<HTMLInputElement>('rate');
  rate.min = String(config.rate.min);
  rate.max = String(config.rate.max);
  let timer: number | undefined;
  rate.addEventListener('input', () => {
    $('rate-out').textContent = `${rate.value} req/s`;
    clearTimeout(timer);
    timer = window.setTimeout(() => void post('/api/settings', { rate: Number(rate.value) }), 150);
  });
  const pause = $<HTMLButtonElement>('pause');
  pause.addEventListener('click', () => {
    state.paused = !state.paused;
    pause.setAttribute('aria-pressed', String(state.paused));
    pause.textContent = state.paused ? 'resume' : 'pause';
    syncStream();
  });
}

function queueRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function currentStage(): StageInfo | undefined {
  const name = state.timeline.at(-1)?.stage;
  return state.config.stages.find((s) => s.name === name);
}

function render(): void {
  const stage = currentStage();
  const stageName = state.timeline.at(-1)?.stage ?? null;
  $('stage').textContent = stageName ?? '—';
  document.body.dataset.stage = stageName ?? '';
  $('strategy').textContent = stage
    ? `${stage.strategy} · ${stage.file}`
    : stageName
      ? '(no such stage file)'
      : '';
  for (const b of document.querySelectorAll<HTMLButtonElement>('#stages button')) {
    b.setAttribute('aria-current', String(b.dataset.stage === stageName));
    b.disabled = state.switching !== null;
  }
  renderConnection();
  renderLegend();
  const profile = profileKey(state.settings.overrides);
  const counts = stageName
    ? windowCounts(state.recent, stageName, profile)
    : { n: 0, counts: {}, withoutVersion: 0 };
  const verdict = shareVerdict(counts, stage?.expect[profile], state.config.confidence, {
    known: Object.keys(state.colors),
  });
  renderSplit(verdict, stageName, profile, counts.withoutVersion);
  renderHealth();
  renderAnalysis(stageName);
  renderTimeline();
}

/** The canary analysis of the step so far, at most once a second (Mann–Whitney over every answer). */
function renderAnalysis(stageName: string | null): void {
  const box = $('analysis');
  const analysis = state.config.analysis;
  if (!analysis) {
    box.dataset.verdict = 'none';
    box.textContent = `canary analysis not shown: ${state.config.analysisError ?? 'no thresholds'}`;
    return;
  }
  if (!stageName) return;
  const roles = analysis.roles[stageName];
  if (!roles) {
    box.dataset.verdict = 'none';
    box.replaceChildren(
      el('span', { class: 'chip' }, 'analysis'),
      `no canary traffic at ${stageName}: nothing to judge`,
    );
    return;
  }
  const now = performance.now();
  if (!analysisDirty || now - analysisAt < 1000) {
    if (analysisDirty) queueRenderLater(1000 - (now - analysisAt));
    return;
  }
  analysisAt = now;
  analysisDirty = false;
  const result = stepAnalysis(analysis.plan, roles, samples);
  if (!result) return;
  box.dataset.verdict = result.verdict;
  const chip = { pass: '✓ pass', fail: '✕ FAIL', inconclusive: '… inconclusive' }[result.verdict];
  const requests = result.canary.requests + (result.baseline?.requests ?? 0);
  // inconclusive: the last reason says how many more requests would decide
  // a failure: the canary's own failing test first (answers that reached no version are the mesh's)
  const failed = result.checks
    .filter((c) => c.verdict === 'fail')
    .sort((a, b) => Number(a.id === 'traffic') - Number(b.id === 'traffic'));
  const why =
    result.verdict === 'pass'
      ? result.summary
      : result.verdict === 'fail'
        ? failed.map((c) => c.reason).join('; ')
        : (result.reasons.at(-1) ?? result.summary);
  box.replaceChildren(
    el('span', { class: 'chip' }, chip),
    `canary analysis: ${roles.canary}${roles.baseline ? ` vs ${roles.baseline}` : ''} · ${requests} answers`,
    el('span', { class: 'why', title: [result.summary, ...result.reasons].join('\n') }, why),
  );
}

let laterTimer: number | undefined;
function queueRenderLater(ms: number): void {
  if (laterTimer !== undefined) return;
  laterTimer = window.setTimeout(() => {
    laterTimer = undefined;
    queueRender();
  }, ms);
}

function renderConnection(): void {
  const conn = $('conn');
  const s = state.status;
  const where = `${state.config.target === 'local' ? 'local path' : 'cluster'} · ${state.config.gatewayUrl}`;
  let text: string;
  let mode: string;
  if (state.hidden) [text, mode] = ['paused: tab hidden', 'paused'];
  else if (state.paused) [text, mode] = ['paused', 'paused'];
  else if (state.connection === 'open' && s?.sending) {
    [text, mode] = [`● sending ${state.settings.rate} req/s`, 'sending'];
  } else if (state.connection === 'reconnecting' || state.connection === 'closed') {
    [text, mode] = ['watch server not answering: reconnecting…', 'down'];
  } else [text, mode] = ['connecting…', 'connecting'];
  conn.replaceChildren(text, el('small', {}, where));
  conn.dataset.state = mode;
  conn.title = state.config.targetReason;
}

function renderLegend(): void {
  const versions = sortVersions(Object.keys(state.colors));
  const items = versions.map((v) => {
    const sample = el('span', { class: 'cell' }, cellOf(sampleAnswer(v, 200), state.colors).label);
    sample.style.background = state.colors[v] ?? '#616161';
    return el('li', {}, sample, v);
  });
  const err = el('span', { class: 'cell', 'data-kind': 'error' }, '✕');
  items.push(el('li', {}, err, 'error (any non-2xx or no answer)'));
  const legend = $('legend');
  const key = `${versions.map((v) => `${v}=${state.colors[v]}`).join(',')}`;
  if (legend.dataset.key !== key) {
    legend.dataset.key = key;
    legend.replaceChildren(...items);
  }
}

function sampleAnswer(version: string, status: number): Answer {
  return { seq: 0, at: 0, profile: '', status, version, stage: null, latencyMs: 0, color: null, error: null };
}

function renderSplit(
  verdict: ShareVerdict,
  stage: string | null,
  profile: string,
  withoutVersion: number,
): void {
  const box = $('verdict');
  box.dataset.state = verdict.state;
  const n = verdict.n;
  box.dataset.n = String(n);
  box.dataset.stage = stage ?? '';
  box.dataset.profile = profile;
  const labels: Record<ShareVerdict['state'], string> = {
    inside: '✓ inside the band',
    outside: '✕ outside the band',
    collecting: `… collecting (${n} answers)`,
    waiting: 'waiting for answers',
  };
  box.textContent = labels[verdict.state];
  $('window-note').textContent = stage
    ? `n = ${n} of the last ${state.config.windowSize} · ${stage} · ${profile || 'no override header'}`
    : '';
  const rows = verdict.rows.map((r) => {
    const swatch = el('span', { class: 'swatch' });
    swatch.style.background = state.colors[r.version] ?? '#616161';
    const bar = el('div', { class: 'bar' });
    const band = el('div', { class: 'band' });
    band.style.left = `${r.band.lo * 100}%`;
    band.style.width = `${Math.max(0.6, (r.band.hi - r.band.lo) * 100)}%`;
    const tick = el('div', { class: 'tick' });
    tick.style.left = `${r.expected * 100}%`;
    const marker = el('div', { class: 'marker' });
    marker.style.left = `${r.observed * 100}%`;
    marker.style.background = state.colors[r.version] ?? '#616161';
    bar.append(band, tick, marker);
    const bandText = n > 0 ? ` (${percent(r.band.lo)} – ${percent(r.band.hi)})` : '';
    return el(
      'tr',
      { 'data-version': r.version, 'data-state': r.state, 'data-count': String(r.count) },
      el('td', {}, el('span', { class: 'version' }, swatch, r.version)),
      el(
        'td',
        {
          class: 'obs',
          title: r.interval
            ? `${r.count} of ${n}; ${(state.config.confidence * 100).toFixed(2)} % interval ${percent(r.interval.lo)} – ${percent(r.interval.hi)}`
            : '',
        },
        n > 0 ? percent(r.observed) : '—',
      ),
      el('td', { class: 'exp' }, percent(r.expected), el('small', {}, bandText)),
      el('td', {}, bar),
    );
  });
  $('split')
    .querySelector('tbody')
    ?.replaceChildren(...rows);
  const alpha = state.config.alpha;
  const missing = withoutVersion > 0 ? ` ${withoutVersion} answers without a version are left out.` : '';
  $('band-note').textContent =
    `Band: where a correct split lands ${(state.config.confidence * 100).toFixed(2)} % of the time at this n ` +
    `(exact binomial, α = ${alpha.toPrecision(2)} per check, as make verify). | expected, ● observed.${missing}`;
}

function renderHealth(): void {
  const rows = versionHealth(state.recent).map((h) => {
    const name = h.version ?? 'no version';
    const swatch = el('span', { class: 'swatch' });
    swatch.style.background = h.version ? (state.colors[h.version] ?? '#616161') : '#757575';
    return el(
      'tr',
      { 'data-version': name, 'data-errors': h.errors > 0 ? 'yes' : 'no' },
      el('td', {}, el('span', { class: 'version' }, swatch, name)),
      el('td', {}, String(h.answers)),
      el('td', { class: 'err' }, `${h.errors} (${percent(h.errorRate)})`),
      el('td', {}, formatMs(h.p50)),
      el('td', {}, formatMs(h.p99)),
    );
  });
  $('health')
    .querySelector('tbody')
    ?.replaceChildren(...rows);
  $('health-note').textContent = `(last ${state.recent.length} answers)`;
}

function renderTimeline(): void {
  const items = state.timeline
    .slice(-5)
    .reverse()
    .map((c) =>
      el(
        'li',
        {},
        el('time', { datetime: new Date(c.at).toISOString() }, new Date(c.at).toLocaleTimeString()),
        el('strong', {}, c.stage),
        c.from ? ` (was ${c.from})` : ' (first seen)',
      ),
    );
  $('timeline').replaceChildren(...(items.length > 0 ? items : [el('li', {}, 'no answer yet')]));
}

void boot().catch((err: Error) => {
  document.body.textContent = `The page could not start: ${err.message}`;
});
