// A real kill: `node tasks/imagenet-lt.js` is SIGKILLed after its first epoch checkpoint, rerun
// with --resume, and must end with exactly the metrics of an uninterrupted run of the same config.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTasks, MINI, miniList } from './built-tasks.js';

let work: string;
let task: string;

// 6 training images per class (the first of each class in the embedded list) and 3 test images
function writeLists(dir: string): void {
  writeFileSync(join(dir, 'train.txt'), miniList('train.txt', 6));
  writeFileSync(join(dir, 'test.txt'), miniList('test.txt', 3));
}

beforeAll(async () => {
  work = await buildTasks('kill-resume-', ['imagenet-lt']);
  task = join(work, 'tasks/imagenet-lt.js');
  writeLists(work);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

const args = (out: string): string[] => [
  task, '--data-root', MINI, '--train-list', join(work, 'train.txt'), '--test-list', join(work, 'test.txt'), '--num-classes', '10',
  '--model', 'resnet8', '--image-size', '16', '--epochs', '2', '--batch-size', '16', '--calib', 'logitadjust,disalign', '--stage2-epochs', '2', '--workers', '1', '--out', out,
];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs the task; `killWhen` is polled and, once true, the process is SIGKILLed. */
function runTask(argv: string[], killWhen?: () => boolean): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const poll = killWhen && setInterval(() => killWhen() && child.kill('SIGKILL'), 50);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (poll) clearInterval(poll);
      resolve({ code, signal, output });
    });
  });
}

const metrics = (dir: string) => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));

describe('tasks/imagenet-lt.js resume after a kill', () => {
  it('ends with the same metrics as an uninterrupted run', async () => {
    const whole = join(work, 'whole');
    const first = await runTask(args(whole));
    expect(first.code, first.output).toBe(0);

    const killed = join(work, 'killed');
    const epoch1 = join(killed, 'checkpoints', 'epoch-0001.safetensors');
    const interrupted = await runTask(args(killed), () => existsSync(epoch1));
    expect(interrupted.signal, interrupted.output).toBe('SIGKILL');
    expect(existsSync(join(killed, 'metrics.json'))).toBe(false);

    const resumed = await runTask([...args(killed), '--resume']);
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.output).toMatch(/resumed from .*epoch-0001\.safetensors \(1 epoch done\)/);

    const a = metrics(whole);
    const b = metrics(killed);
    expect(a.methods.length).toBeGreaterThan(0);
    for (const key of ['top1', 'many', 'medium', 'few', 'per_class', 'train_counts', 'methods']) expect(b[key], key).toEqual(a[key]);
  });
});
