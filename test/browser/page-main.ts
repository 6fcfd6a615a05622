// The page side of scripts/test-browser.mjs: selects WebGPU (navigator.gpu), loads its test files
// (one, or a few that share the page's compiled pipelines) into the vitest shim, runs them, and
// streams every event to the runner through window.__report.
import { init, device, type DeviceInfo } from '../../index.js';
import { collectFile, errorInfo, registeredTests, runRegistered, type ErrorInfo, type TestEvent } from './vitest-shim.js';

export type PageEvent =
  | TestEvent
  | { type: 'adapter'; info: DeviceInfo; ms: number }
  | { type: 'fatal'; stage: 'init' | 'load'; error: ErrorInfo; file?: string }
  | { type: 'done' };

declare global {
  interface Window {
    __report(e: PageEvent): Promise<void>;
  }
}

/** Runs in the page: init, then import the test files ([name, import] pairs, in order) and run their tests. */
export async function runPage(files: [string, () => Promise<unknown>][], testTimeout: number): Promise<void> {
  const report = (e: PageEvent) => void window.__report(e);
  const t0 = performance.now();
  try {
    await init({ requireWebGPU: true });
    report({ type: 'adapter', info: device().info, ms: Math.round(performance.now() - t0) });
  } catch (e) {
    report({ type: 'fatal', stage: 'init', error: errorInfo(e) });
    return;
  }
  if (files.length) {
    for (const [name, load] of files) {
      try {
        await collectFile(name, load);
      } catch (e) {
        report({ type: 'fatal', stage: 'load', error: errorInfo(e), file: name });
        return;
      }
    }
    report({ type: 'collected', paths: registeredTests() });
    await runRegistered(report, testTimeout);
  }
  report({ type: 'done' });
}
