// The customer's review and the mover's hand-off in real Chromium against the full stack: edits
// computed by the shared rules in wasm, confirmation recomputed by the edge, delivery by the
// origin to an Airtable stand-in (session record + linked lines) and a webhook stand-in that
// verifies the signature, the CSV download and the printed cube sheet, and after the retention
// nothing left of the inventory or the contact.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { launch } from './support/browser.mjs';
import { makeVideo, removeVideos } from './support/video.mjs';
import { startStack as startFullStack, waitFor } from '../../scripts/lib/stack.mjs';

/** The mover's webhook key (its own, not the edge ↔ origin key). */
const WEBHOOK_SECRET = 'webhook-key-of-the-mover';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'artifacts/web');
const RESULT_TIMEOUT = 120_000;
/** Long enough to review and confirm, short enough to watch the purge. */
const RETENTION_MS = 45_000;
const run = promisify(execFile);

let stack;
let sinks;

/** Airtable's create-records API and the mover's webhook, as one local HTTP server. */
async function startSinks() {
  const seen = { airtable: [], webhook: [], badSignatures: 0 };
  let key = '';
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://sinks');
    if (url.pathname.startsWith('/v0/')) {
      const [, , base, table] = url.pathname.split('/');
      const json = JSON.parse(body.toString());
      // Ids per table: the webhook may be served first, the ids must not depend on it.
      const first = seen.airtable.filter((r) => r.table === decodeURIComponent(table)).length;
      seen.airtable.push({ base, table: decodeURIComponent(table), auth: req.headers.authorization, body: json });
      const records = json.records.map((_, i) => ({ id: `rec${decodeURIComponent(table)}${first}x${i}` }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ records }));
      return;
    }
    // The webhook: HMAC-SHA256 over the canonical string, with the webhook key.
    const timestamp = req.headers['x-dodolens-timestamp'];
    const digest = createHash('sha256').update(body).digest('hex');
    const canonical = ['DODOLENS-HMAC-SHA256-V2', 'webhook', 'POST', url.pathname, timestamp, String(body.length), digest].join('\n');
    const expected = createHmac('sha256', key).update(canonical).digest('hex');
    if (req.headers['x-dodolens-signature'] !== expected) {
      seen.badSignatures += 1;
      res.writeHead(401).end();
      return;
    }
    seen.webhook.push(JSON.parse(body.toString()));
    res.writeHead(204).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    seen,
    url: base,
    setKey: (k) => (key = k),
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

before(async () => {
  await mkdir(artifacts, { recursive: true });
  sinks = await startSinks();
  stack = await startFullStack({
    vars: { FORWARD_BACKOFF_MS: '200', RETENTION_MS: String(RETENTION_MS), TOMBSTONE_MS: '600000' },
    simulator: true,
    originEnv: {
      DODOLENS_AIRTABLE_TOKEN: 'pat-test',
      DODOLENS_AIRTABLE_BASE: 'appMover',
      DODOLENS_AIRTABLE_TABLE: 'Inventaires',
      DODOLENS_AIRTABLE_LINES_TABLE: 'Lignes',
      DODOLENS_AIRTABLE_URL: `${sinks.url}/v0`,
      DODOLENS_WEBHOOK_URL: `${sinks.url}/hook`,
      DODOLENS_WEBHOOK_SECRET: WEBHOOK_SECRET,
    },
  });
  sinks.setKey(WEBHOOK_SECRET);
});

after(async () => {
  await stack?.stop();
  await sinks?.stop();
  await removeVideos();
});

const text = (s) => (s ?? '').replace(/[\u00a0\u202f]/g, ' ').trim();
const fr2 = (n) => new Intl.NumberFormat('fr', { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n);
const frKg = (n) => new Intl.NumberFormat('fr', { maximumFractionDigits: 0 }).format(n);

async function onScreen(page) {
  return {
    total: text(await page.textContent('#total')),
    subtotal: text(await page.textContent('#subtotal')),
    kg: text(await page.textContent('#total-kg')),
    items: text(await page.textContent('#item-count')),
  };
}

function expected(inventory) {
  return {
    total: `${fr2(inventory.total_m3)} m³`,
    subtotal: `${fr2(inventory.subtotal_m3)} m³`,
    kg: `${frKg(inventory.total_weight_kg)} kg`,
    items: `${inventory.item_count} objets`,
  };
}

const lineOf = (inventory, key) => inventory.rooms.flatMap((r) => r.lines.map((l) => ({ ...l, room: r.room }))).find((l) => l.key === key);

async function screenshot(page, name) {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok((await stat(file)).size > 0);
}

test('review, confirm, export and purge: the mover gets exactly the edited inventory', async () => {
  const video = await makeVideo('revue.mp4', { seconds: 6, mbit: 2 });
  const browser = await launch({ viewport: { width: 360, height: 740 } });
  try {
    const { page } = browser;
    await page.goto(stack.edgeUrl);
    await page.setInputFiles('#file', video);
    await page.waitForSelector('main[data-phase="completed"]', { timeout: RESULT_TIMEOUT });
    const sessionId = JSON.parse(await page.evaluate(() => localStorage.getItem('dodolens.active'))).handle;
    const model = (await stack.snapshot(sessionId)).result.inventory;
    assert.deepEqual(await onScreen(page), expected(model), 'the model inventory as computed by fusion');
    assert.equal(sinks.seen.airtable.length + sinks.seen.webhook.length, 0, 'nothing sent before confirmation');
    assert.equal(await page.getAttribute('#totals', 'aria-live'), 'polite');

    const boxes = lineOf(model, 'box_standard');
    const table = lineOf(model, 'coffee_table');
    const sofa = lineOf(model, 'sofa_3_seats');
    const otherRoom = model.rooms.find((r) => r.room !== sofa.room).room;
    const edits = [];

    // Quantity, by keyboard: focus the field, type the new count.
    const qty = page.locator(`tr[data-line="${boxes.id}"] input.qty`);
    await qty.focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('10');
    edits.push({ type: 'set_quantity', line: boxes.id, quantity: 10 });
    assert.equal(text(await page.textContent(`tr[data-line="${boxes.id}"] .source`)), 'corrigé');
    // Remove.
    await page.click(`tr[data-line="${table.id}"] button.remove`);
    edits.push({ type: 'remove', line: table.id });
    assert.equal(await page.locator(`tr[data-line="${table.id}"]`).count(), 0);
    // Add "piano droit" from the catalogue search (accents and case do not matter).
    await page.fill('#add-room', sofa.room);
    await page.fill('#add-search', 'PIANO DR');
    const result = page.locator('#add-results button[data-key="piano_upright"]');
    assert.equal(await result.count(), 1);
    await result.focus();
    await page.keyboard.press('Enter');
    const maxId = Math.max(...model.rooms.flatMap((r) => r.lines.map((l) => l.id)));
    edits.push({ type: 'add_item', line: maxId + 1, room: sofa.room, key: 'piano_upright', quantity: 1 });
    const piano = page.locator('tr[data-key="piano_upright"]');
    assert.equal(text(await piano.locator('.label').textContent()), 'Piano droit');
    assert.match(text(await piano.locator('.flags').textContent()), /fragile.*lourd/);
    // Move the sofa to the other room.
    await page.selectOption(`tr[data-line="${sofa.id}"] select.move`, otherRoom);
    edits.push({ type: 'move', line: sofa.id, room: otherRoom });
    const sofaRoom = await page.locator(`tr[data-line="${sofa.id}"]`).evaluate((row) => row.closest('.room-block').dataset.room);
    assert.equal(sofaRoom, otherRoom);
    const shown = await onScreen(page);
    assert.notEqual(shown.total, expected(model).total, 'the totals moved');
    assert.match(await page.textContent('#announcer'), /Total/);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `no horizontal scroll at 360 px (scrollWidth ${width})`);
    await screenshot(page, 'review-360.png');

    // Confirm with a contact: the edge recomputes from the same edits.
    await page.fill('#c-name', 'Camille Martin');
    await page.click('#confirm-button');
    assert.equal(await page.isVisible('#e-reach'), true, 'an email or a phone is required');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'c-email');
    await page.fill('#c-email', 'camille@example.fr');
    await page.fill('#c-date', '2030-06-15');
    await page.fill('#c-from', '75011');
    await page.fill('#c-to', '69003');
    const confirmResponse = page.waitForResponse((r) => r.url().endsWith('/confirm') && r.request().method() === 'POST');
    await page.click('#confirm-button');
    const confirmed = await (await confirmResponse).json();
    await page.waitForSelector('#confirm-status[data-state="confirmed"]');
    assert.deepEqual(await onScreen(page), expected(confirmed.inventory), 'the screen shows what the edge computed');
    assert.equal(confirmed.revision, 1);
    const request = JSON.parse((await confirmResponse).request().postData());
    assert.deepEqual(request.edits, edits, 'the page sent the edits it made, nothing else');
    assert.equal(request.contact.email, 'camille@example.fr');
    assert.ok(!('total_m3' in request), 'no browser totals are sent');
    // What the edge computed for these edits, step by step from the model's numbers.
    const catalogue = { piano: 1.5, pianoKg: 250 };
    const subtotal = model.subtotal_m3 + 7 * boxes.unit_volume_m3 - table.volume_m3 + catalogue.piano;
    assert.ok(Math.abs(confirmed.inventory.subtotal_m3 - subtotal) < 1e-9, `${confirmed.inventory.subtotal_m3} vs ${subtotal}`);
    assert.equal(confirmed.inventory.total_weight_kg, model.total_weight_kg + 7 * boxes.unit_weight_kg - table.weight_kg + catalogue.pianoKg);
    assert.equal(confirmed.inventory.item_count, model.item_count + 7 - 1 + 1);
    await screenshot(page, 'confirmed-360.png');

    // The mover's sinks get exactly that inventory, with the contact and each line's source.
    const lines = confirmed.inventory.rooms.flatMap((r) => r.lines.map((l) => ({ ...l, room: r.room })));
    await waitFor(() => sinks.seen.webhook.length === 1 && sinks.seen.airtable.length === 1 + Math.ceil(lines.length / 10), 15_000, 'sinks');
    const [hook] = sinks.seen.webhook;
    assert.equal(sinks.seen.badSignatures, 0);
    assert.deepEqual(hook.handoff.inventory, confirmed.inventory);
    assert.equal(hook.handoff.contact.name, 'Camille Martin');
    assert.equal(hook.handoff.contact.email, 'camille@example.fr');
    const session = sinks.seen.airtable.find((r) => r.table === 'Inventaires');
    assert.equal(session.auth, 'Bearer pat-test');
    const fields = session.body.records[0].fields;
    assert.equal(fields.Session, sessionId.split('.')[0], 'the session id, never the capability token');
    assert.equal(fields['Total m3'], confirmed.inventory.total_m3);
    assert.equal(fields['Total kg'], confirmed.inventory.total_weight_kg);
    assert.equal(fields.Name, 'Camille Martin');
    assert.equal(fields['Move date'], '2030-06-15');
    const records = sinks.seen.airtable.filter((r) => r.table === 'Lignes').flatMap((r) => r.body.records.map((x) => x.fields));
    assert.deepEqual(
      records.map((f) => [f.Room, f.Key, f.Quantity, f.Source, f.Session[0]]),
      lines.map((l) => [l.room, l.key, l.quantity, l.source, 'recInventaires0x0']),
    );
    assert.deepEqual(new Set(records.map((f) => f.Source)), new Set(['seen', 'said', 'corrected', 'added']));
    const introspected = await stack.introspect(sessionId);
    assert.equal(introspected.has_confirmation, true);

    // CSV download: parses, stable columns, sums to the total.
    const download = page.waitForEvent('download');
    await page.click('#csv');
    const csvPath = path.join(artifacts, 'cube-sheet.csv');
    await (await download).saveAs(csvPath);
    const csv = (await readFile(csvPath, 'utf8')).trimEnd().split('\r\n');
    assert.equal(csv[0], 'room,item,quantity,unit_m3,m3,kg,flags,source');
    const rows = csv.slice(1).map((row) => row.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/));
    assert.equal(rows.length, lines.length + 1);
    const m3 = rows.reduce((sum, row) => sum + Number(row[4]), 0);
    assert.ok(Math.abs(m3 - confirmed.inventory.total_m3) < 1e-6, `${m3} vs ${confirmed.inventory.total_m3}`);
    assert.equal(rows.reduce((sum, row) => sum + Number(row[5]), 0), confirmed.inventory.total_weight_kg);

    // The printed cube sheet: the total and every room, flagged lines highlighted.
    await page.emulateMedia({ media: 'print' });
    const sheet = await page.textContent('#cubesheet');
    assert.ok(text(sheet).includes(`${fr2(confirmed.inventory.total_m3)} m³`), 'total on the sheet');
    for (const room of confirmed.inventory.rooms) assert.ok(sheet.includes(room.room), `room ${room.room}`);
    assert.equal(await page.locator('#cubesheet tr.flagged').count(), lines.filter((l) => l.flags.length).length);
    await page.screenshot({ path: path.join(artifacts, 'cube-sheet.png'), fullPage: true });
    const pdf = path.join(artifacts, 'cube-sheet.pdf');
    await page.pdf({ path: pdf, format: 'A4', printBackground: true });
    await page.emulateMedia({ media: 'screen' });
    const { stdout: info } = await run('pdfinfo', [pdf]);
    const pages = Number(/Pages:\s+(\d+)/.exec(info)[1]);
    assert.ok(pages >= 1 && pages <= 2, `${pages} A4 pages`);
    const { stdout: pdfText } = await run('pdftotext', ['-layout', pdf, '-']);
    assert.ok(text(pdfText).includes(`${fr2(confirmed.inventory.total_m3)} m³`), 'the PDF has the total');
    for (const room of confirmed.inventory.rooms) assert.ok(pdfText.includes(room.room), `the PDF has ${room.room}`);
    await run('pdftoppm', ['-png', '-r', '60', pdf, path.join(artifacts, 'cube-sheet-page')]);
    assert.ok((await readdir(artifacts)).some((f) => f.startsWith('cube-sheet-page') && f.endsWith('.png')));

    // An edit after confirming withdraws the confirmation, on screen and at the edge.
    await page.click(`tr[data-line="${boxes.id}"] button.remove`);
    await page.waitForSelector('#confirm-status:not([data-state="confirmed"])');
    assert.match(await page.textContent('#confirm-status'), /confirmation est retirée/);
    await waitFor(async () => (await stack.introspect(sessionId)).has_confirmation === false, 10_000, 'confirmation withdrawn');
    await screenshot(page, 'unconfirmed-360.png');
    assert.deepEqual(browser.errors, []);

    // After the retention, the session holds no inventory, contact or chunk.
    await waitFor(async () => (await fetch(`${stack.api}/sessions/${sessionId}`)).status === 410, RETENTION_MS + 15_000, 'purge');
    const left = await stack.introspect(sessionId);
    assert.deepEqual(
      { result: left.has_result, confirmation: left.has_confirmation, chunks: left.chunk_rows, events: left.event_rows },
      { result: false, confirmation: false, chunks: 0, events: 0 },
    );
    const output = stack.originOutput() + stack.edgeOutput();
    for (const secret of ['Camille', 'camille@example.fr', '75011', 'Piano droit']) {
      assert.ok(!output.includes(secret), `logs carry ${secret}`);
    }
  } finally {
    await browser.close();
  }
});
