// The page side of scripts/test-browser.mjs: selects WebGPU (navigator.gpu), loads one test file
// into the vitest shim, runs it, and streams every event to the runner through window.__report.
import { init, device, type DeviceInfo } from '../../index.js';
import { errorInfo, registeredTests, runRegistered, type ErrorInfo, type TestEvent } from './vitest-shim.js';

export type PageEvent =
  | TestEvent
  | { type: 'adapter'; info: DeviceInfo; ms: number }
  | { type: 'fatal'; stage: 'init' | 'load'; error: ErrorInfo }
  | { type: 'done' };

declare global {
  interface Window {
    __report(e: PageEvent): Promise<void>;
  }
}

/** Runs in the page: init, then (when given) import the test file and run its tests. */
export async function runPage(load: (() => Promise<unknown>) | null, testTimeout: number): Promise<void> {
  const report = (e: PageEvent) => void window.__report(e);
  const t0 = performance.now();
  try {
    await init({ requireWebGPU: true });
    report({ type: 'adapter', info: device().info, ms: Math.round(performance.now() - t0) });
  } catch (e) {
    report({ type: 'fatal', stage: 'init', error: errorInfo(e) });
    return;
  }
  if (load) {
    try {
      await load();
    } catch (e) {
      report({ type: 'fatal', stage: 'load', error: errorInfo(e) });
      return;
    }
    report({ type: 'collected', paths: registeredTests() });
    await runRegistered(report, testTimeout);
  }
  report({ type: 'done' });
}
