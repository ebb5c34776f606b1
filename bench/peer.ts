/**
 * The peer comparison: TensorFlow.js 4.22 on its WebAssembly backend (bench/tfjs-mlp.ts) against
 * this project's trainer on the same problem, back to back in the same invocation: MLP a
 * (784-80-80-80-10), batch 50, the same initial weights, split, batch order, loss and L2, for
 * SGD and Adam (and our SNGD for reference).
 *
 *   npx tsx bench/peer.ts [--quick | --full] [--epochs N]
 *
 * tfjs-backend-wasm runs single-threaded under Node, so ours runs twice: with onnxruntime's
 * default threads (one per core) and with one intra-op thread, the like-for-like comparison.
 * Writes bench/results/<mode>/peer.json.
 */
import { argValue, log, machine, modeFromArgs, packageVersion, PRESETS, resultsDir, runChild, runTraining, writeJson, type Machine, type RunResult, type RunSpec } from './lib.js';

export interface PeerRun extends RunResult {
  implementation: 'tfjs-wasm' | 'sngd';
  /** Threads the computation ran on: 1 for tfjs-wasm under Node; ours: 'default' or 1. */
  threads: string;
}

export interface PeerResults {
  mode: string;
  command: string;
  machine: Machine;
  runs: PeerRun[];
}

const mode = modeFromArgs();
const preset = PRESETS[mode].peer;
const epochs = Number(argValue('epochs') ?? preset.epochs);
const results: PeerResults = { mode, command: `npx tsx bench/peer.ts ${process.argv.slice(2).join(' ')}`.trim(), machine: { ...machine(), tfjs: packageVersion('@tensorflow/tfjs') }, runs: [] };
const file = `${resultsDir(mode)}/peer.json`;

for (const { optimizer, lr } of preset.settings) {
  const spec: RunSpec = { workload: preset.workload, seed: preset.seed, batchSize: 50, epochs, optimizer, lr };
  const runs: PeerRun[] = [];
  if (optimizer !== 'sngd') runs.push({ ...runChild<RunResult>('tfjs-mlp.ts', spec), implementation: 'tfjs-wasm', threads: '1' });
  runs.push({ ...runTraining(spec), implementation: 'sngd', threads: 'default' });
  runs.push({ ...runTraining({ ...spec, threads: 1 }), implementation: 'sngd', threads: '1' });
  for (const r of runs) {
    results.runs.push(r);
    const last = r.epochs[r.epochs.length - 1]!;
    log(`peer ${r.implementation} (${r.threads} thread${r.threads === '1' ? '' : 's'}) ${optimizer} lr ${lr}: test ${(100 * last.testAccuracy!).toFixed(2)}%, ${(last.seconds / last.epoch).toFixed(2)} s/epoch`);
  }
  writeJson(file, results);
}
log(`peer → ${file}`);
