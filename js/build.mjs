// Builds the front end into ig_widget/static/ (`npm run build`), or rebuilds it on
// every save (`npm run watch`, used by `make dev` with anywidget's hot reload).
import * as esbuild from "esbuild";

const outdir = "ig_widget/static";
const script = { bundle: true, target: "es2020", minify: true };
const builds = [
  { ...script, entryPoints: ["js/src/widget.ts"], format: "esm", outdir },
  { ...script, entryPoints: ["js/src/gallery.ts"], format: "esm", outdir },
  // The to_html page inlines this one in a classic <script>.
  { ...script, entryPoints: ["js/src/standalone.ts"], format: "iife", outdir },
  // Stylesheets, each with the shared theme.css bundled in.
  { entryPoints: ["js/src/widget.css", "js/src/gallery.css"], bundle: true, outdir },
];

const logLevel = "info";
if (process.argv.includes("--watch")) {
  for (const options of builds) {
    const context = await esbuild.context({ ...options, logLevel });
    await context.watch();
  }
} else {
  await Promise.all(builds.map((options) => esbuild.build({ ...options, logLevel })));
}
