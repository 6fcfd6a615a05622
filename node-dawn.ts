// Installs Dawn (npm `webgpu`) as the GPU provider for Node. Imported for its effect by the Node
// entry, and alone by code that wants WebGPU without loading the rest of the library.
import { availableParallelism } from 'node:os';
import { create, globals } from 'webgpu';
import { setGPUProvider } from './kernels/device.js';
import { withFilteredNativeStderr } from './node-quiet-stderr.js';

// lavapipe (Mesa's CPU Vulkan driver) runs compute shaders on LP_NUM_THREADS threads, one per core
// by default. On small machines more threads than cores are faster: a ResNet-8 b64 training step on
// 2 cores took 0.53x the wall time (0.87x the CPU time) with 8 threads, paired runs against the
// default; 4 threads gained nothing in the step. So below 8 cores, 8 threads unless the user set it.
// Read by Mesa when Dawn creates its Vulkan device, so it is set before create(); other drivers
// (real GPUs, SwiftShader) ignore it.
if (availableParallelism() < 8) process.env.LP_NUM_THREADS ??= '8';

Object.assign(globalThis, globals);
let dawn: GPU | undefined;
let quiet: GPU | undefined;
// create() once; the module-level reference keeps Dawn's instance alive for the whole process.
// requestAdapter goes through withFilteredNativeStderr: Dawn's two "artificially reduced" limit
// notices on lavapipe are dropped, anything else it prints still reaches stderr.
setGPUProvider(() => {
  dawn ??= create([]) as GPU;
  const gpu = dawn;
  quiet ??= {
    requestAdapter: (options?: GPURequestAdapterOptions) => withFilteredNativeStderr(() => gpu.requestAdapter(options)),
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
    get wgslLanguageFeatures() {
      return gpu.wgslLanguageFeatures;
    },
    get [Symbol.toStringTag]() {
      return 'GPU';
    },
  } as unknown as GPU;
  return quiet;
});
