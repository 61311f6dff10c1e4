import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { defineService } from '@simplebank/chassis';
import { customersContract } from './contract.ts';
import { ensureSigningKeys } from './data.ts';
import { DEFAULT_SCRYPT, hashPassword } from './domain/password.ts';
import { generateSigningKey, importSigningKey } from './domain/tokens.ts';
import { createHandlers } from './http.ts';

export const service = defineService({
  contract: customersContract,
  defaultPort: 8081,
  migrations: new URL('../migrations/', import.meta.url),
  bus: true,
  config: {
    JWT_TTL_SECONDS: z.coerce.number().int().min(60).max(7 * 24 * 3600).default(3600).describe('lifetime of issued JWTs in seconds'),
    SCRYPT_LOG_N: z.coerce
      .number()
      .int()
      .min(10)
      .max(20)
      .default(DEFAULT_SCRYPT.logN)
      .describe('scrypt cost: log2 of N for new password hashes (lower only for tests; existing hashes keep their own)'),
  },
  async setup(ctx) {
    const scrypt = { ...DEFAULT_SCRYPT, logN: ctx.config.SCRYPT_LOG_N };
    const keys = await Promise.all((await ensureSigningKeys(ctx.db, generateSigningKey)).map(importSigningKey));
    return {
      routes: createHandlers({
        db: ctx.db,
        log: ctx.log,
        publish: ctx.publish,
        keys,
        scrypt,
        tokenTtlSeconds: ctx.config.JWT_TTL_SECONDS,
        decoyHash: await hashPassword(randomBytes(16).toString('hex'), scrypt),
      }),
    };
  },
});
