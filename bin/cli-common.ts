/**
 * What every CLI entry point shares: error reporting (one line, no stack, unless SNGD_DEBUG=1)
 * and a plain-text table printer.
 */
import { SngdError } from '../src/errors.js';

export async function runCli(program: string, main: () => Promise<void> | void): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (process.env.SNGD_DEBUG) console.error(err);
    if (err instanceof SngdError) {
      console.error(`${program}: ${err.message}`);
      process.exitCode = 1;
    } else {
      const message = err instanceof Error ? err.message : String(err);
      console.error(`${program}: internal error: ${message}\n(set SNGD_DEBUG=1 for a stack trace, and please report it)`);
      process.exitCode = 2;
    }
  }
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function parseIntOption(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new SngdError(`${name} must be an integer ≥ ${min}, got '${value}'`);
    return n;
  };
}

export function parseFloatOption(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new SngdError(`${name} must be a number ≥ ${min}, got '${value}'`);
    return n;
  };
}

/**
 * `--max-fisher-dim`: 'auto' (per layer from the time model and memory: passes/cost/choose.ts),
 * 'none' (every layer dense: Infinity), or an integer N ≥ 1 (Nyström for layers with d̃ > N).
 */
export function parseMaxFisherDim(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  if (value === 'none') return Infinity;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new SngdError(`--max-fisher-dim must be 'auto', 'none' or an integer ≥ 1, got '${value}'`);
  return n;
}
