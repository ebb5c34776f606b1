/** The error-message check shared by the IO, NPY and checkpoint tests. */
import { expect } from 'vitest';
import { SngdError } from '../../src/errors.js';

/** Asserts that `fn` throws an SngdError: one line, containing every part. Returns the message. */
export function expectSngd(fn: () => unknown, ...parts: (string | RegExp)[]): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof SngdError)) throw new Error(`expected an SngdError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`);
  const msg = caught.message;
  expect(msg).not.toMatch(/[\n\r]/);
  for (const p of parts) {
    if (typeof p === 'string') expect(msg).toContain(p);
    else expect(msg).toMatch(p);
  }
  return msg;
}
