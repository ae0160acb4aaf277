/**
 * The package build (`npm run build`): compiles src/ with tsconfig.build.json
 * into `dist` (or the directory given as the first argument), then
 * - rewrites the relative `.ts` specifiers tsc leaves in declaration files
 *   to `.js`, so every consumer's TypeScript resolves them (the JavaScript
 *   output is already rewritten by `rewriteRelativeImportExtensions`);
 * - makes the bin (`cli/main.js`) executable: tsc writes files without the
 *   mode, and `npx bedrock-mux` would fail with "Permission denied".
 *
 * Run: node scripts/build.ts [outDir]
 */
import { spawnSync } from "node:child_process"
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..")
const outDir = resolve(process.argv[2] ?? join(root, "dist"))

rmSync(outDir, { recursive: true, force: true })
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", outDir], { stdio: "inherit" })
if (result.status !== 0) process.exit(result.status ?? 1)

const declarations = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? declarations(join(dir, e.name)) : e.name.endsWith(".d.ts") ? [join(dir, e.name)] : []
  )
for (const file of declarations(outDir)) {
  const text = readFileSync(file, "utf8")
  const fixed = text.replace(/(from\s+|import\(\s*)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g, "$1$2$3.js$2")
  if (fixed !== text) writeFileSync(file, fixed)
}
chmodSync(join(outDir, "cli", "main.js"), 0o755)
