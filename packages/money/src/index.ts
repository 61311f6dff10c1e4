export * from './money.ts';
export * from './schemas.ts';
