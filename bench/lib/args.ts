// Command-line options of the benchmark scripts, all of the form `--name=value` (or a bare `--flag`).

/** The value of `--name=value` (everything after the first `=`), or undefined when absent. */
export function stringArg(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/** `--name=<positive number>`, or `fallback` when absent; anything else is an error. */
export function positiveArg(name: string, fallback: number): number {
  const raw = stringArg(name);
  const v = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

/** `--name=a,b,c`, or `fallback` (comma-separated too) when absent. */
export const listArg = (name: string, fallback: string): string[] => (stringArg(name) ?? fallback).split(',');
