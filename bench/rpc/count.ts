// The caller side of an instruction count (instructions.ts): `warm` calls, then `calls` more between two handshakes
// on stdin/stdout, so the driver can switch callgrind's instrumentation on and off around exactly those calls.
//
//   count.mjs <stack> <url> <concurrency> <warm> <calls>
//   → WARM        (warm-up done; waits for a line "GO" on stdin)
//   → COUNTED n   (n calls made; waits for "STOP", then closes and exits)
import { createInterface } from 'node:readline';
import { stackCaller } from './callers.ts';
import { isStack } from './stacks.ts';

const [stack, url, concurrencyArg, warmArg, callsArg] = process.argv.slice(2);
if (!isStack(stack) || !url) throw new Error('usage: count.ts <stack> <url> <concurrency> <warm> <calls>');
const concurrency = Number(concurrencyArg ?? 64);
const { call, close } = await stackCaller(stack, url, concurrency);

const stdin = createInterface({ input: process.stdin });
const lines: string[] = [];
let waiter: ((line: string) => void) | undefined;
stdin.on('line', (line) => {
  if (waiter) {
    const w = waiter;
    waiter = undefined;
    w(line.trim());
  } else lines.push(line.trim());
});
const expect = async (word: string) => {
  const line = lines.shift() ?? (await new Promise<string>((resolve) => (waiter = resolve)));
  if (line !== word) throw new Error(`expected ${word}, got ${line}`);
};

/**
 * `total` calls from `concurrency` loops. Counted calls must all succeed; during the warm-up a failure is tolerated
 * (a side under valgrind starts very slowly and an early call can reach the 5 s attempt timeout).
 */
async function run(total: number, warmUp: boolean): Promise<number> {
  let left = total;
  let done = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, n) => {
      for (let i = 0; left > 0; i++) {
        left--;
        try {
          await call(n, `${n}-${i}`);
          done++;
        } catch (err) {
          if (!warmUp) throw err;
          failed++;
        }
      }
    }),
  );
  if (failed) process.stderr.write(`${failed} warm-up calls failed (not counted)\n`);
  return done;
}

await run(Number(warmArg ?? 10_000), true);
process.stdout.write('WARM\n');
await expect('GO');
const counted = await run(Number(callsArg ?? 30_000), false);
process.stdout.write(`COUNTED ${counted}\n`);
await expect('STOP');
await close();
process.exit(0);
