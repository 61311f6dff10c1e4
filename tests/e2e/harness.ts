import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { adminDatabaseUrl } from '@simplebank/chassis/testing';
import { startBank, type Bank, type StartBankOptions } from '../../tools/cli/src/bank.ts';

/**
 * Starts the whole bank the way `npm start` does (same runner, same supervisor, one process per service),
 * on random ports and its own databases, so end-to-end tests can run beside each other.
 */
export async function startTestBank(options: Partial<StartBankOptions> = {}): Promise<{ bank: Bank; stop(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'simplebank-e2e-'));
  const bank = await startBank({
    dataDir,
    ports: 'random',
    databaseUrl: await adminDatabaseUrl(),
    databasePrefix: `e2e_${randomBytes(4).toString('hex')}_`,
    quiet: true,
    readyTimeoutMs: 90_000,
    ...options,
    env: { LOG_LEVEL: 'warn', ...(options.env ?? {}) },
  });
  return {
    bank,
    async stop() {
      await bank.stop({ dropDatabases: true });
      await rm(dataDir, { recursive: true, force: true });
      await deleteNatsStreams(bank.busUrl);
    },
  };
}

/**
 * One bank for a test file: started before its first test, stopped (databases dropped) after its last. Read
 * `.bank` inside the tests.
 */
export function bankForThisFile(options: Partial<StartBankOptions> = {}): { readonly bank: Bank } {
  let started: Awaited<ReturnType<typeof startTestBank>> | undefined;
  before(async () => {
    started = await startTestBank(options);
  });
  after(async () => {
    await started?.stop();
  });
  return {
    get bank(): Bank {
      if (!started) throw new Error('the test bank is not running: read .bank inside a test');
      return started.bank;
    },
  };
}

/** A test bank on NATS used streams of its own (`?streams=PREFIX`); remove them so the server doesn't fill up. */
async function deleteNatsStreams(busUrl: string): Promise<void> {
  const url = new URL(busUrl);
  const prefix = url.searchParams.get('streams');
  if (url.protocol !== 'nats:' || !prefix) return;
  const { connect } = await import('nats');
  url.search = '';
  const nc = await connect({ servers: url.toString() });
  try {
    const jsm = await nc.jetstreamManager();
    for (const stream of [`${prefix}_EVENTS`, `${prefix}_DLQ`]) await jsm.streams.delete(stream).catch(() => false);
  } finally {
    await nc.close();
  }
}

export interface LedgerTotals {
  entries: number;
  postings: number;
  unbalancedEntries: number;
  totals: { asset: string; sum: string }[];
  activeReservations: number;
}

/** The accounts service's admin view of the ledger (service credential). */
export async function ledgerTotals(bank: Bank): Promise<LedgerTotals> {
  const res = await fetch(`${bank.urls.accounts}/admin/ledger`, { headers: { 'x-service-token': bank.serviceToken } });
  if (res.status !== 200) throw new Error(`ledger totals answered ${res.status}`);
  return (await res.json()) as LedgerTotals;
}
