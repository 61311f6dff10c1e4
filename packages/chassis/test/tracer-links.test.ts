// Links added to a span after it started (a group-commit batch links its transaction and its items' spans) stay that
// span's own, also for the chassis' own spans, which start sharing one empty list of links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { createTracing, tracingConfigShape, type TracingConfig } from '../src/index.ts';
import { SpanKind } from '../src/trace/spans.ts';

const config = z.object(tracingConfigShape).parse({ OTEL_TRACES_SAMPLER: 'always_on' }) as TracingConfig;

test("a link added to one of the chassis' spans is on that span only", () => {
  const { tracer } = createTracing({ service: 'links-test', config })!;
  const a = tracer.startChild('a', SpanKind.SERVER, undefined, undefined, true);
  const b = tracer.startChild('b', SpanKind.SERVER, undefined, undefined, true);
  const other = tracer.startChild('other', SpanKind.INTERNAL, undefined, undefined);
  a.addLink({ context: other.spanContext() });
  const later = tracer.startChild('later', SpanKind.SERVER, undefined, undefined, true);
  for (const s of [a, b, other, later]) s.end();
  const linksOf = (s: unknown) => (s as { links: { context: { spanId: string } }[] }).links.map((l) => l.context.spanId);
  assert.deepEqual(linksOf(a), [other.spanContext().spanId]);
  assert.deepEqual(linksOf(b), []);
  assert.deepEqual(linksOf(later), []);
});
