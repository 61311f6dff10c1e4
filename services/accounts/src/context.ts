import type { Contract, ServiceContext } from '@simplebank/chassis';

/** What the handlers use of the chassis context; narrow so tests can see at a glance what they depend on. */
export type AccountsContext = Pick<ServiceContext<unknown, Record<never, Contract>>, 'db' | 'publish' | 'log' | 'metrics'>;
