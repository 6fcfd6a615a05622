// Node entry: the whole library, with Dawn (npm `webgpu`) installed as the GPU provider, plus the
// Node-only pieces (files, worker-thread loading, atomic checkpoints).
import { create, globals } from 'webgpu';
import { setGPUProvider } from './kernels/device.js';

Object.assign(globalThis, globals);
let dawn: GPU | undefined;
// create() once; the module-level reference keeps Dawn's instance alive for the whole process.
setGPUProvider(() => (dawn ??= create([]) as GPU));

export * from './index.js';
export * from './data/node-index.js';
export * from './nn/node-checkpoint.js';
