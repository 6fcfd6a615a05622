// The run log: every line goes to the console (plain) and, once a run folder exists, to its
// log.txt with a timestamp. Lines are appended synchronously so a crash never loses what was said.
import { closeSync, openSync, writeSync } from 'node:fs';

/** Where console output goes; a progress bar swaps this so log lines print above the bar. */
export type ConsoleSink = (line: string, level: LogLevel) => void;
export type LogLevel = 'info' | 'warn' | 'error';

/** Info to stdout, warnings and errors to stderr. */
export const defaultConsole: ConsoleSink = (line, level) => (level === 'info' ? process.stdout : process.stderr).write(line + '\n');

/** `2025-06-01T12:00:00.123Z`: UTC, so lines from runs on different machines sort alike. */
const timestamp = (now: Date): string => now.toISOString();

export class RunLog {
  private fd: number | null = null;
  private consoleSink: ConsoleSink | null;
  private readonly clock: () => Date;

  /** `console: null` keeps the console quiet (tests, library use); `clock` stamps the file lines. */
  constructor({ console = defaultConsole, clock = () => new Date() }: { console?: ConsoleSink | null; clock?: () => Date } = {}) {
    this.consoleSink = console;
    this.clock = clock;
  }

  /** Starts appending to `file` (log.txt); an existing file is continued, as on --resume. */
  attachFile(file: string): void {
    this.closeFile();
    this.fd = openSync(file, 'a');
  }

  /** Replaces the console sink and returns the previous one (progress bars route lines above themselves). */
  swapConsole(sink: ConsoleSink | null): ConsoleSink | null {
    const previous = this.consoleSink;
    this.consoleSink = sink;
    return previous;
  }

  info(message: string): void {
    this.write(message, 'info', true);
  }

  warn(message: string): void {
    this.write(`warning: ${message}`, 'warn', true);
  }

  error(message: string): void {
    this.write(`error: ${message}`, 'error', true);
  }

  /** A line for log.txt only (e.g. periodic progress while a live bar shows the same on the terminal). */
  fileOnly(message: string): void {
    this.write(message, 'info', false);
  }

  closeFile(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private write(message: string, level: LogLevel, toConsole: boolean): void {
    const stamp = timestamp(this.clock());
    for (const line of message.split('\n')) {
      if (this.fd !== null) writeSync(this.fd, `[${stamp}] ${line}\n`);
      if (toConsole) this.consoleSink?.(line, level);
    }
  }
}
