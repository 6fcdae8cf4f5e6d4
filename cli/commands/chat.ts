import readline from 'node:readline';
import type { Command } from 'commander';
import { LscError, isLscError } from '../../compiler/errors.js';
import type { GenerateOptions, Strategy } from '../../runtime/generate.js';
import { ChatTemplate, checkMessages, type ChatMessage } from '../../runtime/chat-template.js';
import { resolveModelPath } from '../../runtime/hf-cache.js';
import { checkStopStrings } from '../../runtime/stop.js';
import { collect, positiveInt } from '../options.js';
import { addLoadOptions, addModelSource, addSamplingOptions, addSpeculationOptions, checkApplicable, NOT_APPLICABLE_RULE, pickModel } from '../shared-options.js';
import { withModel, type ModelFlags } from '../load-model.js';
import { checkExitLayer } from '../checks.js';
import { statsLine } from './generate.js';

interface Opts {
  model: string; system?: string; message?: string[]; maxNewTokens: number; strategy: Strategy;
  exitLayer?: number; numSpeculations?: number; roundsPerSubmission?: number; temperature: number; topP?: number; topK?: number;
  seed?: number; stop?: string[]; graph?: string; plan?: string; ctx?: number; forceCtx?: boolean; json?: boolean;
  check?: ModelFlags['check'];
}

/** Messages of --message flags (each a user turn). */
async function* fromFlags(messages: string[]): AsyncGenerator<ChatMessage> {
  for (const content of messages) yield { role: 'user', content };
}

/** One message per line of stdin, {"role","content"}; blank lines skipped; a bad line names its number. */
async function* fromJsonLines(): AsyncGenerator<ChatMessage> {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (!line.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new LscError(`stdin line ${n} is not JSON: ${(e as Error).message}`, {}, 'send one {"role": "user", "content": "..."} object per line');
    }
    yield checkMessages([v], `stdin line ${n}`)[0];
  }
}

/** A terminal: "> " prompts until /exit or Ctrl-D. */
async function* fromTerminal(rl: readline.Interface): AsyncGenerator<ChatMessage> {
  process.stderr.write('lsc: chat; /exit or Ctrl-D ends\n');
  const ask = (): Promise<string | null> => new Promise((resolve) => {
    const onClose = (): void => resolve(null);
    rl.once('close', onClose);
    rl.question('> ', (answer) => { rl.off('close', onClose); resolve(answer); });
  });
  for (;;) {
    const line = await ask();
    if (line === null || line.trim() === '/exit') return;
    if (line.trim()) yield { role: 'user', content: line };
  }
}

export function registerChat(program: Command): void {
  const cmd = program.command('chat')
    .description("chat with a model that has a chat template (tokenizer_config.json's chat_template): interactive on a terminal, " +
      'or the messages of --message or of JSON lines on stdin; each reply streams to stdout, its stats to stderr');
  addModelSource(cmd, 'model', 'model dir or Hugging Face id with a chat_template in tokenizer_config.json')
    .option('--system <text>', 'a system message before the conversation')
    .option('--message <text>', 'a user message, replied to in order (repeatable); without it, stdin gives the messages', collect)
    .option('--max-new-tokens <n>', 'most tokens per reply', positiveInt, 512);
  addSpeculationOptions(cmd, true);
  addSamplingOptions(cmd);
  cmd.option('--stop <str>', 'end a reply when its text contains this (repeatable; not emitted)', collect);
  addLoadOptions(cmd)
    .option('--json', 'one JSON object per reply: {"role","content","prompt","promptTokens","tokens","stats"}')
    .addHelpText('after', '\nWithout --message: on a terminal, type a message per line (/exit or Ctrl-D ends; the conversation is kept);\n' +
      'otherwise stdin holds one JSON message per line, {"role": "user"|"system"|"assistant", "content": "..."}: each user\n' +
      'message is replied to, the others join the conversation as given.\n' +
      `${NOT_APPLICABLE_RULE}`)
    .action(async (positional: string | undefined, o: Opts, self: Command) => {
      o.model = pickModel(positional, o.model, 'model');
      checkApplicable(self, o);
      checkStopStrings(o.stop);
      // the template first: a model without one fails before the weights load
      const template = ChatTemplate.load(resolveModelPath(o.model));
      const interactive = o.message === undefined && process.stdin.isTTY === true;
      const rl = interactive ? readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true }) : undefined;
      const turns = o.message ? fromFlags(o.message) : rl ? fromTerminal(rl) : fromJsonLines();
      // the first message before the model loads: empty stdin is an error, not a wasted load
      const first = await turns.next();
      if (first.done) {
        rl?.close();
        if (interactive) return;
        throw new LscError('no messages on stdin', {}, 'pass --message TEXT, or one JSON {"role","content"} per line on stdin');
      }
      o.check = (plan) => {
        if (o.strategy !== 'autoregressive') checkExitLayer(plan, o.exitLayer);
        if (o.numSpeculations !== undefined && o.numSpeculations > plan.rows.kMax) {
          throw new LscError(`--num-speculations ${o.numSpeculations} exceeds the plan's maximum ${plan.rows.kMax}`, {}, 'recompile with a larger dims.k.max');
        }
      };
      const gen: GenerateOptions = {
        maxNewTokens: o.maxNewTokens, strategy: o.strategy, exitLayer: o.exitLayer, numSpeculations: o.numSpeculations,
        roundsPerSubmission: o.roundsPerSubmission, temperature: o.temperature, topP: o.topP, topK: o.topK, seed: o.seed, stop: o.stop,
      };
      const history: ChatMessage[] = o.system !== undefined ? [{ role: 'system', content: o.system }] : [];
      try {
        await withModel(o, !o.json && process.stderr.isTTY === true, async (model) => {
          for (let m: IteratorResult<ChatMessage> = first; !m.done; m = await turns.next()) {
            history.push(m.value);
            if (m.value.role !== 'user') continue;
            try {
              const prompt = template.render(history, { addGenerationPrompt: true });
              const run = model.generate(prompt, gen);
              for await (const chunk of run) if (!o.json && chunk.text) process.stdout.write(chunk.text);
              const r = await run.result;
              history.push({ role: 'assistant', content: r.text });
              if (o.json) {
                process.stdout.write(JSON.stringify({ role: 'assistant', content: r.text, prompt, promptTokens: r.promptTokens, tokens: r.tokens, stats: r.stats }) + '\n');
              } else {
                process.stdout.write('\n');
                process.stderr.write(statsLine(r.stats));
              }
            } catch (e) {
              // on a terminal a refused turn (too long, rejected by the template) is dropped and the chat goes on
              if (!interactive || !isLscError(e)) throw e;
              history.pop();
              process.stderr.write(`lsc: error: ${e.format()}\n`);
            }
          }
        });
      } finally {
        rl?.close();
      }
    });
}
