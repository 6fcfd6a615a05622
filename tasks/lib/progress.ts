// Progress for long work (an epoch, feature extraction): a live cli-progress bar with items/s, ETA
// and a payload (loss, lr) on a terminal; on a pipe or CI log, one plain line every N percent. In
// both cases those lines also go to log.txt, and stop() logs a summary line.
import cliProgress from 'cli-progress';
import { performance } from 'node:perf_hooks';
import { RunLog } from './log.js';

/** Values shown after the rate: loss, lr, accuracy, ... */
export type ProgressPayload = Record<string, number | string>;

export interface ProgressOptions {
  /** What is progressing: 'epoch 3/90', 'features train'. */
  label: string;
  /** Items to do (at least 1). */
  total: number;
  /** The item's name in rates: 'img', 'batch' (default 'it'). */
  unit?: string;
  /** The run's log (log.txt); without one, lines go to the console only. */
  log?: RunLog;
  /** Where the live bar draws (default process.stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Live bar or plain lines (default: whether `stream` is a TTY). */
  tty?: boolean;
  /** A plain line each time progress crosses a multiple of this many percent (default 10). */
  everyPercent?: number;
  /** Without a terminal, also a plain line when this many seconds passed since the last one (default 30): a slow epoch is never silent for long. */
  everySeconds?: number;
  /** Milliseconds, monotonic (default performance.now); tests pass a fake clock. */
  clock?: () => number;
}

export interface ProgressSummary {
  done: number;
  total: number;
  seconds: number;
  /** Items per second over the whole run of the bar. */
  rate: number;
  payload: ProgressPayload;
}

/** Rate over the last updates: the first batches (shader compilation, cold caches) stop counting once they leave the window. */
const RATE_WINDOW = 32;

/** `0.1234`, `0.1`, `1.235e-7`: four significant digits, no trailing zeros. */
export function formatValue(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

/** `42s`, `3m05s`, `2h07m`; '-' when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  if (Number(seconds.toFixed(1)) < 10) return `${seconds.toFixed(1)}s`;
  if (seconds < 59.5) return `${Math.round(seconds)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const payloadText = (payload: ProgressPayload): string =>
  Object.entries(payload)
    .map(([k, v]) => `${k} ${formatValue(v)}`)
    .join(', ');

export class Progress {
  readonly label: string;
  readonly total: number;
  readonly unit: string;
  private readonly log: RunLog;
  private readonly clock: () => number;
  private readonly everyPercent: number;
  private readonly startedAt: number;
  private readonly samples: { t: number; done: number }[];
  private done = 0;
  private payload: ProgressPayload = {};
  private lastLoggedStep = 0;
  private readonly everySeconds: number;
  private lastLineAt: number;
  private stopped: ProgressSummary | null = null;
  private readonly live: { multibar: cliProgress.MultiBar; bar: cliProgress.SingleBar; restoreConsole: ReturnType<RunLog['swapConsole']> } | null;

  constructor({ label, total, unit = 'it', log, stream = process.stdout, tty, everyPercent = 10, everySeconds = 30, clock = () => performance.now() }: ProgressOptions) {
    if (!Number.isSafeInteger(total) || total < 1) throw new Error(`progress '${label}': total must be a positive integer, got ${total}`);
    if (!(everyPercent > 0 && everyPercent <= 100)) throw new Error(`progress '${label}': everyPercent must be in (0, 100], got ${everyPercent}`);
    this.label = label;
    this.total = total;
    this.unit = unit;
    this.log = log ?? new RunLog();
    this.clock = clock;
    this.everyPercent = everyPercent;
    if (!(everySeconds > 0)) throw new Error(`progress '${label}': everySeconds must be positive, got ${everySeconds}`);
    this.everySeconds = everySeconds;
    this.startedAt = clock();
    this.lastLineAt = this.startedAt;
    this.samples = [{ t: this.startedAt, done: 0 }];
    if (tty ?? stream.isTTY === true) {
      const multibar = new cliProgress.MultiBar({
        stream,
        format: '{label} |{bar}| {percentage}% {value}/{total} {unit} | {speed} | ETA {etaText}{stats}',
        barsize: 30,
        // a crash must not leave the terminal without a cursor; the final state stays on screen
        hideCursor: false,
        clearOnComplete: false,
      });
      const bar = multibar.create(total, 0, this.barPayload());
      // log lines print above the live bar instead of through it
      const restoreConsole = this.log.swapConsole((line) => multibar.log(`${line}\n`));
      this.live = { multibar, bar, restoreConsole };
    } else {
      this.live = null;
    }
  }

  /** Items per second over the recent window (NaN before any time has passed). */
  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = (last.t - first.t) / 1000;
    return seconds > 0 ? (last.done - first.done) / seconds : NaN;
  }

  /** Seconds left at the current rate. */
  eta(): number {
    const r = this.rate();
    return r > 0 ? (this.total - this.done) / r : NaN;
  }

  /** Sets the items done (clamped to total) and merges `payload` into the shown values. */
  update(done: number, payload: ProgressPayload = {}): void {
    if (this.stopped) throw new Error(`progress '${this.label}': update after stop`);
    if (!Number.isFinite(done) || done < this.done) throw new Error(`progress '${this.label}': done must not go back (${this.done} → ${done})`);
    this.done = Math.min(done, this.total);
    this.payload = { ...this.payload, ...payload };
    this.samples.push({ t: this.clock(), done: this.done });
    if (this.samples.length > RATE_WINDOW) this.samples.shift();
    this.live?.bar.update(this.done, this.barPayload());
    // one line per crossed multiple of everyPercent; the 100% line is stop()'s summary
    const step = Math.floor((this.done / this.total) * 100 / this.everyPercent);
    const now = this.samples[this.samples.length - 1].t;
    const crossed = step > this.lastLoggedStep;
    // without a terminal, also a line when everySeconds passed since the last one
    const overdue = !this.live && now - this.lastLineAt >= this.everySeconds * 1000;
    if ((crossed || overdue) && this.done < this.total) {
      this.lastLoggedStep = Math.max(this.lastLoggedStep, step);
      this.lastLineAt = now;
      const line = this.line();
      if (this.live) this.log.fileOnly(line);
      else this.log.info(line);
    }
  }

  increment(by = 1, payload: ProgressPayload = {}): void {
    this.update(this.done + by, payload);
  }

  /** `epoch 3/90 40% 480/1200 img, 85.1 img/s, ETA 8.5s, loss 0.532, lr 0.1`. */
  line(): string {
    const percent = Math.floor((this.done / this.total) * 100);
    const stats = payloadText(this.payload);
    return `${this.label} ${percent}% ${this.done}/${this.total} ${this.unit}, ${this.speed()}, ETA ${formatDuration(this.eta())}${stats ? `, ${stats}` : ''}`;
  }

  /** Ends the bar (drawing its final state), restores the console and logs a summary line; idempotent. */
  stop(): ProgressSummary {
    if (this.stopped) return this.stopped;
    const seconds = (this.clock() - this.startedAt) / 1000;
    const rate = seconds > 0 ? this.done / seconds : NaN;
    this.stopped = { done: this.done, total: this.total, seconds, rate, payload: { ...this.payload } };
    if (this.live) {
      this.live.bar.update(this.done, this.barPayload());
      // multibar.stop() does not print lines logged since the last redraw; update() does
      this.live.multibar.update();
      this.live.multibar.stop();
      this.log.swapConsole(this.live.restoreConsole);
    }
    const stats = payloadText(this.payload);
    const head = this.done === this.total ? `${this.label}: ${this.done} ${this.unit}` : `${this.label}: stopped at ${this.done}/${this.total} ${this.unit}`;
    this.log.info(`${head} ${this.done === this.total ? 'in' : 'after'} ${formatDuration(seconds)} (${formatValue(rate)} ${this.unit}/s)${stats ? `, ${stats}` : ''}`);
    return this.stopped;
  }

  private speed(): string {
    const r = this.rate();
    return `${Number.isFinite(r) ? formatValue(r) : '-'} ${this.unit}/s`;
  }

  private barPayload(): Record<string, string> {
    const stats = payloadText(this.payload);
    return { label: this.label, unit: this.unit, speed: this.speed(), etaText: formatDuration(this.eta()), stats: stats ? ` | ${stats}` : '' };
  }
}

/** Runs `work` with a progress bar and always stops it (a failure logs where it stopped). */
export async function withProgress<T>(options: ProgressOptions, work: (progress: Progress) => Promise<T>): Promise<T> {
  const progress = new Progress(options);
  try {
    return await work(progress);
  } finally {
    progress.stop();
  }
}
