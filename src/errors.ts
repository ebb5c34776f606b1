/**
 * The one error type the project raises for bad input. Its message is meant for the user as-is:
 * it names the file, node or field and says what to do. CLIs print `message` alone, never a stack.
 */
export class SngdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SngdError';
  }
}

/** Runs `fn`, prefixing any SngdError (or foreign error) with a context such as the file name. */
export function withContext<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new SngdError(`${context}: ${errorText(err)}`);
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
