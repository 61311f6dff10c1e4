// Preload (`NODE_OPTIONS=--import=<this file>`) that records a V8 CPU profile of the whole process and writes it
// on exit to $CPU_PROFILE_DIR/<name>-<pid>.cpuprofile. Node 20 refuses `--cpu-prof` in NODE_OPTIONS, so the bench
// profiles services this way.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.CPU_PROFILE_DIR ?? '.';
const name = process.env.CPU_PROFILE_NAME ?? 'process';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: Number(process.env.CPU_PROFILE_INTERVAL_US ?? 1000) });
session.post('Profiler.start');
// A same-thread session answers synchronously, so this works in an 'exit' listener.
process.on('exit', () => {
  session.post('Profiler.stop', (err, result) => {
    if (err) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
  });
});
