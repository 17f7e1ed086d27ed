// The CLI's one error type: a one-line message for the user and an exit code.

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
