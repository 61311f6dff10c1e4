import { up } from './commands/up.ts';
import { status } from './commands/status.ts';
import { logs, LOGS_HELP } from './commands/logs.ts';
import { fault, FAULT_HELP } from './commands/fault.ts';
import { traceCommand, TRACE_HELP } from './commands/trace.ts';
import { dlq, DLQ_HELP } from './commands/dlq.ts';

/** `simplebank <command>`: each command is a function from its arguments to an exit code. */
type Command = { run: (args: string[]) => Promise<number>; help: string };

const COMMANDS: Record<string, Command> = {
  up: { run: up, help: 'start PostgreSQL and every service, supervised, until Ctrl-C  [--json]' },
  status: { run: status, help: 'readiness of each service on the default ports' },
  logs: { run: (args) => logs(args), help: LOGS_HELP },
  fault: { run: (args) => fault(args), help: FAULT_HELP },
  trace: { run: (args) => traceCommand(args), help: TRACE_HELP },
  dlq: { run: (args) => dlq(args), help: DLQ_HELP },
};
const LATER = ['load'];

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.help}`);
  return `usage: simplebank <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

// If our output goes away (`npm start | tee` and Ctrl-C kills tee), writes fail with EPIPE: keep going,
// so the shutdown we are in the middle of still completes instead of dying and orphaning children.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(LATER.includes(name) ? `simplebank ${name}: not implemented yet\n` : `simplebank: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return command.run(args);
}

// Exit explicitly: idle keep-alive sockets from health checks would otherwise hold the process a few seconds.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`simplebank: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
