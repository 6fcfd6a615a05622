// Installs Dawn (npm `webgpu`) as the GPU provider for Node. Imported for its effect by the Node
// entry, and alone by code that wants WebGPU without loading the rest of the library.
import { create, globals } from 'webgpu';
import { setGPUProvider } from './kernels/device.js';

Object.assign(globalThis, globals);
let dawn: GPU | undefined;
// create() once; the module-level reference keeps Dawn's instance alive for the whole process.
setGPUProvider(() => (dawn ??= create([]) as GPU));
