import { HOST, PROCESSES } from '../services.ts';

/** One line per process (each service's, and a service's worker) from its /health/ready on the default ports; exit 1 unless all are ready. */
export async function status(_args: string[]): Promise<number> {
  const width = Math.max(...PROCESSES.map((s) => s.name.length));
  const results = await Promise.all(
    PROCESSES.map(async (s) => {
      const url = `http://${HOST}:${s.port}`;
      const state = await probe(`${url}/health/ready`);
      return { ...s, url, state };
    }),
  );
  for (const r of results) process.stdout.write(`${r.name.padEnd(width)}  ${r.url}  ${r.state}\n`);
  return results.every((r) => r.state === 'ready') ? 0 : 1;
}

async function probe(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status === 200 ? 'ready' : `not ready (${res.status})`;
  } catch {
    return 'down';
  }
}
