// The live page (GET /) in a real browser: Debian's Chromium, headless,
// driven by playwright-core, against the service and the ARI emulator on
// loopback. Transfers done against the emulator must appear on the page,
// in flight and then finished, with the ladder their recorded steps give;
// and a screenshot must show what the DOM says is drawn where.
//
// Without /usr/bin/chromium these tests are skipped, with one line, unless
// CI=true: then the launch fails the suite.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { decodePng } from '../helpers/png.js';
import { quiescent, referAttended, setUpAttendedCalls, startHarness, transferFinished, twoPartyCall, waitUntil, type Harness } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'live-page-token-0123456789';
const inCi = ['true', '1'].includes(process.env.CI?.toLowerCase() ?? '');
const runs = existsSync(CHROMIUM) || inCi;
if (!runs) console.log(`live page browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);

interface Row {
  kind: 'arrow' | 'note';
  step: string;
  label: string;
  from: string | null;
  to: string | null;
}

describe.skipIf(!runs)('the live page in Chromium', () => {
  let browser: Browser;
  let browserPids: number[] = [];
  let h: Harness | undefined;
  let api: HttpServer | undefined;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM });
    browserPids = descendants(process.pid).filter((pid) => commandOf(pid).includes('chromium'));
    expect(browserPids.length).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await browser?.close();
    // Every Chromium process it started is gone.
    await waitUntil(() => browserPids.every((pid) => !alive(pid)), 'the browser processes to exit', 5000);
    expect(descendants(process.pid).filter((pid) => commandOf(pid).includes('chromium'))).toEqual([]);
  });

  afterEach(async () => {
    await context?.close();
    await api?.close();
    // Nothing left in the emulator once the transfers' hang-ups are done.
    if (h) await quiescent(h);
    await h?.close();
    context = undefined;
    api = undefined;
    h = undefined;
  });

  /** The service with HTTP_TOKEN, and the page opened the way the README says: /?token=... */
  async function openPage(): Promise<Page> {
    h = await startHarness();
    api = await startHttpServer({ service: h.service, config: { host: '127.0.0.1', port: 0, token: TOKEN }, logger: h.logs.logger });
    context = await browser.newContext({ viewport: { width: 1000, height: 900 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const res = await page.goto(`${api.url}/?token=${TOKEN}`);
    expect(res?.status()).toBe(200);
    // Redirected to the page itself: the token is no longer in the address.
    expect(page.url()).toBe(`${api.url}/`);
    await page.locator('#status[data-state="live"]').waitFor();
    (page as Page & { errors?: string[] }).errors = errors;
    return page;
  }

  const card = (page: Page, section: 'in-flight' | 'finished', transferId: string) => page.locator(`#${section} article.transfer[data-transfer-id="${transferId}"]`);

  async function rows(page: Page, section: 'in-flight' | 'finished', transferId: string): Promise<Row[]> {
    return card(page, section, transferId)
      .locator('svg.ladder g.row')
      .evaluateAll((gs) =>
        gs.map((g) => ({
          kind: g.classList.contains('arrow') ? ('arrow' as const) : ('note' as const),
          step: g.getAttribute('data-step')!,
          label: g.getAttribute('data-label')!,
          from: g.getAttribute('data-from'),
          to: g.getAttribute('data-to'),
        })),
      );
  }

  /** The steps the service recorded for the transfer, each as many rows as the ladder draws for it. */
  function recordedSteps(transferId: string): string[] {
    const t = [...h!.service.history.inFlight(), ...h!.service.history.finished()].find((x) => x.transferId === transferId)!;
    return t.steps.flatMap((s) => (s.step === 'requested' ? ['requested', 'requested'] : [s.step]));
  }

  it('a blind transfer shows in flight while the target rings, then finished with its ladder: REFER, 202, dial, 100, join, 200, hang-up', async () => {
    const page = await openPage();
    const { alice, bob, bridgeId } = await twoPartyCall(h!);
    // The call, as the registry has it, reaches the page.
    await page.locator(`#calls tr.call[data-bridge-id="${bridgeId}"]`).waitFor();
    expect(await page.locator(`#calls tr.call[data-bridge-id="${bridgeId}"] .party`).evaluateAll((ps) => ps.map((p) => p.getAttribute('data-channel-id')).sort())).toEqual(
      [alice.id, bob.id].sort(),
    );

    h!.emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = h!.emu.sendRefer(bob.id, { kind: 'blind', destination: 'carol' });
    const leg = () => h!.emu.channels().find((c) => c.id.startsWith('transfer-'));
    await waitUntil(() => leg()?.state === 'Ringing', 'carol to ring');
    await waitUntil(() => h!.service.history.inFlight()[0]?.steps.some((s) => s.step === 'hold') === true, 'the ringback step');
    const transferId = h!.service.history.inFlight()[0]!.transferId;

    // In flight: what has happened so far, and nothing of what has not.
    const flying = card(page, 'in-flight', transferId);
    await expect.poll(() => flying.getAttribute('data-result')).toBe('in flight');
    await expect.poll(async () => (await rows(page, 'in-flight', transferId)).map((r) => r.step)).toEqual(recordedSteps(transferId));
    const ringing = await rows(page, 'in-flight', transferId);
    expect(ringing.slice(0, 2)).toEqual([
      { kind: 'arrow', step: 'requested', label: 'REFER to carol', from: 'transferer', to: 'pbx' },
      { kind: 'arrow', step: 'requested', label: '202 Accepted', from: 'pbx', to: 'transferer' },
    ]);
    expect(ringing).toEqual(
      expect.arrayContaining([
        { kind: 'note', step: 'policy', label: 'policy: allowed', from: null, to: null },
        { kind: 'arrow', step: 'dial', label: 'dial PJSIP/carol', from: 'pbx', to: 'target' },
        { kind: 'arrow', step: 'progress', label: 'NOTIFY 100 Trying', from: 'pbx', to: 'transferer' },
        { kind: 'arrow', step: 'hold', label: 'ringback', from: 'pbx', to: 'transferees' },
      ]),
    );
    expect(ringing.map((r) => r.label)).not.toContain('NOTIFY 200 OK');
    expect(await page.locator('#finished article.transfer').count()).toBe(0);

    h!.emu.phoneAnswers(leg()!.id);
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h!);

    const done = card(page, 'finished', transferId);
    await expect.poll(() => done.getAttribute('data-result')).toBe('completed');
    expect(await page.locator('#in-flight article.transfer').count()).toBe(0);
    expect(await done.locator('.sipfrags').textContent()).toBe('NOTIFY 100 → 200');
    const ladder = await rows(page, 'finished', transferId);
    expect(ladder.map((r) => r.step)).toEqual(recordedSteps(transferId));
    const labels = ladder.map((r) => `${r.label} → ${r.to ?? '(note)'}`);
    expect(inOrder(labels, ['REFER to carol → pbx', '202 Accepted → transferer', 'dial PJSIP/carol → target', "join the transferee's bridge → target", 'NOTIFY 200 OK → transferer'])).toBe(true);
    expect(inOrder(labels, ['NOTIFY 100 Trying → transferer', 'NOTIFY 200 OK → transferer', 'hang up (BYE) → transferer'])).toBe(true);

    // The calls: Alice now talks to the new leg, Bob is gone.
    await expect
      .poll(() => page.locator(`#calls tr.call[data-bridge-id="${bridgeId}"] .party`).evaluateAll((ps) => ps.map((p) => p.getAttribute('data-channel-id')).sort()))
      .toEqual([alice.id, leg()!.id].sort());
    expect((page as Page & { errors?: string[] }).errors).toEqual([]);
    // The README's picture of the page: LIVE_PAGE_SCREENSHOT=docs/live-page.png.
    if (process.env.LIVE_PAGE_SCREENSHOT) writeFileSync(process.env.LIVE_PAGE_SCREENSHOT, await page.locator('body').screenshot());
  });

  it('an attended transfer: its ladder, and a screenshot that shows what the DOM says is drawn where', async () => {
    const page = await openPage();
    const calls = await setUpAttendedCalls(h!);
    const { sipfrags, summary } = await referAttended(h!, calls.bobFirst.id, calls.bobConsult.id);
    expect(sipfrags).toEqual([100, 200]);

    const done = card(page, 'finished', summary.transferId);
    await expect.poll(() => done.getAttribute('data-result')).toBe('completed');
    const ladder = await rows(page, 'finished', summary.transferId);
    expect(ladder.map((r) => r.step)).toEqual(recordedSteps(summary.transferId));
    const labels = ladder.map((r) => `${r.label} → ${r.to ?? '(note)'}`);
    expect(labels.slice(0, 3)).toEqual(['REFER to 1003 → pbx', '202 Accepted → transferer', 'plan: attended → (note)']);
    expect(inOrder(labels, ['NOTIFY 100 Trying → transferer', 'NOTIFY 200 OK → transferer'])).toBe(true);
    expect(labels).toEqual(expect.arrayContaining(["move to the target's bridge → transferees", 'bridge deleted → (note)']));
    // Both of Bob's calls are hung up: two BYEs to the transferer phone.
    expect(labels.filter((l) => l === 'hang up (BYE) → transferer')).toHaveLength(2);

    await expect.poll(() => page.locator('#calls-totals').textContent()).toBe('(2 channels, 1 bridge)');
    await screenshotMatchesDom(page, summary.transferId);
    expect((page as Page & { errors?: string[] }).errors).toEqual([]);
  });

  it('a blind transfer to a busy phone: failed, NOTIFY 100 then 603 Decline, with its reason; the call back as it was', async () => {
    const page = await openPage();
    const { alice, bob, bridgeId } = await twoPartyCall(h!);
    h!.emu.setEndpoint('carol', { kind: 'busy' });
    const refer = h!.emu.sendRefer(bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 603]);
    const summary = await transferFinished(h!);

    const done = card(page, 'finished', summary.transferId);
    await expect.poll(() => done.getAttribute('data-result')).toBe('failed');
    expect(await done.locator('.sipfrags').textContent()).toBe('NOTIFY 100 → 603');
    expect(await done.locator('.reason').textContent()).toBe(summary.reason);
    const ladder = await rows(page, 'finished', summary.transferId);
    expect(ladder.map((r) => r.step)).toEqual(recordedSteps(summary.transferId));
    const labels = ladder.map((r) => `${r.label} → ${r.to ?? '(note)'}`);
    expect(inOrder(labels, ['REFER to carol → pbx', '202 Accepted → transferer', 'dial PJSIP/carol → target', 'NOTIFY 603 Decline → transferer'])).toBe(true);
    expect(labels).not.toContain('NOTIFY 200 OK → transferer');
    expect(labels).not.toContain('hang up (BYE) → transferer');
    await expect
      .poll(() => page.locator(`#calls tr.call[data-bridge-id="${bridgeId}"] .party`).evaluateAll((ps) => ps.map((p) => p.getAttribute('data-channel-id')).sort()))
      .toEqual([alice.id, bob.id].sort());
  });

  it('when its HTTP server restarts, the page reconnects by itself with its cookie and catches up', async () => {
    const page = await openPage();
    const port = api!.port;
    await api!.close();
    await page.locator('#status[data-state="reconnecting"]').waitFor();
    // A transfer while the page is cut off.
    const calls = await setUpAttendedCalls(h!);
    const { summary } = await referAttended(h!, calls.bobFirst.id, calls.bobConsult.id);
    api = await startHttpServer({ service: h!.service, config: { host: '127.0.0.1', port, token: TOKEN }, logger: h!.logs.logger });
    await page.locator('#status[data-state="live"]').waitFor({ timeout: 10_000 });
    await expect.poll(() => card(page, 'finished', summary.transferId).getAttribute('data-result')).toBe('completed');
    expect(page.url()).toBe(`${api.url}/`);
  });

  it('when the token changed meanwhile, the page says to reload it instead of retrying for ever', async () => {
    const page = await openPage();
    const port = api!.port;
    await api!.close();
    api = await startHttpServer({ service: h!.service, config: { host: '127.0.0.1', port, token: `${TOKEN}-new` }, logger: h!.logs.logger });
    await page.locator('#status[data-state="closed"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#status').textContent()).toMatch(/reload the page/);
  });

  it('shows caller names from phones as text, never as markup', async () => {
    const page = await openPage();
    const hostile = '<img src=x onerror="window.pwned=1">Mallory & <b>co</b>';
    const mallory = h!.emu.phoneCalls({ endpoint: 'mallory', exten: '100', callerName: hostile });
    const party = page.locator(`#calls .party[data-channel-id="${mallory.id}"]`);
    await party.waitFor();
    expect(await party.textContent()).toContain(hostile);
    expect(await page.locator('#calls img, #calls b').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { pwned?: number }).pwned)).toBeUndefined();
    h!.emu.phoneHangsUp(mallory.id);
    await party.waitFor({ state: 'detached' });
  });

  /**
   * The ladder's screenshot against its DOM: along every arrow the DOM
   * places, the pixels are the arrow's colour; where the DOM has nothing,
   * the background. Fails if the page renders blank, or draws elsewhere.
   */
  async function screenshotMatchesDom(page: Page, transferId: string) {
    const svg = card(page, 'finished', transferId).locator('svg.ladder');
    await svg.scrollIntoViewIfNeeded();
    // The viewport, in CSS pixels (deviceScaleFactor 1): the DOM's boxes are in the same coordinates.
    const image = decodePng(await page.screenshot());
    const dom = await svg.evaluate((el) => {
      // The browser's globals, which this Node project's types do not declare.
      type Box = { left: number; top: number; width: number; height: number };
      type Node = { getBoundingClientRect(): Box; hasAttribute(n: string): boolean };
      const style = (n: unknown) => (globalThis as unknown as { getComputedStyle(n: unknown): { stroke: string; fill: string } }).getComputedStyle(n);
      const svgEl = el as unknown as Node & { querySelectorAll(s: string): Iterable<Node>; querySelector(s: string): Node };
      const box = (e: Node) => {
        const r = e.getBoundingClientRect();
        return { x: r.left, y: r.top, w: r.width, h: r.height };
      };
      const lines = [...svgEl.querySelectorAll('g.arrow line.arrow-line')].map((l) => ({ ...box(l), stroke: style(l).stroke, dashed: l.hasAttribute('stroke-dasharray') }));
      // Everything drawn but the background.
      const drawn = [...svgEl.querySelectorAll('line, polygon, text, g.note rect')].map(box);
      return { ...box(svgEl), background: style(svgEl.querySelector('rect')).fill, lines, drawn };
    });
    // The whole ladder is on screen.
    expect(dom.x).toBeGreaterThanOrEqual(0);
    expect(dom.y).toBeGreaterThanOrEqual(0);
    expect(dom.x + dom.w).toBeLessThanOrEqual(image.width);
    expect(dom.y + dom.h).toBeLessThanOrEqual(image.height);
    expect(dom.lines.length).toBeGreaterThanOrEqual(6);

    for (const line of dom.lines.filter((l) => !l.dashed)) {
      for (const at of [0.2, 0.5, 0.8]) {
        const x = line.x + line.w * at;
        const y = line.y + line.h / 2;
        expect(near(image.rgb(x, y), rgbOf(line.stroke)), `arrow pixel at ${x},${y}`).toBe(true);
      }
    }
    const empty: [number, number][] = [];
    for (let y = dom.y + 4; y < dom.y + dom.h - 4; y += 7) {
      for (let x = dom.x + 4; x < dom.x + dom.w - 4; x += 13) {
        if (!dom.drawn.some((b) => x >= b.x - 3 && x <= b.x + b.w + 3 && y >= b.y - 3 && y <= b.y + b.h + 3)) empty.push([x, y]);
      }
    }
    expect(empty.length).toBeGreaterThan(100);
    const background = rgbOf(dom.background);
    expect(empty.filter(([x, y]) => !near(image.rgb(x, y), background))).toEqual([]);
  }
});

function inOrder(list: string[], wanted: string[]): boolean {
  let i = 0;
  for (const item of list) if (item === wanted[i]) i++;
  return i === wanted.length;
}

function rgbOf(css: string): [number, number, number] {
  const m = css.match(/rgba?\((\d+), (\d+), (\d+)/);
  if (!m) throw new Error(`not an rgb() colour: ${css}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function near(a: [number, number, number], b: [number, number, number]): boolean {
  return a.every((v, i) => Math.abs(v - b[i]!) <= 24);
}

/** Every process below `root`, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    // A zombie is gone for our purposes.
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}
