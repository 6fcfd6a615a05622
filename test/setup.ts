// Every test file starts on WebGPU when an adapter exists. With REQUIRE_WEBGPU=1 (CI) a missing
// adapter fails the run instead of falling back to the CPU backend. Only the device layer is loaded
// here, so a test file's vi.mock of a Node module still applies to the library code it imports.
import { beforeAll } from 'vitest';
import '../node-dawn.js';
import { init } from '../kernels/device.js';

beforeAll(async () => {
  await init({ requireWebGPU: process.env.REQUIRE_WEBGPU === '1' });
});
