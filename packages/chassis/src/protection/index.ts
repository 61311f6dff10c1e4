// Server protection: load shedding, per-client rate limits, fault injection (docs/resilience.md, "Server
// protection" and "Fault injection"). Each piece is a pure core plus a fastify plugin function to call on the
// root instance; `registerProtection` installs them all from config in the right order.
export { protectionConfigShape, parseRouteConcurrency, rateLimitGroupEnvNames, rateLimitGroupsFromEnv, type ProtectionConfig } from './config.ts';
export { registerProtection, type Protection, type ProtectionOptions } from './protect.ts';
export { isInfraPath, routeKeyOf } from './http-util.ts';
export { throttledWarn, type WarnLog } from './warn-throttle.ts';
export { createEventLoopMonitor, type EventLoopMonitor, type EventLoopMonitorOptions } from './event-loop-monitor.ts';
export {
  createLoadShedder,
  loadSheddingPlugin,
  LOAD_SHEDDING_DEFAULTS,
  type LoadShedder,
  type LoadSheddingOptions,
  type LoadSheddingPluginOptions,
  type LoadSheddingStats,
  type RouteConcurrencyStats,
  type ShedReason,
} from './load-shedding.ts';
export { createMemoryRateLimitStore, gcra, gcraDecision, type MemoryRateLimitStoreOptions, type RateLimitDecision, type RateLimitRule, type RateLimitStore } from './rate-limit-store.ts';
export { createRedisRateLimitStore, type RedisRateLimitStoreOptions } from './rate-limit-redis-store.ts';
export {
  createRateLimiter,
  rateLimitHeaders,
  rateLimitPlugin,
  RATE_LIMIT_DEFAULTS,
  type RateLimitGroup,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimiterStats,
  type RateLimitPluginOptions,
} from './rate-limit.ts';
export {
  createFaultRegistry,
  describeFault,
  FAULT_DEFAULTS,
  FAULT_ID_PATTERN,
  faultSpecSchema,
  type Fault,
  type FaultAction,
  type FaultRegistry,
  type FaultRegistryOptions,
  type FaultSpec,
  type FaultTarget,
} from './faults.ts';
export { faultsPlugin, FAULTS_ADMIN_PATH, type FaultsPluginOptions } from './faults-http.ts';
export { faultPolicy, InjectedFaultError, type FaultPolicyOptions } from './faults-policy.ts';
