// One way to get a GPUDevice in Node (Dawn, installed by the Node entry through setGPUProvider)
// and in browsers (navigator.gpu). Without an adapter the same API runs on the CPU reference
// backend, announced once on stderr.

export type Backend = 'webgpu' | 'cpu';

export interface DeviceInfo {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

export interface InitOptions {
  /** 'webgpu' (default when an adapter exists) or 'cpu' to force the reference backend. */
  backend?: Backend;
  /** Throw instead of falling back to the CPU when no adapter is found (CI sets REQUIRE_WEBGPU=1). */
  requireWebGPU?: boolean;
  powerPreference?: GPUPowerPreference;
}

const OPTIONAL_FEATURES = ['subgroups', 'shader-f16', 'timestamp-query'] as const;
const LIMITS_WANTED = [
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage',
] as const;

export class Device {
  readonly features: Set<string>;
  readonly limits: Record<string, number>;
  /** Set when the device is lost or a kernel failed validation; every later launch throws it. */
  fatal: Error | null = null;

  constructor(readonly gpu: GPUDevice, readonly adapter: GPUAdapter, readonly info: DeviceInfo) {
    this.features = new Set(gpu.features as unknown as Iterable<string>);
    this.limits = {};
    for (const k of LIMITS_WANTED) this.limits[k] = Number((gpu.limits as unknown as Record<string, number>)[k]);
    gpu.lost.then((l) => {
      if (l.reason !== 'destroyed') this.fatal = new Error(`WebGPU device lost (${l.reason}): ${l.message}`);
    });
    gpu.onuncapturederror = (e: GPUUncapturedErrorEvent) => {
      this.fatal ??= new Error(`WebGPU error: ${e.error.message}`);
    };
  }

  has(feature: string): boolean {
    return this.features.has(feature);
  }
}

type GPUProvider = () => GPU | undefined;
let provider: GPUProvider | undefined;
// Dawn crashes at random if V8 collects the object returned by create(): keep it here for good.
const keepAlive: unknown[] = [];
let active: { backend: Backend; device: Device | null } | null = null;
let activeGPU: GPU | undefined;
let announcedCpu = false;

/** Installs how to reach a `GPU` object (the Node entry passes Dawn's create()). */
export function setGPUProvider(p: GPUProvider): void {
  provider = p;
}

function findGPU(): GPU | undefined {
  if (provider) {
    const gpu = provider();
    if (gpu) keepAlive.push(gpu);
    return gpu;
  }
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu;
}

async function requestDevice(gpu: GPU, powerPreference?: GPUPowerPreference): Promise<Device | null> {
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) return null;
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS_WANTED) requiredLimits[k] = Number((adapter.limits as unknown as Record<string, number>)[k]);
  const gpuDevice = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const ai = adapter.info ?? ({} as GPUAdapterInfo);
  const info: DeviceInfo = {
    vendor: ai.vendor ?? '',
    architecture: ai.architecture ?? '',
    description: ai.description ?? '',
    isFallbackAdapter: Boolean((ai as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...(gpuDevice.features as unknown as Iterable<string>)].sort(),
    limits: requiredLimits,
  };
  return new Device(gpuDevice, adapter, info);
}

/**
 * Picks the backend for the process. Call once before creating tensors; later calls return the
 * same choice. Returns the Device, or null when running on the CPU reference backend.
 */
export async function init(opts: InitOptions = {}): Promise<Device | null> {
  if (active) return active.device;
  let device: Device | null = null;
  if (opts.backend !== 'cpu') {
    const gpu = findGPU();
    activeGPU = gpu;
    if (gpu) device = await requestDevice(gpu, opts.powerPreference);
    if (!device && (opts.requireWebGPU || opts.backend === 'webgpu')) {
      throw new Error('WebGPU is required but no adapter was found (on Linux without a GPU, install Mesa lavapipe >= 24; see README)');
    }
  }
  active = { backend: device ? 'webgpu' : 'cpu', device };
  if (!device && opts.backend !== 'cpu' && !announcedCpu) {
    announcedCpu = true;
    console.warn('[longtail-webgpu] no WebGPU adapter found: running on the CPU reference backend (slow).');
  }
  return device;
}

export function backend(): Backend {
  if (!active) throw new Error('no backend selected: call `await init()` before creating tensors');
  return active.backend;
}

export function device(): Device {
  const d = active?.device;
  if (!d) throw new Error(active ? 'the WebGPU backend is not active (running on the CPU backend)' : 'call `await init()` first');
  if (d.fatal) throw d.fatal;
  return d;
}

export function hasWebGPU(): boolean {
  return Boolean(active?.device);
}

/** The GPU object (Dawn's create() or navigator.gpu) the device came from, e.g. for a peer library on the same adapter. */
export function gpuEntry(): GPU | undefined {
  return activeGPU;
}
