import Fastify, { type FastifyInstance } from 'fastify';
import http from 'node:http';
import net from 'node:net';

/** A tiny fastify app on a free port; `setup` adds routes and plugins before it listens. */
export async function startApp(setup: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false, forceCloseConnections: 'idle', return503OnClosing: true });
  setup(app);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { text };
  }
  return { status: res.status, headers: res.headers, body };
}

/** Polls `check` until it returns a value (not undefined/false) or `timeoutMs` passes; generous by design. */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise plus its resolver: handlers wait on it so tests decide when they finish. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

export function reachable(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** A logger that records warnings and infos. */
export function recordingLog(): { warn(obj: object, msg: string): void; info(obj: object, msg: string): void; warnings: { obj: object; msg: string }[]; infos: string[] } {
  const warnings: { obj: object; msg: string }[] = [];
  const infos: string[] = [];
  return { warn: (obj, msg) => warnings.push({ obj, msg }), info: (_obj, msg) => infos.push(msg), warnings, infos };
}

/**
 * A GET the caller can abandon (destroying its own socket), over node:http without an agent: an aborted fetch makes
 * undici open a spare keep-alive connection, which then holds up the server's close for undici's keep-alive timeout.
 */
export function abandonableGet(url: string): { abandon(): void; outcome: Promise<'answered' | 'abandoned'> } {
  const req = http.get(url, { agent: false });
  const outcome = new Promise<'answered' | 'abandoned'>((resolve) => {
    req.once('response', (res) => {
      res.resume();
      resolve('answered');
    });
    req.once('error', () => resolve('abandoned'));
    req.once('close', () => resolve('abandoned'));
  });
  return { abandon: () => req.destroy(), outcome };
}
