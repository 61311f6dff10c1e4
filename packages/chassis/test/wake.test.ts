import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDb, type Db } from '../src/data/db.ts';
import { wakeAfterCommit, watchWakeups } from '../src/data/wake.ts';
import { cleanupStack, serviceDatabase, testLog, waitFor } from './messaging/helpers.ts';

// Wake-ups for a worker that polls a table of its own (data/wake.ts): a commit that wrote work for it wakes it, in
// memory when it runs in the writing process, by NOTIFY when it runs elsewhere; a rollback wakes nobody.

const CHANNEL = 'test_work';
const cleanup = cleanupStack();
let db: Db;
/** A second pool on the same database: what another process would have (wake-ups are per Db). */
let elsewhere: Db;

before(async () => {
  db = await serviceDatabase('wake', cleanup.add);
  elsewhere = createDb(db.pool.options.connectionString!, { max: 2 });
  cleanup.add(() => elsewhere.close());
});

after(() => cleanup.run());

test('a commit wakes a worker of the same process in memory, once per transaction, and a rollback wakes none', async () => {
  let wakes = 0;
  const watcher = watchWakeups(db, CHANNEL, () => void wakes++, testLog);
  try {
    await waitFor('the LISTEN connection (it wakes the worker once connected)', () => wakes > 0);
    const before = wakes;
    await db.tx(async (tx) => {
      await tx.query('SELECT 1');
      wakeAfterCommit(tx, CHANNEL);
      wakeAfterCommit(tx, CHANNEL);
    });
    assert.equal(wakes, before + 1, 'woken as the commit returns, once');

    await assert.rejects(
      db.tx(async (tx) => {
        await tx.query('SELECT 1');
        wakeAfterCommit(tx, CHANNEL);
        throw new Error('rolled back');
      }),
      /rolled back/,
    );
    // In memory, a wake-up comes as the commit returns: none came, and with no worker elsewhere, no NOTIFY either.
    assert.equal(wakes, before + 1, 'nothing committed, nobody woken');
  } finally {
    await watcher.stop();
  }
});

test("a commit wakes a worker in another process by NOTIFY, and a worker that stopped hears nothing", async () => {
  let wakes = 0;
  const watcher = watchWakeups(db, CHANNEL, () => void wakes++, testLog);
  try {
    await waitFor('the LISTEN connection', () => wakes > 0);
    const before = wakes;
    // `elsewhere` has no worker of its own: its commit NOTIFYs.
    await elsewhere.tx(async (tx) => {
      await tx.query('SELECT 1');
      wakeAfterCommit(tx, CHANNEL);
    });
    await waitFor('the NOTIFY to wake the worker', () => wakes > before);
  } finally {
    await watcher.stop();
  }
  const after = wakes;
  // Another worker, still watching, is woken by the next commit; the stopped one is not.
  let othersWakes = 0;
  const other = watchWakeups(db, CHANNEL, () => void othersWakes++, testLog);
  try {
    await waitFor('the other LISTEN connection', () => othersWakes > 0);
    const othersBefore = othersWakes;
    await elsewhere.tx(async (tx) => {
      await tx.query('SELECT 1');
      wakeAfterCommit(tx, CHANNEL);
    });
    await waitFor('the NOTIFY to wake the other worker', () => othersWakes > othersBefore);
  } finally {
    await other.stop();
  }
  assert.equal(wakes, after, 'a stopped worker is not woken');
});
