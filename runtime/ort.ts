/**
 * Thin bridge between the IR and onnxruntime-node: build a session from a Model and run it with
 * project Tensors. Errors from onnxruntime become one SngdError line naming the model.
 */
import * as ort from 'onnxruntime-node';
import { SngdError, errorText } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { encodeModel } from '../src/onnx/codec.js';
import { modelToProto } from '../src/onnx/export.js';
import type { DType, Tensor, TensorData } from '../src/onnx/tensor.js';

export type SessionOptions = ort.InferenceSession.SessionOptions;

export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32', float64: 'float64', int8: 'int8', uint8: 'uint8', int16: 'int16', uint16: 'uint16',
  int32: 'int32', uint32: 'uint32', int64: 'int64', uint64: 'uint64', bool: 'bool', float16: 'float16', string: 'string',
};

export function toOrt(t: Tensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new SngdError(`onnxruntime-node cannot take a ${t.dtype} tensor`);
  return new ort.Tensor(type, t.data as never, t.dims);
}

export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = (t.type === 'bool' ? 'bool' : t.type) as DType;
  return { dtype, dims: [...t.dims], data: t.data as TensorData };
}

export async function createSession(model: Model | Uint8Array, options: SessionOptions = {}, label = 'model'): Promise<Session> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(modelToProto(model));
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', logSeverityLevel: 3, ...options });
  } catch (err) {
    throw new SngdError(`${label}: onnxruntime could not load the model: ${firstLine(errorText(err))}`);
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
      let out: ort.InferenceSession.ReturnType;
      try {
        out = await session.run(ortFeeds);
      } catch (err) {
        throw new SngdError(`${label}: onnxruntime failed to run: ${firstLine(errorText(err))}`);
      }
      const result: Record<string, Tensor> = {};
      // Read outputs by name (not position): older bindings mislabelled subsets (ORT-FACTS.md).
      for (const name of session.outputNames) result[name] = fromOrt(out[name]!);
      return result;
    },
    release: () => session.release(),
  };
}

/** One-shot convenience: create, run, release. */
export async function runModel(model: Model | Uint8Array, feeds: Record<string, Tensor>, options: SessionOptions = {}): Promise<Record<string, Tensor>> {
  const s = await createSession(model, options);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 500);
}
