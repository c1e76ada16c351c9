import { defineConfig } from 'vitest/config';

// Unit tests of the pure modules (no JupyterLab, no DOM); the panel itself is tested in a browser (tests/browser).
export default defineConfig({
  test: { include: ['test/**/*.spec.ts'], environment: 'node' }
});
