/**
 * `sngd eval`: a model's loss and accuracy on a dataset, computed by onnxruntime on the model's
 * own graph plus a loss head (the same evaluation graph the trainer uses).
 */
import { compileModel } from '../passes/compile.js';
import type { LossKind } from '../passes/training/losses.js';
import { SngdError } from '../src/errors.js';
import { loadModel } from '../src/onnx/import.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { loadData, type DataSpec } from './data/index.js';
import { inputShapeFor, labelsPerSample, makeBatch } from './data/dataset.js';
import { resolveDevice, type DeviceName } from './device.js';
import { createSession } from './ort.js';

export interface EvalResult {
  dataset: string;
  count: number;
  loss: number;
  accuracy?: number;
}

export async function evaluateModel(file: string, spec: DataSpec, opts: { loss: LossKind; output?: string; device: DeviceName }): Promise<EvalResult> {
  const split = loadData(spec, 0);
  const data = split.test ?? split.train;
  const { model, manifest, eval: evalModel } = compileModel(loadModel(file), { loss: opts.loss, output: opts.output, fisher: false, source: file });
  const contract = manifest.eval!;
  const dataInputs = contract.inputs.filter((i) => i.role === 'data');
  if (dataInputs.length !== 1) throw new SngdError(`${file}: sngd eval feeds models with exactly one data input; this one has ${dataInputs.length}`);
  const input = dataInputs[0]!.name;
  const shape = inputShapeFor(data, model.graph.inputs.find((v) => v.name === input)?.shape, input);
  const state: Record<string, Tensor> = {};
  for (const i of contract.inputs) if (i.init) state[i.name] = model.graph.initializers.get(i.init)!.tensor;
  const session = await createSession(evalModel!, resolveDevice(opts.device).sessionOptions, 'evaluation graph');
  const lossName = contract.outputs.find((o) => o.role === 'loss')!.name;
  const correctName = contract.outputs.find((o) => o.role === 'metric')?.name;
  const order = Uint32Array.from({ length: data.count }, (_, i) => i);
  let loss = 0;
  let correct = 0;
  try {
    for (let start = 0; start < data.count; start += 1000) {
      const b = makeBatch(data, order, start, Math.min(start + 1000, data.count), shape, model.graph.inputs.find((v) => v.name === input)?.elemType === 7 ? 'int64' : 'float32');
      const out = await session.run({ ...state, [input]: b.x, labels: b.labels });
      loss += Number((out[lossName]!.data as Float32Array)[0]) * b.size;
      if (correctName) correct += Number((out[correctName]!.data as Float32Array)[0]);
    }
  } finally {
    await session.release();
  }
  return { dataset: data.name, count: data.count, loss: loss / data.count, accuracy: correctName ? correct / (data.count * labelsPerSample(data)) : undefined };
}
