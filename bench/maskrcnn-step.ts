// node bench/maskrcnn-step.js [--batch 4] [--size 128] [--steps 8] [--warmup 3] [--out-channels 32] [--representation 128] [--width 64] [--memory-steps N] [--kernels] [--json FILE]
// Times a small Mask R-CNN (ResNet-FPN with one basic block per stage, the embedded LVIS task's
// size) on synthetic images of coloured rectangles with masks: the median ms per training step
// (losses, backward, SGD, until the GPU has finished) and per image of inference (detect() on a
// batch, score threshold 1e-4 so that every image yields its full 100 detections with masks),
// with the host-side share of each (matching, sampling, NMS, readbacks: detection/host-time.ts).
// The batches cycle through 16 different images, so proposal and positive counts vary per step.
// --memory-steps N runs N more steps and prints the pool bytes and live tensors at steps
// 10, 50, 100, 200 (those ≤ N) and at N; after warm-up they must not grow (exit code 1 if they do).
// --kernels times one more step and one more inference per kernel with timestamp queries.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { init, device, runtime, liveTensorCount, scopeAsync, manualSeed, DataRng, SGD, detectionBatch, maskrcnnResnetFpn, totalLoss, type DetectionSample } from '../index.node.js';
import type { KernelTime } from '../kernels/runtime.js';
import { hostTime, resetHostTime } from '../detection/host-time.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '4' },
    size: { type: 'string', default: '128' },
    steps: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    'out-channels': { type: 'string', default: '32' },
    representation: { type: 'string', default: '128' },
    width: { type: 'string', default: '64' },
    classes: { type: 'string', default: '31' },
    'memory-steps': { type: 'string', default: '0' },
    kernels: { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('node bench/maskrcnn-step.js [--batch 4] [--size 128] [--steps 8] [--warmup 3] [--out-channels 32] [--representation 128] [--width 64] [--classes 31] [--memory-steps N] [--kernels] [--json FILE]');
  process.exit(0);
}
const count = (flag: string, min: number): number => {
  const v = values[flag as keyof typeof values] as string;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer >= ${min}, got ${v}`);
  return n;
};
const batch = count('batch', 1), size = count('size', 32), steps = count('steps', 1), warmup = count('warmup', 0);
const outChannels = count('out-channels', 1), representation = count('representation', 1), width = count('width', 1), classes = count('classes', 2);
const memorySteps = count('memory-steps', 0);

const dev = await init({ requireWebGPU: true });
console.log(`adapter: ${dev!.info.description || dev!.info.vendor} ${dev!.info.architecture} (fallback ${dev!.info.isFallbackAdapter})`);
manualSeed(1);
const model = maskrcnnResnetFpn({ block: 'basic', layers: [1, 1, 1, 1] }, {
  outChannels, baseChannels: width, numClasses: classes, representationSize: representation, maskLayers: [32, 32, 32, 32], maskDimReduced: 32,
  minSize: size, maxSize: Math.round(size * 1.25), rpnPreNmsTopNTrain: 600, rpnPostNmsTopNTrain: 300, rpnPreNmsTopNTest: 300, rpnPostNmsTopNTest: 150,
  rpnBatchSizePerImage: 128, boxBatchSizePerImage: 128, boxScoreThresh: 1e-4, boxDetectionsPerImg: 100, trainableLayers: 5,
});
const opt = new SGD(model.trainableParameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });

/** An image of 1-4 filled rectangles (colour by class) with their boxes and masks. */
function synthetic(rng: DataRng): DetectionSample {
  const H = size, W = size;
  const image = new Float32Array(3 * H * W).fill(0.1);
  const n = 1 + Math.floor(rng.random() * 4);
  const masks = new Uint8Array(n * H * W), boxes = new Float32Array(n * 4), labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const w = 12 + Math.floor(rng.random() * (W / 2)), h = 12 + Math.floor(rng.random() * (H / 2));
    const x1 = Math.floor(rng.random() * (W - w)), y1 = Math.floor(rng.random() * (H - h));
    labels[k] = 1 + Math.floor(rng.random() * (classes - 1));
    const colour = [labels[k] % 3, (labels[k] >> 1) % 3, (labels[k] >> 2) % 3].map((v) => 0.2 + 0.3 * v);
    for (let y = y1; y < y1 + h; y++) {
      for (let x = x1; x < x1 + w; x++) {
        for (let c = 0; c < 3; c++) image[c * H * W + y * W + x] = colour[c];
        masks[k * H * W + y * W + x] = 1;
      }
    }
    boxes.set([x1, y1, x1 + w, y1 + h], k * 4);
  }
  return { image, channels: 3, height: H, width: W, originalSize: [H, W], target: { boxes, labels, masks } };
}
const dataRng = new DataRng(11);
const images = Array.from({ length: 16 }, () => synthetic(dataRng));
const batches = Array.from({ length: 16 }, (_, i) => detectionBatch(Array.from({ length: batch }, (_, b) => images[(i * batch + b) % 16]), { minSize: [size], maxSize: Math.round(size * 1.25) }, dataRng));
const rt = runtime();
const rng = new DataRng(7);
let stepNo = 0;

async function trainStep(): Promise<void> {
  model.train();
  const list = batches[stepNo++ % batches.length];
  await scopeAsync(async () => {
    const total = totalLoss(await model.losses(list, rng));
    total.backward();
    opt.step();
    opt.zeroGrad();
  });
  await rt.sync();
}

async function inferStep(): Promise<number> {
  model.eval();
  const imgs = images.slice(0, batch);
  const dets = await model.detect(imgs);
  await rt.sync();
  return dets.reduce((s, d) => s + d.scores.length, 0);
}

/**
 * Median wall ms, median process CPU ms (all threads, lavapipe's included: steadier than wall time
 * on a loaded machine) and median host ms per phase over n calls.
 */
async function timeIt(n: number, fn: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number; host: Record<string, number> }> {
  const ms: number[] = [], cpu: number[] = [], host: Record<string, number[]> = {};
  for (let i = 0; i < n; i++) {
    resetHostTime();
    const t0 = performance.now(), c0 = process.cpuUsage();
    await fn();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    for (const [k, v] of Object.entries(hostTime)) (host[k] ??= []).push(v);
  }
  return { ms: median(ms), cpuMs: median(cpu), host: Object.fromEntries(Object.entries(host).map(([k, v]) => [k, median(v)])) };
}
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

for (let i = 0; i < warmup; i++) await trainStep();
const train = await timeIt(steps, trainStep);
await inferStep();
let detections = 0;
const infer = await timeIt(steps, async () => (detections = await inferStep()));

let memory: { step: number; pool_bytes: number; live_bytes: number; buffers: number; live_tensors: number }[] | undefined;
if (memorySteps > 0) {
  memory = [];
  const marks = new Set([10, 50, 100, 200, memorySteps].filter((s) => s <= memorySteps));
  // rows are printed as they come: a long run shows its progress
  console.log('| step | pool MB | live MB | buffers | live tensors |\n| --- | --- | --- | --- | --- |');
  for (let i = 1; i <= memorySteps; i++) {
    await trainStep();
    if (marks.has(i)) {
      const s = rt.pool.getStats();
      const m = { step: i, pool_bytes: s.totalBytes, live_bytes: s.liveBytes, buffers: s.buffers, live_tensors: liveTensorCount() };
      memory.push(m);
      console.log(`| ${m.step} | ${(m.pool_bytes / 2 ** 20).toFixed(2)} | ${(m.live_bytes / 2 ** 20).toFixed(2)} | ${m.buffers} | ${m.live_tensors} |`);
    }
  }
}
let kernels: { train: KernelTime[]; infer: KernelTime[] } | undefined;
if (values.kernels) {
  let profile = rt.startProfile();
  await trainStep();
  const tk = await profile.stop();
  profile = rt.startProfile();
  await inferStep();
  kernels = { train: tk, infer: await profile.stop() };
}

const row = {
  batch, size, width, out_channels: outChannels, representation, classes, steps,
  ms_per_step: train.ms, cpu_ms_per_step: train.cpuMs, host_ms_per_step: train.host,
  ms_per_image: infer.ms / batch, cpu_ms_per_image: infer.cpuMs / batch, host_ms_per_image: Object.fromEntries(Object.entries(infer.host).map(([k, v]) => [k, v / batch])), detections_per_image: detections / batch,
  params: model.numParameters(), peak_bytes: rt.pool.getStats().peakBytes,
  adapter: device().info.description || device().info.vendor,
  ...(memory ? { memory } : {}),
  ...(kernels ? { kernels } : {}),
};
const fmtHost = (h: Record<string, number>) => Object.entries(h).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ') || '-';
console.log(`| batch | size | width | FPN | ms/step (median of ${steps}) | CPU ms/step | ms/image (inference) | CPU ms/image | dets/image | params | peak pool MB |`);
console.log(`| ${batch} | ${size} | ${width} | ${outChannels} | ${train.ms.toFixed(1)} | ${train.cpuMs.toFixed(1)} | ${row.ms_per_image.toFixed(1)} | ${row.cpu_ms_per_image.toFixed(1)} | ${row.detections_per_image.toFixed(0)} | ${row.params.toLocaleString('en-US')} | ${(row.peak_bytes / 2 ** 20).toFixed(1)} |`);
console.log(`host ms per step: ${fmtHost(train.host)}`);
console.log(`host ms per image: ${fmtHost(row.host_ms_per_image)}`);
if (kernels) {
  for (const [what, ks] of Object.entries(kernels)) {
    // kernel names are <file>.<op>[.<pass>]: summed per family (the file)
    const families = new Map<string, { calls: number; ms: number }>();
    for (const k of ks) {
      const fam = k.name.split('.')[0];
      const f = families.get(fam) ?? { calls: 0, ms: 0 };
      f.calls += k.calls;
      f.ms += k.ms;
      families.set(fam, f);
    }
    const total = ks.reduce((a, k) => a + k.ms, 0);
    console.log(`\nGPU time per kernel family, one ${what === 'train' ? 'training step' : 'inference batch'} (${total.toFixed(1)} ms, ${ks.reduce((a, k) => a + k.calls, 0)} dispatches):\n| family | calls | ms | share |\n| --- | --- | --- | --- |`);
    for (const [fam, f] of [...families].sort((a, b) => b[1].ms - a[1].ms)) console.log(`| ${fam} | ${f.calls} | ${f.ms.toFixed(1)} | ${((100 * f.ms) / total).toFixed(1)}% |`);
    console.log(`top kernels: ${ks.slice(0, 8).map((k) => `${k.name} ${k.ms.toFixed(1)} ms/${k.calls}`).join(', ')}`);
  }
}
if (memory) {
  const first = memory[0], last = memory[memory.length - 1];
  if (last.pool_bytes > first.pool_bytes || last.live_tensors !== first.live_tensors) {
    console.error(`memory grows across training steps: pool ${first.pool_bytes} -> ${last.pool_bytes} B, live tensors ${first.live_tensors} -> ${last.live_tensors}`);
    process.exitCode = 1;
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify([row], null, 2));
