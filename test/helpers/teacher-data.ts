/** A separable 4-class problem from a fixed random linear teacher, written as an NPY pair. */
import path from 'node:path';
import { writeNpy } from '../../src/data/npy.js';
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
