// node bench/train-step.js --model resnet32 --batch 128 [--size 32] [--steps 10] [--memory-steps 100] [--json FILE] [--peer torch [--peer-device cpu|cuda|auto]]
// Times full training steps (forward, loss, backward, SGD) until the GPU has finished: the median
// ms per step and images/s over --steps steps after warm-up, the parameter count, peak pool bytes,
// and whether pool memory grows across the measured steps. --memory-steps N then runs N more steps
// and compares the pool after the first of them with the pool after the last: after warm-up it
// must not grow (the exit code is 1 if it does). --profile splits a step into phases; --kernels
// times one more step per kernel with timestamp queries (GPU ms and calls per kernel). --peer torch
// then runs the same model, batch and step in PyTorch (bench/torch_step.py, Debian's python3-torch;
// $PYTHON picks another interpreter) on the CPU, or with --peer-device cuda on the GPU, and prints
// the ratio torch_ms / ours (above 1: we are faster). --per-step prints each step's ms, pool bytes
// and live tensors as it ends (for slow models, e.g. resnet50 at batch 64 and 224 px on a CPU adapter);
// --binding-limit lowers the storage binding limit (runtime().setBindingLimitForTesting), so a small
// batch takes the paths that split tensors larger than one binding. --blocks 1,1,1,1 gives resnet50
// (or resnet18) fewer blocks per stage: the same stem and stage shapes for a fraction of the work.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { init, device, runtime, randn, tensor, liveTensorCount, scopeAsync as scope, type Tensor } from '../index.node.js';
import type { KernelTime } from '../kernels/runtime.js';
import { crossEntropy } from '../longtail/losses.js';
import { SGD } from '../nn/optim.js';
import { BasicBlock, Bottleneck, ResNet } from '../nn/resnet.js';
import { makeBackbone, MODELS, type ModelName } from '../tasks/lib/pipeline.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet32' },
    batch: { type: 'string', default: '128' },
    size: { type: 'string' },
    classes: { type: 'string' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    'memory-steps': { type: 'string', default: '0' },
    'per-step': { type: 'boolean', default: false },
    'binding-limit': { type: 'string' },
    blocks: { type: 'string' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
    kernels: { type: 'boolean', default: false },
    peer: { type: 'string' },
    'peer-device': { type: 'string', default: 'cpu' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('node bench/train-step.js --model resnet8|resnet32|resnet18|resnet50|... --batch N [--size PX] [--classes C] [--steps N] [--warmup N] [--memory-steps N] [--per-step] [--binding-limit BYTES] [--blocks B1,B2,B3,B4] [--json FILE] [--profile] [--kernels] [--peer torch] [--peer-device cpu|cuda|auto]');
  process.exit(0);
}
const model = values.model as ModelName;
if (!MODELS.includes(model)) throw new Error(`--model must be one of ${MODELS.join(', ')}`);
const count = (flag: string, value: string | undefined, min: number): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer >= ${min}, got ${value}`);
  return n;
};
const batch = count('batch', values.batch, 1);
const cifar = model === 'resnet8' || model === 'resnet32';
const size = Number(values.size ?? (cifar ? 32 : 224));
const classes = Number(values.classes ?? (cifar ? 10 : 1000));
const steps = count('steps', values.steps, 1);
const warmup = count('warmup', values.warmup, 0);
const memorySteps = count('memory-steps', values['memory-steps'], 0);
if (values.peer !== undefined && values.peer !== 'torch') throw new Error(`--peer takes 'torch', got '${values.peer}'`);
const peerDevice = values['peer-device']!;
if (!['cpu', 'cuda', 'auto'].includes(peerDevice)) throw new Error(`--peer-device takes cpu, cuda or auto, got '${peerDevice}'`);
if (memorySteps === 1) throw new Error('--memory-steps needs at least 2 steps to compare the first with the last');

const dev = await init({ requireWebGPU: true });
console.log(`adapter: ${dev!.info.description || dev!.info.vendor} ${dev!.info.architecture} (fallback ${dev!.info.isFallbackAdapter})`);
const blocks = values.blocks?.split(',').map((b) => count('blocks', b, 1));
if (blocks && (blocks.length !== 4 || !['resnet18', 'resnet50'].includes(model))) throw new Error('--blocks takes 4 counts, for resnet18 or resnet50');
const net = (blocks ? new ResNet(model === 'resnet50' ? Bottleneck : BasicBlock, blocks as [number, number, number, number], { numClasses: classes }) : makeBackbone(model, classes)) as unknown as { forward(x: Tensor): Tensor; parameters(): Tensor[]; numParameters(): number; train(): void };
net.train();
const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
const x = randn([batch, 3, size, size], { seed: 1 });
const y = tensor(Int32Array.from({ length: batch }, (_, i) => i % classes), [batch], { dtype: 'i32' });
const rt = runtime();
if (values['binding-limit']) rt.setBindingLimitForTesting(count('binding-limit', values['binding-limit'], 256));

async function step(profile: boolean): Promise<Record<string, number>> {
  const t: Record<string, number> = {};
  const start = performance.now();
  let t0 = start;
  const mark = async (name: string) => {
    if (!profile) return;
    await rt.sync();
    const now = performance.now();
    t[name] = now - t0;
    t0 = now;
  };
  // one scope for the whole step: the graph's intermediates must live until backward has run
  await scope(async () => {
    const loss = crossEntropy(net.forward(x), y);
    await mark('forward');
    loss.backward();
    await mark('backward');
    opt.step();
    opt.zeroGrad();
    await mark('step');
  });
  await rt.sync();
  if (values['per-step']) {
    const ms = performance.now() - start;
    console.log(`step ${++stepCount}: ${ms.toFixed(0)} ms, pool ${(rt.pool.getStats().totalBytes / 2 ** 20).toFixed(1)} MB, live tensors ${liveTensorCount()}`);
  }
  return t;
}
let stepCount = 0;

for (let i = 0; i < warmup; i++) await step(false);
const before = rt.pool.getStats();
const ms: number[] = [];
const phases: Record<string, number[]> = {};
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  const t = await step(values.profile!);
  ms.push(performance.now() - t0);
  for (const [k, v] of Object.entries(t)) (phases[k] ??= []).push(v);
}
const after = rt.pool.getStats();

// the pool and the live tensors after the first and after the last of memorySteps further steps
let memory: { steps: number; pool_bytes_first: number; pool_bytes_last: number; pool_growth_bytes: number; live_tensor_growth: number } | undefined;
if (memorySteps > 0) {
  let first = { bytes: 0, tensors: 0 };
  for (let i = 0; i < memorySteps; i++) {
    await step(false);
    if (i === 0) first = { bytes: rt.pool.getStats().totalBytes, tensors: liveTensorCount() };
  }
  const last = rt.pool.getStats().totalBytes;
  memory = { steps: memorySteps, pool_bytes_first: first.bytes, pool_bytes_last: last, pool_growth_bytes: last - first.bytes, live_tensor_growth: liveTensorCount() - first.tensors };
}
// one more step with every dispatch timestamped (each in its own pass, so a little slower)
let kernels: KernelTime[] | undefined;
if (values.kernels) {
  const profile = rt.startProfile();
  await step(false);
  kernels = await profile.stop();
}
/** PyTorch's ms per step for the same model and step, or why it could not run. */
function torchPeer(): { ms_per_step: number; peer: string; threads: number } | { skipped: string } {
  const blocks = { resnet8: 1, resnet32: 5 }[model as string];
  // torchvision's names for our ImageNet backbones
  const tv = { resnet18: 'resnet18', resnet34: 'resnet34', resnet50: 'resnet50', resnext50: 'resnext50_32x4d' }[model as string];
  if (!blocks && !tv) return { skipped: `no torch peer for ${model}` };
  const python = process.env.PYTHON ?? '/usr/bin/python3';
  const script = fileURLToPath(new URL('./torch_step.py', import.meta.url));
  const args = [script, ...(blocks ? ['--blocks', String(blocks)] : ['--model', tv!]), '--batch', String(batch), '--size', String(size), '--classes', String(classes), '--steps', String(steps), '--warmup', String(warmup), '--device', peerDevice, '--threads', String(availableParallelism())];
  try {
    return JSON.parse(execFileSync(python, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').pop()!);
  } catch (e) {
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT') return { skipped: `${python} not found (apt-get install python3-torch, or set PYTHON)` };
    const why = /No module named 'torch'/.test(err.stderr ?? '') ? 'python3-torch is not installed (apt-get install python3-torch)' : (err.stderr ?? String(e)).trim().split('\n').pop();
    return { skipped: why ?? 'failed' };
  }
}
const peer = values.peer === 'torch' ? torchPeer() : undefined;

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const row = {
  model,
  batch,
  size,
  steps,
  ms_per_step: median(ms),
  images_per_s: (batch * 1000) / median(ms),
  params: net.numParameters(),
  peak_bytes: after.peakBytes,
  pool_growth_bytes: after.totalBytes - before.totalBytes,
  adapter: device().info.description || device().info.vendor,
  ...(peer ? { peer: 'skipped' in peer ? peer : { ...peer, ratio: peer.ms_per_step / median(ms) } } : {}),
  ...(memory ? { memory } : {}),
  ...(kernels ? { kernels } : {}),
  ...(values.profile ? { phases_ms: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])) } : {}),
};
console.log(`| model | batch | size | ms/step (median of ${steps}) | images/s | params | peak pool MB | pool growth |`);
console.log(`| ${model} | ${batch} | ${size} | ${row.ms_per_step.toFixed(1)} | ${row.images_per_s.toFixed(1)} | ${row.params.toLocaleString('en-US')} | ${(row.peak_bytes / 2 ** 20).toFixed(1)} | ${row.pool_growth_bytes} B |`);
if (peer) {
  if ('skipped' in peer) console.log(`peer torch: skipped, ${peer.skipped}`);
  else console.log(`peer ${peer.peer} (${peer.threads} threads): ${peer.ms_per_step.toFixed(1)} ms/step; ratio torch_ms / ours = ${(peer.ms_per_step / row.ms_per_step).toFixed(3)} (above 1: we are faster)`);
}
if (row.phases_ms) console.log('phases (ms):', row.phases_ms);
if (kernels) {
  const total = kernels.reduce((a, k) => a + k.ms, 0);
  console.log(`\nGPU time per kernel in one step (${total.toFixed(1)} ms in all):\n| kernel | calls | ms | share |\n| --- | --- | --- | --- |`);
  for (const k of kernels) console.log(`| ${k.name} | ${k.calls} | ${k.ms.toFixed(1)} | ${((100 * k.ms) / total).toFixed(1)}% |`);
  // kernel names are <file>.<op>[.<pass>]: the same time summed per source file under kernels/
  const files = new Map<string, { calls: number; ms: number }>();
  for (const k of kernels) {
    const file = `kernels/${k.name.split('.')[0]}.ts`;
    const f = files.get(file) ?? { calls: 0, ms: 0 };
    f.calls += k.calls;
    f.ms += k.ms;
    files.set(file, f);
  }
  console.log('\n| file | calls | ms | share |\n| --- | --- | --- | --- |');
  for (const [file, f] of [...files].sort((a, b) => b[1].ms - a[1].ms)) console.log(`| ${file} | ${f.calls} | ${f.ms.toFixed(1)} | ${((100 * f.ms) / total).toFixed(1)}% |`);
}
if (memory) {
  const mb = (b: number) => (b / 2 ** 20).toFixed(2);
  // a pool that shrinks (idle buffers destroyed) is not growth
  console.log(`memory over ${memory.steps} steps after warm-up: pool ${mb(memory.pool_bytes_first)} MB after the first, ${mb(memory.pool_bytes_last)} MB after the last (growth ${memory.pool_growth_bytes} B), live tensors ${memory.live_tensor_growth >= 0 ? '+' : ''}${memory.live_tensor_growth}`);
  if (memory.pool_growth_bytes > 0 || memory.live_tensor_growth > 0) {
    console.error('memory grows across training steps');
    process.exitCode = 1;
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify([row], null, 2));
