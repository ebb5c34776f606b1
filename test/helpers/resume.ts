/**
 * The exact-resume check: a run stopped after `stopAt` steps (checkpointing every `every`) and
 * resumed must write the same metrics as an uninterrupted run, wall-clock fields aside.
 */
import path from 'node:path';
import { expect } from 'vitest';
import { readMetrics } from '../../runtime/metrics.js';
import { train, type TrainOptions, type TrainResult } from '../../runtime/trainer.js';

export async function expectExactResume(options: (out: string, extra?: Partial<TrainOptions>) => TrainOptions, tag: string, stopAt: number, every: number, extra: Partial<TrainOptions> = {}): Promise<TrainResult> {
  const full = await train(options(`${tag}-full`, extra));
  await train(options(`${tag}-stopped`, { ...extra, maxSteps: stopAt, checkpointEvery: every }));
  const resumed = await train(options(`${tag}-stopped`, { ...extra, resume: true, checkpointEvery: every }));
  expect(resumed.steps).toBe(full.steps);
  const strip = (o: TrainOptions) => readMetrics(path.join(o.out, 'metrics.jsonl')).map(({ seconds, trainSeconds, refreshSeconds, samplesPerSecond, peakRssMb, ...rest }) => rest);
  expect(strip(options(`${tag}-stopped`, extra))).toEqual(strip(options(`${tag}-full`, extra)));
  return full;
}
