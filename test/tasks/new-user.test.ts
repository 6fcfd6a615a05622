// The tasks tried as a new user would (issue 17, item 3): every mistake gets one clear line and no
// stack, a shortened LDAM-DRW run starts, --drw is taken as given, Ctrl-C says where the last
// checkpoint is and how to resume (terminal and log.txt), the resume command it prints works and
// train_seconds counts every session, a crash prints its error once with the resume advice, and
// without a WebGPU adapter the task stops and says how to install one.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTasks, miniList, MINI } from './built-tasks.js';
import { decodeSafetensors } from '../../nn/safetensors.js';
import { ldamScheduleFor, cpuTrainingEstimate } from '../../tasks/lib/pipeline.js';
import { resumeCommand } from '../../tasks/lib/entry.js';

let work: string;
const task = (name: string) => join(work, 'tasks', `${name}.js`);

// 6 training and 3 test images per class of the embedded set, listed by absolute path (an
// absolute path in a list must be used as it is, not joined under --data-root)
function writeLists(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.txt'), miniList('train.txt', 6, { absolute: true }));
  writeFileSync(join(dir, 'test.txt'), miniList('test.txt', 3, { absolute: true }));
}

beforeAll(async () => {
  work = await buildTasks('new-user-', ['imagenet-lt', 'cifar-lt']);
  writeLists(join(work, 'data'));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs `node tasks/<name>.js argv` in the work folder; `interruptWhen(output)` is polled and, once true, SIGINT is sent. */
function runTask(name: string, argv: string[], { env = {}, interruptWhen }: { env?: Record<string, string>; interruptWhen?: (output: string) => boolean } = {}): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [task(name), ...argv], { cwd: work, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let sent = false;
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const poll = interruptWhen && setInterval(() => {
      if (!sent && interruptWhen(output)) {
        sent = true;
        child.kill('SIGINT');
      }
    }, 50);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (poll) clearInterval(poll);
      resolve({ code, signal, output });
    });
  });
}

const data = () => join(work, 'data');
const tiny = (out: string): string[] => [
  '--data-root', data(), '--train-list', 'train.txt', '--test-list', 'test.txt', '--num-classes', '10',
  '--model', 'resnet8', '--image-size', '16', '--epochs', '1', '--batch-size', '16', '--calib', 'none', '--workers', '0', '--out', out,
];
/** The output has one error line, `<task>: error: <expected>`, and no stack trace. */
function oneLine(r: Exit, taskName: string, expected: string | RegExp): void {
  expect(r.code, r.output).toBe(1);
  const errors = r.output.split('\n').filter((l) => l.includes('error:'));
  expect(errors, r.output).toHaveLength(1);
  if (typeof expected === 'string') expect(errors[0]).toBe(`${taskName}: error: ${expected}`);
  else expect(errors[0]).toMatch(expected);
  // no JavaScript stack (a native driver message may mention a C++ function)
  expect(r.output).not.toMatch(/^\s+at .*\.(m?js|ts):\d+:\d+\)?$/m);
}

describe('tasks as a new user runs them: one clear line for each mistake', () => {
  it('--resume of a folder that does not exist', async () => {
    const out = join(work, 'missing-run');
    oneLine(await runTask('imagenet-lt', [...tiny(out), '--resume']), 'imagenet-lt', `--resume: the run folder ${out} does not exist (a new run is started without --resume)`);
    expect(existsSync(out)).toBe(false);
  });

  it('an --out that already holds a run', async () => {
    const out = join(work, 'taken');
    mkdirSync(out);
    writeFileSync(join(out, 'config.json'), '{}');
    oneLine(await runTask('imagenet-lt', tiny(out)), 'imagenet-lt', `${out} already holds a run (config.json); pass --resume to continue it, or choose another --out`);
  });

  it('an --out that cannot be written: a file in the way, a read-only or forbidden place', async () => {
    writeFileSync(join(work, 'a-file'), 'x');
    const out = join(work, 'a-file', 'run');
    oneLine(await runTask('imagenet-lt', tiny(out)), 'imagenet-lt', `cannot write the run folder ${out}: a part of the path is a file, not a folder (ENOTDIR); choose another --out`);
    oneLine(await runTask('imagenet-lt', tiny('/sys/longtail-run')), 'imagenet-lt', /^imagenet-lt: error: cannot write the run folder \/sys\/longtail-run: (permission denied \((EPERM|EACCES)\)|it is on a read-only file system \(EROFS\)); choose another --out$/);
  });

  it('a missing --data-root (and --data, the deprecated name, warns)', async () => {
    oneLine(await runTask('imagenet-lt', tiny(join(work, 'x')).map((a) => (a === data() ? '/nonexistent/imagenet' : a))), 'imagenet-lt', '--data-root /nonexistent/imagenet does not exist');
    const r = await runTask('cifar-lt', ['--data', '/nonexistent/cifar']);
    oneLine(r, 'cifar-lt', '--data-root /nonexistent/cifar does not exist');
    expect(r.output).toContain('cifar-lt: warning: --data is deprecated; use --data-root');
    oneLine(await runTask('cifar-lt', []), 'cifar-lt', 'missing option --data-root: the CIFAR folder (list files train.txt/test.txt or the official binaries)');
  });

  it('--data still works, with a warning, and absolute image paths in a list are used as they are', async () => {
    const out = join(work, 'list-only');
    const r = await runTask('cifar-lt', ['--data', data(), '--imbalance', '2', '--list-only', '--out', out]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('--data is deprecated');
    const list = readFileSync(join(out, 'train_cifar10_exp_if2.txt'), 'utf8').trim().split('\n');
    expect(list.length).toBeGreaterThan(10);
    expect(list[0].startsWith(`${MINI}/`)).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).dataRoot).toBe(data());
  });

  it('a label of -1 names the range [0, C); an empty list says it is empty', async () => {
    const bad = join(work, 'bad-lists');
    mkdirSync(bad);
    writeFileSync(join(bad, 'train.txt'), `${join(MINI, readFileSync(join(MINI, 'train.txt'), 'utf8').split('\n')[0].split(' ')[0])} -1\n`);
    writeFileSync(join(bad, 'empty.txt'), '\n');
    const args = (list: string) => ['--data-root', bad, '--train-list', list, '--test-list', list, '--num-classes', '10', '--out', join(work, 'never')];
    oneLine(await runTask('imagenet-lt', args('train.txt')), 'imagenet-lt', `${join(bad, 'train.txt')}:1: label -1 is out of range [0, 10) (10 classes)`);
    oneLine(await runTask('imagenet-lt', args('empty.txt')), 'imagenet-lt', `${join(bad, 'empty.txt')}: the list is empty: expected one "path label" line per image`);
    // none of these left a run folder behind
    expect(existsSync(join(work, 'never'))).toBe(false);
  });

  it('--loss ldam with another head: one line, before any run folder', async () => {
    const out = join(work, 'ldam-linear');
    oneLine(await runTask('imagenet-lt', [...tiny(out), '--loss', 'ldam', '--head', 'linear']), 'imagenet-lt', /^imagenet-lt: error: --loss ldam runs on LDAM-DRW's NormedLinear head .*Leave --head out or pass --head normed$/);
    expect(existsSync(out)).toBe(false);
  });

  it('without a WebGPU adapter: stops, says how to install the driver, leaves no run folder', async () => {
    const out = join(work, 'no-adapter');
    const r = await runTask('imagenet-lt', tiny(out), { env: { VK_ICD_FILENAMES: join(work, 'no-such-icd.json') } });
    oneLine(r, 'imagenet-lt', /^imagenet-lt: error: no WebGPU adapter found\. On Linux without a GPU, install Mesa lavapipe >= 24 .*mesa-vulkan-drivers libvulkan1.*pass --backend cpu$/);
    expect(r.output).not.toMatch(/running on the CPU reference backend|CPU reference backend \(/);
    expect(existsSync(out)).toBe(false);
  });

  it('--backend cpu says the expected time; Ctrl-C before the first checkpoint says so, in the terminal and log.txt', async () => {
    const out = join(work, 'cpu');
    const r = await runTask('imagenet-lt', [...tiny(out), '--backend', 'cpu'], { interruptWhen: (o) => o.includes('the CPU reference backend trains slowly') });
    expect(r.code, r.output).toBe(130);
    expect(r.output).toMatch(/warning: the CPU reference backend trains slowly: stage 1 \(1 epochs of 48 resnet8 images\) takes about [\d.]+s \(estimated from 1\.3 img\/s/);
    const line = `error: interrupted by SIGINT; no epoch checkpoint was written in ${out} yet;`;
    expect(r.output).toContain(line);
    expect(readFileSync(join(out, 'log.txt'), 'utf8')).toContain(line);
  });
});

describe('a run interrupted, resumed and crashed', () => {
  it('cifar-lt --epochs 2 --drw 1 starts (milestones of a short LDAM schedule), Ctrl-C prints the resume command, which works; train_seconds adds up', async () => {
    const out = join(work, 'cifar');
    const argv = ['--data-root', data(), '--imbalance', '2', '--model', 'resnet8', '--epochs', '2', '--drw', '1', '--batch-size', '16', '--calib', 'none', '--workers', '0', '--val-list', 'test.txt', '--eval-every', '1', '--out', out];
    const epoch1 = join(out, 'checkpoints', 'epoch-0001.safetensors');
    const first = await runTask('cifar-lt', argv, { interruptWhen: () => existsSync(epoch1) });
    expect(first.code, first.output).toBe(130);
    expect(first.output).toContain('DRW: class-balanced re-weighting from epoch 1 (0-based) of 2');
    const advice = new RegExp(`error: interrupted by SIGINT; last checkpoint: ${epoch1.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(epoch 1\\); continue with: (node tasks/cifar-lt\\.js .*)$`, 'm');
    const m = advice.exec(first.output);
    expect(m, first.output).not.toBeNull();
    expect(readFileSync(join(out, 'log.txt'), 'utf8')).toContain(m![0].trim());
    // the printed command, as a user would paste it
    const words = m![1].split(' ');
    expect(words.slice(0, 2)).toEqual(['node', 'tasks/cifar-lt.js']);
    expect(words.slice(-3)).toEqual(['--out', out, '--resume']);
    expect(readFileSync(join(out, 'epochs.csv'), 'utf8').trim().split('\n')).toHaveLength(2);
    const resumed = await runTask('cifar-lt', words.slice(2));
    expect(resumed.code, resumed.output).toBe(0);
    // the per-epoch CSV continues over the sessions, and the curves are drawn
    const csv = readFileSync(join(out, 'epochs.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('epoch,mean_loss,lr,train_seconds,images_per_s,val_top1');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual(['1', '2']);
    // LDAM-DRW's short schedule for 2 epochs: warm-up 1 epoch (lr 0.1·1/1), then lr 0.1 (milestones 2, 3 not reached)
    expect(csv.slice(1).map((l) => Number(l.split(',')[2]))).toEqual([0.1, 0.1]);
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toContain('<polyline');
    // --eval-every 1 on --val-list: each epoch evaluated, the best one kept and reported
    const valTop1 = csv.slice(1).map((l) => Number(l.split(',')[5]));
    for (const v of valTop1) expect(v).toBeGreaterThanOrEqual(0);
    const bestEpoch = valTop1[1] > valTop1[0] ? 2 : 1;
    const mBest = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(mBest.best_epoch).toBe(bestEpoch);
    expect(mBest.best_val_top1).toBeCloseTo(valTop1[bestEpoch - 1], 6);
    expect(readdirSync(join(out, 'checkpoints'))).toContain('best.safetensors');
    expect(resumed.output).toMatch(/epoch 2: validation top-1 [\d.]+%/);
    const meta = (file: string) => JSON.parse(Object.values(decodeSafetensors(new Uint8Array(readFileSync(file))).metadata).find((v) => v.includes('trainSeconds'))!);
    const m1 = meta(epoch1);
    const m2 = meta(join(out, 'checkpoints', 'epoch-0002.safetensors'));
    expect(m2.trainSeconds).toBeGreaterThan(m1.trainSeconds);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.train_seconds).toBe(m2.trainSeconds);
    expect(metrics.images_per_s).toBeGreaterThan(0);
    // resumed once more with stage 1 done, with another --calib (stage 2 reruns on the cached features) and
    // --export-features: the time is the stage-1 time, not the 0.01 s of this session
    const again = await runTask('cifar-lt', [...words.slice(2), '--calib', 'ncm,crt', '--export-features']);
    expect(again.output).toContain('option calib changed on resume');
    const exported = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'features.safetensors')))).tensors;
    const shapes = Object.fromEntries([...exported].map(([k, t]) => [k, `${t.dtype} ${t.shape.join('x')}`]));
    const n = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).train_counts.reduce((a: number, b: number) => a + b, 0);
    expect(shapes).toEqual({ features: `F32 ${n}x64`, labels: `I32 ${n}`, counts: 'I32 10', weight: 'F32 10x64', bias: 'F32 10', test_features: 'F32 30x64', test_labels: 'I32 30' });
    expect(again.code, again.output).toBe(0);
    const metrics2 = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics2.train_seconds).toBe(m2.trainSeconds);
    expect(metrics2.images_per_s).toBeCloseTo(metrics.images_per_s, 6);
    expect(metrics2.methods.map((m: { method: string }) => m.method)).toEqual(['Baseline (ce-DRW)', 'ncm', 'crt']);
    for (const plot of ['per_class_accuracy.svg', 'split_accuracy.svg', 'calibration_change.svg', 'confusion_matrix.svg']) expect(readdirSync(out)).toContain(plot);

    // --stage1-checkpoint (a run folder: its latest checkpoint) skips stage 1 and runs stage 2 only
    const base = words.slice(2, -3);
    const out2 = join(work, 'cifar-stage2');
    const stage2 = await runTask('cifar-lt', [...base, '--stage1-checkpoint', out, '--calib', 'lws', '--out', out2]);
    expect(stage2.code, stage2.output).toBe(0);
    expect(stage2.output).toContain(`stage 1 skipped: the model of ${join(out, 'checkpoints', 'epoch-0002.safetensors')} (epoch 2)`);
    expect(stage2.output).not.toMatch(/^stage 1: /m);
    const m3 = JSON.parse(readFileSync(join(out2, 'metrics.json'), 'utf8'));
    expect(m3.methods.map((m: { method: string }) => m.method)).toEqual(['Baseline (ce-DRW)', 'lws']);
    expect(m3.methods[0].top1).toBe(metrics2.methods[0].top1);

    // --eval-only --init-from: PyTorch-style names (a DDP "module." prefix, the classifier as fc.*), one
    // tensor left out and one extra: reported, and the evaluation is the trained model's
    const ck = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'checkpoints', 'epoch-0002.safetensors')))).tensors;
    // num_batches_tracked is I64 in the file, as in torch's state dicts
    const host = (t: { dtype: string; bytes: Uint8Array }) => (t.dtype === 'F32' ? new Float32Array(t.bytes.slice().buffer) : new BigInt64Array(t.bytes.slice().buffer));
    const entries: [string, { dtype: 'F32' | 'I64'; shape: number[]; data: Float32Array | BigInt64Array }][] = [];
    for (const [k, t] of ck) {
      if (!k.startsWith('backbone.') || k === 'backbone.fc.weight' || k === 'backbone.fc.bias' || (t.dtype !== 'F32' && t.dtype !== 'I64')) continue;
      if (k === 'backbone.bn1.num_batches_tracked') continue; // left out: reported missing
      entries.push([`module.${k.slice(9)}`, { dtype: t.dtype as 'F32' | 'I64', shape: [...t.shape], data: host(t) }]);
    }
    for (const [from, to] of [['head.fc.weight', 'module.fc.weight'], ['head.fc.bias', 'module.fc.bias']]) {
      const t = ck.get(from)!;
      entries.push([to, { dtype: 'F32', shape: [...t.shape], data: host(t) }]);
    }
    entries.push(['module.extra.weight', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    const { encodeSafetensors } = await import('../../nn/safetensors.js');
    const init = join(work, 'torch-style.safetensors');
    writeFileSync(init, encodeSafetensors(entries));
    const out3 = join(work, 'cifar-eval');
    const evaluated = await runTask('cifar-lt', [...base, '--init-from', init, '--eval-only', '--out', out3]);
    expect(evaluated.code, evaluated.output).toBe(0);
    expect(evaluated.output).toMatch(/--init-from .*torch-style\.safetensors: \d+ of \d+ tensors loaded by name \(fc\.\* into the stage-1 head\); missing \(left as initialised\): bn1\.num_batches_tracked; unexpected \(ignored\): extra\.weight/);
    const m4 = JSON.parse(readFileSync(join(out3, 'metrics.json'), 'utf8'));
    expect(m4.methods.map((m: { method: string }) => m.method)).toEqual(['Baseline (ce-DRW)']);
    expect(m4.methods[0].top1).toBe(metrics2.methods[0].top1);
    expect(readdirSync(out3)).not.toContain('checkpoints');

    // the run's config.json passes back as it is (--config), under the command line
    const out5 = join(work, 'cifar-from-config');
    const fromConfig = await runTask('cifar-lt', ['--config', join(out, 'config.json'), '--list-only', '--out', out5]);
    expect(fromConfig.code, fromConfig.output).toBe(0);
    const { out: _o1, listOnly: _l1, resume: _r1, ...saved } = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const { out: _o2, listOnly: _l2, resume: _r2, ...again5 } = JSON.parse(readFileSync(join(out5, 'config.json'), 'utf8'));
    expect(again5).toEqual(saved);
    expect(saved.workers).toBe(0); // the effective value is recorded
  });

  it('a crash prints its error once, without [object Promise], then the last checkpoint and how to continue', async () => {
    const dir = join(work, 'crash');
    mkdirSync(dir);
    writeFileSync(join(dir, 'train.txt'), readFileSync(join(data(), 'train.txt')));
    // the test list holds an image that is not an image: stage 1 finishes, the test features fail
    writeFileSync(join(dir, 'broken.jpg'), 'not a jpeg');
    writeFileSync(join(dir, 'test.txt'), `${readFileSync(join(data(), 'test.txt'), 'utf8')}broken.jpg 3\n`);
    const out = join(dir, 'run');
    const r = await runTask('imagenet-lt', tiny(out).map((a) => (a === data() ? dir : a)));
    expect(r.code, r.output).toBe(1);
    expect(r.output).not.toContain('[object Promise]');
    const errors = r.output.split('\n').filter((l) => l.startsWith('error:'));
    expect(errors, r.output).toHaveLength(1);
    expect(errors[0]).toContain('broken.jpg');
    expect(r.output).toContain(`last checkpoint: ${join(out, 'checkpoints', 'epoch-0001.safetensors')} (epoch 1); continue with: node tasks/imagenet-lt.js`);
    expect(readdirSync(join(out, 'checkpoints'))).toEqual(['epoch-0001.safetensors']);
  });
});

describe('pure parts', () => {
  it('shortens the LDAM-DRW schedule with strictly increasing milestones', () => {
    expect(ldamScheduleFor(200)).toEqual({ milestones: [160, 180], factors: [0.01, 0.0001], warmup: 5 });
    expect(ldamScheduleFor(1)).toEqual({ milestones: [1, 2], factors: [0.01, 0.0001], warmup: 0 });
    expect(ldamScheduleFor(2)).toEqual({ milestones: [2, 3], factors: [0.01, 0.0001], warmup: 1 });
    expect(ldamScheduleFor(20)).toEqual({ milestones: [16, 18], factors: [0.01, 0.0001], warmup: 5 });
    for (let e = 1; e < 200; e++) {
      const { milestones: [a, b] } = ldamScheduleFor(e);
      expect(a).toBeGreaterThanOrEqual(1);
      expect(b).toBeGreaterThan(a);
    }
  });

  it('writes the resume command with the same options, quoted for a shell', () => {
    expect(resumeCommand('cifar-lt', ['--data-root', 'my data', '--out', 'runs/a', '--epochs', '3', '--resume'], 'runs/b')).toBe("node tasks/cifar-lt.js --data-root 'my data' --epochs 3 --out runs/b --resume");
    expect(resumeCommand('imagenet-lt', ['--out=runs/a'], 'runs/a')).toBe('node tasks/imagenet-lt.js --out runs/a --resume');
  });

  it('estimates the CPU backend time from 1.3 img/s for ResNet-8 at 32×32', () => {
    expect(cpuTrainingEstimate('resnet8', 32, 13)).toBeCloseTo(10, 10);
    expect(cpuTrainingEstimate('resnet8', 16, 52)).toBeCloseTo(10, 10);
  });
});
