// CPU time of the bank's processes, read from /proc (Linux): the place-order benchmarks use it to split the CPU an
// order costs between the services and PostgreSQL, and what an idle bank burns.
import { readdir, readFile } from 'node:fs/promises';

/** CPU seconds (user + system) of a process, plus those of its reaped children (postgres backends that exited). */
export async function cpuOf(pid: number, withChildren = false): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return 0;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the comm: state(0) … utime(11) stime(12) cutime(13) cstime(14).
  const ticks = Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
  return ticks / 100;
}

/** PostgreSQL's CPU: the postmaster (with reaped backends) and its live children. */
export async function postgresCpu(dataDir: string): Promise<number> {
  let total = 0;
  for (const cpu of (await postgresCpuByKind(dataDir)).values()) total += cpu;
  return total;
}

/** CPU_DETAIL=1: PostgreSQL's CPU per process kind (backends per database, walwriter, autovacuum …). */
export async function postgresCpuByKind(dataDir: string): Promise<Map<string, number>> {
  const byKind = new Map<string, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!(cmd.includes('postgres') && cmd.includes(dataDir))) continue;
    byKind.set('postmaster+exited', await cpuOf(Number(entry), true));
    const children = await readFile(`/proc/${entry}/task/${entry}/children`, 'utf8').catch(() => '');
    for (const c of children.trim().split(/\s+/).filter(Boolean)) {
      const title = (await readFile(`/proc/${c}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
      // "postgres: postgres simplebank_orders 127.0.0.1(5678) idle" or "… [local] idle" → "simplebank_orders";
      // "postgres: walwriter" → "walwriter"
      const m = /^postgres: (?:\S+ (\S+) (?:\S+\(\d+\)|\[local\])|([a-z ]+?))(?: |$)/.exec(title);
      const kind = m?.[1] ?? m?.[2] ?? title;
      byKind.set(kind, (byKind.get(kind) ?? 0) + (await cpuOf(Number(c))));
    }
  }
  return byKind;
}

/** What a snapshot needs of a running bank (tools/cli/src/bank.ts's Bank). */
interface RunningBank {
  processes: string[];
  supervisor: { get(name: string): { pid?: number | undefined } };
}

/**
 * CPU seconds so far of every process of the bank, of PostgreSQL, and of this process under `self` (the benchmark,
 * which also runs the bank's supervisor): two snapshots' difference is what each spent in between.
 */
export async function bankCpu(bank: RunningBank, dataDir: string, self: string): Promise<Record<string, number>> {
  const out: Record<string, number> = { [self]: await cpuOf(process.pid), postgres: await postgresCpu(dataDir) };
  for (const name of bank.processes) out[name] = await cpuOf(bank.supervisor.get(name).pid ?? 0);
  return out;
}
