import { SpanKind, type Attributes, type Span } from '@opentelemetry/api';
import { currentContext, type WorkContext } from './context.ts';
import { failSpan, runInSpan, startChild } from './spans.ts';
import { tracingOn } from './tracing.ts';

/**
 * Spans of database work: one per transaction (with how many statements it ran) and one per query made outside a
 * transaction. Named by the statement's first words (`SELECT orders`, `INSERT outbox`), never by its text: the text
 * may hold inlined values (literal.ts), and an exporter would ship them.
 */

const SUMMARY_CACHE_MAX = 1000;
const summaries = new Map<string, string>();

const TARGET: Record<string, RegExp> = {
  SELECT: /\bFROM\s+("?[\w.]+"?)/i,
  INSERT: /^\s*INSERT\s+INTO\s+("?[\w.]+"?)/i,
  UPDATE: /^\s*UPDATE\s+("?[\w.]+"?)/i,
  DELETE: /^\s*DELETE\s+FROM\s+("?[\w.]+"?)/i,
};

/** `SELECT orders`, `INSERT outbox`, `WITH`, `BEGIN`: the operation and, for the usual four, the first table. */
export function querySummary(text: string): string {
  let summary = summaries.get(text);
  if (summary !== undefined) return summary;
  const op = (/^\s*([A-Za-z]+)/.exec(text)?.[1] ?? 'query').toUpperCase();
  const target = TARGET[op]?.exec(text)?.[1];
  summary = target ? `${op} ${target.replace(/"/g, '')}` : op;
  if (summaries.size < SUMMARY_CACHE_MAX) summaries.set(text, summary);
  return summary;
}

/** The traced work a query or transaction runs under, if any (one branch when no service traces). */
export const tracedWork = (): WorkContext | undefined => (tracingOn() ? currentContext() : undefined);

export function startQuerySpan(work: WorkContext | undefined, text: string, attributes: Attributes): Span | undefined {
  if (work?.span === undefined) return undefined;
  const summary = querySummary(text);
  return startChild(work, summary, SpanKind.CLIENT, { ...attributes, 'db.query.summary': summary });
}

/** Ends the query's span when it settles; resolves as the query does. */
export function trackQuery<T>(span: Span, query: Promise<T>): Promise<T> {
  return query.then(
    (result) => {
      span.end();
      return result;
    },
    (err: unknown) => {
      failSpan(span, err);
      span.end();
      throw err;
    },
  );
}

/**
 * Runs a transaction's function with the transaction's span as the active one (its queries' caller, the parent
 * of the events it appends and the calls it makes), or as is when the work is not traced.
 */
export function startTxSpan(work: WorkContext | undefined, attributes: Attributes): Span | undefined {
  return work?.span === undefined ? undefined : startChild(work, 'transaction', SpanKind.CLIENT, attributes);
}

export function runInTx<T, C>(work: WorkContext | undefined, span: Span | undefined, fn: (client: C) => Promise<T>, client: C): Promise<T> {
  return span === undefined ? fn(client) : runInSpan(work!, span, fn, client);
}

/** Ends a transaction's span: its statement count, and the error that rolled it back if one did. */
export function endTxSpan(span: Span, statements: number, err: unknown): void {
  span.setAttribute('db.transaction.statements', statements);
  span.setAttribute('db.transaction.outcome', err === undefined ? 'commit' : 'rollback');
  if (err !== undefined) failSpan(span, err);
  span.end();
}

/**
 * Ties a group-commit batch's shared transaction to the work of every item it handles (data/group-commit.ts): the
 * transaction runs in its first item's trace, so without this an order whose step went in another order's batch
 * would show no transaction in its own trace. As OpenTelemetry does for batch processing, the transaction's span
 * links to each other item's span and each of those links back to it; the transaction carries the batch's size.
 * Call inside the batch's `db.tx`. `contexts` run a function in each item's work context.
 */
export function linkBatch(contexts: readonly (<T>(fn: () => T) => T)[]): void {
  const work = tracedWork();
  const shared = work?.span;
  if (shared === undefined) return;
  shared.setAttribute('simplebank.batch.size', contexts.length);
  const sharedContext = shared.spanContext();
  for (const inContext of contexts) {
    const own = inContext(() => currentContext()?.span);
    // The first item's span is the transaction's parent already (and, called from the transaction's first
    // synchronous step, the first item's context reads the transaction's own span).
    if (own === undefined || own === shared || own.spanContext().spanId === work!.parentSpanId) continue;
    shared.addLink({ context: own.spanContext() });
    own.addLink({ context: sharedContext });
  }
}
