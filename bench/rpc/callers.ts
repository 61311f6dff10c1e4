// The call each stack's load process makes (stacks.ts), shared by load.ts (throughput) and count.ts (instructions).
import { Pool } from 'undici';
import { wiredCaller, workRunner } from '../lib/chassis.ts';
import { CONNECTIONS, echoContract } from './echo.ts';
import { STACKS, WIRED, type Stack } from './stacks.ts';

export interface StackCaller {
  /** One echo call by caller loop `n` (0 ≤ n < loops); rejects on anything but the right echo. */
  call(n: number, id: string): Promise<void>;
  close(): Promise<void>;
}

export async function stackCaller(stack: Stack, url: string, loops: number): Promise<StackCaller> {
  const def = STACKS[stack];
  if (def.client === 'undici') {
    const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1 });
    return {
      call: async (_n, id) => {
        const res = await pool.request({ method: 'GET', path: `/echo/${encodeURIComponent(id)}` });
        const body = (await res.body.json()) as { id: string };
        if (res.statusCode !== 200 || body.id !== id) throw new Error('wrong echo');
      },
      close: () => pool.close(),
    };
  }
  const caller = await wiredCaller(echoContract, url, WIRED[def.client]);
  const { client } = caller;
  const echo = async (id: string) => {
    const res = await client.echo({ params: { id } });
    if (res.body.id !== id) throw new Error('wrong echo');
  };
  const inWork = workRunner(def.work, loops, caller.tracer);
  return {
    call: def.work === 'none' ? (_n, id) => echo(id) : (n, id) => inWork(n, () => echo(id)),
    close: () => caller.stop(),
  };
}
