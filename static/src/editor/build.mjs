// Builds static/vendor/codemirror/codemirror.min.js from entry.js and writes the licenses of every package
// that went into it to static/vendor/codemirror/LICENSES.txt. Run through `make editor-assets`.
import { build } from "esbuild";
import { readFileSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const out = "../../vendor/codemirror";

// CodeMirror injects its base styles at run time. style-mod, which does it, writes a <style> element into a
// document's <head>, which the studio's Content-Security-Policy (style-src-elem 'self') refuses; it already knows
// how to use a constructed stylesheet (document.adoptedStyleSheets, CSSOM, which the policy allows) and does so
// for shadow roots. This plugin makes it do that for documents too, falling back to <style> in old browsers.
const STYLE_MOD_TEST = "if (!root.head && root.adoptedStyleSheets && win.CSSStyleSheet) {";
const adoptedStyles = {
  name: "adopted-styles",
  setup(build) {
    build.onLoad({ filter: /style-mod[\\/]src[\\/]style-mod\.js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      if (!source.includes(STYLE_MOD_TEST)) throw new Error("style-mod changed: check the adopted-styles patch");
      return { contents: source.replace(STYLE_MOD_TEST, "if (root.adoptedStyleSheets && win.CSSStyleSheet) {"), loader: "js" };
    });
  },
};
const result = await build({
  entryPoints: ["entry.js"], bundle: true, minify: true, format: "iife", globalName: "StudioCodeMirror",
  target: "es2020", legalComments: "none", outfile: `${out}/codemirror.min.js`, metafile: true,
  plugins: [adoptedStyles],
});
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (match) packages.add(match[1]);
}
const sections = [...packages].sort().map((name) => {
  const dir = join("node_modules", name);
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  const text = file && existsSync(join(dir, file)) ? readFileSync(join(dir, file), "utf8").trim() : `License: ${meta.license}`;
  return `${name} ${meta.version} (${meta.license})\n${"-".repeat(72)}\n${text}\n`;
});
writeFileSync(`${out}/LICENSES.txt`,
  "Packages bundled into codemirror.min.js (built from static/src/editor by `make editor-assets`).\n\n" +
  sections.join("\n"));
console.log(`codemirror.min.js: ${packages.size} packages: ${[...packages].sort().join(", ")}`);
