/**
 * BF16 → f16 on the GPU while loading (codegen/bf16-convert.ts, runtime/gpu-convert.ts): the
 * kernel against the CPU conversion (runtime/dtype-convert.ts) for all 65536 bf16 patterns, its
 * non-finite flag, and uploadWeights with the GPU conversion against the CPU path, byte for byte,
 * on BF16 checkpoints whose weights are split across buffers (row slices), tied and untied.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LscError } from '../../compiler/errors.js';
import { bf16BitsToF16Bits } from '../../runtime/dtype-convert.js';
import { Bf16Converter } from '../../runtime/gpu-convert.js';
import { SafetensorsCheckpoint } from '../../runtime/safetensors.js';
import { uploadWeights } from '../../runtime/weights.js';
import { compileGraph } from '../../compiler/compile.js';
import { modelGraph } from '../../runtime/model-dir.js';
import { testGpu } from '../helpers/gpu.js';
import { writeRandomModel } from '../helpers/random-model.js';

async function readBack(device: GPUDevice, buf: GPUBuffer, bytes: number): Promise<Uint8Array> {
  device.pushErrorScope('validation');
  const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, read, 0, bytes);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  assert.equal(err, null, `reading ${buf.label} back: ${err?.message}`);
  await read.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(read.getMappedRange()).slice();
  read.unmap();
  read.destroy();
  return out;
}

describe('BF16 -> f16 on the GPU while loading', function () {
  this.timeout(600_000);

  it('converts all 65536 bf16 patterns exactly as the CPU does, at a word offset, and flags inf/NaN', async () => {
    const { device } = await testGpu();
    const all = new Uint16Array(65536).map((_, i) => i);
    const offset = 8; // bytes into the target, as a row slice after the first rows
    const target = device.createBuffer({ size: offset + all.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const conv = new Bf16Converter(device, all.byteLength);
    conv.stage(new Uint8Array(all.buffer), 0);
    conv.convert(target, offset, all.length);
    assert.equal(await conv.sawNonFinite(), true, 'the patterns include inf and NaN');
    const got = new Uint16Array((await readBack(device, target, offset + all.byteLength)).buffer, offset);
    const want = bf16BitsToF16Bits(all);
    for (let b = 0; b < 65536; b++) assert.equal(got[b], want[b], `bf16 0x${b.toString(16)}: GPU 0x${got[b].toString(16)}, CPU 0x${want[b].toString(16)}`);
    conv.destroy();
    target.destroy();
  });

  it('leaves the flag clear for finite values within f16 range (odd count, zero pad)', async () => {
    const { device } = await testGpu();
    // every bf16 whose f16 is finite: |x| < 65520
    const finite = Array.from({ length: 65536 }, (_, i) => i).filter((b) => (b & 0x7fff) < 0x4780);
    const src = Uint16Array.from(finite.slice(0, finite.length - (finite.length % 2 === 0 ? 1 : 0)));
    assert.equal(src.length % 2, 1);
    const target = device.createBuffer({ size: Math.ceil(src.byteLength / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const conv = new Bf16Converter(device, Math.ceil(src.byteLength / 4) * 4);
    conv.stage(new Uint8Array(src.buffer), 0);
    conv.convert(target, 0, src.length);
    assert.equal(await conv.sawNonFinite(), false);
    const got = new Uint16Array((await readBack(device, target, Math.ceil(src.byteLength / 4) * 4)).buffer);
    assert.deepEqual(got.subarray(0, src.length), bf16BitsToF16Bits(src));
    assert.equal(got[src.length], 0, 'the pad half is zero');
    conv.destroy();
    target.destroy();
  });

  it('uploadWeights: a NaN converted on the GPU stops the load with the CPU reader\'s error (tensor, row, col)', async () => {
    const gpu = await testGpu();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-gpuconv-nan-'));
    try {
      const m = writeRandomModel(path.join(tmp, 'm'), {
        hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, vocab_size: 100,
      }, { dtype: 'BF16', seed: 3 });
      const name = 'model.layers.0.mlp.up_proj.weight';
      let ckpt = SafetensorsCheckpoint.open(m.dir);
      const t = ckpt.get(name)!;
      ckpt.close();
      const fd = fs.openSync(t.file, 'r+');
      fs.writeSync(fd, Uint8Array.of(0xc0, 0x7f), 0, 2, t.dataStart + 2 * (3 * 64 + 5)); // bf16 NaN at row 3, col 5
      fs.closeSync(fd);
      const { graph } = modelGraph(m.dir);
      const { plan } = compileGraph(graph, { ctx: 32, prefillChunk: 16, limits: gpu.limits });
      ckpt = SafetensorsCheckpoint.open(m.dir);
      await assert.rejects(uploadWeights(gpu.device, plan, ckpt, undefined, { adapterInfo: gpu.adapterInfo, gpuConvert: true }),
        (e: LscError) => /tensor holds NaN at flat index 197 \(row 3, col 5\)/.test(e.message) && e.where.tensor === name);
      ckpt.close();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  for (const tied of [false, true]) {
    it(`uploadWeights: GPU conversion == CPU conversion, byte for byte (weights split across buffers, ${tied ? 'tied' : 'untied'} embeddings)`, async () => {
      const gpu = await testGpu();
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-gpuconv-'));
      try {
        const m = writeRandomModel(path.join(tmp, 'm'), {
          hidden_size: 192, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2,
          vocab_size: 300, tie_word_embeddings: tied,
        }, { dtype: 'BF16', seed: 12 });
        const { graph } = modelGraph(m.dir);
        const { plan } = compileGraph(graph, { ctx: 32, prefillChunk: 16, limits: { ...gpu.limits, maxStorageBufferBindingSize: 64 * 1024 } });
        assert.ok(plan.weights.some((w) => w.chunks.length >= 2), 'some weight is split across buffers');
        assert.equal(plan.weights.some((w) => w.tiedTo), tied);
        const ckpt = SafetensorsCheckpoint.open(m.dir);
        const onGpu = await uploadWeights(gpu.device, plan, ckpt, undefined, { adapterInfo: gpu.adapterInfo, gpuConvert: true });
        const onCpu = await uploadWeights(gpu.device, plan, ckpt, undefined, { adapterInfo: gpu.adapterInfo, gpuConvert: false });
        ckpt.close();
        const sizes = new Map(plan.buffers.map((b) => [b.id, Math.ceil(b.bytes / 4) * 4]));
        assert.ok(onGpu.size > 0);
        let nonZero = 0;
        for (const [id, buf] of onGpu) {
          const a = await readBack(gpu.device, buf, sizes.get(id)!);
          const b = await readBack(gpu.device, onCpu.get(id)!, sizes.get(id)!);
          assert.ok(Buffer.from(a).equals(Buffer.from(b)), `buffer ${id} differs`);
          nonZero += a.some((x) => x !== 0) ? 1 : 0;
        }
        assert.equal(nonZero, onGpu.size, 'every weight buffer holds data');
        for (const b of [...onGpu.values(), ...onCpu.values()]) b.destroy();
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});
