// Exits 0 when Dawn finds a WebGPU adapter, 1 otherwise (used by scripts/setup.sh).
import { create } from 'webgpu';

const gpu = create([]);
const adapter = await gpu.requestAdapter().catch(() => null);
if (!adapter) {
  console.error('no WebGPU adapter');
  process.exit(1);
}
const i = adapter.info;
console.log(`WebGPU adapter: ${i.description || i.vendor || 'unknown'} (${i.architecture || 'unknown architecture'})`);
process.exit(0);
