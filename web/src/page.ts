/**
 * The page `lsc web` serves: prompt box, streamed output, strategy / exit / k controls, tok/s and
 * acceptance. The model comes from ?model=URL (default model/) and ?plans=URL (default plans.json).
 */
import type { Strategy } from '../../runtime/generate.js';
import { errorLine, installLscGlobal } from './global-api.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const status = $<HTMLDivElement>('status');
const output = $<HTMLPreElement>('output');
const stats = $<HTMLDivElement>('stats');
const button = $<HTMLButtonElement>('generate');
const exitSel = $<HTMLSelectElement>('exit');

function showError(line: string): void {
  status.textContent = line;
  status.className = 'error';
}

const adapterName = (i: { vendor: string; architecture: string; description: string }): string =>
  i.description || [i.vendor, i.architecture].filter(Boolean).join(' ') || 'WebGPU';
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
const api = installLscGlobal({
  model: params.get('model') ?? 'model/',
  plans: params.get('plans') ?? 'plans.json',
  onProgress: (p) => {
    status.textContent = `${p.phase === 'download' ? 'Downloading' : 'Uploading to the GPU'}: ${mib(p.done)} of ${mib(p.total)}`;
  },
});

api.ready.then(() => {
  const m = api.model!;
  for (const e of m.exitCandidates) exitSel.add(new Option(String(e), String(e), false, e === m.plan.exits.defaultExitLayer));
  $<HTMLInputElement>('k').value = String(m.plan.exits.defaultNumSpeculations);
  const { network, cache } = m.loadedBytes;
  status.textContent = `Ready: ${m.layers} layers on ${adapterName(m.gpu.adapterInfo)}`
    + ` (KV cache ${m.gpu.features.has('shader-f16') ? 'f16' : 'f32'}); weights ${mib(network)} downloaded, ${mib(cache)} from the cache`;
  status.className = 'ready';
  button.disabled = false;
}, (e: unknown) => showError(`Cannot load the model: ${errorLine(e)}`));

button.addEventListener('click', async () => {
  const m = api.model;
  if (!m) return;
  button.disabled = true;
  output.textContent = '';
  stats.textContent = 'Generating…';
  try {
    const strategy = $<HTMLSelectElement>('strategy').value as Strategy;
    const run = m.generate($<HTMLTextAreaElement>('prompt').value, {
      strategy,
      // the exit serves early-exit and self-speculative decoding, k only the latter
      exitLayer: strategy === 'autoregressive' ? undefined : Number(exitSel.value),
      numSpeculations: strategy === 'self-speculative' ? Number($<HTMLInputElement>('k').value) : undefined,
      maxNewTokens: Number($<HTMLInputElement>('max').value),
      temperature: Number($<HTMLInputElement>('temperature').value),
    });
    for await (const chunk of run) output.textContent += chunk.text;
    const s = (await run.result).stats;
    stats.textContent = `${s.generatedTokens} tokens, ${s.tokensPerSecond.toFixed(1)} tok/s`
      + (s.acceptanceRate === null ? '' : `, acceptance ${(100 * s.acceptanceRate).toFixed(0)}% (${s.acceptedTokens}/${s.draftedTokens} drafts, ${s.rounds} rounds)`)
      + `, prefill ${s.prefillMs.toFixed(0)} ms, stop: ${s.stopReason}`;
  } catch (e) {
    showError(errorLine(e));
  } finally {
    button.disabled = false;
  }
});
