import { NODE_TUNING } from '../../tools/cli/src/node-tuning.ts';

/**
 * The Node.js flags for every process a benchmark starts, whichever stack it runs: the ones every bank service runs
 * with (tools/cli/src/node-tuning.ts), so a benchmark measures the services as they run. `--node-defaults` leaves them
 * out, to see what they change.
 */
export const nodeFlags: string[] = process.argv.includes('--node-defaults') ? [] : NODE_TUNING.split(' ');

/** How a run's header names them. */
export const describeNodeFlags = (): string => (nodeFlags.length > 0 ? `node flags ${nodeFlags.join(' ')} (the services' own)` : 'node flags: V8 defaults (--node-defaults)');
