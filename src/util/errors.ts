/**
 * A problem with what the user gave us (a file, a field, a value). The CLI prints its message on
 * one line and exits with code 2. `where` names the file and `field` the offending key.
 */
export class InputError extends Error {
  constructor(
    message: string,
    readonly where?: string,
    readonly field?: string,
  ) {
    super(InputError.format(message, where, field));
    this.name = 'InputError';
  }

  private static format(message: string, where?: string, field?: string): string {
    const loc = [where, field].filter((s) => s !== undefined && s !== '').join(': ');
    return (loc ? `${loc}: ` : '') + message.replace(/\s*\n\s*/g, ' ');
  }
}
