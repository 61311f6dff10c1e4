import { startBank, type Bank } from '../bank.ts';
import type { ServiceStatus } from '../supervisor.ts';

/**
 * Runs the bank in the foreground until SIGINT/SIGTERM/SIGHUP, then stops services (gracefully) and
 * PostgreSQL, in that order, and exits 0. A second Ctrl-C (after a moment) forces an exit.
 */
export async function up(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--json');
  if (unknown.length > 0) {
    process.stderr.write(`simplebank up: unknown option ${unknown.join(' ')}\n`);
    return 2;
  }
  const say = (msg: string) => process.stdout.write(`[simplebank] ${msg}\n`);
  const controller = new AbortController();
  let signalled: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => (signalled = resolve));
  let firstSignalAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (firstSignalAt === 0) {
      firstSignalAt = Date.now();
      say(`${sig}: shutting down (Ctrl-C again to force)`);
      controller.abort();
      signalled();
    } else if (Date.now() - firstSignalAt > 1_000) {
      // The grace keeps a doubled signal (npm forwards the one the terminal already sent us) from forcing.
      say('forced exit');
      process.exit(130);
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  let bank: Bank;
  try {
    bank = await startBank({ ports: 'default', json: args.includes('--json'), signal: controller.signal });
  } catch (err) {
    if (controller.signal.aborted) {
      say('stopped');
      return 0;
    }
    throw err;
  }
  if (!controller.signal.aborted) {
    printSummary(bank);
    bank.supervisor.on('state', (s) => {
      if (s.state === 'ready' && s.restarts > 0) say(`${s.name} is ready again (pid ${s.pid}, restarts ${s.restarts})`);
    });
  }
  await stopRequested;
  await bank.stop();
  say('stopped');
  return 0;
}

function printSummary(bank: Bank): void {
  process.stdout.write(formatSummary(bank.gatewayUrl, bank.supervisor.status(), bank.processUrls));
}

/** What `npm start` prints once the bank is up: one line per process, with its URL, pid and state. */
export function formatSummary(gatewayUrl: string, rows: Pick<ServiceStatus, 'name' | 'pid' | 'state'>[], urls: Record<string, string>): string {
  const width = Math.max(...rows.map((r) => r.name.length));
  const lines = rows.map((r) => `  ${r.name.padEnd(width)}  ${urls[r.name] ?? '-'}  pid ${String(r.pid ?? '-').padEnd(7)}  ${r.state}`);
  return `\nSimpleBank is up: ${gatewayUrl}\n${lines.join('\n')}\n\nCtrl-C to stop.\n\n`;
}
