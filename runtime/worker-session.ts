/**
 * An onnxruntime session that runs on a worker thread, behind the same `Session` interface as
 * runtime/ort.ts. onnxruntime-node's `run()` blocks the thread it is called on, so a Fisher-root
 * refresh run here overlaps the training steps on the main thread instead of stopping them
 * (the main loop's steps leave part of the second core idle: ~1.45 of 2 cores busy measured).
 *
 * The worker is a small self-contained script (no project imports, so it runs the same from the
 * TypeScript sources and from dist/): it builds the session from the model's bytes and answers
 * run requests; tensors cross as transferred ArrayBuffers.
 */
import { Worker } from 'node:worker_threads';
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { encodeModel } from '../src/onnx/codec.js';
import { modelToProto } from '../src/onnx/export.js';
import type { Tensor, TensorData } from '../src/onnx/tensor.js';
import type { Session, SessionOptions } from './ort.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require('onnxruntime-node');
let session;
(async () => {
  try {
    session = await ort.InferenceSession.create(workerData.bytes, workerData.options);
    parentPort.postMessage({ ready: true, inputNames: session.inputNames, outputNames: session.outputNames });
  } catch (err) {
    parentPort.postMessage({ ready: false, error: String(err && err.message || err) });
  }
})();
parentPort.on('message', async ({ id, feeds }) => {
  try {
    const ortFeeds = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(t.dtype, t.data, t.dims);
    const out = await session.run(ortFeeds);
    const outputs = {};
    const transfer = [];
    for (const name of session.outputNames) {
      const t = out[name];
      outputs[name] = { dtype: t.type, dims: Array.from(t.dims), data: t.data };
      if (t.data.buffer) transfer.push(t.data.buffer);
    }
    parentPort.postMessage({ id, outputs }, transfer);
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

export async function createWorkerSession(model: Model, options: SessionOptions, label: string): Promise<Session> {
  const bytes = encodeModel(modelToProto(model));
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bytes, options: { graphOptimizationLevel: 'all', logSeverityLevel: 3, ...options } } });
  const pending = new Map<number, { resolve: (o: Record<string, Tensor>) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const ready = new Promise<{ inputNames: string[]; outputNames: string[] }>((resolve, reject) => {
    worker.once('message', (m: { ready: boolean; error?: string; inputNames: string[]; outputNames: string[] }) => {
      if (m.ready) resolve(m);
      else reject(new SngdError(`${label}: onnxruntime could not load the model on a worker thread: ${m.error}`));
    });
  });
  worker.on('error', (err) => {
    for (const p of pending.values()) p.reject(new SngdError(`${label}: worker thread failed: ${err.message}`));
    pending.clear();
  });
  const names = await ready;
  worker.on('message', (m: { id?: number; outputs?: Record<string, Tensor>; error?: string }) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (!p) return;
    if (m.error) p.reject(new SngdError(`${label}: onnxruntime failed to run on a worker thread: ${m.error}`));
    else p.resolve(m.outputs!);
  });
  return {
    inputNames: names.inputNames,
    outputNames: names.outputNames,
    run(feeds) {
      const id = nextId++;
      // Copies go to the worker (the caller keeps using its arrays while the worker runs).
      const payload: Record<string, { dtype: string; dims: number[]; data: TensorData }> = {};
      for (const [k, t] of Object.entries(feeds)) payload[k] = { dtype: t.dtype, dims: [...t.dims], data: (t.data as Float32Array).slice() };
      const transfer = Object.values(payload).map((t) => (t.data as Float32Array).buffer as ArrayBuffer);
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, feeds: payload }, transfer);
      });
    },
    async release() {
      await worker.terminate();
    },
  };
}
