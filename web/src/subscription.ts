/**
 * Follows one session live: a WebSocket first, the JSON long-poll when WebSockets do not work.
 *
 * The edge sends a full snapshot on every (re)connect, so a dropped socket loses nothing: the
 * subscription reconnects with backoff and the snapshot replaces the view. A socket that never
 * delivers its first snapshot (blocked by a proxy, a captive portal, an extension) counts as a
 * failure; after a few of those the subscription switches to `GET …/sessions/{id}?after=SEQ`,
 * which the edge holds open until something newer than SEQ happens.
 */
import type { ClientMessage, ServerMessage, Snapshot } from "./generated/protocol.js";
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { acceptAll, isSettled, type SessionView } from "./session-state.js";

export type ConnectionMode = "connecting" | "websocket" | "reconnecting" | "polling" | "closed";

export interface SubscriptionListener {
  /** The session changed; called with the whole current snapshot. */
  onUpdate?(snapshot: Snapshot): void;
  onConnection?(mode: ConnectionMode): void;
  /** The session does not exist (any more): purged, expired or never created. */
  onGone?(): void;
}

export interface LiveConfig {
  /** e.g. `https://example.org/api/dodo-lens`. */
  apiBase: string;
  backoff: BackoffOptions;
  /** Consecutive sockets that fail before their first snapshot, before falling back to polling. */
  socketFailuresBeforePolling: number;
  /** How long a socket may take to deliver its first snapshot. */
  socketOpenTimeoutMs: number;
  /** Text `ping` interval; the edge's runtime answers `pong` without waking the session. */
  keepaliveMs: number;
}

export class SessionSubscription {
  private view: SessionView | null = null;
  private socket: WebSocket | null = null;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private poller: AbortController | null = null;
  private socketFailures = 0;
  private attempt = 0;
  private closed = false;
  private mode: ConnectionMode = "connecting";

  constructor(
    /** The session handle `{id}.{token}` (a secret capability). */
    readonly handle: string,
    private readonly config: LiveConfig,
    private readonly listener: SubscriptionListener,
  ) {
    this.openSocket();
  }

  /** The latest snapshot, or null before the first one arrived. */
  get snapshot(): Snapshot | null {
    return this.view?.snapshot ?? null;
  }

  get connection(): ConnectionMode {
    return this.mode;
  }

  /** Sends a message on the socket; false when there is no open socket (use HTTP instead). */
  send(message: ClientMessage): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.poller?.abort();
    this.socket?.close(1000);
    this.socket = null;
    this.setMode("closed");
  }

  private setMode(mode: ConnectionMode): void {
    if (mode === this.mode) return;
    this.mode = mode;
    this.listener.onConnection?.(mode);
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }

  private deliver(messages: ServerMessage[]): void {
    const next = acceptAll(this.view, messages);
    if (next === this.view || !next) return;
    this.view = next;
    this.listener.onUpdate?.(next.snapshot);
    if (isSettled(next.snapshot)) this.close();
  }

  private socketUrl(): string {
    const url = new URL(`${this.config.apiBase}/sessions/${encodeURIComponent(this.handle)}/ws`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  private openSocket(): void {
    if (this.closed) return;
    this.setMode(this.attempt === 0 ? "connecting" : "reconnecting");
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.socketUrl());
    } catch {
      this.socketFailed(false);
      return;
    }
    this.socket = socket;
    let live = false;
    let keepalive: ReturnType<typeof setInterval> | undefined;
    const openTimer = setTimeout(() => socket.close(), this.config.socketOpenTimeoutMs);

    socket.onmessage = (event) => {
      if (typeof event.data !== "string" || event.data === "pong") return;
      let message: ServerMessage;
      try {
        message = JSON.parse(event.data) as ServerMessage;
      } catch {
        return;
      }
      if (message.type === "snapshot" && !live) {
        live = true;
        clearTimeout(openTimer);
        this.socketFailures = 0;
        this.attempt = 0;
        this.setMode("websocket");
        keepalive = setInterval(() => socket.send("ping"), this.config.keepaliveMs);
      }
      this.deliver([message]);
    };
    socket.onclose = () => {
      clearTimeout(openTimer);
      clearInterval(keepalive);
      if (this.socket === socket) this.socket = null;
      if (!this.closed) this.socketFailed(live);
    };
  }

  private socketFailed(wasLive: boolean): void {
    if (!wasLive) this.socketFailures += 1;
    if (this.socketFailures >= this.config.socketFailuresBeforePolling) {
      void this.poll();
      return;
    }
    const delay = backoffDelay(this.attempt, this.config.backoff);
    this.attempt += 1;
    this.setMode("reconnecting");
    this.later(delay, () => this.openSocket());
  }

  private async poll(): Promise<void> {
    this.setMode("polling");
    let failures = 0;
    while (!this.closed) {
      const poller = new AbortController();
      this.poller = poller;
      const seq = this.view?.snapshot.seq;
      const query = seq === undefined ? "" : `?after=${seq}`;
      try {
        const response = await fetch(
          `${this.config.apiBase}/sessions/${encodeURIComponent(this.handle)}${query}`,
          { signal: poller.signal, cache: "no-store", headers: { accept: "application/json" } },
        );
        if (response.status === 404 || response.status === 410) {
          this.listener.onGone?.();
          this.close();
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        this.deliver(parsePoll(await response.json()));
        failures = 0;
      } catch {
        if (this.closed) return;
        const delay = backoffDelay(failures, this.config.backoff);
        failures += 1;
        await new Promise<void>((resolve) => this.later(delay, resolve));
      }
    }
  }
}

/** The JSON endpoint answers a bare snapshot, or `{snapshot, events}` when asked `?after=SEQ`. */
export function parsePoll(body: unknown): ServerMessage[] {
  const value = body as { snapshot?: Snapshot; events?: ServerMessage[]; session_id?: string };
  if (value && typeof value.session_id === "string") {
    return [{ type: "snapshot", snapshot: body as Snapshot }];
  }
  const messages: ServerMessage[] = [];
  if (value?.snapshot) messages.push({ type: "snapshot", snapshot: value.snapshot });
  if (Array.isArray(value?.events)) messages.push(...value.events);
  return messages;
}
