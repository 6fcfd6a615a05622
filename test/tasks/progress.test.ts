import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { RunLog } from '../../tasks/lib/log.js';
import { formatDuration, formatValue, Progress, withProgress } from '../../tasks/lib/progress.js';

const root = mkdtempSync(join(tmpdir(), 'progress-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A log that records console lines and writes log.txt in a temp folder. */
function capturedLog(name: string): { log: RunLog; consoleLines: string[]; fileLines: () => string[] } {
  const consoleLines: string[] = [];
  const log = new RunLog({ console: (line) => consoleLines.push(line) });
  const file = join(root, `${name}.txt`);
  log.attachFile(file);
  const fileLines = () => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => l.replace(/^\[[^\]]+\] /, ''));
  return { log, consoleLines, fileLines };
}

/** A fake terminal: a stream that says it is a TTY and keeps what is drawn. */
function fakeTerminal(): Writable & { isTTY: boolean; columns: number; text: () => string } {
  let drawn = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      drawn += String(chunk);
      done();
    },
  });
  return Object.assign(stream, { isTTY: true, columns: 160, text: () => drawn });
}

describe('progress', () => {
  it('without a TTY: one line per crossed 25%, with rate, ETA and payload, to the console and log.txt; a summary at stop', () => {
    const { log, consoleLines, fileLines } = capturedLog('plain');
    let now = 0;
    const p = new Progress({ label: 'epoch 1/3', total: 100, unit: 'img', log, tty: false, everyPercent: 25, clock: () => now });
    for (let done = 5; done <= 100; done += 5) {
      now += 500; // 5 images per 0.5 s: 10 img/s
      p.update(done, { loss: 2 / done, lr: 0.1 });
    }
    const summary = p.stop();
    log.closeFile();
    expect(consoleLines).toEqual([
      'epoch 1/3 25% 25/100 img, 10 img/s, ETA 7.5s, loss 0.08, lr 0.1',
      'epoch 1/3 50% 50/100 img, 10 img/s, ETA 5.0s, loss 0.04, lr 0.1',
      'epoch 1/3 75% 75/100 img, 10 img/s, ETA 2.5s, loss 0.02667, lr 0.1',
      'epoch 1/3: 100 img in 10s (10 img/s), loss 0.02, lr 0.1',
    ]);
    expect(fileLines()).toEqual(consoleLines);
    expect(summary).toEqual({ done: 100, total: 100, seconds: 10, rate: 10, payload: { loss: 0.02, lr: 0.1 } });
    expect(p.stop()).toBe(summary);
    expect(() => p.update(100)).toThrow('update after stop');
  });

  it('without a TTY: a line at least every 30 s even when no 10% step is crossed (a slow epoch of few steps)', () => {
    const { log, consoleLines } = capturedLog('slow');
    let now = 0;
    // 100 steps of 20 s, a line per 50%: without the time rule the first line would come after 1000 s
    const p = new Progress({ label: 'epoch 1/2', total: 100, unit: 'batch', log, tty: false, everyPercent: 50, clock: () => now });
    for (let done = 1; done <= 10; done++) {
      now += 20_000;
      p.update(done, { loss: 1 });
    }
    expect(consoleLines.map((l) => l.split(' ').slice(0, 4).join(' '))).toEqual([
      'epoch 1/2 2% 2/100', // 40 s: 30 s passed since the start
      'epoch 1/2 4% 4/100', // 80 s
      'epoch 1/2 6% 6/100',
      'epoch 1/2 8% 8/100',
      'epoch 1/2 10% 10/100',
    ]);
    // the 50% line still comes, once
    now += 20_000;
    p.update(50);
    expect(consoleLines.at(-1)).toMatch(/^epoch 1\/2 50% 50\/100/);
    expect(() => new Progress({ label: 'x', total: 1, log, tty: false, everySeconds: 0 })).toThrow('everySeconds must be positive');
  });

  it('logs each crossed step once even when an update jumps several, and refuses to go back', () => {
    const { log, consoleLines } = capturedLog('jumps');
    let now = 0;
    const p = new Progress({ label: 'features', total: 10, log, tty: false, everyPercent: 10, clock: () => now });
    now = 1000;
    p.update(7);
    now = 2000;
    p.update(7);
    expect(consoleLines).toEqual(['features 70% 7/10 it, 7 it/s, ETA 0.4s']);
    expect(() => p.update(6)).toThrow('done must not go back (7 → 6)');
    p.stop();
    log.closeFile();
  });

  it('measures the rate over recent updates, so a slow first batch stops weighing on the ETA', () => {
    let now = 0;
    const p = new Progress({ label: 'x', total: 1000, log: new RunLog({ console: null }), tty: false, clock: () => now });
    now = 60_000; // the first item took a minute (pipeline compilation)
    p.update(1);
    for (let i = 2; i <= 100; i++) {
      now += 100;
      p.update(i);
    }
    expect(p.rate()).toBeCloseTo(10, 10);
    expect(p.eta()).toBeCloseTo(90, 8);
    p.stop();
  });

  it('on a TTY: draws a cli-progress bar, prints log lines above it, writes the percent lines to log.txt only', () => {
    const { log, consoleLines, fileLines } = capturedLog('tty');
    const terminal = fakeTerminal();
    let now = 0;
    const p = new Progress({ label: 'epoch 2/3', total: 40, unit: 'batch', log, stream: terminal, everyPercent: 50, clock: () => now });
    now = 2000;
    p.update(20, { loss: 0.5 });
    log.info('a message while the bar runs');
    now = 4000;
    p.update(40, { loss: 0.25, lr: 0.01 });
    p.stop();
    log.info('after the bar');
    log.closeFile();
    const drawn = terminal.text();
    expect(drawn).toContain('epoch 2/3 |');
    expect(drawn).toContain('100% 40/40 batch | 10 batch/s | ETA 0.0s | loss 0.25, lr 0.01');
    expect(drawn.indexOf('a message while the bar runs\n')).toBeGreaterThanOrEqual(0);
    // the console sink was routed into the bar while it ran and restored after
    expect(consoleLines).toEqual(['epoch 2/3: 40 batch in 4.0s (10 batch/s), loss 0.25, lr 0.01', 'after the bar']);
    expect(fileLines()).toEqual([
      'epoch 2/3 50% 20/40 batch, 10 batch/s, ETA 2.0s, loss 0.5',
      'a message while the bar runs',
      'epoch 2/3: 40 batch in 4.0s (10 batch/s), loss 0.25, lr 0.01',
      'after the bar',
    ]);
  });

  it('withProgress stops the bar when the work fails and logs where it stopped', async () => {
    const { log, consoleLines } = capturedLog('fail');
    let now = 0;
    await expect(
      withProgress({ label: 'epoch 5/90', total: 8, unit: 'batch', log, tty: false, clock: () => now }, async (p) => {
        now = 3000;
        p.increment(3, { loss: 1.5 });
        throw new Error('loss is NaN');
      }),
    ).rejects.toThrow('loss is NaN');
    log.closeFile();
    expect(consoleLines.at(-1)).toBe('epoch 5/90: stopped at 3/8 batch after 3.0s (1 batch/s), loss 1.5');
  });

  it('formats durations and values compactly', () => {
    expect([0.04, 9.96, 42.4, 65, 3599, 3600, 7620, NaN, -1].map(formatDuration)).toEqual(['0.0s', '10s', '42s', '1m05s', '59m59s', '1h00m', '2h07m', '-', '-']);
    expect([0.123456, 0.1, 1e-7, 123456, 2, Infinity, 'warmup'].map(formatValue)).toEqual(['0.1235', '0.1', '1e-7', '123500', '2', 'Infinity', 'warmup']);
    expect(() => new Progress({ label: 'x', total: 0, tty: false })).toThrow('total must be a positive integer');
  });
});
