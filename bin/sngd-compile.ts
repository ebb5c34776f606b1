#!/usr/bin/env node
/**
 * sngd-compile MODEL.onnx [-o DIR]: writes DIR/<stem>.sngd.onnx (the graph with local Fisher
 * layers) and DIR/manifest.json, and prints what it found.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { compileModel, modelStem } from '../passes/compile.js';
import { loadModel } from '../src/onnx/import.js';
import { saveModel } from '../src/onnx/export.js';
import { writeFileAtomic } from '../src/onnx/codec.js';
import { parseIntOption, parseMaxFisherDim, runCli, table } from './cli-common.js';
import { costOf } from '../passes/cost/index.js';
import { chooseFisherForms, formsOf } from '../passes/cost/choose.js';
import type { FormDecision } from '../passes/reconstruct/index.js';
import { machineProfile } from '../runtime/calibrate.js';
import { resolveDevice } from '../runtime/device.js';
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { DEFAULT_MAX_UNIT_DIM } from '../passes/reconstruct/units.js';
import { costReportLines } from './cost-report.js';

const program = new Command('sngd-compile')
  .description('Insert a local Fisher layer before every weighted layer of an ONNX model (SNGD reconstruction).')
  .argument('<model>', 'ONNX model file')
  .option('-o, --out-dir <dir>', 'output folder', '.')
  .addOption(new Option('--side <side>', 'where to apply P: the cheaper side per layer, or force one').choices(['auto', 'weight', 'activation']).default('auto'))
  .option('--max-fisher-dim <n|auto|none>', "which layers get a low-rank-plus-identity Nyström Fisher layer: 'auto' chooses per layer from the predicted time and memory of its dense form at --batch-size and --refresh-every; a number N: layers with d̃ > N; 'none': every layer dense", parseMaxFisherDim, 'auto')
  .option('--nystrom-rank <k>', 'rank of a Nyström Fisher layer', parseIntOption('--nystrom-rank', 1), 64)
  .addOption(new Option('--landmarks <how>', 'Nyström landmarks: seeded uniform, or the largest diag(F) entries at the first refresh').choices(['uniform', 'diagonal']).default('uniform'))
  .addOption(new Option('--fisher-blocks <blocks>', "Fisher blocks: one per layer, or one per output unit for hidden Gemm/MatMul layers before Relu/Sigmoid/Tanh (not the first or output layer)").choices(['layer', 'unit']).default('layer'))
  .option('--max-unit-dim <n>', 'with --fisher-blocks unit: layers with a larger Fisher dimension d̃ keep one block', parseIntOption('--max-unit-dim', 1), DEFAULT_MAX_UNIT_DIM)
  .option('--batch-size <n>', 'batch size the per-layer cost model assumes', parseIntOption('--batch-size', 1), 32)
  .addOption(new Option('--loss <kind>', 'also write the training and evaluation graphs for this loss: softmax cross-entropy, mean squared error, binary cross-entropy with logits').choices(['ce', 'mse', 'bce']))
  .option('--output <name>', 'the model output the loss reads (default: the first)')
  .option('--report', "print each layer's choices and the predicted time per training step of SNGD and of plain GD (at --batch-size)")
  .option('--refresh-every <T>', 'refresh period the --report amortizes roots over', parseIntOption('--refresh-every', 1), 100)
  .option('--dims <name=size,...>', "--report: sizes of symbolic dims other than the batch (e.g. a sequence length 'T=32')", parseDims)
  .option('--calibrate', '--report: measure this machine again (microbenchmarks, about ten seconds) and cache the result')
  .option('--no-calibrate', '--report: never measure; use the cached calibration, else default rates')
  .option('--json', 'print the manifest as JSON instead of a table')
  .showHelpAfterError();

await runCli('sngd-compile', async () => {
  program.parse();
  const file = program.args[0]!;
  const opts = program.opts<{ outDir: string; side: 'auto' | 'weight' | 'activation'; batchSize: number; loss?: 'ce' | 'mse' | 'bce'; output?: string; json?: boolean; report?: boolean; refreshEvery: number; maxFisherDim: number | 'auto'; nystromRank: number; landmarks: 'uniform' | 'diagonal'; fisherBlocks: 'layer' | 'unit'; maxUnitDim: number; dims?: Record<string, number>; calibrate?: boolean }>();
  const stem = modelStem(file);
  const outName = `${stem}.sngd.onnx`;
  const model = loadModel(file);
  // auto: the report's settings (T = --refresh-every, a statistic every step, ε_rel 1e-4: SNGD.md §6).
  const forms = opts.maxFisherDim === 'auto'
    ? { fisherForms: formsOf(chooseFisherForms(model, { batchSize: opts.batchSize, loss: opts.loss, output: opts.output, dims: opts.dims, nystromRank: opts.nystromRank, refreshEvery: opts.refreshEvery, statEvery: 1, epsRel: 1e-4 })) }
    : { maxFisherDim: opts.maxFisherDim };
  const result = compileModel(model, {
    side: opts.side, batchSize: opts.batchSize, source: file, stem, loss: opts.loss, output: opts.output,
    ...forms, nystromRank: opts.nystromRank, landmarks: opts.landmarks, fisherBlocks: opts.fisherBlocks, maxUnitDim: opts.maxUnitDim,
  });
  const { model: rebuilt, manifest } = result;
  saveModel(path.join(opts.outDir, outName), rebuilt);
  const written = [path.join(opts.outDir, outName)];
  if (result.train && result.eval) {
    saveModel(path.join(opts.outDir, manifest.train!.file), result.train);
    saveModel(path.join(opts.outDir, manifest.eval!.file), result.eval);
    written.push(path.join(opts.outDir, manifest.train!.file), path.join(opts.outDir, manifest.eval!.file));
  }
  writeFileAtomic(path.join(opts.outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  if (opts.json) {
    console.log(JSON.stringify(manifest, null, 2));
    return;
  }
  console.log(`${file}: ${manifest.layers.length} weighted layer(s) rebuilt, ${manifest.skipped.length} skipped (opset ${manifest.opset})\n`);
  if (manifest.layers.length > 0) {
    const form = (f: (typeof manifest.layers)[number]['fisher']) => (f.kind === 'nystrom' ? `nystrom k=${f.rank} (${f.landmarks})` : f.kind === 'unit' ? `unit ×${f.units} (${f.activation})` : 'dense');
    console.log(table(['layer', 'op', 'weight', 'bias', 'fisher dim', 'fisher', 'side', 'params'], manifest.layers.map((l) => [l.name, l.op, l.weight, l.bias ?? '-', l.fisherDim, form(l.fisher), l.side, l.paramCount])));
    // With --fisher-blocks unit, every layer says why it has the blocks it has.
    if (opts.fisherBlocks === 'unit') {
      console.log('\nfisher blocks:');
      console.log(table(['layer', 'blocks', 'reason'], manifest.layers.map((l) => [l.name, l.fisher.kind === 'unit' ? 'unit' : 'layer', l.blocksReason ?? ''])));
    }
  }
  if (manifest.skipped.length > 0) {
    console.log('\nskipped:');
    console.log(table(['layer', 'op', 'reason'], manifest.skipped.map((s) => [s.name, s.op, s.reason])));
  }
  if (opts.report) {
    console.log(`\nfisher forms (--max-fisher-dim ${opts.maxFisherDim === Infinity ? 'none' : opts.maxFisherDim}${forms.fisherForms ? ': the time model with default machine rates, so every machine chooses alike' : ''}):`);
    console.log(table(['layer', 'fisher dim', 'form', 'why'], manifest.layers.map((l) => [l.name, l.fisherDim, l.fisher.kind === 'nystrom' ? `nystrom k=${l.fisher.rank}` : l.fisher.kind, l.fisherReason ?? 'every layer dense'])));
    await printReport(model, opts, forms);
  }
  console.log(`\nwrote ${[...written, path.join(opts.outDir, 'manifest.json')].join(', ')}`);
});

/**
 * The time model's report (passes/cost): the graphs are compiled again as `sngd train` compiles
 * them (a loss, ce unless --loss says otherwise, and the L2 input, which keeps every layer on the
 * weight side), with and without Fisher layers, each layer in the form chosen above.
 */
async function printReport(model: Model, opts: { side: 'auto' | 'weight' | 'activation'; batchSize: number; loss?: 'ce' | 'mse' | 'bce'; output?: string; refreshEvery: number; nystromRank: number; landmarks: 'uniform' | 'diagonal'; dims?: Record<string, number>; calibrate?: boolean }, forms: { maxFisherDim?: number; fisherForms?: Record<string, FormDecision> }): Promise<void> {
  const loss = opts.loss ?? 'ce';
  const options = { side: opts.side, batchSize: opts.batchSize, loss, l2: true, output: opts.output, ...forms, nystromRank: opts.nystromRank, landmarks: opts.landmarks, dims: opts.dims };
  const profile = await machineProfile({ calibrate: opts.calibrate, sessionOptions: resolveDevice('cpu').sessionOptions, log: (m) => console.log(`\n${m}`) });
  const cost = costOf(compileModel(model, options), compileModel(model, { ...options, fisher: false }), { batch: opts.batchSize, dims: opts.dims, optimizer: 'sngd', refreshEvery: opts.refreshEvery }, profile);
  console.log('');
  for (const line of costReportLines(cost)) console.log(line);
}

/** 'T=32,H=8' → { T: 32, H: 8 }. */
function parseDims(value: string): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const part of value.split(',')) {
    const m = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new SngdError(`--dims takes name=size pairs separated by commas (sizes ≥ 1), got '${value}'`);
    dims[m[1]!] = Number(m[2]);
  }
  return dims;
}
