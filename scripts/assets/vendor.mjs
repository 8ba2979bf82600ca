// Copy the browser files alu-ledger serves from the pinned npm packages into
// api/static/vendor/<package>/, with each package's licence, and write manifest.json
// (package, version, licence, files with their SHA-256) that the tests check the copies
// against. Run after `npm ci` here: `npm run vendor` (README, "Browser assets").
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "api", "static", "vendor");

// What each page needs, by package: the files a page loads.
const wanted = {
  react: ["umd/react.production.min.js"],
  "react-dom": ["umd/react-dom.production.min.js"],
  graphiql: ["graphiql.min.js", "graphiql.min.css"],
  "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"],
};
const licenceNames = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"];

const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");

rmSync(out, { recursive: true, force: true });
const manifest = {};
for (const [name, files] of Object.entries(wanted)) {
  const source = join(here, "node_modules", name);
  const meta = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
  const licenceFile = licenceNames.find((f) => existsSync(join(source, f)));
  if (!licenceFile) throw new Error(`${name} has no licence file`);
  const entry = { version: meta.version, license: meta.license, files: {} };
  for (const file of [...files, licenceFile]) {
    const target = join(out, name, file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(source, file), target);
    entry.files[file] = sha256(target);
  }
  manifest[name] = entry;
}
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`vendored ${Object.keys(manifest).length} packages into ${out}`);
