// Preloaded (`--import`) into every supervised child. Children run in their own process group so a
// terminal Ctrl-C reaches only the supervisor (which then stops them in order); the price is that a
// supervisor killed with SIGKILL would leave them running. The IPC channel the supervisor opens closes
// when it dies, whatever the cause: on that, the child asks itself to shut down gracefully.
if (process.send !== undefined) {
  process.once('disconnect', () => {
    process.kill(process.pid, 'SIGTERM');
  });
  // A 'disconnect' listener refs the channel; unref it so the child can still exit on its own.
  process.channel?.unref();
}

export {};
