// Host-side milliseconds of the detectors' glue, by phase (anchor matching, sampling, NMS, the
// readbacks that wait for the GPU, …), summed since the last reset: bench/maskrcnn-step.ts prints
// them beside the GPU profile. A few performance.now() calls per step; always on.

export const hostTime: Record<string, number> = {};

/** Adds the time since t0 (a performance.now()) to `phase`, and returns now. */
export function tick(phase: string, t0: number): number {
  const now = performance.now();
  hostTime[phase] = (hostTime[phase] ?? 0) + now - t0;
  return now;
}

export function resetHostTime(): void {
  for (const k of Object.keys(hostTime)) delete hostTime[k];
}
