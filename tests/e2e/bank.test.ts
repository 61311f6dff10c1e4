import { bankWalk } from './walk.ts';

// The embedded default: pg-boss on PostgreSQL.
bankWalk(async () => undefined);
