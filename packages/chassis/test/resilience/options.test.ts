import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/config.ts';
import { RESILIENCE_DEFAULTS, resilienceEnvNames, resilienceOptionsFromEnv, resolveResilienceOptions } from '../../src/resilience/index.ts';

test('env names: per dependency and global', () => {
  assert.deepEqual(resilienceEnvNames('market-data', 'retryAttempts'), ['RESILIENCE_MARKET_DATA_RETRY_ATTEMPTS', 'RESILIENCE_RETRY_ATTEMPTS']);
  assert.deepEqual(resilienceEnvNames('accounts', 'breakerHalfOpenAfterMs'), ['RESILIENCE_ACCOUNTS_BREAKER_HALF_OPEN_AFTER_MS', 'RESILIENCE_BREAKER_HALF_OPEN_AFTER_MS']);
  assert.deepEqual(resilienceEnvNames('accounts', 'budgetMinRetriesPerSecond')[1], 'RESILIENCE_BUDGET_MIN_RETRIES_PER_SECOND');
});

test('per-dependency env wins over global; unset options are left to the defaults', () => {
  const env = {
    RESILIENCE_RETRY_ATTEMPTS: '2',
    RESILIENCE_MARKET_DATA_RETRY_ATTEMPTS: '4',
    RESILIENCE_BREAKER_THRESHOLD: '0.6',
    RESILIENCE_MARKET_DATA_BULKHEAD_ENABLED: 'off',
    RESILIENCE_ACCOUNTS_BREAKER_THRESHOLD: '0.9',
    RESILIENCE_BUDGET_RATIO: ' ',
  };
  assert.deepEqual(resilienceOptionsFromEnv(env, 'market-data'), { retryAttempts: 4, breakerThreshold: 0.6, bulkheadEnabled: false });
  assert.deepEqual(resilienceOptionsFromEnv(env, 'accounts'), { retryAttempts: 2, breakerThreshold: 0.9 });
  assert.deepEqual(resilienceOptionsFromEnv({}, 'fees'), {});
});

test('invalid env values fail start-up naming every variable', () => {
  assert.throws(
    () => resilienceOptionsFromEnv({ RESILIENCE_FEES_RETRY_ATTEMPTS: 'three', RESILIENCE_BREAKER_THRESHOLD: '1.5', RESILIENCE_BULKHEAD_ENABLED: 'maybe' }, 'fees'),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes('RESILIENCE_FEES_RETRY_ATTEMPTS') &&
      err.message.includes('RESILIENCE_BREAKER_THRESHOLD') &&
      err.message.includes('RESILIENCE_BULKHEAD_ENABLED'),
  );
});

test('resolve fills defaults and range-checks overrides', () => {
  assert.deepEqual(resolveResilienceOptions(), RESILIENCE_DEFAULTS);
  assert.equal(resolveResilienceOptions({ retryAttempts: 5 }).retryAttempts, 5);
  assert.throws(() => resolveResilienceOptions({ retryAttempts: 0, bulkheadMaxQueue: 1.5 }), /retryAttempts.*bulkheadMaxQueue/);
});
