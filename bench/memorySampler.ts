// Peak memory growth while something runs: process.memoryUsage() sampled every 20 ms (and once at the end),
// against a baseline taken just before (after a full GC when node runs with --expose-gc).
import { collectGarbage } from './util';

export interface MemoryGrowth {
  /** Peak resident set size above the baseline, MB. */
  rssPeakGrowthMB: number;
  /** Peak of heapUsed + arrayBuffers (JS heap and Buffers) above the baseline, MB. */
  heapPeakGrowthMB: number;
  samples: number;
  gcBeforeRun: boolean;
}

const MB = 1024 * 1024;
const heapOf = (usage: NodeJS.MemoryUsage) => usage.heapUsed + usage.arrayBuffers;

export async function measureMemory<T>(
  run: () => Promise<T>,
  intervalMs = 20,
): Promise<{ result: T; memory: MemoryGrowth }> {
  const gcBeforeRun = collectGarbage();
  const baseline = process.memoryUsage();
  let rssPeak = baseline.rss;
  let heapPeak = heapOf(baseline);
  let samples = 0;
  const sample = () => {
    const usage = process.memoryUsage();
    rssPeak = Math.max(rssPeak, usage.rss);
    heapPeak = Math.max(heapPeak, heapOf(usage));
    samples++;
  };
  const timer = setInterval(sample, intervalMs);
  try {
    const result = await run();
    sample();
    return {
      result,
      memory: {
        rssPeakGrowthMB: Math.round(((rssPeak - baseline.rss) / MB) * 10) / 10,
        heapPeakGrowthMB: Math.round(((heapPeak - heapOf(baseline)) / MB) * 10) / 10,
        samples,
        gcBeforeRun,
      },
    };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Peak memory still reachable while something runs: a full GC every `intervalMs` (which slows the run, so
 * this is a separate, untimed run), then heapUsed + arrayBuffers against the baseline. Undefined without
 * --expose-gc. Tells a leak (this grows with the work) from garbage not yet collected (only the peak does).
 */
export async function measureRetainedMemory(
  run: () => Promise<unknown>,
  intervalMs = 250,
): Promise<{ retainedPeakGrowthMB: number; samples: number } | undefined> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  gc();
  gc();
  const baseline = heapOf(process.memoryUsage());
  let peak = baseline;
  let samples = 0;
  const timer = setInterval(() => {
    gc();
    peak = Math.max(peak, heapOf(process.memoryUsage()));
    samples++;
  }, intervalMs);
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
  return { retainedPeakGrowthMB: Math.round(((peak - baseline) / MB) * 10) / 10, samples };
}
