// dawn.node exposes GPUBufferUsage & co. as values, not globals; install them once on import.
import { globals } from 'webgpu';

Object.assign(globalThis, globals);
