#!/usr/bin/env node
// Writes docs/kernel-api.md: every member of the kernel API (`iommu-sim/kernel`, src/api/kernel.ts) with its
// signature as tsc declared it (dist/src/api/kernel.d.ts, read with the TypeScript compiler's parser) and its C
// counterpart (src/api/kernel-doc.ts); test/kernel-api-doc.test.ts fails while the file differs from what this
// writes.
//
// Usage: npm run build && node scripts/kernel-api-doc.mjs [--check [FILE]]   (--check: exit 1 if docs/kernel-api.md,
// or FILE, is not what it would write)
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The members of kernelApi's return type (name → type text) and the type names the module exports. */
function declarations(dts) {
  const sf = ts.createSourceFile('kernel.d.ts', dts, ts.ScriptTarget.ES2022, true);
  const signatures = new Map();
  const types = [];
  const exported = (n) => ts.getModifiers(n)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) ?? false;
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name?.text === 'kernelApi' && st.type && ts.isTypeLiteralNode(st.type)) {
      for (const m of st.type.members) if (m.name && m.type) signatures.set(m.name.getText(sf), typeText(m.type, sf));
    } else if ((ts.isTypeAliasDeclaration(st) || ts.isInterfaceDeclaration(st)) && exported(st)) {
      types.push(st.name.text);
    } else if (ts.isExportDeclaration(st) && st.isTypeOnly && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const e of st.exportClause.elements) types.push(e.name.text);
    }
  }
  return { signatures, types: [...new Set(types)].sort() };
}

/** A type as a table cell shows it: an object type by its members' names (the layouts' fields would fill a page). */
function typeText(node, sf) {
  if (ts.isTypeLiteralNode(node)) return `{ ${node.members.map((m) => m.name?.getText(sf) ?? '').join(', ')} }`;
  return node.getText(sf);
}

async function render() {
  const { kernelApiMarkdown, KERNEL_API_DOC } = await import(join(root, 'dist/src/api/kernel-doc.js'));
  const { signatures, types } = declarations(readFileSync(join(root, 'dist/src/api/kernel.d.ts'), 'utf8'));
  const undeclared = Object.keys(KERNEL_API_DOC).filter((n) => !signatures.has(n));
  if (undeclared.length > 0 || signatures.size === 0) throw new Error(`kernel.d.ts declares no signature for ${undeclared.join(', ') || 'kernelApi'}`);
  return kernelApiMarkdown(signatures, types);
}

const file = join(root, 'docs/kernel-api.md');
const text = await render();
const c = process.argv.indexOf('--check');
if (c >= 0) {
  const checked = process.argv[c + 1] ?? file;
  if (readFileSync(checked, 'utf8') !== text) {
    console.error(`${checked} is not what src/api/kernel.ts declares: npm run build && node scripts/kernel-api-doc.mjs`);
    process.exit(1);
  }
  console.log('docs/kernel-api.md is up to date');
} else {
  writeFileSync(file, text);
  console.log('docs/kernel-api.md written');
}
