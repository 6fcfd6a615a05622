// Browser-safe library entry: no Node built-ins may be reached from here (the web build fails if
// one is). The top level is the tensor core (device, tensors, scopes, creation, random numbers,
// errors, the runtime) and the differentiable library: autograd's ops, nn, data and longtail.
// Every raw kernel (records nothing on the tape) is under `raw`, e.g. `raw.matmul`, `raw.unary`.
export * from './kernels/device.js';
export * from './kernels/errors.js';
export * from './kernels/tensor.js';
export * from './kernels/creation.js';
export * from './kernels/random.js';
export { runtime, type Bound, type Uniforms } from './kernels/runtime.js';
export type { KernelTime } from './kernels/profile.js';
export type { PoolStats } from './kernels/pool.js';
export * as raw from './kernels/index.js';
export * from './autograd/index.js';
export * from './nn/index.js';
export * from './data/index.js';
export * from './longtail/index.js';
// detection: structures, box coder, poolers, evaluation (COCO / LVIS), browser-safe
export * from './detection/index.js';
export * from './scene-graph/index.js';
export * from './segmentation/index.js';
