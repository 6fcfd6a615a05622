// Installs Dawn (npm `webgpu`) as the GPU provider for Node. Imported for its effect by the Node
// entry, and alone by code that wants WebGPU without loading the rest of the library.
import { create, globals } from 'webgpu';
import { setGPUProvider } from './kernels/device.js';
import { withFilteredNativeStderr } from './node-quiet-stderr.js';

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
