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
import { parseIntOption, runCli, table } from './cli-common.js';
import { estimateCosts } from '../passes/cost.js';
import { readLayerRecords } from '../passes/reconstruct/record.js';
import type { Model } from '../src/ir/graph.js';
import { inferShapes } from '../src/shape/index.js';
import { DEFAULT_MAX_UNIT_DIM } from '../passes/reconstruct/units.js';

const program = new Command('sngd-compile')
  .description('Insert a local Fisher layer before every weighted layer of an ONNX model (SNGD reconstruction).')
  .argument('<model>', 'ONNX model file')
  .option('-o, --out-dir <dir>', 'output folder', '.')
  .addOption(new Option('--side <side>', 'where to apply P: the cheaper side per layer, or force one').choices(['auto', 'weight', 'activation']).default('auto'))
  .option('--max-fisher-dim <n>', 'layers with a larger Fisher dimension d̃ get a low-rank-plus-identity Nyström Fisher layer (default: none, all dense)', parseIntOption('--max-fisher-dim', 1))
  .option('--nystrom-rank <k>', 'rank of a Nyström Fisher layer', parseIntOption('--nystrom-rank', 1), 64)
  .addOption(new Option('--landmarks <how>', 'Nyström landmarks: seeded uniform, or the largest diag(F) entries at the first refresh').choices(['uniform', 'diagonal']).default('uniform'))
  .addOption(new Option('--fisher-blocks <blocks>', "Fisher blocks: one per layer, or one per output unit for hidden Gemm/MatMul layers before Relu/Sigmoid/Tanh (not the first or output layer)").choices(['layer', 'unit']).default('layer'))
  .option('--max-unit-dim <n>', 'with --fisher-blocks unit: layers with a larger Fisher dimension d̃ keep one block', parseIntOption('--max-unit-dim', 1), DEFAULT_MAX_UNIT_DIM)
  .option('--batch-size <n>', 'batch size the per-layer cost model assumes', parseIntOption('--batch-size', 1), 32)
  .addOption(new Option('--loss <kind>', 'also write the training and evaluation graphs for this loss: softmax cross-entropy, mean squared error, binary cross-entropy with logits').choices(['ce', 'mse', 'bce']))
  .option('--output <name>', 'the model output the loss reads (default: the first)')
  .option('--report', "print each layer's choice and the predicted per-step compute of SNGD relative to plain GD")
  .option('--refresh-every <T>', 'refresh period the --report amortizes roots over', parseIntOption('--refresh-every', 1), 100)
  .option('--json', 'print the manifest as JSON instead of a table')
  .showHelpAfterError();

await runCli('sngd-compile', () => {
  program.parse();
  const file = program.args[0]!;
  const opts = program.opts<{ outDir: string; side: 'auto' | 'weight' | 'activation'; batchSize: number; loss?: 'ce' | 'mse' | 'bce'; output?: string; json?: boolean; report?: boolean; refreshEvery: number; maxFisherDim?: number; nystromRank: number; landmarks: 'uniform' | 'diagonal'; fisherBlocks: 'layer' | 'unit'; maxUnitDim: number }>();
  const stem = modelStem(file);
  const outName = `${stem}.sngd.onnx`;
  const model = loadModel(file);
  const result = compileModel(model, {
    side: opts.side, batchSize: opts.batchSize, source: file, stem, loss: opts.loss, output: opts.output,
    maxFisherDim: opts.maxFisherDim, nystromRank: opts.nystromRank, landmarks: opts.landmarks, fisherBlocks: opts.fisherBlocks, maxUnitDim: opts.maxUnitDim,
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
  if (opts.report) printReport(rebuilt, opts.batchSize, opts.refreshEvery);
  console.log(`\nwrote ${[...written, path.join(opts.outDir, 'manifest.json')].join(', ')}`);
});

function printReport(rebuilt: Model, batch: number, refreshEvery: number): void {
  const report = estimateCosts(inferShapes(rebuilt).graph, readLayerRecords(rebuilt), batch, refreshEvery);
  const m = (v: number) => (v / 1e6).toFixed(v < 1e7 ? 2 : 1);
  console.log(`\ncost per training step at batch ${batch}, T = ${refreshEvery} (million multiply-adds; arithmetic only, see passes/cost.ts):`);
  console.log(table(['layer', 'op', 'side', 'fisher dim', 'rows', 'plain GD', 'Fisher layer', 'statistic', 'refresh/T'], report.layers.map((l) => [l.name, l.op, l.side, l.fisherDim, l.rows, m(l.plain), m(l.fisher), m(l.statistic), m(l.refresh)])));
  console.log(`predicted SNGD step: ${report.ratio.toFixed(2)}× the plain GD step's compute on these layers`);
}
