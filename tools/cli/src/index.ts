export { startBank, type Bank, type StartBankOptions } from './bank.ts';
export { Supervisor, type ServiceSpec, type ServiceState, type ServiceStatus, type SupervisorOptions, type ExitInfo } from './supervisor.ts';
export { ensurePostgres, createDatabases, dropDatabases, databaseUrl, redactUrl, type PostgresServer, type EnsurePostgresOptions } from './postgres.ts';
export { SERVICES, SERVICE_NAMES, BUS_DATABASE, type ServiceName, type ServiceInfo } from './services.ts';
export { createFormatter, type LineFormatter } from './logs.ts';
export { freePorts } from './ports.ts';
