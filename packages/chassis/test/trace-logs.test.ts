// Log lines carry the ids of the active span: the request's, then a child span's while it is active.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { createLogger, createTracing, currentContext, tracingConfigShape, type TracingConfig } from '../src/index.ts';
import { z } from 'zod';
import { runInSpan, SpanKind, startChild, startWork } from '../src/trace/spans.ts';
import { workStorage } from '../src/trace/work.ts';

const config = z.object(tracingConfigShape).parse({ OTEL_TRACES_SAMPLER: 'parentbased_always_on' }) as TracingConfig;

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: createLogger({ service: 'logs-test', destination }) };
}

test('log lines carry traceId and spanId of the active span', async () => {
  const tracing = createTracing({ service: 'logs-test', config })!;
  const { lines, log } = capture();
  const work = startWork(tracing.tracer, 'GET /things', SpanKind.SERVER, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', undefined, 'req-1', undefined);
  assert.ok(work.span, 'sampled: the span is recorded');
  assert.equal(work.traceId, '0af7651916cd43dd8448eb211c80319c');
  await workStorage.run(work, async () => {
    log.info('in the request');
    const child = startChild(currentContext(), 'transaction', SpanKind.CLIENT)!;
    await runInSpan(currentContext()!, child, async () => log.info('in the transaction'));
    child.end();
    // A span made active through the OpenTelemetry API is the active span for the chassis too.
    const own = tracing.tracer.startSpan('custom', {}, trace.setSpan(context.active(), work.span!));
    context.with(trace.setSpan(context.active(), own), () => log.info('in a span of the service\'s own'));
    own.end();
  });
  work.span!.end();
  await new Promise((r) => setImmediate(r));
  const [request, tx, own] = lines;
  assert.equal(request!.traceId, work.traceId);
  assert.equal(request!.spanId, work.spanId);
  assert.equal(request!.requestId, 'req-1');
  assert.equal(tx!.traceId, work.traceId);
  assert.notEqual(tx!.spanId, work.spanId);
  assert.equal(own!.traceId, work.traceId);
  assert.notEqual(own!.spanId, tx!.spanId);
  assert.notEqual(own!.spanId, work.spanId);
  const spans = tracing.ring!.trace(work.traceId);
  assert.deepEqual(spans.map((s) => s.name).sort(), ['GET /things', 'custom', 'transaction']);
  assert.equal(spans.find((s) => s.name === 'transaction')!.spanContext().spanId, tx!.spanId);
  assert.equal(spans.find((s) => s.name === 'custom')!.spanContext().spanId, own!.spanId);
  await tracing.shutdown();
});

test('a span ring keeps the most recent spans, up to its capacity', async () => {
  const tracing = createTracing({ service: 'ring-test', config: { ...config, TRACE_RING_SPANS: 3 } })!;
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const work = startWork(tracing.tracer, `op ${i}`, SpanKind.SERVER, undefined, undefined, undefined, undefined);
    ids.push(work.traceId);
    work.span!.end();
  }
  assert.equal(tracing.ring!.total, 5);
  assert.deepEqual(tracing.ring!.trace(ids[0]!), [], 'the oldest were overwritten');
  assert.equal(tracing.ring!.trace(ids[4]!).length, 1);
  assert.deepEqual(tracing.ring!.recentTraces(10).map((t) => t.traceId), [ids[4], ids[3], ids[2]]);
  await tracing.shutdown();
});

test('OTEL_SDK_DISABLED=true: no tracing at all', () => {
  assert.equal(createTracing({ service: 'off', config: { ...config, OTEL_SDK_DISABLED: true } }), undefined);
});
