// Errors of the data pipeline: each names the file (and the line, when there is one) it came from,
// so a bad list entry or a corrupt image can be found and fixed by hand.

export class DataError extends Error {
  constructor(readonly file: string, readonly detail: string, readonly line?: number) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${detail}`);
    this.name = 'DataError';
  }
}
