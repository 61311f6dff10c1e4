#!/usr/bin/env node
// npm links this as `simplebank`; tsx lets the TypeScript sources run as they are.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
