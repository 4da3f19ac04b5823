/** An expected failure: printed as one `ERROR: ...` line by the command's top-level boundary. */
export class ExitError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'ExitError';
    this.exitCode = exitCode;
  }
}

/** The one-line text of any thrown value, without a trailing newline. */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}

/**
 * Runs a command's body and is the only place that exits the process on failure:
 * an ExitError prints `ERROR: message`; anything else prints the same and, with CW_DEBUG set, its stack.
 */
export async function runCommand(body: () => Promise<void>, stderr: NodeJS.WritableStream = process.stderr): Promise<void> {
  try {
    await body();
  } catch (err) {
    stderr.write(`ERROR: ${errorMessage(err)}\n`);
    if (!(err instanceof ExitError) && process.env.CW_DEBUG && err instanceof Error) stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof ExitError ? err.exitCode : 1;
  }
}
