// A folder of text as pretraining documents. Files are found by walking the folder (skipping .git,
// node_modules, build output, hidden folders and what .gitignore files ignore, nested ones included), chosen by extension
// (.txt .md .rst .tex .tokens .text) or, without a known extension, by content (valid UTF-8, no NUL bytes),
// and read line by line. Source code is not read: its comments are a poor sample of natural language.
import { createReadStream, promises as fs } from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";

export const TEXT_EXTENSIONS = new Set([".txt", ".md", ".markdown", ".rst", ".tex", ".tokens", ".text"]);
const SKIP_DIRS = new Set([".git", "node_modules", "dist", "out", "build", "target", "__pycache__", ".venv", "venv", ".cache"]);
const CODE_EXTENSIONS = new Set([".js", ".ts", ".py", ".json", ".c", ".cc", ".cpp", ".h", ".java", ".go", ".rs", ".css", ".html", ".xml", ".yml", ".yaml", ".lock"]);

export interface CorpusOptions {
  /** Files larger than this are skipped with a warning (default 50 MB). */
  maxFileBytes?: number;
  /** Globs (gitignore syntax, relative to the folder): when given, only matching files are read. */
  include?: string[];
  /** Globs of files to leave out. */
  exclude?: string[];
  /** Called with one line per skipped file or problem. */
  warn?: (message: string) => void;
}

export class CorpusError extends Error {}

/** A gitignore-style glob as a regular expression on relative paths: `*`, `**`, `?`, `/rooted`. */
export function globToRegExp(glob: string): RegExp {
  const rooted = glob.includes("/") && !glob.startsWith("**/");
  const body = glob
    .replace(/^\//, "")
    .split("")
    .map((c, i, all) => {
      if (c === "*") return all[i + 1] === "*" ? "" : all[i - 1] === "*" ? ".*" : "[^/]*";
      if (c === "?") return "[^/]";
      return /[.+^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
    })
    .join("");
  return new RegExp(`${rooted ? "^" : "(^|/)"}${body}$`);
}

/**
 * A minimal .gitignore: blank lines, comments, `dir/`, `/rooted`, `*` and `**` globs, `!` negation.
 * The matcher answers true (ignored), false (re-included by `!`) or undefined (no rule matches).
 */
export function gitignoreMatcher(text: string): (relPath: string, isDir: boolean) => boolean | undefined {
  const rules: { re: RegExp; negate: boolean; dirOnly: boolean }[] = [];
  for (let line of text.split(/\r?\n/)) {
    line = line.trimEnd();
    if (!line || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith("/");
    if (dirOnly) line = line.slice(0, -1);
    rules.push({ re: globToRegExp(line), negate, dirOnly });
  }
  return (rel, isDir) => {
    let ignored: boolean | undefined;
    for (const r of rules) if ((!r.dirOnly || isDir) && r.re.test(rel)) ignored = !r.negate;
    return ignored;
  };
}

function looksLikeText(head: Buffer): boolean {
  if (head.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(head.subarray(0, Math.max(0, head.length - 4)));
    return true;
  } catch {
    return false;
  }
}

/** The text files of `root`, in a stable order. */
export async function* textFiles(root: string, opts: CorpusOptions = {}): AsyncGenerator<string> {
  const maxBytes = opts.maxFileBytes ?? 50 * 1024 * 1024;
  const warn = opts.warn ?? (() => undefined);
  let stat;
  try {
    stat = await fs.stat(root);
  } catch {
    throw new CorpusError(`${root}: no such folder`);
  }
  if (stat.isFile()) {
    yield root;
    return;
  }
  // The .gitignore files of a folder and its parents (up to root), each matching paths relative to its folder;
  // as in git, a deeper file's rules come later and win.
  type Ignores = { base: string; match: ReturnType<typeof gitignoreMatcher> }[];
  const ignoresOf = async (rel: string, parent: Ignores): Promise<Ignores> => {
    const text = await fs.readFile(path.join(root, rel, ".gitignore"), "utf8").catch(() => undefined);
    return text === undefined ? parent : [...parent, { base: rel, match: gitignoreMatcher(text) }];
  };
  const isIgnored = (ignores: Ignores, relPath: string, isDir: boolean) => {
    let ignored = false;
    for (const { base, match } of ignores) ignored = match(base ? relPath.slice(base.length + 1) : relPath, isDir) ?? ignored;
    return ignored;
  };
  const include = (opts.include ?? []).map(globToRegExp);
  const exclude = (opts.exclude ?? []).map(globToRegExp);
  const stack: { rel: string; parentIgnores: Ignores }[] = [{ rel: "", parentIgnores: [] }];
  while (stack.length) {
    const { rel, parentIgnores } = stack.pop()!;
    const ignores = await ignoresOf(rel, parentIgnores);
    // Files of a folder in name order, then its subfolders (pushed in reverse so they pop in order).
    const entries = (await fs.readdir(path.join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    const subfolders: { rel: string; parentIgnores: Ignores }[] = [];
    for (const e of entries) {
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name) && !e.name.startsWith(".") && !isIgnored(ignores, relPath, true)) subfolders.push({ rel: relPath, parentIgnores: ignores });
        continue;
      }
      if (!e.isFile() || e.name.startsWith(".") || isIgnored(ignores, relPath, false)) continue;
      if (exclude.some((re) => re.test(relPath)) || (include.length > 0 && !include.some((re) => re.test(relPath)))) continue;
      const ext = path.extname(e.name).toLowerCase();
      if (CODE_EXTENSIONS.has(ext)) continue;
      const full = path.join(root, relPath);
      const size = (await fs.stat(full)).size;
      if (size === 0) continue;
      if (size > maxBytes) {
        warn(`skipped ${relPath}: ${(size / 1048576).toFixed(0)} MB is over the ${(maxBytes / 1048576).toFixed(0)} MB file limit`);
        continue;
      }
      const handle = await fs.open(full, "r");
      const head = Buffer.alloc(Math.min(size, 8192));
      await handle.read(head, 0, head.length, 0);
      await handle.close();
      if (!looksLikeText(head)) {
        if (TEXT_EXTENSIONS.has(ext)) warn(`skipped ${relPath}: not UTF-8 text`);
        continue;
      }
      if (TEXT_EXTENSIONS.has(ext) || ext === "") yield full;
    }
    stack.push(...subfolders.reverse());
  }
}

/**
 * Sentence boundaries: after . ! ? (and closing quotes or brackets) when whitespace follows and the next
 * word does not start with a lower-case letter ("e.g. this" stays whole), and after CJK 。！？ always.
 */
export function splitSentences(paragraph: string): string[] {
  const out: string[] = [];
  let start = 0;
  const push = (end: number) => {
    const t = paragraph.slice(start, end).trim();
    if (t) out.push(t);
    start = end;
  };
  for (let i = 0; i < paragraph.length; i++) {
    const c = paragraph[i];
    const cjk = "。！？".includes(c);
    if (!cjk && !".!?".includes(c)) continue;
    let j = i + 1;
    while (j < paragraph.length && ".!?。！？\"'”’」』)）]".includes(paragraph[j])) j++;
    if (cjk) {
      push(j);
    } else if (j < paragraph.length && /\s/.test(paragraph[j])) {
      let k = j;
      while (k < paragraph.length && /\s/.test(paragraph[k])) k++;
      if (k < paragraph.length && !/\p{Ll}/u.test(paragraph[k])) push(j);
    }
    i = j - 1;
  }
  push(paragraph.length);
  return out;
}

/** A heading that starts a new document: WikiText's " = Title = " (one level) or Markdown "# Title". */
function isDocumentHeading(line: string): boolean {
  return /^ ?= [^=].* = ?$/.test(line) || /^# /.test(line);
}

/**
 * The documents of the corpus as arrays of sentences, streamed file by file: a document ends at a
 * top-level heading or at the end of a file; blank lines separate paragraphs.
 */
export async function* documents(root: string, opts: CorpusOptions = {}): AsyncGenerator<string[]> {
  for await (const file of textFiles(root, opts)) {
    let doc: string[] = [];
    const lines = readline.createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
    for await (const raw of lines) {
      const line = raw.trim() ? raw : "";
      if (isDocumentHeading(line)) {
        if (doc.length) yield doc;
        doc = [];
        continue;
      }
      if (!line || /^ ?=( =)+ .* =( =)+ ?$/.test(line)) continue; // blank lines and sub-headings
      doc.push(...splitSentences(line.trim()));
    }
    if (doc.length) yield doc;
  }
}
