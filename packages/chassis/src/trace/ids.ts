import { randomFillSync } from 'node:crypto';

// Ids for every request: a request id (when the caller sent none) and a trace and span id. They come from small
// pools of random text, refilled from the CSPRNG (randomFillSync) when used up, so they stay unpredictable. A
// `randomBytes` call per id cost ~10 µs (bench/rpc), and even a Buffer-to-string conversion per id (a native call)
// was ~1.5k instructions per request; an id is now a slice of a pool string, which V8 makes without copying.
// A slice keeps its pool string (≤ 1.2 KB) alive while the id lives: a few bytes more for the rare id kept long.

const HEX_POOL_BYTES = 512;
const hexRandom = Buffer.allocUnsafe(HEX_POOL_BYTES);
let hexPool = '';
let hexOffset = 0;

/** `bytes` fresh random bytes as lower-case hex (at most 512). */
export function randomHex(bytes: number): string {
  const chars = bytes * 2;
  if (hexOffset + chars > hexPool.length) {
    randomFillSync(hexRandom);
    hexPool = hexRandom.toString('hex');
    hexOffset = 0;
  }
  const hex = hexPool.slice(hexOffset, hexOffset + chars);
  hexOffset += chars;
  return hex;
}

// Request ids are random (v4) UUIDs like crypto.randomUUID()'s, written as text a batch at a time. randomUUID()
// builds each id by concatenating 20 pieces, which then has to be flattened again when the id becomes a response
// header or a log field.
const UUID_BATCH = 32;
const UUID_LENGTH = 36;
const uuidRandom = Buffer.allocUnsafe(16 * UUID_BATCH);
const uuidText = Buffer.allocUnsafe(UUID_LENGTH * UUID_BATCH);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
let uuidPool = '';
let uuidOffset = 0;

function refillUuids(): void {
  randomFillSync(uuidRandom);
  let out = 0;
  for (let i = 0; i < UUID_BATCH; i++) {
    const r = i * 16;
    uuidRandom[r + 6] = (uuidRandom[r + 6]! & 0x0f) | 0x40; // version 4
    uuidRandom[r + 8] = (uuidRandom[r + 8]! & 0x3f) | 0x80; // variant 10xx
    for (let j = 0; j < 16; j++) {
      if (j === 4 || j === 6 || j === 8 || j === 10) uuidText[out++] = 0x2d; // '-'
      const byte = uuidRandom[r + j]!;
      uuidText[out++] = HEX_DIGITS[byte >> 4]!;
      uuidText[out++] = HEX_DIGITS[byte & 0x0f]!;
    }
  }
  uuidPool = uuidText.toString('latin1');
  uuidOffset = 0;
}

/** A random UUID (version 4, lower-case), as `crypto.randomUUID()` returns. */
export function newRequestId(): string {
  if (uuidOffset === uuidPool.length) refillUuids();
  const id = uuidPool.slice(uuidOffset, uuidOffset + UUID_LENGTH);
  uuidOffset += UUID_LENGTH;
  return id;
}
