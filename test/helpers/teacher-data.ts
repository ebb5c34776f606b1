/** A separable 4-class problem from a fixed random linear teacher, written as an NPY pair. */
import path from 'node:path';
import { buildMlp } from '../../models/mlp.js';
import { REFERENCE_SNGD, type TrainOptions } from '../../runtime/trainer.js';
import { writeNpy } from '../../src/data/npy.js';
import { saveModel } from '../../src/onnx/export.js';
import { Rng } from '../../src/numerics/random.js';

export function writeTeacherDataset(dir: string, n: number, features: number, seed: number, prefix: string): { x: string; y: string } {
  const teacherRng = new Rng(99);
  const teacher = Array.from({ length: 4 * features }, () => teacherRng.normal());
  const rng = new Rng(seed);
  const x = new Float32Array(n * features);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let f = 0; f < features; f++) x[i * features + f] = rng.normal();
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let f = 0; f < features; f++) s += teacher[c * features + f]! * x[i * features + f]!;
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    y[i] = BigInt(best);
  }
  const files = { x: path.join(dir, `${prefix}-x.npy`), y: path.join(dir, `${prefix}-y.npy`) };
  writeNpy(files.x, { dtype: 'float32', dims: [n, features], data: x });
  writeNpy(files.y, { dtype: 'int64', dims: [n], data: y });
  return files;
}

/**
 * `train()` options for a small SNGD run on the teacher problem (600 training, 300 test samples of
 * `features`, an MLP of `layers` saved in `dir`), reference SNGD settings with T = 7 and β = 0.9;
 * `extra` overrides any of it (a run's own layer forms, resume flags, …).
 */
export function teacherTrainOptions(dir: string, out: string, spec: { features: number; layers: number[]; momentum?: number }, extra: Partial<TrainOptions> = {}): TrainOptions {
  const trainFiles = writeTeacherDataset(dir, 600, spec.features, 1, 'train');
  const testFiles = writeTeacherDataset(dir, 300, spec.features, 2, 'test');
  const modelFile = path.join(dir, 'mlp.onnx');
  saveModel(modelFile, buildMlp({ layers: spec.layers, seed: 7 }));
  return {
    model: modelFile,
    data: { kind: 'npy', x: trainFiles.x, y: trainFiles.y, testX: testFiles.x, testY: testFiles.y },
    validation: 100, epochs: 3, batchSize: 25, seed: 3, out: path.join(dir, out), optimizer: 'sngd', lr: 0.1, l2: 1e-3,
    ...(spec.momentum !== undefined ? { momentum: spec.momentum } : {}),
    schedule: { kind: 'constant', warmupSteps: 0, gamma: 0.1, stepEpochs: 1 },
    sngd: { ...REFERENCE_SNGD, refreshEvery: 7, emaDecay: 0.9 },
    loss: 'ce', side: 'auto', device: 'cpu', resume: false, checkpointEvery: 0, logEvery: 5, quiet: true,
    ...extra,
  };
}
