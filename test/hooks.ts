import { disposeTestGpu } from './helpers/gpu.js';

/** Mocha root hooks: release the shared GPU so node can exit. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await disposeTestGpu();
  },
};
