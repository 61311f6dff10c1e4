import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * EdDSA over Ed25519: small keys and signatures, fast, deterministic (no nonce to get wrong), and every JOSE
 * library verifies it. (`EdDSA` rather than RFC 9864's newer `Ed25519` name, for older verifiers.)
 */
export const SIGNING_ALG = 'EdDSA';

/** A key pair as stored: JWKs, so it survives restarts and every instance can import it. */
export interface StoredKey {
  kid: string;
  alg: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  /** What the JWKS publishes: the public half only, tagged with kid, alg and use. */
  publicJwk: JWK;
}

export async function generateSigningKey(): Promise<StoredKey> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { crv: 'Ed25519', extractable: true });
  const publicJwk = await exportJWK(publicKey);
  // The RFC 7638 thumbprint names the key by its content: stable, unique, and nothing secret in it.
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg: SIGNING_ALG, privateJwk: await exportJWK(privateKey), publicJwk };
}

export async function importSigningKey(stored: StoredKey): Promise<SigningKey> {
  const privateKey = (await importJWK(stored.privateJwk, stored.alg)) as CryptoKey;
  const { kty, crv, x, y, n, e } = stored.publicJwk;
  // Rebuild the public JWK from its public members only, so a private member can never leak into the JWKS.
  const publicJwk: JWK = Object.fromEntries(
    Object.entries({ kty, crv, x, y, n, e, kid: stored.kid, alg: stored.alg, use: 'sig' }).filter(([, v]) => v !== undefined),
  );
  return { kid: stored.kid, alg: stored.alg, privateKey, publicJwk };
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export async function issueToken(
  key: SigningKey,
  claims: { customerId: string; issuer: string; audience: string; ttlSeconds: number },
  now: Date = new Date(),
): Promise<IssuedToken> {
  const issuedAt = Math.floor(now.getTime() / 1000);
  const expiresAt = issuedAt + claims.ttlSeconds;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setSubject(claims.customerId)
    .setIssuedAt(issuedAt)
    .setNotBefore(issuedAt)
    .setExpirationTime(expiresAt)
    // A unique id per token: lets a future denylist or audit name one token.
    .setJti(randomUUID())
    .sign(key.privateKey);
  return { token, expiresAt: new Date(expiresAt * 1000) };
}
