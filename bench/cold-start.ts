// node bench/cold-start.js [--runs 3] [--task tasks/imagenet-lt.js ...] [--json FILE] [-- TASK OPTIONS]
// node bench/cold-start.js --kernels
// The cold start of the embedded run: seconds from launching `node tasks/imagenet-lt.js` to the
// end of its first training step, with an empty Mesa shader cache (MESA_SHADER_CACHE_DIR set to a
// fresh folder: every pipeline is compiled) and then with the cache that run left (warm). The task
// runs with --log-every 1 --epochs 1 into a temporary folder and is stopped once its progress
// bar shows batch 1 (the loss read back, so the step has finished on the GPU). Each round runs
// every --task cold then warm, so builds compared side by side see the same machine load; the
// summary gives the best and the median per task and cache state.
// --kernels says where a cold start's compiling goes instead: in this process, with an empty shader
// cache, it times two ResNet-8 b64 training steps per kernel specialisation (timestamp queries)
// and prints the first step's extra time per specialisation, largest first, beside the size of its
// WGSL. lavapipe compiles a pipeline at its first dispatch, so that extra time is its compile.
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, runtime, randn, tensor, scopeAsync as scope, type Tensor } from '../index.node.js';
import { crossEntropy } from '../longtail/losses.js';
import { SGD } from '../nn/optim.js';
import { makeBackbone } from '../tasks/lib/pipeline.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '3' },
    task: { type: 'string', multiple: true },
    json: { type: 'string' },
    kernels: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('node bench/cold-start.js [--runs N] [--task FILE]... [--json FILE] [-- TASK OPTIONS]\nnode bench/cold-start.js --kernels');
  process.exit(0);
}
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs ${values.runs}: expected a positive integer`);
  process.exit(1);
}
if (values.kernels) {
  await compilePerKernel();
  process.exit(0);
}
const tasks = values.task ?? [fileURLToPath(new URL('../tasks/imagenet-lt.js', import.meta.url))];

interface Sample {
  task: string;
  cache: 'cold' | 'warm';
  round: number;
  /** launch to the first step's progress line, as this bench saw it */
  seconds: number;
  /** what the task reports: pipelines created before the first step ended (null: an older build that does not say) */
  pipelines: number | null;
}

// the progress bar's batch 1 (a terminal), or the line the tasks log at the first step read back (without one,
// progress is printed only every 30 s)
const FIRST_STEP = /\b1\/\d+ batch\b|first step done [\d.]+ s after launch/;
const PIPELINES = /first step done [\d.]+ s after launch \((\d+) pipelines/;

/** Runs the task until its first step has finished; resolves to the seconds since launch and the pipeline count it logged. */
function firstStep(task: string, cacheDir: string): Promise<{ seconds: number; pipelines: number | null }> {
  const out = mkdtempSync(join(tmpdir(), 'cold-start-run-'));
  const t0 = performance.now();
  const child = spawn(process.execPath, [task, '--out', join(out, 'run'), '--log-every', '1', '--epochs', '1', ...positionals], {
    env: { ...process.env, MESA_SHADER_CACHE_DIR: cacheDir, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let text = '';
    let pipelines: number | null = null;
    let seconds: number | null = null;
    const onData = (chunk: Buffer) => {
      if (seconds !== null) return;
      text += chunk.toString();
      const p = PIPELINES.exec(text);
      if (p) pipelines = Number(p[1]);
      if (FIRST_STEP.test(text)) {
        seconds = (performance.now() - t0) / 1000;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => {
      rmSync(out, { recursive: true, force: true });
      if (seconds === null) reject(new Error(`${task} ended before its first step:\n${text.slice(-2000)}`));
      else resolve({ seconds, pipelines });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const samples: Sample[] = [];
const t0 = performance.now();
console.log(`cold start: ${runs} round(s) of ${tasks.length} task build(s), each with an empty then a warm Mesa shader cache`);
for (let round = 1; round <= runs; round++) {
  for (const task of tasks) {
    const cacheDir = mkdtempSync(join(tmpdir(), 'cold-start-cache-'));
    try {
      for (const cache of ['cold', 'warm'] as const) {
        const r = await firstStep(task, cacheDir);
        samples.push({ task, cache, round, ...r });
        console.log(`round ${round} ${cache} ${task}: first step done ${r.seconds.toFixed(1)} s after launch${r.pipelines !== null ? `, ${r.pipelines} pipelines` : ''}`);
      }
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }
}
console.log('\n| task | cache | best s | median s | runs | pipelines |\n| --- | --- | ---: | ---: | ---: | ---: |');
for (const task of tasks) {
  for (const cache of ['cold', 'warm'] as const) {
    const s = samples.filter((x) => x.task === task && x.cache === cache);
    console.log(`| ${task} | ${cache} | ${Math.min(...s.map((x) => x.seconds)).toFixed(1)} | ${median(s.map((x) => x.seconds)).toFixed(1)} | ${s.length} | ${s[0].pipelines ?? '?'} |`);
  }
}
console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s in all`);
if (values.json) writeFileSync(values.json, JSON.stringify(samples, null, 2));

/** Prints each specialisation's compile time in a ResNet-8 b64 training step: its first step's GPU time less its second's. */
async function compilePerKernel(): Promise<void> {
  const cache = mkdtempSync(join(tmpdir(), 'cold-start-cache-'));
  // read by Mesa when the device is created, below
  process.env.MESA_SHADER_CACHE_DIR = cache;
  try {
    await init({ requireWebGPU: true });
    const net = makeBackbone('resnet8', 10) as unknown as { forward(x: Tensor): Tensor; parameters(): Tensor[]; train(): void };
    net.train();
    const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
    const x = randn([64, 3, 32, 32], { seed: 1 });
    const y = tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10), [64], { dtype: 'i32' });
    const rt = runtime();
    const profiledStep = async (): Promise<{ ms: number; kernels: Map<string, number> }> => {
      const profile = rt.startProfile({ bySpecialisation: true });
      const t0 = performance.now();
      await scope(async () => {
        crossEntropy(net.forward(x), y).backward();
        opt.step();
        opt.zeroGrad();
      });
      const kernels = await profile.stop();
      return { ms: performance.now() - t0, kernels: new Map(kernels.map((k) => [k.name, k.ms])) };
    };
    const first = await profiledStep();
    const second = await profiledStep();
    const chars = rt.kernelCodeSizes();
    const rows = [...first.kernels].map(([name, ms]) => ({ name, compileMs: ms - (second.kernels.get(name) ?? 0), chars: chars.get(name) ?? 0 }));
    rows.sort((a, b) => b.compileMs - a.compileMs);
    const total = rows.reduce((s, r) => s + r.compileMs, 0);
    console.log(`ResNet-8 b64 step with an empty shader cache: first ${(first.ms / 1000).toFixed(1)} s, second ${(second.ms / 1000).toFixed(1)} s; ${rows.length} specialisations, compiling ${(total / 1000).toFixed(1)} s\n`);
    console.log('| specialisation | compile ms | share | WGSL chars |\n| --- | ---: | ---: | ---: |');
    for (const r of rows) console.log(`| ${r.name} | ${r.compileMs.toFixed(0)} | ${((100 * r.compileMs) / total).toFixed(1)}% | ${r.chars} |`);
    if (values.json) writeFileSync(values.json, JSON.stringify({ firstMs: first.ms, secondMs: second.ms, kernels: rows }, null, 2));
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}
