import fs from 'node:fs';
import type { Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import { formatBytes } from '../../compiler/summary.js';
import { weightsSpecText, type WeightsSpec } from '../../compiler/ir/weights-spec.js';
import { resolveModelPath } from '../../runtime/hf-cache.js';
import { quantizeToGguf } from '../../runtime/quant/to-gguf.js';
import { weightsOption } from '../shared-options.js';

interface Opts { out: string; weights: WeightsSpec }

export function registerQuantize(program: Command): void {
  program.command('quantize')
    .argument('<model>', 'model dir with config.json, tokenizer.json and model.safetensors (or a Hugging Face id)')
    .description("write a GGUF file (llama.cpp's format, which --model file.gguf loads) with the weight matrices in Q8_0, Q4_0 or F16")
    .requiredOption('-o, --out <file>', 'the GGUF file to write')
    .addOption(weightsOption().default({ matrices: 'q8_0' }, 'q8'))
    .action((model: string, o: Opts) => {
      if (!o.out.endsWith('.gguf')) throw new LscError(`--out ${o.out} does not end in .gguf`, {}, 'name the output file something.gguf');
      const t0 = performance.now();
      const r = quantizeToGguf(resolveModelPath(model), o.out, o.weights);
      const bytes = fs.statSync(o.out).size;
      process.stdout.write(`wrote ${o.out}: ${r.tensors} tensors, weights ${weightsSpecText(o.weights)}, ${formatBytes(bytes, false)} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    });
}
