#!/usr/bin/env node
// Validates AsyncAPI documents with the official parser (@asyncapi/parser, pinned in package.json).
//
//   node deploy/tools/asyncapi/validate.mjs [--json] FILE...      (no FILE: one document on stdin)
//
// Prints every diagnostic as "<file>: <severity> <path> <message> [<code>]"; with --json, prints one JSON
// report instead: [{"source", "diagnostics": [{"severity", "path", "message", "code"}], "errors", "warnings"}].
// Exits 1 if any document has a diagnostic of severity error (or cannot be read or parsed), 2 on bad usage.
//
// Nothing is fetched: a $ref that is not local to the document ("#/...") is reported as an error instead of
// being resolved over the network or from disk.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';

// Spectral's DiagnosticSeverity: 0 error, 1 warning, 2 information, 3 hint.
const SEVERITIES = ['error', 'warning', 'info', 'hint'];

function pointer(segments) {
  if (!segments || segments.length === 0) return '/';
  return '/' + segments.map((s) => String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
}

function externalRefs(node, at = [], found = []) {
  if (Array.isArray(node)) {
    node.forEach((item, i) => externalRefs(item, [...at, i], found));
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && !value.startsWith('#')) {
        found.push({ path: [...at, key], ref: value });
      } else {
        externalRefs(value, [...at, key], found);
      }
    }
  }
  return found;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function validateOne(parser, source, text) {
  const diagnostics = [];
  let json;
  try {
    json = JSON.parse(text);
  } catch (err) {
    diagnostics.push({ severity: 'error', path: '/', message: `not JSON: ${err.message}`, code: 'json' });
    return diagnostics;
  }
  for (const { path: at, ref } of externalRefs(json)) {
    diagnostics.push({
      severity: 'error',
      path: pointer(at),
      message: `external reference "${ref}": only references inside the document are allowed`,
      code: 'kapnet-local-refs-only',
    });
  }
  if (diagnostics.length > 0) return diagnostics;

  const { document, diagnostics: found } = await parser.parse(text, { source });
  for (const d of found) {
    diagnostics.push({
      severity: SEVERITIES[d.severity] ?? `severity-${d.severity}`,
      path: pointer(d.path),
      message: d.message,
      code: d.code === undefined ? '' : String(d.code),
    });
  }
  if (document === undefined && !diagnostics.some((d) => d.severity === 'error')) {
    diagnostics.push({ severity: 'error', path: '/', message: 'the parser produced no document', code: 'parse' });
  }
  return diagnostics;
}

async function main(argv) {
  const asJson = argv.includes('--json');
  const files = argv.filter((a) => a !== '--json');
  if (files.some((f) => f.startsWith('-') && f !== '-')) {
    process.stderr.write('usage: validate.mjs [--json] [FILE...]   (no FILE or "-": read one document from stdin)\n');
    return 2;
  }
  const inputs = files.length === 0 ? ['-'] : files;
  const parser = new Parser();
  const report = [];
  for (const file of inputs) {
    const source = file === '-' ? undefined : path.resolve(file);
    let diagnostics;
    try {
      const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      diagnostics = await validateOne(parser, source, text);
    } catch (err) {
      diagnostics = [{ severity: 'error', path: '/', message: String(err?.stack ?? err), code: 'uncaught' }];
    }
    report.push({
      source: file === '-' ? '<stdin>' : file,
      diagnostics,
      errors: diagnostics.filter((d) => d.severity === 'error').length,
      warnings: diagnostics.filter((d) => d.severity === 'warning').length,
    });
  }
  if (asJson) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    for (const { source, diagnostics, errors, warnings } of report) {
      for (const d of diagnostics) {
        process.stdout.write(`${source}: ${d.severity} ${d.path} ${d.message}${d.code ? ` [${d.code}]` : ''}\n`);
      }
      process.stdout.write(`${source}: ${errors} error(s), ${warnings} warning(s), ${diagnostics.length} diagnostic(s)\n`);
    }
  }
  return report.some((r) => r.errors > 0) ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
