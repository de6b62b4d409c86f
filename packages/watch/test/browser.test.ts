/**
 * The page in a real browser (Debian's Chromium driven by playwright-core), against a real local path started
 * here (the app builds v1 and v2, the local gateway and its admin API, on free ports), as a person would use it:
 * the grid fills, canary-25's observed share lands inside the band, a stage switch shows within 2 s, the
 * override toggle turns every new square v2, v2's FAULT_ERROR_RATE shows as error squares, a hidden tab stops
 * the traffic, and the cluster's page shows the `make` command instead of switching. One screenshot per check
 * goes to .test-results/watch/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort, type LocalMesh, type SupervisedWorkload, startLocalMesh } from '@rollouts/local-mesh';
import { binomialAcceptanceBand } from '@rollouts/split-check';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWatchServer, type WatchServer } from '../src/index.js';
import { REPO_ROOT, waitFor } from './support.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const INSTALL = 'apt-get update && apt-get install -y chromium';
const SHOTS = join(REPO_ROOT, '.test-results', 'watch');
const VIEWPORT = { width: 1280, height: 720 };

let mesh: LocalMesh;
let watch: WatchServer;
let context: BrowserContext;
let page: Page;
let profileDir: string;
const pageErrors: string[] = [];

async function launch(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing (${CHROMIUM}): the browser tests drive Debian's Chromium. Install it with \`${INSTALL}\` ` +
        '(as root, else with sudo), or point CHROMIUM_PATH at a Chromium binary.',
    );
  }
  profileDir = mkdtempSync(join(tmpdir(), 'watch-chromium-'));
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
    viewport: VIEWPORT,
    timeout: 60_000,
  });
}

async function shot(p: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** The page fits one 1280x720 screen: nothing to scroll. */
async function expectOneScreen(p: Page): Promise<void> {
  const size = await p.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
  }));
  expect(size.width).toBeLessThanOrEqual(VIEWPORT.width);
  expect(size.height).toBeLessThanOrEqual(VIEWPORT.height);
}

interface CellData {
  seq: number;
  version: string;
  status: number;
  profile: string;
  stage: string;
  kind: string;
  text: string;
}

function cells(p: Page): Promise<CellData[]> {
  return p.$$eval('#grid .cell[data-seq]', (els) =>
    (els as HTMLElement[]).map((e) => ({
      seq: Number(e.dataset.seq),
      version: e.dataset.version ?? '',
      status: Number(e.dataset.status),
      profile: e.dataset.profile ?? '',
      stage: e.dataset.stage ?? '',
      kind: e.dataset.kind ?? '',
      text: e.textContent ?? '',
    })),
  );
}

async function adminStage(): Promise<string> {
  return ((await (await fetch(`${mesh.adminUrl}/stage`)).json()) as { stage: string }).stage;
}

async function setRate(p: Page, rate: number): Promise<void> {
  await p.$eval(
    '#rate',
    (el, value) => {
      const input = el as HTMLInputElement;
      input.value = String(value);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
    rate,
  );
}

/** Chromium missing (or not starting) fails every test with the reason: never a silent skip. */
let setupError: Error | null = null;
function ready(): void {
  if (setupError) throw setupError;
}

beforeAll(async () => {
  try {
    context = await launch();
  } catch (err) {
    setupError = err as Error;
    return;
  }
  mesh = await startLocalMesh({
    root: REPO_ROOT,
    ports: {
      gateway: await findFreePort(),
      admin: await findFreePort(),
      versions: { v1: await findFreePort(), v2: await findFreePort() },
    },
  });
  watch = await startWatchServer({
    root: REPO_ROOT,
    target: 'local',
    targetReason: 'browser test',
    gatewayUrl: mesh.gatewayUrl,
    adminUrl: mesh.adminUrl,
    adminToken: mesh.admin.token,
    rate: 20,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
});

afterAll(async () => {
  await context?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  await watch?.close();
  await mesh?.stop();
});

describe('the live page in Chromium', () => {
  it('has Chromium', () => {
    ready();
  });

  it('fills the grid with squares in the colour each answer names, on one 1280x720 screen', async () => {
    ready();
    await page.goto(`${watch.url}/`);
    await setRate(page, 50);
    await waitFor(() => watch.settings().rate === 50, 10_000, 'the rate the page set');
    await page.waitForFunction(() => document.querySelectorAll('#grid .cell[data-seq]').length >= 400, null, {
      timeout: 60_000,
    });
    const all = await cells(page);
    expect(all).toHaveLength(400);
    expect(new Set(all.map((c) => c.version))).toEqual(new Set(['v1']));
    expect(all.every((c) => c.stage === 'stable' && c.kind === 'version' && c.text === '1')).toBe(true);
    // the colour is the app's (#2e7d32 in v1's JSON answer), not one the page assumes
    const color = await page.$eval(
      '#grid .cell[data-version="v1"]',
      (e) => getComputedStyle(e).backgroundColor,
    );
    expect(color).toBe('rgb(46, 125, 50)');
    expect(await page.textContent('#stage')).toBe('stable');
    expect(await page.getAttribute('#verdict', 'data-state')).toBe('inside');
    expect(
      await page.$eval('#stage', (e) => Number.parseFloat(getComputedStyle(e).fontSize)),
    ).toBeGreaterThanOrEqual(30);
    await expectOneScreen(page);
    await shot(page, '01-grid-fills');
  });

  it('shows a stage switch within 2 s: from its own button, and from a terminal (the admin API)', async () => {
    ready();
    let started = Date.now();
    await page.click('#stages button[data-stage="canary-50"]');
    await page.waitForFunction(() => document.getElementById('stage')?.textContent === 'canary-50', null, {
      timeout: 2000,
    });
    const fromButton = Date.now() - started;
    expect(await adminStage()).toBe('canary-50');
    expect(await page.textContent('#switch-msg')).toContain('applied canary-50 (was stable)');
    expect(await page.getAttribute('#stages button[data-stage="canary-50"]', 'aria-current')).toBe('true');

    started = Date.now();
    const res = await fetch(`${mesh.adminUrl}/stage`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh.admin.token}` },
      body: JSON.stringify({ stage: 'canary-25' }),
    });
    expect(res.status).toBe(200);
    await page.waitForFunction(() => document.getElementById('stage')?.textContent === 'canary-25', null, {
      timeout: 2000,
    });
    const fromTerminal = Date.now() - started;
    const timeline = await page.$$eval('#timeline li', (els) => els.map((e) => e.textContent ?? ''));
    expect(timeline[0]).toContain('canary-25 (was canary-50)');
    expect(timeline[1]).toContain('canary-50 (was stable)');
    expect(fromButton).toBeLessThan(2000);
    expect(fromTerminal).toBeLessThan(2000);
    await expectOneScreen(page);
    await shot(page, '02-stage-switch');
  });

  it("lands canary-25's observed share inside the band of the exact binomial test", async () => {
    await page.waitForFunction(
      () => {
        const v = document.getElementById('verdict');
        return v?.dataset.stage === 'canary-25' && Number(v.dataset.n) >= 400;
      },
      null,
      { timeout: 90_000 },
    );
    // Paused while the page is read: answers arriving between two reads would make the squares and the table
    // disagree by one.
    await page.click('#pause');
    await page.waitForFunction(
      () => document.getElementById('pause')?.getAttribute('aria-pressed') === 'true',
    );
    const n = Number(await page.getAttribute('#verdict', 'data-n'));
    const rows = await page.$$eval('#split tbody tr', (els) =>
      (els as HTMLElement[]).map((e) => ({
        version: e.dataset.version,
        state: e.dataset.state,
        count: Number(e.dataset.count),
        text: e.textContent ?? '',
      })),
    );
    const v2 = rows.find((r) => r.version === 'v2');
    const band = binomialAcceptanceBand(n, 0.25, watch.config.confidence);
    expect(n).toBe(400);
    // what the page claims, checked against the squares and the statistics independently
    const squares = (await cells(page)).filter((c) => c.stage === 'canary-25' && c.profile === '');
    expect(squares.filter((c) => c.version === 'v2').length).toBe(v2?.count);
    expect(v2?.count).toBeGreaterThanOrEqual(band.lo);
    expect(v2?.count).toBeLessThanOrEqual(band.hi);
    expect(v2?.state).toBe('inside');
    expect(v2?.text).toContain('25 %');
    expect(await page.getAttribute('#verdict', 'data-state')).toBe('inside');
    expect(await page.textContent('#verdict')).toContain('inside the band');
    await page.click('#pause'); // resume
    // the canary analysis of a healthy v2: never a failure (too few answers yet for a pass, maybe)
    await page.waitForFunction(
      () => document.getElementById('analysis')?.textContent?.includes('v2 vs v1'),
      null,
      {
        timeout: 10_000,
      },
    );
    expect(['pass', 'inconclusive']).toContain(await page.getAttribute('#analysis', 'data-verdict'));
    await expectOneScreen(page);
    await shot(page, '03-canary-25-inside-band');
  });

  it('the override toggle turns every new square v2', async () => {
    ready();
    await page.click('#overrides button[data-override="x-canary: always"]');
    await page.waitForFunction(
      () =>
        document
          .querySelector('#overrides button[data-override="x-canary: always"]')
          ?.getAttribute('aria-pressed') === 'true',
      null,
      { timeout: 10_000 },
    );
    await page.waitForFunction(
      () => document.querySelectorAll('#grid .cell[data-profile="x-canary: always"]').length >= 150,
      null,
      { timeout: 60_000 },
    );
    const all = await cells(page);
    const pinned = all.filter((c) => c.profile === 'x-canary: always');
    expect(pinned.length).toBeGreaterThanOrEqual(150);
    expect(pinned.every((c) => c.version === 'v2' && c.kind === 'version' && c.text === '2')).toBe(true);
    // every square since the toggle took effect carries the header
    const firstPinned = Math.min(...pinned.map((c) => c.seq));
    expect(all.filter((c) => c.seq > firstPinned && c.profile !== 'x-canary: always')).toEqual([]);
    const rows = await page.$$eval('#split tbody tr', (els) =>
      (els as HTMLElement[]).map((e) => [
        e.dataset.version,
        e.dataset.state,
        e.children[2]?.textContent ?? '',
      ]),
    );
    expect(rows).toEqual([
      ['v1', 'inside', expect.stringContaining('0 %')],
      ['v2', 'inside', expect.stringContaining('100 %')],
    ]);
    expect(await page.textContent('#window-note')).toContain('x-canary: always');
    await expectOneScreen(page);
    await shot(page, '04-override-pins-v2');
    await page.click('#overrides button[data-override="x-canary: always"]');
    await waitFor(() => watch.settings().overrides.length === 0, 10_000, 'the override off');
  });

  it("shows v2's FAULT_ERROR_RATE as error squares: another colour, a round shape, a striped pattern and ✕", async () => {
    // v2 rolled with the fault knob set, as `--set versions.v2.env.FAULT_ERROR_RATE=0.5` would on the cluster.
    const v2 = mesh.workloads.find((w) => w.version === 'v2') as SupervisedWorkload;
    await v2.restart({ FAULT_ERROR_RATE: '0.5' }, 30_000);
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#grid .cell[data-kind="error"][data-status="500"][data-version="v2"]')
          .length >= 5,
      null,
      { timeout: 60_000 },
    );
    const error = page
      .locator('#grid .cell[data-kind="error"][data-status="500"][data-version="v2"]')
      .first();
    expect(await error.textContent()).toBe('✕');
    expect(await error.getAttribute('title')).toContain('HTTP 500 from v2');
    const style = await error.evaluate((e) => {
      const s = getComputedStyle(e);
      return { radius: s.borderRadius, image: s.backgroundImage, color: s.backgroundColor };
    });
    expect(style.radius).toBe('50%');
    expect(style.image).toContain('repeating-linear-gradient');
    const v2Row = page.locator('#health tbody tr[data-version="v2"]');
    expect(await v2Row.getAttribute('data-errors')).toBe('yes');
    expect(await page.locator('#health tbody tr[data-version="v1"]').getAttribute('data-errors')).toBe('no');
    expect(await page.textContent('#legend')).toContain('error');
    // and the canary analysis fails v2
    await page.waitForFunction(() => document.getElementById('analysis')?.dataset.verdict === 'fail', null, {
      timeout: 30_000,
    });
    expect(await page.textContent('#analysis')).toContain('FAIL');
    await expectOneScreen(page);
    await shot(page, '05-fault-error-squares');
  });

  it('stops sending while the tab is hidden, and starts again when it is shown', async () => {
    ready();
    const hide = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'visibilityState', {
          value: h ? 'hidden' : 'visible',
          configurable: true,
        });
        Object.defineProperty(document, 'hidden', { value: h, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await hide(true);
    await waitFor(
      () => watch.status().subscribers === 0 && !watch.status().sending,
      10_000,
      'the stream to stop',
    );
    await watch.traffic.idle();
    const sent = watch.status().sent;
    await new Promise((r) => setTimeout(r, 500));
    expect(watch.status().sent).toBe(sent);
    expect(await page.textContent('#conn')).toContain('paused: tab hidden');
    await hide(false);
    await waitFor(() => watch.status().sent > sent, 10_000, 'the stream to start again');
    await page.waitForFunction(
      () => document.getElementById('conn')?.textContent?.includes('sending'),
      null,
      {
        timeout: 10_000,
      },
    );
  });

  it('on the cluster the stage buttons show the make command, and switch nothing', async () => {
    ready();
    const cluster = await startWatchServer({
      root: REPO_ROOT,
      target: 'cluster',
      targetReason: 'browser test',
      gatewayUrl: mesh.gatewayUrl,
    });
    const other = await context.newPage();
    try {
      await other.goto(`${cluster.url}/`);
      await other.waitForFunction(
        () => document.querySelectorAll('#grid .cell[data-seq]').length >= 40,
        null,
        {
          timeout: 60_000,
        },
      );
      expect(await other.textContent('#stages-hint')).toContain('on the cluster');
      await other.click('#stages button[data-stage="canary-50"]');
      expect(await other.textContent('#switch-msg code')).toBe('make canary-50');
      expect(await adminStage()).toBe('canary-25');
      await expectOneScreen(other);
      await shot(other, '06-cluster-make-command');
    } finally {
      await other.close();
      await cluster.close();
    }
  });

  it('had no error in the page', () => {
    ready();
    expect(pageErrors).toEqual([]);
  });
});
