// The DodoLens page in real Chromium against the real local stack (wrangler dev serving the edge
// and the page, the origin with ffmpeg, the OpenAI simulator). Each scenario ends on a final
// state, saves a screenshot under artifacts/web/, and checks that the session left no chunk behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { launch } from './support/browser.mjs';
import { makeVideo, removeVideos } from './support/video.mjs';
import { startStack } from './support/stack.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'artifacts/web');
const MiB = 1024 * 1024;
/** Generous: the first analysis warms ffmpeg and the simulator up on a shared 2-core machine. */
const RESULT_TIMEOUT = 120_000;

let stack;

before(async () => {
  await mkdir(artifacts, { recursive: true });
  stack = await startStack();
});

after(async () => {
  await stack?.stop();
  await removeVideos();
});

/** Records every request the page makes, and the phases and active steps it goes through. */
async function instrument(page) {
  const requests = [];
  page.on('request', (request) => {
    requests.push({ method: request.method(), url: request.url(), headers: request.headers() });
  });
  await page.addInitScript(() => {
    window.__trace = [];
    window.__modes = [];
    const record = () => {
      const main = document.querySelector('main');
      if (!main) return;
      const mode = document.querySelector('#connection')?.dataset.mode;
      if (mode && window.__modes[window.__modes.length - 1] !== mode) window.__modes.push(mode);
      const steps = [...document.querySelectorAll('#timeline li[data-state="active"]')].map((li) => li.dataset.step);
      const entry = `${main.dataset.phase}:${steps.join(',')}`;
      if (window.__trace[window.__trace.length - 1] !== entry) window.__trace.push(entry);
    };
    new MutationObserver(record).observe(document, { subtree: true, attributes: true, childList: true });
  });
  return requests;
}

function uploadsOf(requests) {
  return requests.filter((r) => r.url.includes('/api/dodo-lens/uploads'));
}

function sessionIdOf(requests) {
  const patch = requests.find((r) => r.method === 'PATCH' || r.method === 'HEAD');
  return patch && new URL(patch.url).pathname.split('/').pop();
}

/** Every request went to the edge (the page's own origin): no origin address, no third party. */
function assertOnlyEdge(requests) {
  const edge = new URL(stack.edgeUrl);
  for (const r of requests) {
    const url = new URL(r.url);
    assert.equal(url.host, edge.host, `request to ${r.url} leaves the edge`);
  }
}

async function waitForResult(page) {
  await page.waitForSelector('main[data-phase="completed"]', { timeout: RESULT_TIMEOUT });
}

/** The rendered inventory matches the session's result, as the edge reports it. */
async function assertInventoryRendered(page, sessionId) {
  const snapshot = await stack.snapshot(sessionId);
  assert.equal(snapshot.status, 'completed');
  const inventory = snapshot.result.inventory;
  const fr = (n) => new Intl.NumberFormat('fr', { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n);
  const text = (s) => s.replace(/[\u00a0\u202f]/g, ' ').trim();
  assert.equal(text(await page.textContent('#total')), `${fr(inventory.total_m3)} m³`);
  assert.equal(text(await page.textContent('#subtotal')), `${fr(inventory.subtotal_m3)} m³`);
  assert.equal(text(await page.textContent('#margin')), `${fr(inventory.margin_m3)} m³`);
  const lines = inventory.rooms.flatMap((room) => room.lines);
  assert.ok(lines.length > 0, 'the scripted inventory has lines');
  assert.equal(await page.locator('#rooms tbody tr').count(), lines.length);
  for (const line of lines) {
    const row = page.locator(`#rooms tr[data-key="${line.key}"]`).first();
    assert.equal(text(await row.locator('th .label').textContent()), line.label);
  }
  const rooms = await page.locator('#rooms .room-block').evaluateAll((blocks) => blocks.map((b) => b.dataset.room));
  const expectedRooms = [...new Set(inventory.rooms.map((r) => r.room.trim()))];
  assert.deepEqual(rooms.map((r) => r.toLowerCase()).sort(), expectedRooms.map((r) => r.toLowerCase()).sort());
  assert.equal(await page.locator('#chart li').count(), rooms.length);
  // Where each line came from: seen on the video or said in the narration.
  for (const source of ['seen', 'said']) {
    const expected = lines.filter((line) => line.source === source).length;
    assert.equal(await page.locator(`#rooms .source.${source}`).count(), expected, `${source} lines`);
  }
  assert.ok(lines.some((line) => line.source === 'said'), 'the scripted narration added a line');
  // Which backend produced it, in words (the simulator speaks OpenAI's protocol).
  assert.equal(snapshot.result.analyser, 'openai');
  assert.equal(text(await page.textContent('#analyser')), "Analysé par un modèle d'IA externe (OpenAI).");
  return snapshot;
}

async function screenshot(page, name) {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok((await stat(file)).size > 0);
}

test('the shipped page holds no secret and no origin address', async () => {
  const dist = path.join(root, 'web/dist');
  const files = await readdir(dist);
  assert.ok(files.includes('index.html') && files.includes('app.js'));
  assert.ok(files.includes('dodolens_bg.wasm'), 'the shared rules ship as wasm');
  for (const file of files) {
    const body = await readFile(path.join(dist, file), 'utf8');
    // Digits occur by chance in the wasm's binary tables; names and paths would not.
    const numbers = file.endsWith('.wasm') ? [] : ['8788'];
    for (const needle of [...numbers, 'ORIGIN_URL', 'SIGNING_SECRET', 'OPENAI', 'sk-', '/v1/jobs', '/internal/', '/v1/handoffs']) {
      assert.ok(!body.includes(needle), `${file} contains ${needle}`);
    }
  }
  const index = await fetch(stack.edgeUrl);
  assert.equal(index.status, 200);
  assert.match(await index.text(), /<main id="main"/);
});

test('a picked video uploads, goes through the stages and shows the inventory (360 px)', async () => {
  const video = await makeVideo('salon.mp4', { seconds: 8, mbit: 8 });
  const browser = await launch({ viewport: { width: 360, height: 740 } });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    await page.goto(stack.edgeUrl);
    assert.equal(await page.getAttribute('html', 'lang'), 'fr');
    // Reachable and named for assistive technology: the picker is a labelled, focusable input.
    const picker = page.getByLabel('Choisir une vidéo');
    assert.equal(await picker.getAttribute('type'), 'file');
    await picker.focus();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'file');
    assert.equal(await page.getByRole('button', { name: 'Filmer avec la caméra' }).count(), 1);
    await picker.setInputFiles(video);
    await waitForResult(page);

    const trace = await page.evaluate(() => window.__trace);
    assert.ok(trace.some((e) => e.startsWith('uploading:upload')), `upload shown: ${trace}`);
    assert.deepEqual(await page.evaluate(() => window.__modes), ['websocket', 'closed'], 'live over one WebSocket');
    const reached = new Set(trace.flatMap((e) => e.split(':')[1].split(',')));
    assert.ok(['extraction', 'analysis'].every((s) => reached.has(s)), `stages shown: ${trace}`);
    assert.equal(await page.locator('#timeline li[data-state="done"]').count(), 5);
    assert.equal(await page.getAttribute('#upload-bar', 'aria-valuenow'), '100');
    assert.equal(await page.getAttribute('#announcer', 'aria-live'), 'polite');
    assert.match(await page.textContent('#announcer'), /Analyse terminée/);

    const sessionId = sessionIdOf(requests);
    await assertInventoryRendered(page, sessionId);
    // The simulator's script: what it "sees" per room, and the narration ("le frigo reste, il y a
    // quinze cartons de livres") removing the fridge and adding fifteen book boxes.
    const rendered = await page.locator('#rooms tbody tr').evaluateAll((rows) =>
      rows.map((row) => `${row.dataset.key} ${row.querySelector('input.qty').value} ${row.querySelector('.source').className}`),
    );
    assert.deepEqual(rendered.sort(), [
      'box_books 15 source said',
      'box_standard 3 source seen',
      'coffee_table 1 source seen',
      'double_bed 1 source seen',
      'sofa_3_seats 1 source seen',
    ]);
    assertOnlyEdge(requests);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `no horizontal scroll at 360 px (scrollWidth ${width})`);
    await screenshot(page, 'result-360.png');

    await page.click('#lang');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal((await page.textContent('#result-title')).trim(), 'Inventory');
    await screenshot(page, 'result-360-en.png');
    await stack.assertNoChunks(sessionId);
    assert.deepEqual(browser.errors, []);
  } finally {
    await browser.close();
  }
});

/** Clicks "Filmer" and waits for the recorder, or for the page's refusal, which then fails the test
 * with its words (the camera can be slow to start on a loaded machine: 60 s). */
async function startRecording(page) {
  await page.click('#record');
  await page.waitForSelector('#recorder:not([hidden]), #start-error:not([hidden])', { timeout: 60_000 });
  const refused = await page.isVisible('#start-error');
  assert.equal(refused, false, `the camera did not start: ${refused ? await page.textContent('#start-error') : ''}`);
}

test('a recording with the fake camera and microphone streams to the edge while it is filmed, and is analysed', async () => {
  const browser = await launch({ fakeMedia: true, viewport: { width: 412, height: 860 } });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    await page.goto(stack.edgeUrl);
    await startRecording(page);
    // The first PATCH goes out while the camera still films: the edge holds bytes of a session
    // whose length is not known yet.
    await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'PATCH'), 30_000, 'a PATCH while recording');
    const sessionId = sessionIdOf(requests);
    let held = null;
    await stack.waitFor(async () => {
      const before = await page.getAttribute('main', 'data-phase');
      const { upload } = await stack.snapshot(sessionId);
      const still = await page.getAttribute('main', 'data-phase');
      if (before === 'recording' && still === 'recording' && upload.offset > 0) held = upload;
      return held !== null;
    }, 30_000, 'bytes at the edge while recording');
    assert.equal(held.length, null, 'the length is deferred while filming');
    assert.match(await page.textContent('#rec-upload'), /sur .* filmés/);
    // The recording clock is the page's own: stop once it shows five seconds or more.
    await page.waitForFunction(
      () => {
        const [m, s] = (document.querySelector('#rec-time').textContent.match(/(\d+):(\d\d)/) ?? []).slice(1).map(Number);
        return m * 60 + s >= 5;
      },
      null,
      { timeout: 20_000 },
    );
    await page.click('#rec-stop');
    await waitForResult(page);
    const creation = uploadsOf(requests).find((r) => r.method === 'POST');
    assert.equal(creation.headers['upload-defer-length'], '1');
    assert.equal(creation.headers['upload-length'], undefined);
    const metadata = Object.fromEntries(
      creation.headers['upload-metadata'].split(',').map((pair) => {
        const [key, value] = pair.split(' ');
        return [key, Buffer.from(value ?? '', 'base64').toString()];
      }),
    );
    assert.match(metadata.filetype, /^video\/(webm|mp4)/);
    assert.match(metadata.filename, /^dodolens-.*\.(webm|mp4)$/);
    assert.equal(metadata.locale, 'fr');
    const snapshot = await assertInventoryRendered(page, sessionId);
    assert.ok(snapshot.upload.length > held.offset, `the whole recording was sent (${snapshot.upload.length} bytes)`);
    assert.equal(snapshot.upload.offset, snapshot.upload.length);
    await screenshot(page, 'recording-result.png');
    await stack.assertNoChunks(sessionId);
    await assertNothingKept(page);
  } finally {
    await browser.close();
  }
});

test('an uplink slower than the recording lowers its frame rate for the rest of it, and the recording still completes', async () => {
  const browser = await launch({ fakeMedia: true });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('Network.enable');
    await page.goto(stack.edgeUrl);
    await startRecording(page);
    await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'PATCH'), 30_000, 'a PATCH while recording');
    const frameRate = () => page.evaluate(() => document.querySelector('#preview').srcObject.getVideoTracks()[0].getSettings().frameRate);
    const camera = await frameRate();
    assert.ok(camera > 15, `the camera's own rate (${camera} fps) is above the first tier`);
    // Chromium's own network throttling: 16 KiB/s up, far below what the recorder produces.
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 16 * 1024 });
    await page.waitForFunction(() => /allégée à 15 images\/s/.test(document.querySelector('#rec-upload').textContent), null, { timeout: 90_000 });
    assert.equal(await frameRate(), 15, 'the camera track runs at the lower rate');
    assert.match(await page.textContent('#announcer'), /allégée à 15 images\/s/);
    assert.match(await page.textContent('#rec-upload'), /de retard/, 'the backlog shows');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await page.click('#rec-stop');
    await waitForResult(page);
    const sessionId = sessionIdOf(requests);
    const snapshot = await assertInventoryRendered(page, sessionId);
    assert.equal(snapshot.upload.offset, snapshot.upload.length);
    await stack.assertNoChunks(sessionId);
    await assertNothingKept(page);
  } finally {
    await browser.close();
  }
});

for (const [lost, finalPatches, what] of [
  ['answer', 1, 'the edge took it and its answer is lost: HEAD finds the upload complete'],
  ['request', 2, 'it never reaches the edge: after HEAD, the length is declared again'],
]) {
  test(`a recording whose final PATCH breaks still completes (${what})`, async () => {
    const browser = await launch({ fakeMedia: true });
    try {
      const { page } = browser;
      const requests = await instrument(page);
      const finals = [];
      // The connection drops, once, under the PATCH that carries the length.
      await page.route('**/api/dodo-lens/uploads/*', async (route) => {
        const request = route.request();
        const length = request.method() === 'PATCH' && request.headers()['upload-length'];
        if (length && finals.push(length) === 1) {
          if (lost === 'answer') await route.fetch();
          return route.abort('connectionreset');
        }
        await route.continue();
      });
      await page.goto(stack.edgeUrl);
      await startRecording(page);
      await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'PATCH'), 30_000, 'a PATCH while recording');
      await page.click('#rec-stop');
      await waitForResult(page);
      const sessionId = sessionIdOf(requests);
      assert.equal(finals.length, finalPatches, `PATCHes with Upload-Length: ${finals}`);
      assert.ok(new Set(finals).size === 1, 'the same length each time');
      assert.ok(uploadsOf(requests).some((r) => r.method === 'HEAD'), 'tus-js-client asked the edge where the upload stands');
      assert.equal((await stack.snapshot(sessionId)).upload.length, Number(finals[0]));
      await stack.assertNoChunks(sessionId);
    } finally {
      await browser.close();
    }
  });
}

/** The chunks of recordings the page keeps in IndexedDB: `[{session, offset, end}]`. */
async function keptChunks(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('dodolens-recording');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('chunks')) return resolve([]);
          const keys = db.transaction('chunks').objectStore('chunks').getAllKeys();
          keys.onerror = () => reject(keys.error);
          keys.onsuccess = () => {
            db.close();
            resolve(keys.result.map(([session, offset, end]) => ({ session, offset, end })));
          };
        };
      }),
  );
}

/** Nothing of any recording stays in the browser (the page empties it once the upload is
 * complete or discarded: give it a moment to commit). */
async function assertNothingKept(page) {
  await stack.waitFor(async () => (await keptChunks(page)).length === 0, 5_000, 'IndexedDB emptied of every chunk');
}

test('a reload while recording finishes the upload from the edge offset with what the page kept, and the inventory arrives', async () => {
  const browser = await launch({ fakeMedia: true });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    // Once the page has released a chunk the edge acknowledged, later PATCHes are held: the
    // edge's offset stays put while the camera goes on and the page keeps what it films.
    let hold = false;
    await page.route('**/api/dodo-lens/uploads/*', async (route) => {
      if (hold && route.request().method() === 'PATCH') return; // dropped by the reload
      await route.continue();
    });
    await page.goto(stack.edgeUrl);
    await startRecording(page);
    await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'PATCH'), 30_000, 'a PATCH while recording');
    const sessionId = sessionIdOf(requests);
    const id = sessionId.split('.')[0];
    await stack.waitFor(async () => {
      const kept = await keptChunks(page);
      return kept.length > 0 && kept[0].offset > 0;
    }, 30_000, 'a chunk the edge acknowledged is released');
    hold = true;
    const before = (await stack.snapshot(sessionId)).upload;
    assert.equal(before.length, null, 'still recording');
    // The camera goes on for a few more chunks, which only the browser holds (a chunk comes
    // about every 2 s, at a keyframe).
    const kept = await stack.waitFor(async () => {
      const chunks = await keptChunks(page);
      return chunks.length >= 3 && chunks[chunks.length - 2].offset > before.offset ? chunks : null;
    }, 30_000, 'chunks kept beyond the edge offset');
    assert.ok(kept.every((c) => c.session === id), 'kept under the session id, not its secret');
    assert.ok(kept[0].offset > 0 && kept[0].offset <= before.offset, `released only what the edge holds (${kept[0].offset} ≤ ${before.offset})`);
    assert.equal((await stack.snapshot(sessionId)).upload.offset, before.offset, 'the edge offset held still');

    const beforeReload = requests.length;
    await page.reload();
    hold = false;
    await page.waitForSelector('#upload-note:not([hidden])', { state: 'attached', timeout: 30_000 });
    assert.match(await page.textContent('#upload-note'), /s'est arrêté au rechargement de la page/);
    await page.waitForSelector('main[data-phase="completed"], #start-error:not([hidden])', { timeout: RESULT_TIMEOUT });
    const refused = await page.isVisible('#start-error');
    assert.equal(refused, false, `the page gave the recording up: ${refused ? await page.textContent('#start-error') : ''}`);

    const afterReload = uploadsOf(requests.slice(beforeReload));
    assert.equal(afterReload.filter((r) => r.method === 'POST').length, 0, 'no new upload was created');
    assert.equal(afterReload[0].method, 'HEAD', 'tus asked the edge for its offset first');
    const patches = afterReload.filter((r) => r.method === 'PATCH');
    assert.equal(Number(patches[0].headers['upload-offset']), before.offset, 'resumed from the edge offset');
    assert.ok(patches.every((r) => new URL(r.url).pathname.split('/').pop() === sessionId));
    const declared = patches.filter((r) => r.headers['upload-length']);
    assert.equal(declared.length, 1, 'the length is declared once');
    const snapshot = await assertInventoryRendered(page, sessionId);
    assert.equal(snapshot.upload.length, Number(declared[0].headers['upload-length']));
    assert.ok(snapshot.upload.length >= kept[kept.length - 1].end, `the kept bytes were sent (${snapshot.upload.length})`);
    assert.equal(snapshot.upload.offset, snapshot.upload.length);
    await screenshot(page, 'recording-reloaded-result.png');
    await stack.assertNoChunks(sessionId);
    await assertNothingKept(page);
    assert.deepEqual(browser.errors, []);
  } finally {
    await browser.close();
  }
});

test('a reload while recording, when the browser refused to keep the chunks, deletes the session and says why', async () => {
  const browser = await launch({ fakeMedia: true });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    // Storage full: every chunk the page tries to keep is refused.
    await page.addInitScript(() => {
      IDBObjectStore.prototype.put = function () {
        throw new DOMException('quota', 'QuotaExceededError');
      };
    });
    await page.goto(stack.edgeUrl);
    await startRecording(page);
    await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'PATCH'), 30_000, 'a PATCH while recording');
    const sessionId = sessionIdOf(requests);
    await stack.waitFor(async () => (await stack.snapshot(sessionId)).upload.offset > 0, 30_000, 'bytes at the edge');
    await page.reload();
    await page.waitForFunction(() => /interrompu/.test(document.querySelector('#start-error')?.textContent ?? ''), null, { timeout: 30_000 });
    assert.match(await page.textContent('#start-error'), /n'avait pas pu garder/);
    assert.equal(await page.getAttribute('main', 'data-phase'), 'idle');
    await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'DELETE'), 10_000, 'tus termination sent');
    assert.equal((await fetch(`${stack.edgeUrl}/api/dodo-lens/sessions/${sessionId}`)).status, 410);
    assert.equal(await page.evaluate(() => localStorage.getItem('dodolens.active')), null);
    await stack.assertNoChunks(sessionId);
    await assertNothingKept(page);
  } finally {
    await browser.close();
  }
});

test('discarding a recording stops the camera and deletes what the edge already holds', async () => {
  const browser = await launch({ fakeMedia: true });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    await page.goto(stack.edgeUrl);
    await startRecording(page);
    await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'PATCH'), 30_000, 'a PATCH while recording');
    const sessionId = sessionIdOf(requests);
    await stack.waitFor(async () => (await stack.snapshot(sessionId)).upload.offset > 0, 30_000, 'bytes at the edge');
    await page.click('#rec-abort');
    await page.waitForSelector('main[data-phase="idle"]');
    assert.equal(await page.isHidden('#recorder'), true);
    assert.equal(await page.evaluate(() => document.querySelector('#preview').srcObject), null, 'camera released');
    await stack.waitFor(() => uploadsOf(requests).some((r) => r.method === 'DELETE'), 10_000, 'tus termination sent');
    const gone = await fetch(`${stack.edgeUrl}/api/dodo-lens/sessions/${sessionId}`);
    assert.equal(gone.status, 410, 'purged at once');
    assert.equal(await page.evaluate(() => localStorage.getItem('dodolens.active')), null);
    await stack.assertNoChunks(sessionId);
    await assertNothingKept(page);
  } finally {
    await browser.close();
  }
});

test('a reload in the middle of an upload resumes from the server offset', async () => {
  const video = await makeVideo('cuisine.mp4', { seconds: 12, mbit: 8 });
  const size = (await stat(video)).size;
  assert.ok(size > 8 * MiB, `three 4 MiB chunks at least (${size} bytes)`);
  const browser = await launch();
  try {
    const { page } = browser;
    const requests = await instrument(page);
    // Let the first chunk through, then hold every later PATCH: the reload interrupts them.
    let patches = 0;
    let hold = true;
    await page.route('**/api/dodo-lens/uploads/*', async (route) => {
      if (hold && route.request().method() === 'PATCH' && ++patches > 1) return; // dropped by the reload
      await route.continue();
    });
    await page.goto(stack.edgeUrl);
    await page.setInputFiles('#file', video);
    await page.waitForFunction(() => Boolean(localStorage.getItem('dodolens.active')));
    const { handle: sessionId } = JSON.parse(await page.evaluate(() => localStorage.getItem('dodolens.active')));
    const before = await stack.waitFor(async () => {
      const s = await stack.snapshot(sessionId);
      return s.upload.offset > 0 && patches > 1 ? s : null;
    }, 30_000);
    assert.ok(before.upload.offset < size);
    await page.waitForFunction(() => Number(document.querySelector('#upload-bar').getAttribute('aria-valuenow')) > 0);
    await screenshot(page, 'upload-in-progress.png');

    const beforeReload = requests.length;
    await page.reload();
    hold = false;
    await page.waitForSelector('#resume:not([hidden])');
    assert.match(await page.textContent('#resume-text'), /cuisine\.mp4/);
    await screenshot(page, 'resume-offer.png');
    await page.setInputFiles('#file', video);
    await waitForResult(page);

    const afterReload = uploadsOf(requests.slice(beforeReload));
    assert.equal(afterReload.filter((r) => r.method === 'POST').length, 0, 'no new upload was created');
    assert.ok(afterReload.some((r) => r.method === 'HEAD'), 'tus asked the server for its offset');
    const firstPatch = afterReload.find((r) => r.method === 'PATCH');
    assert.equal(Number(firstPatch.headers['upload-offset']), before.upload.offset);
    assert.equal(new URL(firstPatch.url).pathname.split('/').pop(), sessionId);
    assert.match(await page.textContent('#upload-extra'), /Reprise/);
    await assertInventoryRendered(page, sessionId);
    await screenshot(page, 'resumed-result.png');
    await stack.assertNoChunks(sessionId);
  } finally {
    await browser.close();
  }
});

test('a reload while the video is analysed follows the same session to its result', async () => {
  const video = await makeVideo('entree.mp4', { seconds: 6, mbit: 2 });
  const browser = await launch();
  try {
    const { page } = browser;
    const requests = await instrument(page);
    await stack.simulatorLatency(1500); // slow model answers keep the session in processing
    await page.goto(stack.edgeUrl);
    await page.setInputFiles('#file', video);
    await page.waitForSelector('main[data-phase="processing"] #timeline li[data-step="extraction"][data-state="done"]', {
      timeout: RESULT_TIMEOUT,
    });
    const sessionId = sessionIdOf(requests);
    const beforeReload = requests.length;
    await page.reload();
    await waitForResult(page);
    const afterReload = requests.slice(beforeReload);
    assert.equal(uploadsOf(afterReload).length, 0, 'nothing is uploaded again');
    assert.equal(await page.textContent('#filename'), 'entree.mp4');
    await assertInventoryRendered(page, sessionId);
    await screenshot(page, 'reloaded-during-analysis-result.png');
    await stack.assertNoChunks(sessionId);
  } finally {
    await stack.simulatorLatency(0);
    await browser.close();
  }
});

test('with WebSockets blocked the long-poll still delivers the result', async () => {
  const video = await makeVideo('chambre.mp4', { seconds: 6, mbit: 2 });
  const browser = await launch();
  try {
    const { page } = browser;
    const requests = await instrument(page);
    let sockets = 0;
    await page.routeWebSocket(/\/ws$/, (ws) => {
      sockets += 1;
      ws.close({ code: 1011, reason: 'blocked by the test' });
    });
    await page.goto(stack.edgeUrl);
    await page.setInputFiles('#file', video);
    await waitForResult(page);
    const modes = await page.evaluate(() => window.__modes);
    assert.ok(modes.includes('polling'), `fell back to polling: ${modes}`);
    assert.ok(!modes.includes('websocket'), `no socket ever delivered: ${modes}`);
    assert.ok(sockets >= 2, `the client tried WebSockets first (${sockets})`);
    const polls = requests.filter((r) => r.method === 'GET' && /\/sessions\/[0-9a-f]{64}\.[\w-]{43}(\?|$)/.test(r.url));
    assert.ok(polls.some((r) => r.url.includes('after=')), 'long-polled with ?after=SEQ');
    const sessionId = sessionIdOf(requests);
    await assertInventoryRendered(page, sessionId);
    await screenshot(page, 'longpoll-result.png');
    await stack.assertNoChunks(sessionId);
  } finally {
    await browser.close();
  }
});

test('a retryable failure offers "Réessayer", which finishes without a second upload', async () => {
  const video = await makeVideo('bureau.mp4', { seconds: 6, mbit: 2 });
  const size = (await stat(video)).size;
  const browser = await launch({ viewport: { width: 360, height: 740 } });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    await stack.simulatorFault('server_error');
    await page.goto(stack.edgeUrl);
    await page.setInputFiles('#file', video);
    await page.waitForSelector('main[data-phase="failed"]', { timeout: RESULT_TIMEOUT });
    assert.equal(await page.isVisible('#retry'), true);
    assert.equal((await page.textContent('#retry')).trim(), 'Réessayer');
    assert.equal(await page.locator('#timeline li[data-state="failed"]').count(), 1);
    await screenshot(page, 'retryable-failure-360.png');

    const sessionId = sessionIdOf(requests);
    const failed = await stack.snapshot(sessionId);
    assert.equal(failed.error.retryable, true);
    assert.equal(failed.upload.offset, size);
    const held = await stack.introspect(sessionId);
    assert.equal(held.chunk_bytes, size, 'the edge kept the whole video for the retry');
    const uploadsBefore = uploadsOf(requests).length;
    const statsBefore = await stack.simulatorStats();
    assert.ok(statsBefore.server_errors > 0, 'the failure came from the model provider');

    await stack.simulatorFault('none');
    await page.click('#retry');
    await waitForResult(page);
    const statsAfter = await stack.simulatorStats();
    assert.ok(statsAfter.chat_completions > statsBefore.chat_completions, 'processing ran again');
    assert.equal(uploadsOf(requests).length, uploadsBefore, 'no upload request after the retry');
    const done = await stack.snapshot(sessionId);
    assert.equal(done.upload.offset, size, 'the edge received no new bytes');
    await assertInventoryRendered(page, sessionId);
    await screenshot(page, 'retried-result-360.png');
    await stack.assertNoChunks(sessionId);
  } finally {
    await stack.simulatorFault('none');
    await browser.close();
  }
});

test('"Annuler" during the upload deletes the session on the server', async () => {
  const video = await makeVideo('garage.mp4', { seconds: 12, mbit: 8 });
  const browser = await launch();
  try {
    const { page } = browser;
    const requests = await instrument(page);
    let patches = 0;
    await page.route('**/api/dodo-lens/uploads/*', async (route) => {
      if (route.request().method() === 'PATCH' && ++patches > 1) return; // stalls the upload
      await route.continue();
    });
    await page.goto(stack.edgeUrl);
    await page.setInputFiles('#file', video);
    await page.waitForFunction(() => Boolean(localStorage.getItem('dodolens.active')));
    const { handle: sessionId } = JSON.parse(await page.evaluate(() => localStorage.getItem('dodolens.active')));
    await stack.waitFor(async () => (await stack.snapshot(sessionId)).upload.offset > 0 || null, 30_000);
    await page.click('#cancel');
    await page.waitForSelector('main[data-phase="idle"]');
    assert.match(await page.textContent('#start-error'), /annulé/);
    assert.ok(uploadsOf(requests).some((r) => r.method === 'DELETE'), 'tus termination sent');
    const gone = await fetch(`${stack.edgeUrl}/api/dodo-lens/sessions/${sessionId}`);
    assert.ok([404, 410].includes(gone.status), `session gone after cancel (${gone.status})`);
    assert.equal(await page.evaluate(() => localStorage.getItem('dodolens.active')), null);
    await screenshot(page, 'cancelled.png');
  } finally {
    await browser.close();
  }
});

test('a file picked while the page starts keeps its refusal on screen once start-up ends', async () => {
  const file = path.join(os.tmpdir(), `dodolens-early-${process.pid}.txt`);
  await writeFile(file, 'pas une vidéo\n');
  const browser = await launch({ viewport: { width: 360, height: 740 } });
  try {
    const { page } = browser;
    // Start-up waits on the rules' wasm: held until the refusal is on screen.
    let release;
    const held = new Promise((resolve) => (release = resolve));
    await page.route('**/dodolens_bg.wasm', async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(stack.edgeUrl, { waitUntil: 'domcontentloaded' });
    await page.setInputFiles('#file', file);
    await page.waitForSelector('#start-error:not([hidden])');
    assert.equal(await page.getAttribute('main', 'data-booted'), null, 'start-up still under way');
    release();
    await page.waitForSelector('main[data-booted]');
    assert.equal((await page.textContent('#start-error')).trim(), "Ce fichier n'est pas une vidéo lisible.");
    assert.equal(await page.getAttribute('main', 'data-phase'), 'idle');
  } finally {
    await browser.close();
    await rm(file, { force: true });
  }
});

test('a file that is not a video is refused with a clear message and no session', async () => {
  const file = path.join(os.tmpdir(), `dodolens-notes-${process.pid}.txt`);
  await writeFile(file, 'pas une vidéo\n');
  const browser = await launch({ viewport: { width: 360, height: 740 } });
  try {
    const { page } = browser;
    const requests = await instrument(page);
    await page.goto(stack.edgeUrl);
    await page.setInputFiles('#file', file);
    await page.waitForSelector('#start-error:not([hidden])');
    assert.equal((await page.textContent('#start-error')).trim(), "Ce fichier n'est pas une vidéo lisible.");
    assert.equal(await page.getAttribute('main', 'data-phase'), 'idle');
    assert.deepEqual(uploadsOf(requests).map((r) => r.method), ['POST'], 'refused at creation');
    assert.equal(await page.evaluate(() => localStorage.getItem('dodolens.active')), null);
    await screenshot(page, 'refused-not-a-video-360.png');
  } finally {
    await browser.close();
    await rm(file, { force: true });
  }
});
