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

const program = new Command('sngd-compile')
  .description('Insert a local Fisher layer before every weighted layer of an ONNX model (SNGD reconstruction).')
  .argument('<model>', 'ONNX model file')
  .option('-o, --out-dir <dir>', 'output folder', '.')
  .addOption(new Option('--side <side>', 'where to apply P: the cheaper side per layer, or force one').choices(['auto', 'weight', 'activation']).default('auto'))
  .option('--batch-size <n>', 'batch size the per-layer cost model assumes', parseIntOption('--batch-size', 1), 32)
  .addOption(new Option('--loss <kind>', 'also write the training and evaluation graphs for this loss: softmax cross-entropy, mean squared error, binary cross-entropy with logits').choices(['ce', 'mse', 'bce']))
  .option('--output <name>', 'the model output the loss reads (default: the first)')
  .option('--json', 'print the manifest as JSON instead of a table')
  .showHelpAfterError();

await runCli('sngd-compile', () => {
  program.parse();
  const file = program.args[0]!;
  const opts = program.opts<{ outDir: string; side: 'auto' | 'weight' | 'activation'; batchSize: number; loss?: 'ce' | 'mse' | 'bce'; output?: string; json?: boolean }>();
  const stem = modelStem(file);
  const outName = `${stem}.sngd.onnx`;
  const model = loadModel(file);
  const result = compileModel(model, { side: opts.side, batchSize: opts.batchSize, source: file, stem, loss: opts.loss, output: opts.output });
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
    console.log(table(['layer', 'op', 'weight', 'bias', 'fisher dim', 'side', 'params'], manifest.layers.map((l) => [l.name, l.op, l.weight, l.bias ?? '-', l.fisherDim, l.side, l.paramCount])));
  }
  if (manifest.skipped.length > 0) {
    console.log('\nskipped:');
    console.log(table(['layer', 'op', 'reason'], manifest.skipped.map((s) => [s.name, s.op, s.reason])));
  }
  console.log(`\nwrote ${[...written, path.join(opts.outDir, 'manifest.json')].join(', ')}`);
});
