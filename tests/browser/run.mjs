// The browser tests of the web pages (web/): headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core) against real bidding-server processes.
//
// tests/e2e/test_browser.py starts Postgres, Redis and three servers ("pods") sharing them, then
// runs this script with:
//   BROWSER_PODS           JSON [{"name":"pod-a","url":"http://127.0.0.1:PORT","pid":123}, ...] (3 pods)
//   BIDDING_SERVER         the binary, for `bid create` / `bid close`
//   BROWSER_DATABASE_URL   the database the pods serve (seeded: auctions 1, 2 open, 3 closed)
//   BROWSER_SECRET_KEY     the pods' SECRET_KEY, to sign a bidder token (`bidding-server token`)
//   BROWSER_ARTIFACTS      where screenshots go (test-artifacts/browser)
//   CHROMIUM               the browser (default /usr/bin/chromium)
//   BROWSER_ONLY           optional: comma-separated case names to run
// Timed auctions (docs/timed-auctions.md) are created with POST /api/bids and an admin token made
// by `bidding-server token --admin`.
// The pods run with HEARTBEAT_INTERVAL=1 and IDLE_TIMEOUT=3, so a page that did not answer pings
// would be dropped within seconds. The third pod is stopped (SIGTERM) by the drain case.
//
// Output: one line per case, `BROWSER-RESULT {"name":..,"ok":..,"ms":..,"error":..}`, then
// `BROWSER-SUMMARY {...}`. Exit code 0 when every case passed.

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

const PODS = JSON.parse(process.env.BROWSER_PODS || '[]');
const BINARY = process.env.BIDDING_SERVER;
const DATABASE_URL = process.env.BROWSER_DATABASE_URL;
const SECRET_KEY = process.env.BROWSER_SECRET_KEY || '';
const ARTIFACTS = process.env.BROWSER_ARTIFACTS || path.resolve('test-artifacts/browser');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ONLY = (process.env.BROWSER_ONLY || '').split(',').map((s) => s.trim()).filter(Boolean);

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const XSS_NAME = '<img src=x onerror=alert(1)>';
const HTML_ITEM = '<b>Bold</b> & <img src=y onerror=alert(2)> Poster';

if (PODS.length < 3 || !BINARY || !DATABASE_URL) {
    console.error('run.mjs: BROWSER_PODS (3 pods), BIDDING_SERVER and BROWSER_DATABASE_URL are required');
    process.exit(2);
}
fs.mkdirSync(ARTIFACTS, { recursive: true });

const [podA, podB, podC] = PODS;

// ------------------------------------------------------------------------------------ helpers

class Failure extends Error {}

function check(condition, message) {
    if (!condition) {
        throw new Failure(message);
    }
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

function portOf(url) {
    return Number(new URL(url).port);
}

const cliDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bidding-browser-cli-'));

// Runs `bidding-server ARGS` against the test database (no .env, none of the developer's settings).
async function cli(...args) {
    const env = { PATH: process.env.PATH || '/usr/bin:/bin', HOME: process.env.HOME || '/tmp', ENV: 'test',
        DATABASE_URL, SECRET_KEY };
    try {
        const { stdout } = await execFileP(BINARY, args, { env, cwd: cliDir, timeout: 30000 });
        return stdout;
    } catch (error) {
        throw new Failure(`\`bidding-server ${args.join(' ')}\` failed: ${error.message}\n${error.stdout || ''}${error.stderr || ''}`);
    }
}

async function createAuction(name, initialPrice) {
    const args = ['bid', 'create', '--name', name];
    if (initialPrice) {
        args.push('--initial-price', initialPrice);
    }
    const out = (await cli(...args)).trim().split('\n').filter(Boolean);
    return JSON.parse(out[out.length - 1]);
}

async function getJSON(url) {
    const response = await fetch(url);
    check(response.ok, `GET ${url} answered ${response.status}`);
    return response.json();
}

// A TCP proxy between the browser and a pod, so a test can cut the network (every connection
// reset), refuse new connections for a while ("offline"), and point it at another pod.
class TcpProxy {
    constructor(targetPort) {
        this.targetPort = targetPort;
        this.offline = false;
        this.sockets = new Set();
        this.server = net.createServer((client) => this.accept(client));
    }

    listen() {
        return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => {
            this.port = this.server.address().port;
            this.url = `http://127.0.0.1:${this.port}`;
            resolve(this);
        }));
    }

    track(socket) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
    }

    accept(client) {
        this.track(client);
        if (this.offline) {
            client.resetAndDestroy();
            return;
        }
        const upstream = net.connect(this.targetPort, '127.0.0.1');
        this.track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        const cut = () => {
            client.destroy();
            upstream.destroy();
        };
        client.on('close', cut);
        upstream.on('close', cut);
    }

    // The network vanishes: every open connection is reset, without a close frame.
    cutAll() {
        for (const socket of [...this.sockets]) {
            if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed) {
                socket.resetAndDestroy();
            } else {
                socket.destroy();
            }
        }
    }

    close() {
        this.cutAll();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
}

// ------------------------------------------------------------------------------------ the browser

let browser;
const pageProblems = [];   // uncaught exceptions, CSP violations, console errors: none allowed
const dialogs = [];        // alert() & co.: none allowed (the XSS case)

async function newPage(options = {}) {
    const context = await browser.newContext({
        viewport: { width: 1100, height: 900 },
        ...options,
    });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    page.on('pageerror', (error) => pageProblems.push(`pageerror on ${page.url()}: ${error.message}`));
    page.on('console', (msg) => {
        if (msg.type() !== 'error') {
            return;
        }
        const text = msg.text();
        // A reconnecting page logs failed WebSocket attempts (the reconnect cases cut the network).
        if (/^WebSocket connection to .* failed/.test(text)) {
            return;
        }
        pageProblems.push(`console error on ${page.url()}: ${text}`);
    });
    page.on('dialog', async (dialog) => {
        dialogs.push(`${dialog.type()} "${dialog.message()}" on ${page.url()}`);
        await dialog.dismiss().catch(() => {});
    });
    return page;
}

async function openAuction(page, base, id, { live = true } = {}) {
    const response = await page.goto(`${base}/bid/${id}`);
    check(response && response.status() === 200, `GET /bid/${id} must answer 200, got ${response && response.status()}`);
    if (live) {
        await waitLive(page, `the page of auction ${id} on ${base}`);
    }
    return response;
}

async function waitLive(page, what, timeout = 10000) {
    try {
        await page.waitForSelector('#conn[data-state="live"]', { timeout });
    } catch (error) {
        const conn = await page.locator('#conn').textContent().catch(() => '?');
        throw new Failure(`${what} did not become Live within ${timeout} ms (connection state: "${conn}")`);
    }
}

async function waitFor(page, fn, arg, what, timeout = 5000) {
    try {
        const handle = await page.waitForFunction(fn, arg, { timeout, polling: 'raf' });
        return await handle.jsonValue();
    } catch (error) {
        throw new Failure(`${what}: not seen within ${timeout} ms (${error.message.split('\n')[0]})`);
    }
}

async function text(page, selector) {
    return ((await page.locator(selector).first().textContent()) || '').trim();
}

// The history list as [{seq, price, bidder}] (newest first).
function historyOf(page) {
    return page.evaluate(() => Array.from(document.querySelectorAll('#history li')).map((li) => ({
        seq: Number(li.dataset.seq),
        price: li.querySelector('.h-price').textContent,
        bidder: li.querySelector('.h-bidder').firstChild.nextSibling.textContent,
    })));
}

async function placeBid(page, name, price) {
    if (name !== undefined) {
        await page.fill('#bidder-name', name);
    }
    if (price !== undefined) {
        await page.fill('#bid-price', price);
    }
    await page.click('#bid-submit');
}

async function waitAccepted(page, what) {
    return waitFor(page, () => {
        const m = document.getElementById('form-message');
        return m.dataset.kind === 'ok' || m.dataset.kind === 'error' ? { kind: m.dataset.kind, text: m.textContent } : null;
    }, null, what).then((result) => {
        check(result.kind === 'ok', `${what}: expected the bid to be accepted, the page says "${result.text}"`);
        return result;
    });
}

async function waitPrice(page, price, what, timeout = 5000) {
    return waitFor(page, (p) => document.getElementById('current-price').textContent === p, price, what, timeout);
}

async function shot(page, name, fullPage = true) {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage });
}

// Polls `fn` (async, returns [done, what it saw]) until done; the failure says what was seen last.
async function until(fn, what, timeout = 5000, interval = 50) {
    const deadline = Date.now() + timeout;
    for (;;) {
        const [done, seen] = await fn();
        if (done) {
            return seen;
        }
        if (Date.now() > deadline) {
            throw new Failure(`${what}: not seen within ${timeout} ms (last seen: ${JSON.stringify(seen)})`);
        }
        await sleep(interval);
    }
}

// ------------------------------------------------------------------------------------ timed auctions

let adminToken = null;

// POST /api/bids with an admin token (`bidding-server token --admin`): the auction object.
async function createAuctionOverApi(body) {
    if (!adminToken) {
        adminToken = (await cli('token', '--admin')).trim().split('\n').pop();
    }
    const response = await fetch(`${podA.url}/api/bids`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
    });
    const answer = await response.text();
    check(response.status === 201, `POST /api/bids ${JSON.stringify(body)} must answer 201, got ${response.status}: ${answer}`);
    return JSON.parse(answer);
}

// "2m 05s left" -> 125, "45s left" -> 45, "1h 02m 05s left", "3d 04h 10m left"; null otherwise.
function secondsLeft(shown) {
    const m = /^(?:(\d+)d )?(?:(\d+)h )?(?:(\d+)m )?(?:(\d+)s )?left$/.exec(shown || '');
    if (!m || !(m[1] || m[2] || m[3] || m[4])) {
        return null;
    }
    return Number(m[1] || 0) * 86400 + Number(m[2] || 0) * 3600 + Number(m[3] || 0) * 60 + Number(m[4] || 0);
}

// What the auction page shows of the end time.
async function timingOf(page) {
    const t = await page.evaluate(() => {
        const box = document.getElementById('timing');
        const countdown = document.getElementById('countdown');
        const time = document.querySelector('#ends-at time');
        const extended = document.getElementById('extended');
        const soft = document.getElementById('soft-close');
        return {
            visible: !box.hidden,
            countdown: countdown.textContent,
            endsAt: time ? time.getAttribute('datetime') : null,
            endsText: document.getElementById('ends-at').textContent,
            extended: extended.hidden ? null : extended.textContent,
            soft: soft.hidden ? null : soft.textContent,
            // A per-second countdown must not be read out every second.
            inLiveRegion: countdown.closest('[aria-live]:not([aria-live="off"]), [role="status"], [role="alert"], [role="log"]') !== null,
            role: countdown.getAttribute('role'),
        };
    });
    t.left = secondsLeft(t.countdown);
    return t;
}

// Routes the page's WebSocket through the test (Playwright's routeWebSocket, connected to the real
// server): everything is forwarded, except the server's messages for which `hold(msg)` is true and,
// with `holdClose`, the server's close: those wait for release(), which sends them in order.
async function interceptSocket(page) {
    const ctl = { hold: null, holdClose: false, held: [], heldAt: [], close: null, route: null };
    await page.routeWebSocket(/\/ws\/bid\//, (ws) => {
        const server = ws.connectToServer();
        ctl.route = ws;
        server.onMessage((message) => {
            let msg = null;
            try {
                msg = JSON.parse(String(message));
            } catch (error) { /* not JSON: forwarded */ }
            if (ctl.hold && msg && ctl.hold(msg)) {
                ctl.held.push(message);
                ctl.heldAt.push({ type: msg.type, at: Date.now() });
                return;
            }
            ws.send(message);
        });
        server.onClose((code, reason) => {
            if (ctl.holdClose) {
                ctl.close = { code, reason };
            } else {
                ws.close({ code, reason }).catch(() => {});
            }
        });
    });
    ctl.release = () => {
        const held = ctl.held;
        ctl.held = [];
        ctl.hold = null;
        ctl.holdClose = false;
        for (const message of held) {
            ctl.route.send(message);
        }
        if (ctl.close) {
            ctl.route.close(ctl.close).catch(() => {});
            ctl.close = null;
        }
    };
    return ctl;
}

// Another client: a plain WebSocket opened by `helper` (a page of another pod) places one bid and returns
// its reply and every message it got ({reply, got}).
async function otherClientBid(helper, id, name, price) {
    return helper.evaluate(({ id, name, price }) => new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/ws/bid/${id}`);
        const got = [];
        const ref = `other-${Date.now()}`;
        const timer = setTimeout(() => {
            ws.close();
            resolve({ reply: null, got, why: 'no reply within 5 s' });
        }, 5000);
        ws.onmessage = (event) => {
            const msg = JSON.parse(event.data);
            got.push(msg);
            if (msg.type === 'initial_state') {
                ws.send(JSON.stringify({ type: 'bid', name, price, ref }));
            } else if (msg.type === 'ping') {
                ws.send('{"type":"pong"}');
            } else if ((msg.type === 'bid_accepted' || msg.type === 'error') && msg.ref === ref) {
                clearTimeout(timer);
                ws.close();
                resolve({ reply: msg, got });
            }
        };
        ws.onclose = (event) => {
            clearTimeout(timer);
            resolve({ reply: null, got, why: `closed ${event.code}` });
        };
    }), { id, name, price });
}

// The device's clock, shifted by `shift` ms (Date.now() and new Date() only; the page's timers run
// normally): a phone whose clock is wrong.
function shiftClock(shift) {
    const RealDate = Date;
    class ShiftedDate extends RealDate {
        constructor(...args) {
            if (args.length === 0) {
                super(RealDate.now() + shift);
            } else {
                super(...args);
            }
        }

        static now() {
            return RealDate.now() + shift;
        }
    }
    window.Date = ShiftedDate;
}

// ------------------------------------------------------------------------------------ the cases

const shared = {};  // pages and auctions that later cases reuse
const notes = {};   // case name -> measurements worth reporting

const cases = [];
function testCase(name, fn) {
    cases.push({ name, fn });
}

testCase('served_pages_match_web_dir', async () => {
    // The binary embeds web/ when it is built: a stale build serves old pages (rebuild it).
    const files = fs.readdirSync(WEB_DIR).filter((f) => fs.statSync(path.join(WEB_DIR, f)).isFile());
    const types = { '.html': 'text/html', '.css': 'text/css', '.js': 'javascript', '.svg': 'image/svg+xml' };
    const routes = files.filter((f) => f !== 'index.html' && f !== 'bid.html').map((f) => [`/static/${f}`, f]);
    routes.push(['/', 'index.html'], ['/bid/1', 'bid.html'], ['/bid/123456789', 'bid.html']);
    const stale = [];
    for (const [route, file] of routes) {
        const response = await fetch(`${podA.url}${route}`);
        check(response.status === 200, `GET ${route} must answer 200 (web/${file}), got ${response.status}`);
        const body = Buffer.from(await response.arrayBuffer());
        if (!body.equals(fs.readFileSync(path.join(WEB_DIR, file)))) {
            stale.push(route);
        }
        const type = response.headers.get('content-type') || '';
        const want = types[path.extname(file)];
        check(!want || type.includes(want), `GET ${route}: content type "${type}" must name ${want}`);
        check(response.headers.get('x-content-type-options') === 'nosniff', `GET ${route}: X-Content-Type-Options nosniff`);
        check((response.headers.get('content-security-policy') || '').includes("script-src 'self'"), `GET ${route}: the Content-Security-Policy`);
    }
    check(stale.length === 0, `the server serves other content than web/ for ${stale.join(', ')}: `
        + 'the binary was built from an older web/ (rebuild: scripts/build.sh)');
});

testCase('money_helpers', async () => {
    const page = await newPage();
    await openAuction(page, podA.url, 1);
    const results = await page.evaluate(() => {
        const B = window.Bidding;
        return {
            parse: [B.parseCents('123.66'), B.parseCents('0.05'), B.parseCents('100'), B.parseCents('1e3'), B.parseCents('-1.00')],
            format: [B.formatCents(12366), B.formatCents(5), B.formatCents(100000)],
            next: [B.nextBidCents(0), B.nextBidCents(9999), B.nextBidCents(10000), B.nextBidCents(99999),
                B.nextBidCents(100000), B.nextBidCents(123456), B.nextBidCents(9999999990), B.nextBidCents(9999999999)],
            input: [B.normalizePriceInput(' 125 '), B.normalizePriceInput('125,5'), B.normalizePriceInput('+1.25'),
                B.normalizePriceInput('abc'), B.normalizePriceInput('1e3'), B.normalizePriceInput('')],
            delays: [0, 1, 2, 3, 4, 5, 6, 10, 30].map((attempt) => {
                const s = window.BiddingPage.state;
                const saved = s.attempt;
                s.attempt = attempt;
                const d = [];
                for (let i = 0; i < 50; i += 1) {
                    d.push(window.BiddingPage.reconnectDelay());
                }
                s.attempt = saved;
                return [Math.min(...d), Math.max(...d)];
            }),
        };
    });
    const expect = (got, want, what) => check(JSON.stringify(got) === JSON.stringify(want),
        `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    expect(results.parse, [12366, 5, 10000, null, null], 'parseCents');
    expect(results.format, ['123.66', '0.05', '1000.00'], 'formatCents');
    expect(results.next, [100, 10099, 10500, 100499, 101000, 124756, 9999999999, null], 'nextBidCents');
    expect(results.input, ['125', '125.5', '+1.25', null, null, null], 'normalizePriceInput');
    for (const [min, max] of results.delays) {
        check(min >= 500 && max <= 10000, `reconnect delays must stay within 0.5 s .. 10 s: ${JSON.stringify(results.delays)}`);
    }
    check(results.delays[0][1] <= 700 && results.delays[3][0] >= 3000 && results.delays[8][0] >= 7000,
        `reconnect delays must grow from ~0.5 s to ~10 s: ${JSON.stringify(results.delays)}`);
    await page.context().close();
});

testCase('live_bid_across_pods', async () => {
    const pageA = await newPage();
    const pageB = await newPage();
    shared.pageA = pageA;
    shared.pageB = pageB;
    const response = await openAuction(pageA, podA.url, 1);
    const csp = response.headers()['content-security-policy'] || '';
    check(csp.includes("script-src 'self'"), `the page must be served with the Content-Security-Policy, got "${csp}"`);
    await openAuction(pageB, podB.url, 1);

    check(await text(pageA, '#item-name') === 'Vintage Camera', `the item name must be shown: "${await text(pageA, '#item-name')}"`);
    check(await text(pageA, '#current-price') === '100.00', 'the current price must be the initial price, 100.00');
    check(await pageA.isVisible('#history-empty'), 'an auction without bids must say "No bids yet"');
    const suggested = await pageA.inputValue('#bid-price');
    check(suggested === '105.00', `the price must be pre-filled with 100.00 + 5.00 = 105.00, got "${suggested}"`);

    // A bid on pod A reaches the page on pod B within a second, highlighted.
    const started = Date.now();
    await placeBid(pageA, 'alice');
    const seen = await waitFor(pageB, () => {
        const price = document.getElementById('current-price');
        const first = document.querySelector('#history li');
        if (price.textContent !== '105.00' || !first || !first.textContent.includes('alice')) {
            return null;
        }
        return { flash: price.classList.contains('flash'), rowFlash: first.classList.contains('flash') };
    }, null, "alice's bid of 105.00 on the page connected to pod B", 3000);
    const elapsed = Date.now() - started;
    check(elapsed < 1000, `the new price must appear on the other pod's page within 1 s, took ${elapsed} ms`);
    notes.live_bid_across_pods = { a_to_b_ms: elapsed };
    check(seen.flash && seen.rowFlash, `the new price and its row must be highlighted (class "flash"): ${JSON.stringify(seen)}`);
    check(await pageB.isHidden('#history-empty'), '"No bids yet" must go away once there is a bid');

    const accepted = await waitAccepted(pageA, "alice's bid");
    check(accepted.text.includes('105.00'), `the bidder must be told the bid was accepted: "${accepted.text}"`);
    check(await pageA.locator('#history li').first().evaluate((li) => li.classList.contains('mine')),
        "the bidder's own accepted bid must be marked as theirs");
    check((await text(pageA, '#leader')).includes('You are the highest bidder'), 'the bidder must be told they lead');
    check(await pageA.inputValue('#bid-price') === '110.00', 'after the bid, the next amount must be suggested (110.00)');

    // And the other way round: pod B -> pod A.
    const started2 = Date.now();
    await placeBid(pageB, 'bob');
    await waitPrice(pageA, '110.00', "bob's bid of 110.00 on the page connected to pod A", 3000);
    const elapsed2 = Date.now() - started2;
    check(elapsed2 < 1000, `pod B's bid must appear on pod A's page within 1 s, took ${elapsed2} ms`);
    notes.live_bid_across_pods.b_to_a_ms = elapsed2;
    await waitAccepted(pageB, "bob's bid");
    check((await text(pageA, '#leader')) === 'Highest bidder: bob', `the leader must be shown: "${await text(pageA, '#leader')}"`);

    // A few more bids for a history worth looking at.
    for (const [page, name] of [[pageA, 'alice'], [pageB, 'dora'], [pageA, 'alice']]) {
        const before = await text(page, '#current-price');
        await placeBid(page, name);
        await waitAccepted(page, `${name}'s bid after ${before}`);
    }
    await waitPrice(pageB, '125.00', 'the fifth bid (125.00) on pod B');

    // The name is remembered (localStorage); a reload shows the whole history, newest first.
    await pageA.reload();
    await waitLive(pageA, 'pod A after a reload');
    check(await pageA.inputValue('#bidder-name') === 'alice', 'the bidder name must be remembered across reloads');
    const history = await historyOf(pageA);
    check(JSON.stringify(history.map((h) => [h.price, h.bidder])) === JSON.stringify(
        [['125.00', 'alice'], ['120.00', 'dora'], ['115.00', 'alice'], ['110.00', 'bob'], ['105.00', 'alice']]),
    `the history must list every bid, newest first: ${JSON.stringify(history)}`);
    check(history.every((h, i) => i === 0 || history[i - 1].seq > h.seq), 'the history must be ordered by seq, newest first');
    const times = await pageA.$$eval('#history time', (nodes) => nodes.map((t) => [t.getAttribute('datetime'), t.textContent]));
    check(times.every(([iso, shown]) => /^\d{4}-\d\d-\d\dT/.test(iso) && /\d\d:\d\d/.test(shown)),
        `each bid must show its time: ${JSON.stringify(times)}`);
    const other = await historyOf(pageB);
    check(JSON.stringify(other) === JSON.stringify(history), 'both pages must show the same history');

    // A clean picture of /bid/1 with history (copied to docs/screenshot-bid.png by hand).
    await placeBid(pageB, 'bob');
    await waitAccepted(pageB, "bob's last bid");
    await waitPrice(pageA, '130.00', "bob's 130.00 on pod A");
    await pageA.waitForTimeout(1700); // let the highlight fade
    await pageB.waitForTimeout(0);
    await shot(pageB, 'bid-1-desktop');
});

testCase('price_too_low', async () => {
    const page = shared.pageA;
    check(page, 'needs the page of live_bid_across_pods');
    const current = await text(page, '#current-price');
    check(current === '130.00', `the price must be 130.00 here, is ${current}`);
    await placeBid(page, 'alice', '101');
    const message = await waitFor(page, () => {
        const m = document.getElementById('form-message');
        return m.dataset.kind === 'error' ? m.textContent : null;
    }, null, 'the error for a too-low bid');
    check(message.includes(`Someone bid ${current} already`) && message.includes('bid more than that'),
        `a too-low bid must be explained with the current price (${current}): "${message}"`);
    check(await page.inputValue('#bid-price') === '135.00', 'after a too-low bid the next sensible amount must be filled in');
    await shot(page, 'bid-1-too-low');

    // Not a number: said before anything is sent.
    await placeBid(page, 'alice', 'abc');
    const local = await text(page, '#form-message');
    check(/Enter the amount as a number/.test(local), `a non-number must be explained: "${local}"`);
    check(await page.getAttribute('#bid-price', 'aria-invalid') === 'true', 'the bad field must be marked aria-invalid');

    // The server's invalid_price (0 is not above 0).
    await placeBid(page, 'alice', '0');
    const invalid = await waitFor(page, () => {
        const m = document.getElementById('form-message');
        return m.dataset.kind === 'error' && /not valid/.test(m.textContent) ? m.textContent : null;
    }, null, 'the error for a price of 0');
    check(invalid.includes('above 0'), `invalid_price must be explained: "${invalid}"`);

    // No name.
    await placeBid(page, '   ', '500');
    const noName = await text(page, '#form-message');
    check(/enter your name/i.test(noName), `a missing name must be explained: "${noName}"`);
    check(await page.evaluate(() => document.activeElement.id) === 'bidder-name', 'the name field must get the focus');
    await page.fill('#bidder-name', 'alice');
    check(await text(page, '#current-price') === '130.00', 'refused bids must not change the price');
});

testCase('hostile_names_are_text', async () => {
    const lot = await createAuction(HTML_ITEM, '10.00');
    shared.htmlLot = lot;
    const pageA = await newPage();
    const pageB = await newPage();
    await openAuction(pageA, podA.url, lot.id);
    await openAuction(pageB, podB.url, lot.id);
    check(await text(pageB, '#item-name') === HTML_ITEM, `an item name must be shown as text: "${await text(pageB, '#item-name')}"`);
    check((await pageB.title()).startsWith(HTML_ITEM), 'the title must carry the item name as text');

    await placeBid(pageA, XSS_NAME);
    await waitAccepted(pageA, 'the bid of the <img> bidder');
    await waitPrice(pageB, '11.00', "the <img> bidder's 11.00 on the other pod");
    await pageB.waitForTimeout(300); // an onerror handler, if an <img> had been made, would fire now
    for (const page of [pageA, pageB]) {
        const found = await page.evaluate(() => ({
            images: document.querySelectorAll('main img, #history img, #leader img, #item-name img, b').length,
            bidder: document.querySelector('#history li .h-bidder').textContent,
            leader: document.getElementById('leader').textContent,
        }));
        check(found.images === 0, `no element may be made from a name: found ${found.images} <img>/<b> in the page`);
        check(found.bidder.includes(XSS_NAME), `the bidder name must appear literally: "${found.bidder}"`);
        check(found.leader.includes(XSS_NAME), `the leader line must show the name literally: "${found.leader}"`);
    }
    check(dialogs.length === 0, `no dialog may open: ${dialogs.join('; ')}`);
    await shot(pageB, 'bid-hostile-names');
    await pageA.context().close();
    await pageB.context().close();
});

testCase('heartbeat_is_answered', async () => {
    // The pods ping every second and drop a client after 3 s without a pong: the page must stay.
    const page = await newPage();
    await openAuction(page, podA.url, 2);
    const controlClose = page.evaluate(() => new Promise((resolve) => {
        // A control client that never answers: the server must drop it (so the 3 s limit is real).
        const ws = new WebSocket(`ws://${location.host}/ws/bid/2`);
        const timer = setTimeout(() => resolve({ code: 'still open after 8 s' }), 8000);
        ws.onclose = (event) => { clearTimeout(timer); resolve({ code: event.code, reason: event.reason }); };
    }));
    await page.waitForTimeout(5000);
    const control = await controlClose;
    check(control.code === 1000, `a client that does not answer pings must be dropped (close 1000): ${JSON.stringify(control)}`);
    const st = await page.evaluate(() => ({ urls: window.BiddingPage.state.urls.length,
        codes: window.BiddingPage.state.closeCodes, live: document.getElementById('conn').dataset.state }));
    check(st.urls === 1 && st.codes.length === 0 && st.live === 'live',
        `the page must answer pings and keep its one connection: ${JSON.stringify(st)}`);
    await page.context().close();
});

testCase('reconnect_after_network_loss', async () => {
    const proxy = await new TcpProxy(portOf(podA.url)).listen();
    shared.proxy = proxy;
    const watcher = await newPage();
    const bidder = shared.pageB;
    check(bidder, 'needs the page of live_bid_across_pods');
    await openAuction(watcher, proxy.url, 2);
    await openAuction(bidder, podB.url, 2);
    await placeBid(watcher, 'erin');
    await waitAccepted(watcher, "erin's bid through the proxy");
    await waitPrice(bidder, '205.00', "erin's bid on pod B");

    // The network vanishes; three bids happen meanwhile.
    proxy.offline = true;
    proxy.cutAll();
    const lost = await waitFor(watcher, () => {
        const conn = document.getElementById('conn');
        return conn.dataset.state === 'offline' ? conn.textContent : null;
    }, null, 'the page noticing the lost connection');
    check(/reconnecting in \d+ s/i.test(lost), `the connection state must say it reconnects: "${lost}"`);
    const missedFrom = await watcher.evaluate(() => window.BiddingPage.state.lastSeq);
    for (let i = 0; i < 3; i += 1) {
        await placeBid(bidder, 'bob');
        await waitAccepted(bidder, `bob's bid ${i + 1} while the other page is offline`);
    }
    await shot(watcher, 'bid-2-offline', false);
    proxy.offline = false;
    await waitLive(watcher, 'the page after the network came back', 15000);
    await waitPrice(watcher, await text(bidder, '#current-price'), 'the missed bids after reconnecting');
    const [seen, truth] = [await historyOf(watcher), await historyOf(bidder)];
    check(JSON.stringify(seen) === JSON.stringify(truth),
        `after reconnecting, the history must be complete and in order:\n  page:  ${JSON.stringify(seen)}\n  truth: ${JSON.stringify(truth)}`);
    const urls = await watcher.evaluate(() => window.BiddingPage.state.urls);
    const last = urls[urls.length - 1];
    check(last.endsWith(`?since=${missedFrom}`), `the page must reconnect with ?since=${missedFrom}: ${JSON.stringify(urls)}`);
    shared.watcher = watcher;
});

testCase('reconnect_after_server_shutdown', async () => {
    const proxy = shared.proxy;
    const bidder = shared.pageB;
    check(proxy && bidder, 'needs reconnect_after_network_loss');
    const watcher = await newPage();
    proxy.targetPort = portOf(podC.url);
    await openAuction(watcher, proxy.url, 2);
    const before = await watcher.evaluate(() => window.BiddingPage.state.urls.length);

    // Pod C drains: server_shutdown, then close 1012. New connections are refused meanwhile.
    proxy.offline = true;
    process.kill(podC.pid, 'SIGTERM');
    await waitFor(watcher, () => window.BiddingPage.state.closeCodes.includes(1012), null,
        'close 1012 from the draining pod', 10000);
    for (let i = 0; i < 2; i += 1) {
        await placeBid(bidder, 'bob');
        await waitAccepted(bidder, `bob's bid ${i + 1} while pod C is gone`);
    }
    proxy.targetPort = portOf(podA.url);
    proxy.offline = false;
    await waitLive(watcher, 'the page after its pod shut down', 15000);
    await waitPrice(watcher, await text(bidder, '#current-price'), 'the bids made while the page had no pod');
    const [seen, truth] = [await historyOf(watcher), await historyOf(bidder)];
    check(JSON.stringify(seen) === JSON.stringify(truth),
        `after the pod shut down and the page reconnected elsewhere, the history must be complete:\n  page:  ${JSON.stringify(seen)}\n  truth: ${JSON.stringify(truth)}`);
    const urls = await watcher.evaluate(() => window.BiddingPage.state.urls);
    check(urls.length > before && /\?since=\d+$/.test(urls[urls.length - 1]), `the page must reconnect with ?since=: ${JSON.stringify(urls)}`);
    // The page keeps working on its new pod.
    await placeBid(watcher, 'erin');
    await waitAccepted(watcher, "erin's bid after the reconnect");
    await watcher.context().close();
});

testCase('signed_link_and_bad_token', async () => {
    // A bidder token in the page's link goes on to the WebSocket: the server bids in its name.
    const token = (await cli('token', '--bidder', 'Signed Sam')).trim().split('\n').pop();
    const page = await newPage();
    await page.goto(`${podB.url}/bid/2?token=${encodeURIComponent(token)}`);
    await waitLive(page, 'the page opened with a bidder token');
    check(await page.inputValue('#bidder-name') === 'Signed Sam', 'the name field must show the token\'s name');
    check(await page.evaluate(() => document.getElementById('bidder-name').readOnly), 'the signed name must be read-only');
    const before = await text(page, '#current-price');
    await placeBid(page);
    await waitAccepted(page, 'the signed bid');
    const first = (await historyOf(page))[0];
    check(first.bidder === 'Signed Sam' && first.price !== before, `the signed bid must be stored under the token's name: ${JSON.stringify(first)}`);

    // A forged token: close 4001, said in words, no reconnect loop.
    await page.goto(`${podB.url}/bid/2?token=not.a.token`);
    const said = await waitFor(page, () => {
        const c = document.getElementById('conn');
        return c.dataset.state === 'closed' ? document.getElementById('form-message').textContent : null;
    }, null, 'the page refusing a forged token');
    check(/token is not valid/.test(said), `a forged token must be explained: "${said}"`);
    await page.waitForTimeout(1200);
    const st = await page.evaluate(() => ({ urls: window.BiddingPage.state.urls.length, codes: window.BiddingPage.state.closeCodes }));
    check(st.urls === 1 && st.codes[0] === 4001, `a refused token must not be retried: ${JSON.stringify(st)}`);
    check(await page.evaluate(() => document.getElementById('bid-submit').disabled), 'the form must be disabled');
    await shot(page, 'bid-bad-token');
    await page.context().close();
});

testCase('closed_auction_shows_winner', async () => {
    const lot = await createAuction('Closing Lot', '50.00');
    const pageB = await newPage();
    const pageA = await newPage();
    await openAuction(pageB, podB.url, lot.id);
    await openAuction(pageA, podA.url, lot.id);
    await placeBid(pageB, 'carol');
    await waitAccepted(pageB, "carol's bid");
    await waitPrice(pageA, '51.00', "carol's bid on pod A");

    await cli('bid', 'close', String(lot.id));
    for (const page of [pageA, pageB]) {
        const banner = await waitFor(page, () => {
            const b = document.getElementById('closed-banner');
            return b.hidden ? null : b.textContent.trim();
        }, null, 'the closed banner after `bid close`', 5000);
        check(banner === 'Sold to carol for 51.00', `a closed auction must show its winner: "${banner}"`);
        const form = await page.evaluate(() => ({
            fieldset: document.getElementById('bid-fieldset').disabled,
            submit: document.getElementById('bid-submit').disabled,
            badge: document.getElementById('auction-status').textContent,
            conn: document.getElementById('conn').dataset.state,
        }));
        check(form.fieldset && form.submit && form.badge === 'Closed' && form.conn === 'closed',
            `a closed auction must disable the form and say Closed: ${JSON.stringify(form)}`);
    }
    await shot(pageA, 'bid-closed-live');
    // No reconnect after 4003.
    await pageA.waitForTimeout(1200);
    const urls = await pageA.evaluate(() => window.BiddingPage.state.urls.length);
    check(urls === 1, `a closed auction must not be reconnected to (${urls} connections)`);

    // Loading a closed auction's page: the WebSocket says 4003, the page reads the rest over HTTP.
    await pageA.goto(`${podA.url}/bid/${lot.id}`);
    const banner = await waitFor(pageA, () => {
        const b = document.getElementById('closed-banner');
        return b.hidden ? null : b.textContent.trim();
    }, null, 'the closed banner of a closed auction loaded afresh');
    check(banner === 'Sold to carol for 51.00', `a closed auction loaded afresh must show its winner: "${banner}"`);
    await waitFor(pageA, () => document.querySelectorAll('#history li').length === 1, null, 'the history of the closed auction');
    check(await text(pageA, '#item-name') === 'Closing Lot', 'the closed auction must show its name');
    check(await text(pageA, '#current-price') === '51.00', 'the closed auction must show its final price');
    check(await pageA.evaluate(() => document.getElementById('bid-fieldset').disabled), 'the form of a closed auction must be disabled');
    await shot(pageA, 'bid-closed-loaded');

    // The seeded auction 3 is closed without bids.
    await pageB.goto(`${podB.url}/bid/3`);
    const none = await waitFor(pageB, () => {
        const b = document.getElementById('closed-banner');
        return b.hidden ? null : b.textContent.trim();
    }, null, 'the closed banner of auction 3');
    check(none === 'Closed without bids', `a closed auction without bids must say so: "${none}"`);
    check(await text(pageB, '#item-name') === 'Rare Book', 'auction 3 is the Rare Book');
    check(await pageB.isVisible('#history-empty'), 'auction 3 has no bids');
    await shot(pageB, 'bid-3-closed-without-bids');

    // No such auction: 4004.
    await pageB.goto(`${podB.url}/bid/987654321`);
    await waitFor(pageB, () => !document.getElementById('not-found').hidden, null, '"No such auction"');
    check(await text(pageB, '#item-name') === 'No such auction', 'an unknown auction must say "No such auction"');
    check(await pageB.isHidden('#bid-form'), 'an unknown auction has no form');
    await shot(pageB, 'bid-not-found');
    await pageA.context().close();
    await pageB.context().close();
    shared.closedLot = lot;
});

testCase('countdown_extended_by_another_client', async () => {
    // A 6 s auction with a soft close: a bid in its last 4 s moves the end to 4 s after that bid.
    const lot = await createAuctionOverApi({ name: 'Soft Close Clock', initial_price: '5.00', duration: 6, extend_window: 4, extend_by: 4 });
    check(typeof lot.ends_at === 'string' && lot.extend_window === 4 && lot.extend_by === 4,
        `POST /api/bids must return the end and the soft close: ${JSON.stringify(lot)}`);
    const page = await newPage();
    const socket = await interceptSocket(page);
    // The server's bid_closed (and its close 4003) waits here until the test has seen "Ending…".
    socket.hold = (msg) => msg.type === 'bid_closed';
    socket.holdClose = true;
    const helper = await newPage();
    await helper.goto(`${podB.url}/`); // any page of pod B: its origin opens the WebSocket
    await openAuction(page, podA.url, lot.id);
    await page.evaluate(() => {
        const announcer = document.getElementById('announcer');
        window.announced = [];
        new MutationObserver(() => window.announced.push(announcer.textContent))
            .observe(announcer, { childList: true, characterData: true, subtree: true });
    });

    const first = await timingOf(page);
    check(first.visible && first.left !== null && first.left >= 1 && first.left <= 6,
        `an auction with an end must show a countdown of at most 6 s: ${JSON.stringify(first)}`);
    check(first.endsAt === lot.ends_at && /^Ends at /.test(first.endsText),
        `the end time must be shown (<time datetime=${lot.ends_at}>): ${JSON.stringify(first)}`);
    check(first.soft && first.soft.includes('last 4 s') && first.soft.includes('4 s after'),
        `the soft-close rule must be shown: ${JSON.stringify(first)}`);
    check(!first.inLiveRegion && first.role === 'timer', `the countdown must be a timer outside every live region: ${JSON.stringify(first)}`);
    await until(async () => {
        const t = await timingOf(page);
        return [t.left !== null && t.left < first.left, t];
    }, `the countdown going down from ${first.countdown}`, 2500);

    // Another client, on pod B, bids inside the window (2 s or less left).
    const before = await until(async () => {
        const t = await timingOf(page);
        return [t.left !== null && t.left <= 2, t];
    }, 'the countdown reaching 2 s', 6000, 20);
    const bid = await otherClientBid(helper, lot.id, 'Olga Other', '6.00');
    check(bid.reply && bid.reply.type === 'bid_accepted', `the other client's late bid must be accepted: ${JSON.stringify(bid)}`);
    const newBid = bid.got.find((m) => m.type === 'new_bid' && m.seq === bid.reply.seq);
    check(newBid && typeof newBid.ends_at === 'string' && Date.parse(newBid.ends_at) > Date.parse(lot.ends_at),
        `the late bid's new_bid must carry the later end: ${JSON.stringify(newBid)} (the end was ${lot.ends_at})`);
    const after = await until(async () => {
        const t = await timingOf(page);
        return [t.endsAt === newBid.ends_at && t.left !== null && t.extended !== null, t];
    }, `the page following the extension to ${newBid.ends_at}`, 2000, 20);
    check(after.left > before.left, `the countdown must jump up after the extension: ${before.countdown} -> ${after.countdown}`);
    check(after.extended.includes('Extended'), `the extension must be said: ${JSON.stringify(after)}`);
    check(await text(page, '#current-price') === '6.00', 'the late bid must be shown');
    const announced = await page.evaluate(() => window.announced);
    check(announced.some((a) => /extended/i.test(a)), `the extension must be announced: ${JSON.stringify(announced)}`);
    await shot(page, 'bid-timed-extended');

    // At 0: "Ending…", the form still usable (the server decides), until the server's bid_closed.
    await until(async () => {
        const t = await timingOf(page);
        return [t.countdown === 'Ending…', t];
    }, '"Ending…" once the time is up', 6000, 20);
    const form = await page.evaluate(() => ({
        fieldset: document.getElementById('bid-fieldset').disabled,
        submit: document.getElementById('bid-submit').disabled,
        banner: !document.getElementById('closed-banner').hidden,
    }));
    check(!form.fieldset && !form.submit && !form.banner, `"Ending…" must not close the page by itself: ${JSON.stringify(form)}`);
    await until(async () => [socket.heldAt.length > 0, socket.heldAt], "the server's bid_closed", 3000);
    const closeLag = socket.heldAt[0].at - Date.parse(newBid.ends_at);
    notes.countdown_extended_by_another_client = { bid_closed_after_end_ms: closeLag, jump: `${before.countdown} -> ${after.countdown}` };
    check(closeLag <= 1500, `the server must close a timed auction within 1 s of its end: bid_closed came ${closeLag} ms after ${newBid.ends_at}`);
    check((await timingOf(page)).countdown === 'Ending…', 'the page must keep saying "Ending…" until bid_closed arrives');
    socket.release();
    const banner = await waitFor(page, () => {
        const b = document.getElementById('closed-banner');
        return b.hidden ? null : b.textContent.trim();
    }, null, 'the closed banner after the end', 5000);
    check(banner === 'Ended — sold to Olga Other for 6.00', `the ended auction must show its winner and final price: "${banner}"`);
    const ended = await timingOf(page);
    check(ended.countdown === 'Ended' && ended.extended === null, `the countdown must say "Ended": ${JSON.stringify(ended)}`);
    check(await text(page, '#leader') === 'Winner: Olga Other', `the winner must be shown: "${await text(page, '#leader')}"`);
    check(await page.evaluate(() => document.getElementById('bid-fieldset').disabled), 'the form of an ended auction must be disabled');
    const said = await page.evaluate(() => window.announced);
    check(said.some((a) => /ending/i.test(a)) && said.some((a) => /Ended/.test(a)), `the end must be announced: ${JSON.stringify(said)}`);
    await shot(page, 'bid-timed-ended');

    // Loaded afresh after the end: close 4003 at once, the rest over HTTP.
    await page.goto(`${podA.url}/bid/${lot.id}`);
    const again = await waitFor(page, () => {
        const b = document.getElementById('closed-banner');
        return b.hidden ? null : b.textContent.trim();
    }, null, 'the closed banner of the ended auction loaded afresh');
    check(again === 'Ended — sold to Olga Other for 6.00', `the ended auction loaded afresh must say so: "${again}"`);
    const reloaded = await timingOf(page);
    check(reloaded.countdown === 'Ended' && reloaded.endsAt === newBid.ends_at && /^Ended at /.test(reloaded.endsText),
        `the ended auction loaded afresh must show when it ended: ${JSON.stringify(reloaded)}`);
    await page.context().close();
    await helper.context().close();
});

testCase('min_bid_shown', async () => {
    const lot = await createAuctionOverApi({ name: 'Step Lot', initial_price: '100.00', min_increment: '1.00' });
    check(lot.min_increment === '1.00' && lot.min_price === '101.00' && lot.ends_at === null,
        `POST /api/bids must return min_increment 1.00, min_price 101.00 and no end: ${JSON.stringify(lot)}`);
    const page = await newPage();
    const socket = await interceptSocket(page);
    const helper = await newPage();
    await helper.goto(`${podB.url}/`); // any page of pod B: its origin opens the WebSocket
    await openAuction(page, podA.url, lot.id);
    const hint = () => text(page, '#price-hint');
    check((await hint()).includes('Minimum bid: 101.00') && (await hint()).includes('1.00'),
        `the minimum bid and the increment must be shown: "${await hint()}"`);
    check(await page.getAttribute('#bid-price', 'placeholder') === '101.00', 'the price field\'s placeholder must be the minimum bid');
    check(await page.isHidden('#timing'), 'an auction without an end must show no countdown');

    await placeBid(page, 'Mia', '101.00');
    await waitAccepted(page, 'a bid of exactly the minimum (101.00)');
    await waitFor(page, () => document.getElementById('price-hint').textContent.includes('Minimum bid: 102.00'), null,
        'the minimum after 101.00 (102.00)');

    await placeBid(page, 'Mia', '101.99');
    const refused = await waitFor(page, () => {
        const m = document.getElementById('form-message');
        return m.dataset.kind === 'error' ? m.textContent : null;
    }, null, 'the refusal of 101.99');
    check(refused.includes('102.00'), `a bid below the minimum must be explained with the minimum: "${refused}"`);
    check((await hint()).includes('Minimum bid: 102.00'), `the minimum must stay shown: "${await hint()}"`);
    check(await text(page, '#current-price') === '101.00', 'a refused bid must not change the price');

    // The minimum from the error itself: another client bids 110.00 on pod B, and the test holds
    // that new_bid back from the page; the page's bid of 102.00 is refused with min_price 111.00.
    socket.hold = (msg) => msg.type === 'new_bid';
    const other = await otherClientBid(helper, lot.id, 'Ned', '110.00');
    check(other.reply && other.reply.type === 'bid_accepted', `the other client's 110.00 must be accepted: ${JSON.stringify(other)}`);
    await until(async () => [socket.held.length > 0, socket.held.length], 'the new_bid of 110.00 on its way to the page', 3000);
    await placeBid(page, 'Mia', '102.00');
    const raced = await waitFor(page, () => {
        const m = document.getElementById('form-message');
        return m.dataset.kind === 'error' && m.textContent.includes('111.00') ? m.textContent : null;
    }, null, 'the refusal of 102.00 naming the minimum 111.00');
    check((await hint()).includes('Minimum bid: 111.00'), `the minimum must follow the error's min_price: "${await hint()}"`);
    check(await text(page, '#current-price') === '101.00', 'the new_bid was held back: the minimum came from the error');
    const suggested = await page.inputValue('#bid-price');
    check(Number(suggested) >= 111, `the suggested amount must be at least the minimum: "${suggested}" (${raced})`);
    socket.release();
    await waitPrice(page, '110.00', 'the held new_bid once released');
    check((await hint()).includes('Minimum bid: 111.00'), `the minimum after 110.00: "${await hint()}"`);
    await shot(page, 'bid-min-increment');
    await page.context().close();
    await helper.context().close();
});

testCase('countdown_uses_server_clock', async () => {
    // A phone whose clock is 10 minutes slow, and one 10 minutes fast: both must count the real
    // minute left (from the server's server_time), not 11 minutes or "Ending…".
    const lot = await createAuctionOverApi({ name: 'Clock Check', duration: 60 });
    const end = Date.parse(lot.ends_at);
    check(Math.abs(end - Date.now() - 60000) < 3000, `a 60 s auction must end in about 60 s: ${lot.ends_at}`);
    for (const shift of [-600000, 600000]) {
        const page = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
        await page.addInitScript(shiftClock, shift);
        await openAuction(page, podA.url, lot.id);
        const device = await page.evaluate(() => [Date.now(), new Date().getTime()]);
        check(device.every((t) => Math.abs(t - Date.now() - shift) < 5000),
            `the page's clock must be shifted by ${shift} ms (it is ${device.map((t) => t - Date.now())})`);
        for (let i = 0; i < 2; i += 1) {
            const t = await timingOf(page);
            const real = (end - Date.now()) / 1000;
            check(t.left !== null && Math.abs(t.left - real) <= 2,
                `with the device clock ${shift / 60000} min off, the countdown must show the real ${real.toFixed(1)} s left: ${JSON.stringify(t)}`);
            check(t.endsAt === lot.ends_at, `the end time must be the server's: ${JSON.stringify(t)}`);
            await page.waitForTimeout(1200); // a ping (every second here) updates the offset
        }
        const offset = await page.evaluate(() => window.BiddingPage.state.clockOffset);
        check(Math.abs(offset + shift) < 2000, `the page's clock offset must undo the device's error: ${offset} for a shift of ${shift}`);
        const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        check(wide <= 0, `the countdown must fit a phone (${wide}px too wide)`);
        await shot(page, `bid-timed-phone-clock${shift < 0 ? '-slow' : '-fast'}`);
        await page.context().close();
    }
});

testCase('list_orders_by_end', async () => {
    const last = await createAuctionOverApi({ name: 'Ends Last', duration: 1800 });
    const firstLot = await createAuctionOverApi({ name: 'Ends First', duration: 240 });
    const second = await createAuctionOverApi({ name: 'Ends Second', duration: 900 });
    const page = await newPage();
    await page.goto(`${podA.url}/`);
    const api = await getJSON(`${podA.url}/api/bids?limit=100`);
    await waitFor(page, (n) => document.querySelectorAll('#auctions li').length === n, api.total, `${api.total} auctions listed`);
    const listed = () => page.$$eval('#auctions li', (lis) => lis.map((li) => ({
        id: Number(li.dataset.id),
        status: li.dataset.status,
        endsAt: li.dataset.endsAt || null,
        left: li.querySelector('.a-left') ? li.querySelector('.a-left').textContent : null,
        time: li.querySelector('.a-ends time') ? li.querySelector('.a-ends time').getAttribute('datetime') : null,
    })));
    const items = await listed();
    const group = (i) => (i.status !== 'open' ? 2 : (i.endsAt ? 0 : 1));
    for (let k = 1; k < items.length; k += 1) {
        const [a, b] = [items[k - 1], items[k]];
        const ok = group(a) < group(b) || (group(a) === group(b) && (group(a) === 0
            ? Date.parse(a.endsAt) < Date.parse(b.endsAt) || (a.endsAt === b.endsAt && a.id < b.id)
            : a.id < b.id));
        check(ok, `the list must show open auctions by soonest end, then open ones without an end, then closed ones (each by id): ${JSON.stringify(items.map((i) => [i.id, i.status, i.endsAt]))}`);
    }
    for (const a of api.data) {
        const item = items.find((i) => i.id === a.id);
        check(item, `auction ${a.id} must be listed`);
        if (item.status === 'open' && a.status === 'open') {
            check(item.endsAt === (a.ends_at || null), `auction ${a.id}'s end must be the API's: ${JSON.stringify(item)} vs ${a.ends_at}`);
            check((item.left !== null) === (a.ends_at !== null && a.ends_at !== undefined),
                `only auctions with an end show a time left: ${JSON.stringify(item)}`);
        }
    }
    const at = (lot) => items.findIndex((i) => i.id === lot.id);
    check(at(firstLot) < at(second) && at(second) < at(last), `the soonest end must come first: ${JSON.stringify(items.map((i) => i.id))}`);
    check(at(last) < items.findIndex((i) => i.id === 1), 'open auctions with an end come before those without (auction 1)');
    const soon = items[at(firstLot)];
    const real = (Date.parse(firstLot.ends_at) - Date.now()) / 1000;
    check(soon.time === firstLot.ends_at && secondsLeft(soon.left) !== null && Math.abs(secondsLeft(soon.left) - real) <= 3,
        `the list must show the time left (about ${real.toFixed(0)} s) and the end: ${JSON.stringify(soon)}`);
    await until(async () => {
        const now = (await listed()).find((i) => i.id === firstLot.id);
        return [secondsLeft(now.left) < secondsLeft(soon.left), now];
    }, 'the time left going down on the list', 2500);
    await shot(page, 'index-timed');
    await page.context().close();
});

testCase('index_lists_auctions', async () => {
    const page = await newPage();
    const response = await page.goto(`${podA.url}/`);
    check(response.status() === 200, `GET / must answer 200, got ${response.status()}`);
    const api = await getJSON(`${podA.url}/api/bids?limit=100`);
    await waitFor(page, (n) => document.querySelectorAll('#auctions li').length === n, api.total, `${api.total} auctions listed`);
    const items = await page.$$eval('#auctions li', (lis) => lis.map((li) => ({
        href: li.querySelector('a').getAttribute('href'),
        name: li.querySelector('.a-name').textContent,
        price: li.querySelector('.a-price').lastChild.textContent,
        detail: li.querySelector('.a-detail').textContent,
    })));
    for (const a of api.data) {
        const item = items.find((i) => i.href === `/bid/${a.id}`);
        check(item, `auction ${a.id} must be listed with a link to /bid/${a.id}: ${JSON.stringify(items)}`);
        check(item.name === a.name && item.price === a.current_price,
            `auction ${a.id} must show its name and current price: ${JSON.stringify(item)} vs ${JSON.stringify(a)}`);
        check(item.detail.includes(a.status === 'closed' ? 'Closed' : 'Open'), `auction ${a.id} must show its status: ${item.detail}`);
    }
    check(items.find((i) => i.href === '/bid/3').detail.includes('Closed without bids'), 'auction 3: closed without bids');
    if (shared.closedLot) {
        check(items.find((i) => i.href === `/bid/${shared.closedLot.id}`).detail.includes('Sold to carol'), 'the closed lot: sold to carol');
    }
    check(await page.evaluate(() => document.querySelectorAll('main img, main b').length) === 0, 'names on the index must be text');
    await shot(page, 'index');

    await page.click('button[data-filter="closed"]');
    const closed = await page.$$eval('#auctions li', (lis) => lis.map((li) => li.dataset.status));
    check(closed.length > 0 && closed.every((s) => s === 'closed'), `the Closed filter must show only closed auctions: ${closed}`);
    await page.click('button[data-filter="all"]');

    await page.click('a[href="/bid/1"]');
    await waitLive(page, 'auction 1 opened from the index');
    check(new URL(page.url()).pathname === '/bid/1', `the link must open /bid/1: ${page.url()}`);
    check(await text(page, '#item-name') === 'Vintage Camera', 'the linked page must show the item');
    await page.context().close();
});

testCase('phone_layout_and_accessibility', async () => {
    const page = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await openAuction(page, podA.url, 1);
    const layout = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        width: window.innerWidth,
        viewport: document.querySelector('meta[name="viewport"]') !== null,
        unlabeled: Array.from(document.querySelectorAll('input, select, textarea')).filter((i) => !i.labels || i.labels.length === 0).map((i) => i.id),
        live: Array.from(document.querySelectorAll('[aria-live], [role="status"], [role="alert"]')).map((n) => n.id),
        inline: document.querySelectorAll('[style]').length + document.querySelectorAll('style, script:not([src])').length,
    }));
    check(layout.viewport, 'the page must have a viewport meta tag');
    check(layout.scroll <= layout.width, `the page must not scroll sideways on a phone: ${layout.scroll} > ${layout.width}`);
    check(layout.unlabeled.length === 0, `every input must have a label: ${layout.unlabeled}`);
    check(['form-message', 'announcer', 'conn'].every((id) => layout.live.includes(id)), `live regions: ${layout.live}`);
    check(layout.inline === 0, 'no inline styles or scripts (the CSP forbids them)');
    await shot(page, 'bid-1-phone');

    // Keyboard: the focus is visible.
    await page.keyboard.press('Tab');
    const focus = await page.evaluate(() => {
        const f = document.activeElement;
        const s = getComputedStyle(f);
        return { tag: f.tagName, cls: f.className, outline: s.outlineStyle, width: s.outlineWidth };
    });
    check(focus.outline !== 'none' && focus.width !== '0px', `the focused element must show an outline: ${JSON.stringify(focus)}`);
    await page.focus('#bidder-name');
    const nameFocus = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    check(nameFocus !== 'none', `the focused input must show an outline: ${nameFocus}`);

    // New prices are announced to screen readers.
    const other = shared.pageB;
    await openAuction(other, podB.url, 1);
    await placeBid(other, 'bob');
    await waitAccepted(other, "bob's bid seen by the phone");
    const price = await text(other, '#current-price');
    await waitFor(page, (p) => document.getElementById('announcer').textContent.includes(p), price, 'the announcement of the new price');

    const index = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await index.goto(`${podA.url}/`);
    await index.waitForSelector('#auctions li');
    const wide = await index.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(wide <= 0, `the index must not scroll sideways on a phone (${wide}px too wide)`);
    await shot(index, 'index-phone');
    await page.context().close();
    await index.context().close();
});

testCase('no_page_errors', async () => {
    check(pageProblems.length === 0, `the pages logged errors (CSP violations, exceptions):\n  ${pageProblems.join('\n  ')}`);
    check(dialogs.length === 0, `dialogs opened: ${dialogs.join('; ')}`);
});

// ------------------------------------------------------------------------------------ run

async function main() {
    const started = Date.now();
    const userDataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'bidding-browser-'));
    let results = [];
    try {
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--disable-dev-shm-usage'],
            env: { ...process.env, TMPDIR: userDataRoot },  // its fresh profile lives here
            timeout: 30000,
        });
        for (const c of cases) {
            if (ONLY.length && !ONLY.includes(c.name)) {
                continue;
            }
            const t0 = Date.now();
            let result;
            try {
                await Promise.race([
                    c.fn(),
                    sleep(40000).then(() => { throw new Failure('the case took more than 40 s'); }),
                ]);
                result = { name: c.name, ok: true, ms: Date.now() - t0 };
                if (notes[c.name]) {
                    result.notes = notes[c.name];
                }
            } catch (error) {
                result = { name: c.name, ok: false, ms: Date.now() - t0,
                    error: error instanceof Failure ? error.message : (error && error.stack) || String(error) };
            }
            results.push(result);
            console.log(`BROWSER-RESULT ${JSON.stringify(result)}`);
        }
    } finally {
        if (shared.proxy) {
            await shared.proxy.close().catch(() => {});
        }
        if (browser) {
            await browser.close().catch(() => {});
        }
        fs.rmSync(userDataRoot, { recursive: true, force: true });
        fs.rmSync(cliDir, { recursive: true, force: true });
    }
    const failed = results.filter((r) => !r.ok).length;
    console.log(`BROWSER-SUMMARY ${JSON.stringify({ passed: results.length - failed, failed, ms: Date.now() - started })}`);
    return failed === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (error) => {
    console.error(`run.mjs: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
});
