// The W3C `traceparent` header as the chassis reads it from every request and message: what it accepts, what it
// turns away (a request with an invalid one starts a trace of its own), and that what it formats it can read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTraceparent, parseTraceparent } from '../src/trace/traceparent.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

test('a valid traceparent gives its trace id, parent span id and sampled flag', () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, spanId: SPAN, sampled: false });
  // Only the lowest flag bit is "sampled"; other bits are for future use.
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.sampled, true);
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-fe`)?.sampled, false);
  // Surrounding whitespace (an HTTP header value's optional whitespace) is not part of the value.
  assert.deepEqual(parseTraceparent(`  00-${TRACE}-${SPAN}-01 `), { traceId: TRACE, spanId: SPAN, sampled: true });
});

test('anything else is no trace context', () => {
  const invalid = [
    undefined,
    '',
    `01-${TRACE}-${SPAN}-01`, // a version this parser does not know
    `ff-${TRACE}-${SPAN}-01`,
    `00-${TRACE.toUpperCase()}-${SPAN}-01`, // upper-case hex
    `00-${TRACE}-${SPAN.toUpperCase()}-01`,
    `00-${TRACE}-${SPAN}-0A`,
    `00-${'0'.repeat(32)}-${SPAN}-01`, // all-zero ids
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `00-${TRACE.slice(1)}-${SPAN}-01`, // wrong lengths
    `00-${TRACE}-${SPAN}0-01`,
    `00-${TRACE}-${SPAN}-1`,
    `00-${TRACE}-${SPAN}-01-`,
    `00_${TRACE}-${SPAN}-01`, // wrong separators
    `00-${TRACE}_${SPAN}-01`,
    `00-${TRACE}-${SPAN}_01`,
    `00-${TRACE.slice(0, 31)}g-${SPAN}-01`, // not hex
    `00-${TRACE}-${SPAN.slice(0, 15)}é-01`,
    `00-${TRACE}-${SPAN}-0\u0661`,
  ];
  for (const header of invalid) assert.equal(parseTraceparent(header), undefined, String(header));
});

test('what formatTraceparent writes, parseTraceparent reads back', () => {
  for (const sampled of [true, false]) {
    const tp = { traceId: TRACE, spanId: SPAN, sampled };
    assert.deepEqual(parseTraceparent(formatTraceparent(tp)), tp);
  }
});
