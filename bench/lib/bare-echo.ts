// The floor both RPC benchmarks measure the chassis against: plain fastify serving the echo route, nothing
// validated, nothing logged, plus the route through which the server reports its own CPU time.
import Fastify from 'fastify';

export async function startBareEcho(statsPath: string, stats: () => unknown): Promise<{ url: string; stop: () => Promise<void> }> {
  const app = Fastify({ logger: false });
  app.get<{ Params: { id: string } }>('/echo/:id', async (request) => ({ id: request.params.id, ok: true }));
  app.get(statsPath, async () => stats());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, stop: () => app.close() };
}
