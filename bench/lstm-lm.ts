/**
 * Character-level LSTM language model: SNGD against Adam, validation perplexity per epoch.
 *
 *   npm run bench:lm     (= npx tsx bench/lstm-lm.ts, then bench/report.ts adds it to docs/benchmarks.md)
 *   npx tsx bench/lstm-lm.ts [--text FILE] [--chars 300000] [--epochs 3] [--seq 32] [--batch 32]
 *
 * Text: FILE, or by default the King James Bible (public domain) from Debian's packages
 * (`apt-get install bible-kjv bible-kjv-text`, then read through the `bible` program). The first
 * `--chars` characters train, the next tenth validate (the trainer's validation split, carved off
 * the end). Non-overlapping windows of `--seq` characters; labels are the next character at every
 * position. Each optimizer runs a small learning-rate grid; the best setting is chosen on the final
 * validation perplexity, and every run's per-epoch perplexities are written to
 * bench/results/lstm-lm.json.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildLstmLm } from '../models/lstm-lm.js';
import { writeNpy } from '../src/data/npy.js';
import { saveModel } from '../src/onnx/export.js';
import { REFERENCE_SNGD, train, type TrainOptions } from '../runtime/trainer.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

function loadText(): { text: string; source: string } {
  const file = arg('text', '');
  if (file) return { text: fs.readFileSync(file, 'utf8'), source: file };
  try {
    return { text: execFileSync('bible', ['Gen1:1-Rev22:21'], { encoding: 'utf8', maxBuffer: 64 << 20 }), source: 'King James Bible (Debian bible-kjv-text)' };
  } catch {
    throw new Error("no text: pass --text FILE, or install Debian's bible-kjv and bible-kjv-text (apt-get install bible-kjv bible-kjv-text)");
  }
}

const chars = Number(arg('chars', '300000'));
const epochs = Number(arg('epochs', '3'));
const seq = Number(arg('seq', '32'));
const batch = Number(arg('batch', '32'));
const { text: raw, source } = loadText();
const text = raw.replace(/[ \t]+/g, ' ').slice(0, Math.round(chars * 1.1) + 1);
const vocab = [...new Set(text)].sort();
const index = new Map(vocab.map((c, i) => [c, i]));
const windows = Math.floor((text.length - 1) / seq);
const x = new BigInt64Array(windows * seq);
const y = new BigInt64Array(windows * seq);
for (let w = 0; w < windows; w++) {
  for (let t = 0; t < seq; t++) {
    x[w * seq + t] = BigInt(index.get(text[w * seq + t]!)!);
    y[w * seq + t] = BigInt(index.get(text[w * seq + t + 1]!)!);
  }
}
const validation = Math.round(windows / 11);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-lm-'));
writeNpy(path.join(dir, 'x.npy'), { dtype: 'int64', dims: [windows, seq], data: x });
writeNpy(path.join(dir, 'y.npy'), { dtype: 'int64', dims: [windows, seq], data: y });
const modelFile = path.join(dir, 'lm.onnx');
saveModel(modelFile, buildLstmLm({ vocab: vocab.length, seed: 2017 }));

const grids: { optimizer: 'sngd' | 'adam'; lrs: number[] }[] = [
  { optimizer: 'sngd', lrs: (arg('sngd-lr', '1,3,10')).split(',').map(Number) },
  { optimizer: 'adam', lrs: (arg('adam-lr', '0.003,0.01,0.03')).split(',').map(Number) },
];
const runs: { optimizer: string; lr: number; perplexity: number[]; seconds: number[] }[] = [];
console.log(`text: ${source}; ${windows - validation} training and ${validation} validation windows of ${seq} characters; vocabulary ${vocab.length}`);
for (const { optimizer, lrs } of grids) {
  for (const lr of lrs) {
    const options: TrainOptions = {
      model: modelFile, data: { kind: 'npy', x: path.join(dir, 'x.npy'), y: path.join(dir, 'y.npy') }, validation, epochs, batchSize: batch, seed: 2017,
      out: path.join(dir, `${optimizer}-${lr}`), optimizer, lr, l2: 0, schedule: { kind: 'constant', warmupSteps: 0, gamma: 0.1, stepEpochs: 1 },
      sngd: { ...REFERENCE_SNGD, emaInit: 'zero', epsRel: 1e-2, refreshEvery: 50 }, loss: 'ce', side: 'auto', device: 'cpu', resume: false,
      checkpointEvery: 0, logEvery: 0, quiet: true,
    };
    const result = await train(options);
    const perplexity = result.epochs.map((e) => Math.exp(e.validationLoss!));
    runs.push({ optimizer, lr, perplexity, seconds: result.epochs.map((e) => e.seconds) });
    console.log(`${optimizer} lr ${lr}: validation perplexity ${perplexity.map((p) => p.toFixed(2)).join(' / ')} (${result.seconds.toFixed(0)} s)`);
  }
}
const best = (opt: string) => runs.filter((r) => r.optimizer === opt).sort((a, b) => a.perplexity[a.perplexity.length - 1]! - b.perplexity[b.perplexity.length - 1]!)[0]!;
const summary = { source, chars, seq, batch, epochs, vocab: vocab.length, sngd: best('sngd'), adam: best('adam'), runs, date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length };
fs.mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
fs.writeFileSync(path.join(import.meta.dirname, 'results', 'lstm-lm.json'), JSON.stringify(summary, null, 2) + '\n');
console.log(`best: SNGD lr ${summary.sngd.lr} → ${summary.sngd.perplexity.at(-1)!.toFixed(2)}, Adam lr ${summary.adam.lr} → ${summary.adam.perplexity.at(-1)!.toFixed(2)} (validation perplexity after ${epochs} epochs)`);
fs.rmSync(dir, { recursive: true, force: true });
