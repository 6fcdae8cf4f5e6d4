import type { GenerateStats } from '../runtime/generate.js';

/** What /metrics reads from the model at scrape time. */
export interface ModelGauges {
  activeSequences: number;
  queued: number;
  kvSlots: number;
  kvBytesInUse: number;
}

/** Seconds; buckets for a CPU adapter's milliseconds-to-seconds latencies and a GPU's faster ones. */
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TOKEN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly buckets: number[]) { this.counts = buckets.map(() => 0); }

  observe(v: number): void {
    this.buckets.forEach((b, i) => { if (v <= b) this.counts[i]++; });
    this.sum += v;
    this.count++;
  }

  lines(name: string): string[] {
    return [
      ...this.buckets.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`),
      `${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`,
    ];
  }
}

/**
 * The server's Prometheus metrics (text exposition format 0.0.4): counters and histograms
 * kept here, gauges read from the model when scraped.
 */
export class Metrics {
  private readonly requests = new Map<string, number>();
  private promptTokens = 0;
  private generatedTokens = 0;
  private drafted = 0;
  private accepted = 0;
  private readonly ttft = new Histogram(TTFT_BUCKETS);
  private readonly perToken = new Histogram(TOKEN_BUCKETS);

  constructor(private readonly gauges: () => ModelGauges | undefined) {}

  /** A request answered (any endpoint, any status). */
  request(endpoint: string, status: number): void {
    const key = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** A generation finished: its tokens, drafts, time to first token and per-token latency. */
  generation(stats: GenerateStats, ttftS: number): void {
    this.promptTokens += stats.promptTokens;
    this.generatedTokens += stats.generatedTokens;
    this.drafted += stats.draftedTokens;
    this.accepted += stats.acceptedTokens;
    this.ttft.observe(ttftS);
    if (stats.generatedTokens > 1) this.perToken.observe(stats.decodeMs / 1000 / (stats.generatedTokens - 1));
  }

  text(): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    metric('lsc_requests_total', 'counter', 'HTTP requests answered, by endpoint and status.',
      [...this.requests].map(([k, v]) => `lsc_requests_total{${k}} ${v}`));
    metric('lsc_prompt_tokens_total', 'counter', 'Prompt tokens of finished generations.', [`lsc_prompt_tokens_total ${this.promptTokens}`]);
    metric('lsc_generated_tokens_total', 'counter', 'Tokens generated.', [`lsc_generated_tokens_total ${this.generatedTokens}`]);
    metric('lsc_drafted_tokens_total', 'counter', 'Draft tokens proposed by self-speculative decoding.', [`lsc_drafted_tokens_total ${this.drafted}`]);
    metric('lsc_accepted_tokens_total', 'counter', 'Draft tokens the full model accepted.', [`lsc_accepted_tokens_total ${this.accepted}`]);
    metric('lsc_acceptance_rate', 'gauge', 'Accepted over drafted tokens since start (0 before any draft).',
      [`lsc_acceptance_rate ${this.drafted ? this.accepted / this.drafted : 0}`]);
    const g = this.gauges();
    if (g) {
      metric('lsc_active_sequences', 'gauge', 'Sequences holding a KV slot now.', [`lsc_active_sequences ${g.activeSequences}`]);
      metric('lsc_queue_depth', 'gauge', 'Requests waiting for a KV slot.', [`lsc_queue_depth ${g.queued}`]);
      metric('lsc_kv_slots_in_use', 'gauge', 'KV cache slots (one per sequence) in use.', [`lsc_kv_slots_in_use ${g.activeSequences}`]);
      metric('lsc_kv_slots', 'gauge', 'KV cache slots allocated.', [`lsc_kv_slots ${g.kvSlots}`]);
      metric('lsc_kv_bytes_in_use', 'gauge', 'KV cache bytes of the slots in use.', [`lsc_kv_bytes_in_use ${g.kvBytesInUse}`]);
    }
    metric('lsc_time_to_first_token_seconds', 'histogram', 'From request to first token (queueing and prefill included).', this.ttft.lines('lsc_time_to_first_token_seconds'));
    metric('lsc_time_per_output_token_seconds', 'histogram', 'Decode time per token after the first, per generation.', this.perToken.lines('lsc_time_per_output_token_seconds'));
    return out.join('\n') + '\n';
  }
}
