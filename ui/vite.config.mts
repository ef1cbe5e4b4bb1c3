import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The operator dashboard, built by `npm run build` into dist/ui, which the api role serves at /ui (see
 * src/dashboard/serve-dashboard.ts). Every file but index.html gets a content hash in its name, so the
 * server can let browsers keep them for a year.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  // The CSP of /ui allows neither data: URLs nor inline code, so nothing may be inlined.
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  logLevel: 'warn',
});
