/**
 * BF16 → f16 on the GPU while loading: raw bf16 bytes go by writeBuffer into one reused scratch
 * buffer and a compute pass (codegen/bf16-convert.ts) writes the f16 words into the weight
 * buffer, so JS does no per-element work. Host memory: the scratch buffer (`bytes`) plus
 * writeBuffer's staging, drained by uploadWeights as before.
 */
import './gpu-globals.js';
import { BF16_CONVERT_WORKGROUP, bf16ToF16Wgsl } from '../codegen/bf16-convert.js';

/** Most workgroups along x of one dispatch (WebGPU's default limit is 65535). */
const MAX_GROUPS_X = 32768;

export class Bf16Converter {
  private readonly pipeline: GPUComputePipeline;
  private readonly scratch: GPUBuffer;
  private readonly flag: GPUBuffer;
  private readonly params: GPUBuffer;

  constructor(private readonly device: GPUDevice, readonly bytes: number) {
    this.pipeline = device.createComputePipeline({
      layout: 'auto', label: 'bf16 to f16', compute: { module: device.createShaderModule({ code: bf16ToF16Wgsl(), label: 'bf16 to f16' }), entryPoint: 'main' },
    });
    this.scratch = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: 'bf16 scratch' });
    this.flag = device.createBuffer({ size: 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: 'bf16 non-finite flag' });
    this.params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'bf16 params' });
  }

  /**
   * Writes `data` (raw bf16, at byte `at` of the block; ≤ `bytes` in all) into the scratch buffer.
   * Odd lengths are zero-padded to whole words, as the f16 path pads its writes.
   */
  stage(data: Uint8Array, at: number): void {
    let view = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (view.byteLength % 4) {
      const padded = new Uint8Array(view.byteLength + (4 - (view.byteLength % 4)));
      padded.set(view);
      view = padded;
    }
    this.device.queue.writeBuffer(this.scratch, at, view);
  }

  /** Converts the first `elements` staged bf16 into target from byte dstOffset (a multiple of 4). */
  convert(target: GPUBuffer, dstOffset: number, elements: number): void {
    if (dstOffset % 4) throw new Error(`internal: bf16 conversion to byte offset ${dstOffset}, not a multiple of 4`);
    const words = Math.ceil(elements / 2);
    const groups = Math.ceil(words / BF16_CONVERT_WORKGROUP);
    const x = Math.min(groups, MAX_GROUPS_X);
    const y = Math.ceil(groups / x);
    this.device.queue.writeBuffer(this.params, 0, new Uint32Array([words, dstOffset / 4, x * BF16_CONVERT_WORKGROUP, 0]));
    const bind = this.device.createBindGroup({
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.scratch } },
        { binding: 1, resource: { buffer: target } },
        { binding: 2, resource: { buffer: this.flag } },
        { binding: 3, resource: { buffer: this.params } },
      ],
    });
    const enc = this.device.createCommandEncoder({ label: 'bf16 to f16' });
    const pass = enc.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(x, y);
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }

  /** Whether any converted value was ±inf or NaN (waits for the conversions). */
  async sawNonFinite(): Promise<boolean> {
    const read = this.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'bf16 flag read' });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(this.flag, 0, read, 0, 4);
    this.device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const v = new Uint32Array(read.getMappedRange())[0];
    read.unmap();
    read.destroy();
    return v !== 0;
  }

  destroy(): void {
    this.scratch.destroy();
    this.flag.destroy();
    this.params.destroy();
  }
}
