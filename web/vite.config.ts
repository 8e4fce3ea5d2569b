// Two pages, one bundle: the editor (`iterloop editor`) and the run console (the dashboard's run page).
// The Python package serves the output from api/static/web; nothing is loaded from a CDN.
import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  base: "./",
  build: {
    outDir: resolve(__dirname, "../api/static/web"),
    emptyOutDir: true,
    manifest: true, // the Python side finds the hashed file names in .vite/manifest.json
    chunkSizeWarningLimit: 2500, // the graph chunk carries elkjs (about 1.9 MB, 0.6 MB gzipped), loaded once
    rollupOptions: {
      input: {
        editor: resolve(__dirname, "editor.html"),
        console: resolve(__dirname, "console.html"),
      },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
