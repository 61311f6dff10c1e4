import { runMain } from '@simplebank/chassis';
import { service } from './service.ts';

await runMain(service);
