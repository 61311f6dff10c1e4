import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashing with scrypt (node:crypto, no native add-on). The encoded hash carries its parameters
 * (`scrypt$<logN>$<r>$<p>$<salt>$<hash>`), so stored hashes keep verifying after the cost is raised, and a
 * login can tell that a hash is weaker than today's setting and should be redone.
 */
export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  logN: number;
  /** Block size. */
  r: number;
  /** Parallelisation. */
  p: number;
}

/**
 * OWASP's scrypt options list N=2^15, r=8, p=3 as equivalent to its N=2^17, r=8, p=1 baseline while needing a
 * quarter of the memory (32 MiB instead of 128 MiB per hash): friendlier to a laptop running the whole bank.
 */
export const DEFAULT_SCRYPT: ScryptParams = { logN: 15, r: 8, p: 3 };

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const PREFIX = 'scrypt';

function derive(password: string, salt: Buffer, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const N = 2 ** params.logN;
  // Node refuses to use more than 32 MiB by default; scrypt needs 128·N·r bytes (plus slack).
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r * 2 };
  // NFKC: the same password typed on two keyboards (composed vs decomposed accents) must hash the same (NIST 800-63B).
  const normalised = password.normalize('NFKC');
  // The async scrypt runs on the libuv thread pool, so hashing does not block the event loop.
  return new Promise((resolve, reject) => {
    scrypt(normalised, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, params, KEY_LENGTH);
  return [PREFIX, params.logN, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

interface Decoded {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function decode(encoded: string): Decoded | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== PREFIX) return undefined;
  const [logN, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![logN, r, p].every((n) => Number.isSafeInteger(n) && n > 0) || logN > 24) return undefined;
  const salt = Buffer.from(parts[4]!, 'base64');
  const key = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || key.length === 0) return undefined;
  return { params: { logN, r, p }, salt, key };
}

export interface Verification {
  ok: boolean;
  /** The hash was made with other parameters than the current ones: store a fresh one after a good login. */
  needsRehash: boolean;
}

/** Checks a password against an encoded hash in constant time (for equal-length keys, which ours are). */
export async function verifyPassword(password: string, encoded: string, current: ScryptParams = DEFAULT_SCRYPT): Promise<Verification> {
  const decoded = decode(encoded);
  if (!decoded) return { ok: false, needsRehash: false };
  const key = await derive(password, decoded.salt, decoded.params, decoded.key.length);
  const ok = timingSafeEqual(key, decoded.key);
  const { params } = decoded;
  return { ok, needsRehash: ok && (params.logN !== current.logN || params.r !== current.r || params.p !== current.p) };
}

/** Emails are compared case-insensitively: stored and looked up in this form. */
export const normaliseEmail = (email: string): string => email.trim().toLowerCase();
