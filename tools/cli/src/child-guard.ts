import { spawn } from 'node:child_process';

// Preloaded (`--import`) into every supervised child. Children run in their own process group so a
// terminal Ctrl-C reaches only the supervisor (which then stops them in order); the price is that a
// supervisor killed with SIGKILL would leave them running. The IPC channel the supervisor opens closes
// when it dies, whatever the cause: on that, the child asks itself to shut down gracefully.
if (process.send !== undefined) {
  const leave = () => {
    // With the supervisor gone our stdout is a broken pipe, and a graceful exit can then hang for good
    // (sonic-boom's flushSync, which pino calls on exit, retries EPIPE forever, blocking the event loop).
    // Nothing inside this process can help then, so a detached watchdog makes sure we go.
    const graceSeconds = (Number(process.env.SHUTDOWN_GRACE_MS) || 10_000) / 1000 + 5;
    if (process.platform !== 'win32') {
      spawn('/bin/sh', ['-c', `sleep ${graceSeconds}; kill -9 ${process.pid} 2>/dev/null`], { detached: true, stdio: 'ignore' }).unref();
    }
    process.kill(process.pid, 'SIGTERM');
  };
  if (!process.connected) leave();
  process.once('disconnect', leave);
  // A 'disconnect' listener refs the channel; unref it so the child can still exit on its own.
  process.channel?.unref();
}
