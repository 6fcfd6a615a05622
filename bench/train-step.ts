// node bench/train-step.js --model resnet32 --batch 128 [--size 32] [--steps 10] [--json FILE]
// Times full training steps (forward, loss, backward, SGD) until the GPU has finished: the median
// ms per step and images/s over --steps steps after warm-up, the parameter count, peak pool bytes,
// and whether pool memory grows across the measured steps. --profile splits a step into phases.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { init, device, runtime, randn, tensor, scopeAsync as scope, type Tensor } from '../index.node.js';
import { crossEntropy } from '../longtail/losses.js';
import { SGD } from '../nn/optim.js';
import { makeBackbone, MODELS, type ModelName } from '../tasks/lib/pipeline.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet32' },
    batch: { type: 'string', default: '128' },
    size: { type: 'string' },
    classes: { type: 'string' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('node bench/train-step.js --model resnet8|resnet32|resnet18|resnet50|... --batch N [--size PX] [--classes C] [--steps N] [--warmup N] [--json FILE] [--profile]');
  process.exit(0);
}
const model = values.model as ModelName;
if (!MODELS.includes(model)) throw new Error(`--model must be one of ${MODELS.join(', ')}`);
const batch = Number(values.batch);
const cifar = model === 'resnet8' || model === 'resnet32';
const size = Number(values.size ?? (cifar ? 32 : 224));
const classes = Number(values.classes ?? (cifar ? 10 : 1000));
const steps = Number(values.steps);

const dev = await init({ requireWebGPU: true });
console.log(`adapter: ${dev!.info.description || dev!.info.vendor} ${dev!.info.architecture} (fallback ${dev!.info.isFallbackAdapter})`);
const net = makeBackbone(model, classes) as unknown as { forward(x: Tensor): Tensor; parameters(): Tensor[]; numParameters(): number; train(): void };
net.train();
const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
const x = randn([batch, 3, size, size], { seed: 1 });
const y = tensor(Int32Array.from({ length: batch }, (_, i) => i % classes), [batch], { dtype: 'i32' });
const rt = runtime();

async function step(profile: boolean): Promise<Record<string, number>> {
  const t: Record<string, number> = {};
  let t0 = performance.now();
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
  return t;
}

for (let i = 0; i < Number(values.warmup); i++) await step(false);
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
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const row = {
  model,
  batch,
  size,
  ms_per_step: median(ms),
  images_per_s: (batch * 1000) / median(ms),
  params: net.numParameters(),
  peak_bytes: after.peakBytes,
  pool_growth_bytes: after.totalBytes - before.totalBytes,
  adapter: device().info.description || device().info.vendor,
  ...(values.profile ? { phases_ms: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])) } : {}),
};
console.log(`| model | batch | size | ms/step | images/s | params | peak pool MB | pool growth |`);
console.log(`| ${model} | ${batch} | ${size} | ${row.ms_per_step.toFixed(1)} | ${row.images_per_s.toFixed(1)} | ${row.params.toLocaleString('en-US')} | ${(row.peak_bytes / 2 ** 20).toFixed(1)} | ${row.pool_growth_bytes} B |`);
if (row.phases_ms) console.log('phases (ms):', row.phases_ms);
if (values.json) writeFileSync(values.json, JSON.stringify([row], null, 2));
