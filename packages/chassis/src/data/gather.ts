import type { Statement, TxClient } from './db.ts';

/**
 * Writes a transaction gathers into one statement (all its outbox rows; all of an orders transaction's updates,
 * history and saga steps). The first call in a transaction opens a gathering (`open`) and defers `render` of it to
 * the transaction's commit, or to its next flush (TxClient.flushDeferred), after which the next call opens another.
 * `render` gives SQL, or a Statement with parameters (a fixed text: rows go as one array or JSON parameter).
 * Returns the transaction's open gathering, to add to.
 */
export function gatherer<G>(open: (tx: TxClient) => G, render: (gathered: G) => string | Statement): (tx: TxClient) => G {
  const gatherings = new WeakMap<TxClient, G>();
  return (tx) => {
    const current = gatherings.get(tx);
    if (current !== undefined) return current;
    const opened = open(tx);
    gatherings.set(tx, opened);
    tx.beforeCommit(() => {
      gatherings.delete(tx);
      return render(opened);
    });
    return opened;
  };
}
