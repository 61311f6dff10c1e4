import { createServer, type Server } from 'node:http';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Agent, fetch as undiciFetch } from 'undici';

export interface SocketListener {
  /** Stops accepting, closes idle keep-alive connections, waits for requests in flight; removes the socket file. */
  close(): Promise<void>;
}

/**
 * Serves `app` on a Unix domain socket as well as on its TCP port: services on the same machine call each other
 * through it (a client's `<SERVICE>_URL=unix:<path>`). A request/response over a Unix socket costs both sides far
 * less than over TCP loopback (no TCP/IP stack: the bytes go straight to the other end's buffer); the bank's own
 * connections to PostgreSQL are made the same way for the same reason.
 *
 * The same request handler as the TCP server (fastify's `routing`: hooks, routes, 503 while closing), on a second
 * Node http server: fastify listens on one address only. A socket file left by a process that died is replaced.
 */
export async function listenOnSocket(app: FastifyInstance, socketPath: string): Promise<SocketListener> {
  await mkdir(path.dirname(socketPath), { recursive: true });
  await rm(socketPath, { force: true });
  const tcp = app.server;
  const server: Server = createServer(
    { keepAliveTimeout: tcp.keepAliveTimeout, requestTimeout: tcp.requestTimeout, headersTimeout: tcp.headersTimeout },
    (req, res) => app.routing(req, res),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await rm(socketPath, { force: true });
    },
  };
}

/** The socket path of a `unix:<path>` base URL (also `unix://<absolute path>`), or undefined for an http(s) URL. */
export function socketPathOf(baseUrl: string): string | undefined {
  if (!baseUrl.startsWith('unix:')) return undefined;
  const rest = baseUrl.slice('unix:'.length);
  return rest.startsWith('//') ? rest.slice(2) : rest;
}

/** How to fetch from a service by URL: its origin, and the fetch that reaches it. */
export interface ServiceFetch {
  /** `http://localhost` for a `unix:` base URL (the Host a socket's server sees), else the base URL without a trailing slash. */
  origin: string;
  fetch: typeof globalThis.fetch;
}

/**
 * For what is fetched from another service by URL rather than through its typed client (a JWKS, which jose fetches
 * itself): over the service's Unix socket when its base URL is `unix:<path>`, else the global fetch.
 */
export function serviceFetch(baseUrl: string): ServiceFetch {
  const socketPath = socketPathOf(baseUrl);
  if (socketPath === undefined) return { origin: baseUrl.replace(/\/+$/, ''), fetch: globalThis.fetch };
  const dispatcher = new Agent({ connect: { socketPath } });
  // undici's own fetch and Response: the same implementation as the global one, typed apart.
  const viaSocket = (input: string | URL | Request, init?: RequestInit) => undiciFetch(input as string, { ...(init as object), dispatcher });
  return { origin: 'http://localhost', fetch: viaSocket as unknown as typeof globalThis.fetch };
}
