#!/usr/bin/env node
/**
 * sngd: export (fold Fisher layers back) and model (write reference architectures).
 */
import { Command } from 'commander';
import { fold } from '../passes/fold.js';
import { cleanup } from '../passes/cleanup.js';
import { isReconstructed, readLayerRecords } from '../passes/reconstruct/record.js';
import { SngdError } from '../src/errors.js';
import { loadModel } from '../src/onnx/import.js';
import { saveModel } from '../src/onnx/export.js';
import { buildMlp } from '../models/mlp.js';
import { parseIntOption, runCli } from './cli-common.js';

const program = new Command('sngd').description('Structured natural-gradient training for ONNX models.').showHelpAfterError();

program
  .command('export')
  .description('Fold the local Fisher layers back into the weights (W̃ = W̃′·P): the original architecture, inputs and outputs.')
  .argument('<model>', 'a reconstructed model (<stem>.sngd.onnx from sngd-compile or sngd train)')
  .requiredOption('-o, --output <file>', 'where to write the exported model')
  .option('--reconstructed', 'write the reconstructed graph itself (current P and W̃′), for inference in any ONNX runtime')
  .action(async (file: string, opts: { output: string; reconstructed?: boolean }) => {
    await runCli('sngd export', () => {
      const model = loadModel(file);
      const layers = readLayerRecords(model).length;
      if (!isReconstructed(model)) throw new SngdError(`${file}: has no local Fisher layers (not produced by sngd-compile?); nothing to export`);
      const out = opts.reconstructed ? { ...model, graph: cleanup(model.graph) } : fold(model);
      saveModel(opts.output, out);
      console.log(`${opts.reconstructed ? 'wrote the reconstructed graph' : `folded ${layers} layer(s)`} → ${opts.output}`);
    });
  });

const modelCmd = program.command('model').description('Write a reference architecture as an ONNX model.');
modelCmd
  .command('mlp')
  .description('A multilayer perceptron (Gemm + ReLU), PyTorch default initialisation.')
  .option('--layers <sizes>', 'comma-separated layer sizes, input first', '784,80,80,80,10')
  .option('--seed <n>', 'initialisation seed', parseIntOption('--seed', 0), 2017)
  .requiredOption('-o, --output <file>', 'where to write the model')
  .action(async (opts: { layers: string; seed: number; output: string }) => {
    await runCli('sngd model mlp', () => {
      const layers = opts.layers.split(',').map((s) => Number(s.trim()));
      saveModel(opts.output, buildMlp({ layers, seed: opts.seed }));
      console.log(`wrote ${opts.output} (${layers.join('-')} MLP, seed ${opts.seed})`);
    });
  });

await program.parseAsync();
