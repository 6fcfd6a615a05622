// Every test file starts on WebGPU when an adapter exists. With REQUIRE_WEBGPU=1 (CI) a missing
// adapter fails the run instead of falling back to the CPU backend.
import { beforeAll } from 'vitest';
import { init } from '../index.node.js';

beforeAll(async () => {
  await init({ requireWebGPU: process.env.REQUIRE_WEBGPU === '1' });
});
