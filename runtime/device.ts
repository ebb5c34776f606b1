/**
 * Execution-provider selection. CPU by default; `cuda` requires onnxruntime-node's CUDA provider
 * libraries, which `npm install` does not download (see README, "GPU"): without them the error
 * says how to get them. `auto` uses CUDA when its libraries are present, else the CPU, and says so.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { SngdError } from '../src/errors.js';
import type { SessionOptions } from './ort.js';

export type DeviceName = 'cpu' | 'cuda' | 'auto';

const CUDA_LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

export const CUDA_INSTALL_HINT =
  'install the CUDA 12 provider with: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install ' +
  '(or copy libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so into node_modules/onnxruntime-node/bin/napi-v6/linux/x64/)';

export function cudaProviderDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

export function cudaAvailable(): boolean {
  const dir = cudaProviderDir();
  return CUDA_LIBS.every((f) => fs.existsSync(path.join(dir, f)));
}

export interface ResolvedDevice {
  name: 'cpu' | 'cuda';
  sessionOptions: SessionOptions;
  note?: string;
}

/**
 * Sessions run one after another on the main thread (onnxruntime-node's run() is synchronous), so
 * a session's worker threads spinning after its run only steal cycles from the next session's:
 * measured, the training session's spinning threads cost a following root refresh ~25 ms.
 */
const NO_SPINNING = { extra: { session: { intra_op: { allow_spinning: '0' } } } } as SessionOptions;

export function resolveDevice(requested: DeviceName, threads?: number): ResolvedDevice {
  const cpuOptions: SessionOptions = { executionProviders: ['cpu'], ...NO_SPINNING, ...(threads ? { intraOpNumThreads: threads } : {}) };
  if (requested === 'cpu') return { name: 'cpu', sessionOptions: cpuOptions };
  const hasCuda = cudaAvailable();
  if (requested === 'cuda' && !hasCuda) {
    throw new SngdError(`--device cuda: onnxruntime-node's CUDA provider is not installed in ${cudaProviderDir()}; ${CUDA_INSTALL_HINT}; or use --device cpu`);
  }
  if (!hasCuda) return { name: 'cpu', sessionOptions: cpuOptions, note: 'CUDA provider not installed: using the CPU (--device auto)' };
  return { name: 'cuda', sessionOptions: { executionProviders: [{ name: 'cuda' }, 'cpu'], ...NO_SPINNING, ...(threads ? { intraOpNumThreads: threads } : {}) } };
}
