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

/**
 * A gitignore-style glob as a test on relative paths: `*` and `?` (not across `/`), `[a-z]` and `[!a-z]`,
 * `\` escapes, and `**` as a whole segment: any number of folders at the start or between slashes,
 * everything inside at the end. A glob without a `/` matches the name at any depth; one with a `/` is
 * anchored at its folder (callers strip a trailing `/`).
 * It runs as an automaton in all its states at once, so a test costs at most path length × glob length:
 * the backtracking regular expressions it replaced took 0.4 s for `*a*a*a*a*a*a*a*a*b` on a 30-character
 * name and 3.8 s on a 40-character one (AMD EPYC), about twice as long with each further `*a`.
 */
export function globMatcher(glob: string): (relPath: string) => boolean {
  const segments = glob.split("/");
  const anchored = segments.length > 1;
  if (segments[0] === "" && anchored) segments.shift(); // "/rooted": anchored like any glob with a slash
  const states = compileGlob(segments);
  // Most paths fail most rules at their first or last characters ("docs/**", "*.md", "build"): the
  // glob's literal head and tail reject them without running the automaton (0.05 µs a test instead of 1.5-3).
  let head = "";
  for (let i = 0; i < states.length && states[i].literal !== undefined; i++) head += states[i].literal;
  let tail = "";
  for (let i = states.length - 1; i >= 0 && states[i].literal !== undefined; i--) tail = states[i].literal + tail;
  return (rel) => {
    const text = anchored ? rel : rel.slice(rel.lastIndexOf("/") + 1);
    return text.startsWith(head) && text.endsWith(tail) && runGlob(states, text);
  };
}

type CharTest = (codePoint: number) => boolean;

/** A state of a glob: characters it keeps (`loop`, a star) or passes to the next state (`step`). */
interface GlobState {
  loop?: CharTest;
  step?: CharTest;
  /** A later state it also is in without consuming anything (a star matching nothing). */
  skip?: number;
  /** The one character `step` accepts, when it is a literal. */
  literal?: string;
}

const SLASH = 0x2f;
const notSlash: CharTest = (c) => c !== SLASH;
const anyChar: CharTest = () => true;

function compileGlob(segments: string[]): GlobState[] {
  const states: GlobState[] = [];
  segments.forEach((seg, k) => {
    const last = k === segments.length - 1;
    if (seg === "**" && segments.length > 1) {
      if (last) {
        states.push({ loop: anyChar, skip: states.length + 1 }); // "a/**": everything inside
      } else {
        // Zero folders (skip both states), or any characters up to and including a "/".
        states.push({ step: anyChar, skip: states.length + 2 });
        states.push({ loop: anyChar, step: (c) => c === SLASH });
      }
      return;
    }
    const chars = Array.from(seg);
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i];
      if (c === "*") {
        while (chars[i + 1] === "*") i++;
        states.push({ loop: notSlash, skip: states.length + 1 });
      } else if (c === "?") {
        states.push({ step: notSlash });
      } else if (c === "[") {
        const end = classEnd(chars, i);
        states.push({ step: end > 0 ? characterClass(chars.slice(i + 1, end)) : () => false }); // git: an unclosed "[" matches nothing
        i = end > 0 ? end : i;
      } else {
        states.push(literal(c === "\\" && i + 1 < chars.length ? chars[++i] : c));
      }
    }
    if (!last) states.push(literal("/"));
  });
  return states;
}

function literal(c: string): GlobState {
  const code = c.codePointAt(0)!;
  return { step: (x) => x === code, literal: c };
}

/** Index of the `]` closing the class opened at `open`, or -1. */
function classEnd(chars: string[], open: number): number {
  let i = open + 1;
  if (chars[i] === "!" || chars[i] === "^") i++;
  if (chars[i] === "]") i++; // "[]a]": a leading "]" is a member
  for (; i < chars.length; i++) {
    if (chars[i] === "\\") i++;
    else if (chars[i] === "]") return i;
  }
  return -1;
}

/** `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`): never a `/`. */
function characterClass(body: string[]): CharTest {
  const negate = body[0] === "!" || body[0] === "^";
  const ranges: [number, number][] = [];
  const member = (i: number) => (body[i] === "\\" && i + 1 < body.length ? [body[i + 1], i + 1] : [body[i], i]) as [string, number];
  for (let i = negate ? 1 : 0; i < body.length; i++) {
    const [lo, at] = member(i);
    i = at;
    let hi = lo;
    if (body[i + 1] === "-" && i + 2 < body.length) [hi, i] = member(i + 2);
    ranges.push([lo.codePointAt(0)!, hi.codePointAt(0)!]);
  }
  return (c) => c !== SLASH && ranges.some(([lo, hi]) => lo <= c && c <= hi) !== negate;
}

/** Runs the automaton on `text`, in every state it can be in at once. */
function runGlob(states: GlobState[], text: string): boolean {
  const n = states.length;
  const on = new Uint8Array(n + 1); // on[n]: the whole glob matched
  const close = () => {
    for (let i = 0; i < n; i++) {
      const to = states[i].skip; // always a later state: one pass in order closes the set
      if (on[i] && to !== undefined) on[to] = 1;
    }
  };
  on[0] = 1;
  close();
  for (let at = 0; at < text.length; ) {
    const c = text.codePointAt(at)!;
    at += c > 0xffff ? 2 : 1;
    // Edges go to the same state or the next one: updating from the last state down reads every state
    // before it is overwritten.
    on[n] = 0;
    let alive = false;
    for (let i = n - 1; i >= 0; i--) {
      if (!on[i]) continue;
      const { loop, step } = states[i];
      on[i] = loop?.(c) ? 1 : 0;
      if (step?.(c)) on[i + 1] = 1;
      alive ||= on[i] === 1 || on[i + 1] === 1;
    }
    if (!alive) return false;
    close();
  }
  return on[n] === 1;
}

/**
 * A minimal .gitignore: blank lines, comments, `dir/`, `/rooted`, globs (see globMatcher), `!` negation.
 * The matcher answers true (ignored), false (re-included by `!`) or undefined (no rule matches).
 */
export function gitignoreMatcher(text: string): (relPath: string, isDir: boolean) => boolean | undefined {
  const rules: { test: (relPath: string) => boolean; negate: boolean; dirOnly: boolean }[] = [];
  for (let line of text.split(/\r?\n/)) {
    line = line.replace(/(?<!\\)\s+$/, ""); // trailing blanks go, unless escaped ("a\ ")
    if (!line || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith("/");
    if (dirOnly) line = line.slice(0, -1);
    rules.push({ test: globMatcher(line), negate, dirOnly });
  }
  return (rel, isDir) => {
    let ignored: boolean | undefined;
    for (const r of rules) if ((!r.dirOnly || isDir) && r.test(rel)) ignored = !r.negate;
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

/** A file system error (ENOENT, EACCES, ELOOP, ...): the path is skipped, not the walk. */
function unreadable(e: unknown): e is NodeJS.ErrnoException & { code: string } {
  return typeof (e as NodeJS.ErrnoException)?.code === "string";
}

/** A non-empty file under the size limit whose first 8 KB are UTF-8 text, with a text extension or none. */
async function isCorpusText(full: string, relPath: string, ext: string, maxBytes: number, warn: (m: string) => void): Promise<boolean> {
  const size = (await fs.stat(full)).size;
  if (size === 0) return false;
  if (size > maxBytes) {
    warn(`skipped ${relPath}: ${(size / 1048576).toFixed(0)} MB is over the ${(maxBytes / 1048576).toFixed(0)} MB file limit`);
    return false;
  }
  const head = Buffer.alloc(Math.min(size, 8192));
  const handle = await fs.open(full, "r");
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  if (!looksLikeText(head)) {
    if (TEXT_EXTENSIONS.has(ext)) warn(`skipped ${relPath}: not UTF-8 text`);
    return false;
  }
  return TEXT_EXTENSIONS.has(ext) || ext === "";
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
    const text = await fs.readFile(path.join(root, rel, ".gitignore"), "utf8").catch((e) => {
      if (!unreadable(e)) throw e;
      if (e.code !== "ENOENT") warn(`could not read ${rel ? `${rel}/` : ""}.gitignore (${e.code}): its rules are not applied`);
    });
    return text === undefined ? parent : [...parent, { base: rel, match: gitignoreMatcher(text) }];
  };
  const isIgnored = (ignores: Ignores, relPath: string, isDir: boolean) => {
    let ignored = false;
    for (const { base, match } of ignores) ignored = match(base ? relPath.slice(base.length + 1) : relPath, isDir) ?? ignored;
    return ignored;
  };
  const include = (opts.include ?? []).map(globMatcher);
  const exclude = (opts.exclude ?? []).map(globMatcher);
  const stack: { rel: string; parentIgnores: Ignores }[] = [{ rel: "", parentIgnores: [] }];
  while (stack.length) {
    const { rel, parentIgnores } = stack.pop()!;
    const ignores = await ignoresOf(rel, parentIgnores);
    // Files of a folder in name order, then its subfolders (pushed in reverse so they pop in order).
    // A folder or file that cannot be read, or is gone by the time it is read (a build deleting its
    // output, a permission), is skipped with a message: one of them should not stop a walk of thousands.
    let entries;
    try {
      entries = (await fs.readdir(path.join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    } catch (e) {
      if (!unreadable(e)) throw e;
      if (!rel) throw new CorpusError(`${root}: cannot read the folder (${e.code})`);
      warn(`skipped ${rel}/: cannot read it (${e.code})`);
      continue;
    }
    const subfolders: { rel: string; parentIgnores: Ignores }[] = [];
    for (const e of entries) {
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name) && !e.name.startsWith(".") && !isIgnored(ignores, relPath, true)) subfolders.push({ rel: relPath, parentIgnores: ignores });
        continue;
      }
      if (!e.isFile() || e.name.startsWith(".") || isIgnored(ignores, relPath, false)) continue;
      if (exclude.some((matches) => matches(relPath)) || (include.length > 0 && !include.some((matches) => matches(relPath)))) continue;
      const ext = path.extname(e.name).toLowerCase();
      if (CODE_EXTENSIONS.has(ext)) continue;
      const full = path.join(root, relPath);
      try {
        if (await isCorpusText(full, relPath, ext, maxBytes, warn)) yield full;
      } catch (err) {
        if (!unreadable(err)) throw err;
        warn(`skipped ${relPath}: cannot read it (${err.code})`);
      }
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
 * top-level heading or at the end of a file; blank lines separate paragraphs. A line holding "[MASK]" is
 * left out: it is a scratch line written to try the model (a model trained on it learns to predict
 * "[MASK]"), not text of the workspace.
 */
export async function* documents(root: string, opts: CorpusOptions = {}): AsyncGenerator<string[]> {
  for await (const file of textFiles(root, opts)) {
    let doc: string[] = [];
    const lines = readline.createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
    try {
      for await (const raw of lines) {
        const line = raw.trim() ? raw : "";
        if (isDocumentHeading(line)) {
          if (doc.length) yield doc;
          doc = [];
          continue;
        }
        if (!line || /^ ?=( =)+ .* =( =)+ ?$/.test(line) || line.includes("[MASK]")) continue; // blank lines, sub-headings, scratch lines
        doc.push(...splitSentences(line.trim()));
      }
    } catch (e) {
      // Gone or unreadable since the walk checked it: what was read of it stays, the rest is skipped.
      if (!unreadable(e)) throw e;
      (opts.warn ?? (() => undefined))(`skipped the rest of ${path.relative(root, file)}: cannot read it (${e.code})`);
    }
    if (doc.length) yield doc;
  }
}
