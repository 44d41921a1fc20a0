import { test } from "node:test";
import assert from "node:assert/strict";
import { SessionSubscription, type ConnectionMode, type LiveConfig } from "../src/subscription.js";
import type { ServerMessage, Snapshot } from "../src/generated/protocol.js";
import { result, snapshot } from "./fixtures.js";

/** A stand-in for the browser's WebSocket that the test drives by hand. */
class FakeSocket {
  static OPEN = 1;
  static instances: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
  }
  send(text: string) {
    this.sent.push(text);
  }
  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.());
  }
  deliver(message: ServerMessage) {
    this.readyState = 1;
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}

const config: LiveConfig = {
  apiBase: "http://edge.test/api/dodo-lens",
  backoff: { baseMs: 1, maxMs: 2 },
  socketFailuresBeforePolling: 2,
  socketOpenTimeoutMs: 5_000,
  keepaliveMs: 60_000,
};

function install(fetchImpl: (url: string) => Promise<Response>) {
  FakeSocket.instances = [];
  Object.assign(globalThis, { WebSocket: FakeSocket, location: { href: "http://edge.test/" }, fetch: fetchImpl });
}

async function until(condition: () => boolean, what: string) {
  const deadline = Date.now() + 2_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const id = "c".repeat(64);

test("the socket URL, snapshot first, then events; completion closes the subscription", async () => {
  install(() => Promise.reject(new Error("no polling expected")));
  const updates: Snapshot[] = [];
  const modes: ConnectionMode[] = [];
  const sub = new SessionSubscription(id, config, { onUpdate: (s) => updates.push(s), onConnection: (m) => modes.push(m) });
  const socket = FakeSocket.instances[0];
  assert.equal(socket.url, `ws://edge.test/api/dodo-lens/sessions/${id}/ws`);
  socket.deliver({ type: "snapshot", snapshot: snapshot({ seq: 3, status: "processing" }) });
  socket.deliver({ type: "event", seq: 2, event: { type: "stage", stage: "probing" } });
  socket.deliver({ type: "event", seq: 4, event: { type: "stage", stage: "analysing" } });
  socket.deliver({ type: "event", seq: 5, event: { type: "completed", result: result() } });
  assert.deepEqual(updates.map((u) => u.seq), [3, 4, 5], "the stale event is dropped");
  assert.equal(sub.snapshot?.status, "completed");
  assert.deepEqual(modes, ["websocket", "closed"]);
  assert.equal(socket.readyState, 3);
});

test("a dropped socket reconnects and the new snapshot replaces the view", async () => {
  install(() => Promise.reject(new Error("no polling expected")));
  const updates: Snapshot[] = [];
  const sub = new SessionSubscription(id, config, { onUpdate: (s) => updates.push(s) });
  FakeSocket.instances[0].deliver({ type: "snapshot", snapshot: snapshot({ seq: 2, status: "processing" }) });
  FakeSocket.instances[0].close();
  await until(() => FakeSocket.instances.length === 2, "a second socket");
  FakeSocket.instances[1].deliver({ type: "snapshot", snapshot: snapshot({ seq: 9, status: "failed" }) });
  assert.equal(sub.snapshot?.seq, 9);
  assert.equal(sub.connection, "websocket");
  sub.close();
});

test("sockets that never deliver fall back to the long-poll with ?after=SEQ", async () => {
  const urls: string[] = [];
  const answers: unknown[] = [
    snapshot({ seq: 4, status: "processing", stage: "extracting" }),
    {
      snapshot: snapshot({ seq: 6, status: "processing", stage: "fusing" }),
      events: [
        { type: "event", seq: 5, event: { type: "stage", stage: "analysing" } },
        { type: "event", seq: 6, event: { type: "stage", stage: "fusing" } },
      ],
    },
    { snapshot: snapshot({ seq: 7, status: "completed", result: result() }), events: [] },
  ];
  install(async (url) => {
    urls.push(url);
    return new Response(JSON.stringify(answers.shift()), { status: 200 });
  });
  const modes: ConnectionMode[] = [];
  const sub = new SessionSubscription(id, config, { onConnection: (m) => modes.push(m) });
  FakeSocket.instances[0].close();
  await until(() => FakeSocket.instances.length === 2, "a second socket");
  FakeSocket.instances[1].close();
  await until(() => sub.connection === "closed", "the result by polling");
  assert.equal(FakeSocket.instances.length, 2, "no socket after falling back");
  assert.deepEqual(urls, [
    `http://edge.test/api/dodo-lens/sessions/${id}`,
    `http://edge.test/api/dodo-lens/sessions/${id}?after=4`,
    `http://edge.test/api/dodo-lens/sessions/${id}?after=6`,
  ]);
  assert.equal(sub.snapshot?.status, "completed");
  assert.ok(modes.includes("polling"));
});

test("a purged session ends the subscription with onGone", async () => {
  install(async () => new Response("gone", { status: 410 }));
  let gone = false;
  const sub = new SessionSubscription(id, { ...config, socketFailuresBeforePolling: 1 }, { onGone: () => (gone = true) });
  FakeSocket.instances[0].close();
  await until(() => gone, "onGone");
  assert.equal(sub.connection, "closed");
});

test("retry goes over the open socket", () => {
  install(() => Promise.reject(new Error("unused")));
  const sub = new SessionSubscription(id, config, {});
  assert.equal(sub.send({ type: "retry" }), false, "not before the socket is open");
  FakeSocket.instances[0].deliver({ type: "snapshot", snapshot: snapshot({ seq: 1, status: "failed" }) });
  assert.equal(sub.send({ type: "retry" }), true);
  assert.deepEqual(FakeSocket.instances[0].sent, ['{"type":"retry"}']);
  sub.close();
});
