// Readers for labelled files, one per task family, each streaming its file line by line. A bad row is
// reported through `onBadRow` with file, line and problem, and skipped; a file with no usable row is an error.
import type { TableColumns } from "../../common/protocol.js";
import { createReadStream, promises as fs } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";

export class DataError extends Error {}

export interface ReadOptions {
  /** Called once per skipped row, with "file:line: problem". Default: ignore. */
  onBadRow?: (message: string) => void;
}

/** A text (or text pair) with its label as written in the file; label is undefined where the file has none. */
export interface TextExample {
  text: string;
  pair?: string;
  label?: string;
  line: number;
}

export interface ChoiceExample {
  /** SWAG: sent1 is the context, sent2 the start of every ending. */
  context: string;
  start: string;
  endings: string[];
  label?: number;
  line: number;
}

export interface SquadAnswer {
  text: string;
  /** Character (code point) offset into the context, as SQuAD counts it. */
  start: number;
}

export interface SquadExample {
  id: string;
  title: string;
  question: string;
  context: string;
  answers: SquadAnswer[];
}

export interface TaggedSentence {
  tokens: string[];
  /** Tags as written (any of IOB1, IOB2/BIO, BIOES); see ner.ts for normalisation. */
  tags: string[];
  line: number;
}

/** Lines of a UTF-8 file with their 1-based numbers, without reading the file at once. */
async function* lines(file: string): AsyncGenerator<{ text: string; line: number }> {
  await fs.access(file).catch((e: NodeJS.ErrnoException) => {
    throw new DataError(`${file}: cannot read (${e.code ?? e.message})`);
  });
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let n = 0;
  for await (const text of rl) {
    n++;
    yield { text: n === 1 ? text.replace(/^\uFEFF/, "") : text, line: n };
  }
}

export type TableFormat = "csv" | "tsv" | "jsonl" | "bang";

/** The layout of a labelled text file, from its extension and, failing that, its first line. */
export async function detectFormat(file: string): Promise<TableFormat> {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  if (ext === ".csv") return "csv";
  if (ext === ".tsv") return "tsv";
  for await (const { text } of lines(file)) {
    if (text.trim() === "") continue;
    if (text.trimStart().startsWith("{")) return "jsonl";
    if (text.includes("_!_")) return "bang";
    if (text.includes("\t")) return "tsv";
    return "csv";
  }
  throw new DataError(`${file}: the file is empty`);
}

/**
 * Rows of a CSV (RFC 4180: quoted fields may hold commas, quotes and newlines), TSV (tab-separated, no
 * quoting, as GLUE writes it) or `a_!_b_!_label` file, as arrays of fields with the line each starts on.
 * A CSV quote that is never closed makes its row a bad row; the lines after the quote are then read as
 * rows of their own, so one stray quote costs one row, not the rest of the file.
 */
async function* rows(file: string, format: Exclude<TableFormat, "jsonl">, opts: ReadOptions): AsyncGenerator<Row> {
  if (format !== "csv") {
    for await (const l of lines(file)) {
      if (l.text.trim() !== "") yield { fields: format === "tsv" ? l.text.split("\t") : l.text.split("_!_"), line: l.line };
    }
    return;
  }
  const records = new CsvRecords();
  const blank = (l: { text: string }) => !records.open && l.text.trim() === "";
  for await (const l of lines(file)) {
    const r = blank(l) ? undefined : records.push(l);
    if (r) yield r;
  }
  for (let open = records.end(); open; open = records.end()) {
    const where = open.start === open.quote.line ? "" : `; the row starts on line ${open.start}`;
    opts.onBadRow?.(
      `${file}:${open.quote.line}: a quoted field is never closed (its quote is at column ${open.quote.column}${where}); ` +
        `the row is skipped and the lines after it (${open.rest.length}) are read as rows. A quote inside a field is written twice ("")`,
    );
    for (const l of open.rest) {
      const r = blank(l) ? undefined : records.push(l);
      if (r) yield r;
    }
  }
}

interface Row {
  fields: string[];
  line: number;
}

/**
 * CSV records fed one line at a time, each character looked at once: re-parsing an open record on every
 * new line made one stray quote quadratic (16,000 rows took 56 s). The lines of an open record are kept
 * so that, if its quote never closes, the lines after the quote can be read again; that happens at most
 * once, since lines read inside a quoted field hold only doubled quotes, which cannot leave a field open.
 */
class CsvRecords {
  private fields: string[] = [];
  private field = "";
  private quoted = false;
  /** Line and 1-based column of the quote that opened the current quoted field. */
  private quote = { line: 0, column: 0 };
  /** The lines of the record being read. */
  private held: { text: string; line: number }[] = [];

  /** Whether a quoted field goes on on the next line. */
  get open(): boolean {
    return this.quoted;
  }

  /** The record this line ends; undefined while a quoted field is open. */
  push(l: { text: string; line: number }): Row | undefined {
    if (this.quoted) this.field += "\n";
    this.held.push(l);
    this.scan(l.text, l.line);
    if (this.quoted) return undefined;
    const row = { fields: [...this.fields, this.field], line: this.held[0].line };
    this.reset();
    return row;
  }

  /** At the end of the input: the quote left open, if any, with the lines after it (the state is reset). */
  end(): { quote: { line: number; column: number }; start: number; rest: { text: string; line: number }[] } | undefined {
    if (!this.quoted) return undefined;
    const open = { quote: this.quote, start: this.held[0].line, rest: this.held.filter((l) => l.line > this.quote.line) };
    this.reset();
    return open;
  }

  private scan(text: string, line: number): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (this.quoted) {
        if (c !== '"') this.field += c;
        else if (text[i + 1] === '"') {
          this.field += '"';
          i++;
        } else this.quoted = false;
      } else if (c === '"' && this.field === "") {
        this.quoted = true;
        this.quote = { line, column: i + 1 };
      } else if (c === ",") {
        this.fields.push(this.field);
        this.field = "";
      } else this.field += c;
    }
  }

  private reset(): void {
    this.fields = [];
    this.field = "";
    this.quoted = false;
    this.held = [];
  }
}

/** One CSV record; undefined while a quoted field is still open at the end of `text`. */
export function parseCsvRecord(text: string): string[] | undefined {
  return new CsvRecords().push({ text, line: 1 })?.fields;
}

const TEXT_NAMES = ["text", "sentence", "sentence1", "premise", "question", "content", "review"];
const PAIR_NAMES = ["text_pair", "sentence2", "hypothesis", "question2"];
const LABEL_NAMES = ["label", "labels", "gold_label", "class", "category"];

/**
 * Classification examples (single texts, or pairs with `pair: true`) from CSV, TSV, JSON Lines or
 * `text_!_label` files. Without a header, the label is the last column and the texts come first.
 */
export async function* readTextExamples(file: string, opts: ReadOptions & { pair: boolean; columns?: TableColumns }): AsyncGenerator<TextExample> {
  const format = await detectFormat(file);
  const bad = (line: number, problem: string) => opts.onBadRow?.(`${file}:${line}: ${problem}`);
  const cols = opts.columns ?? {};
  if (format === "jsonl") {
    for await (const { text, line } of lines(file)) {
      if (text.trim() === "") continue;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        bad(line, `not JSON (${(e as Error).message})`);
        continue;
      }
      if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
        bad(line, "not a JSON object");
        continue;
      }
      const pick = (wanted: string | undefined, names: string[]) => (wanted !== undefined ? wanted : names.find((n) => n in obj));
      const ex = toExample(line, obj[pick(cols.text, TEXT_NAMES) ?? ""], opts.pair ? obj[pick(cols.pair, PAIR_NAMES) ?? ""] : undefined, obj[pick(cols.label, LABEL_NAMES) ?? ""], opts.pair);
      if (typeof ex === "string") bad(line, ex);
      else yield ex;
    }
    return;
  }
  let index: { text: number; pair: number; label: number } | undefined;
  let width = 0;
  for await (const { fields, line } of rows(file, format, opts)) {
    if (!index) {
      width = fields.length;
      const named = (wanted: string | undefined, names: string[]) => {
        const lower = fields.map((f) => f.trim().toLowerCase());
        return wanted !== undefined && !/^\d+$/.test(wanted) ? lower.indexOf(wanted.toLowerCase()) : lower.findIndex((f) => names.includes(f));
      };
      // A column asked for by name means a header; otherwise a header is a first row naming a known column.
      const byName = [cols.text, cols.pair, cols.label].some((c) => c !== undefined && !/^\d+$/.test(c));
      const header = cols.header ?? (format !== "bang" && (byName || named(cols.label, LABEL_NAMES) >= 0 || named(cols.text, TEXT_NAMES) >= 0));
      const byIndex = (wanted: string | undefined, fallback: number) => (wanted !== undefined && /^\d+$/.test(wanted) ? Number(wanted) : fallback);
      if (header) {
        index = {
          text: byIndex(cols.text, named(cols.text, TEXT_NAMES)),
          pair: opts.pair ? byIndex(cols.pair, named(cols.pair, PAIR_NAMES)) : -1,
          label: byIndex(cols.label, named(cols.label, LABEL_NAMES)),
        };
        const checks: [string, number, string | undefined][] = [["text", index.text, cols.text], ["label", index.label, cols.label]];
        if (opts.pair) checks.push(["pair", index.pair, cols.pair]);
        for (const [what, i, wanted] of checks) {
          if (i < 0 || i >= width) {
            throw new DataError(`${file}:${line}: no ${what} column${wanted !== undefined ? ` "${wanted}"` : ""} in the header (${fields.join(", ")}); choose one with --${what}-column`);
          }
        }
        continue;
      }
      index = { text: byIndex(cols.text, 0), pair: opts.pair ? byIndex(cols.pair, 1) : -1, label: byIndex(cols.label, width - 1) };
      const need = opts.pair ? 3 : 2;
      if (width < need && cols.label === undefined) throw new DataError(`${file}:${line}: expected ${need} columns (${opts.pair ? "text, second text, label" : "text, label"}), found ${width}`);
    }
    if (fields.length !== width) {
      bad(line, `expected ${width} columns, found ${fields.length}`);
      continue;
    }
    const ex = toExample(line, fields[index.text], opts.pair ? fields[index.pair] : undefined, index.label < width ? fields[index.label] : undefined, opts.pair);
    if (typeof ex === "string") bad(line, ex);
    else yield ex;
  }
}

/** An example, or the problem with the row. */
function toExample(line: number, text: unknown, pair: unknown, label: unknown, isPair: boolean): TextExample | string {
  if (typeof text !== "string" || text.trim() === "") return "empty text";
  if (isPair && (typeof pair !== "string" || pair.trim() === "")) return "empty second text";
  if (label !== undefined && typeof label !== "string" && typeof label !== "number" && typeof label !== "boolean") return "the label is not a string or number";
  const l = label === undefined || label === null ? undefined : String(label).trim();
  return { text, pair: isPair ? (pair as string) : undefined, label: l === "" ? undefined : l, line };
}

/** SWAG's CSV layout: sent1, sent2, ending0..N, label (optional for prediction). */
export async function* readChoiceExamples(file: string, opts: ReadOptions = {}): AsyncGenerator<ChoiceExample> {
  let header: string[] | undefined;
  const bad = (line: number, problem: string) => opts.onBadRow?.(`${file}:${line}: ${problem}`);
  for await (const { fields, line } of rows(file, "csv", opts)) {
    if (!header) {
      header = fields.map((f) => f.trim());
      for (const need of ["sent1", "sent2", "ending0", "ending1"]) {
        if (!header.includes(need)) throw new DataError(`${file}:${line}: the SWAG layout needs a header with sent1, sent2, ending0, ending1, ... (no "${need}" in: ${header.join(", ")})`);
      }
      continue;
    }
    if (fields.length !== header.length) {
      bad(line, `expected ${header.length} columns, found ${fields.length}`);
      continue;
    }
    const get = (name: string) => fields[header!.indexOf(name)];
    const endings = header.filter((h) => /^ending\d+$/.test(h)).map(get);
    if (endings.some((e) => e.trim() === "")) {
      bad(line, "an empty ending");
      continue;
    }
    const raw = header.includes("label") ? get("label").trim() : "";
    const label = raw === "" ? undefined : Number(raw);
    if (label !== undefined && !(Number.isInteger(label) && label >= 0 && label < endings.length)) {
      bad(line, `label ${JSON.stringify(raw)} is not an ending number 0..${endings.length - 1}`);
      continue;
    }
    yield { context: get("sent1"), start: get("sent2"), endings, label, line };
  }
}

/** Code points of a string (SQuAD counts characters as Python does). */
export function codePoints(s: string): string[] {
  return Array.from(s);
}

/**
 * SQuAD v1.1 JSON ({data: [{title, paragraphs: [{context, qas: [{id, question, answers}]}]}]}). The file
 * is one JSON document and is parsed whole. An answer whose text is not at answer_start in the context is
 * reported and dropped (a question left without answers is dropped too, except with `keepUnanswered`).
 */
export async function readSquad(file: string, opts: ReadOptions & { keepUnanswered?: boolean } = {}): Promise<SquadExample[]> {
  let json: { data?: unknown };
  try {
    json = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (e) {
    throw new DataError(`${file}: not a SQuAD JSON file (${(e as Error).message})`);
  }
  if (!Array.isArray(json?.data)) throw new DataError(`${file}: not a SQuAD JSON file (no "data" list)`);
  const out: SquadExample[] = [];
  const bad = (where: string, problem: string) => opts.onBadRow?.(`${file}: ${where}: ${problem}`);
  json.data.forEach((article: { title?: string; paragraphs?: unknown }, a: number) => {
    const title = String(article?.title ?? `article ${a}`);
    if (!Array.isArray(article?.paragraphs)) return bad(`article ${JSON.stringify(title)}`, "no paragraphs list");
    article.paragraphs.forEach((p: { context?: unknown; qas?: unknown }, pi: number) => {
      if (typeof p?.context !== "string" || !Array.isArray(p.qas)) return bad(`${title} paragraph ${pi}`, "needs a context string and a qas list");
      const chars = codePoints(p.context);
      for (const qa of p.qas as { id?: unknown; question?: unknown; answers?: unknown }[]) {
        const id = String(qa?.id ?? `${title}/${pi}`);
        if (typeof qa?.question !== "string" || qa.question.trim() === "") {
          bad(`question ${id}`, "empty question");
          continue;
        }
        const answers: SquadAnswer[] = [];
        for (const ans of Array.isArray(qa.answers) ? (qa.answers as { text?: unknown; answer_start?: unknown }[]) : []) {
          const start = Number(ans?.answer_start);
          const text = typeof ans?.text === "string" ? ans.text : "";
          const len = codePoints(text).length;
          if (!Number.isInteger(start) || start < 0 || start + len > chars.length || text === "") {
            bad(`question ${id}`, `answer_start ${String(ans?.answer_start)} with ${JSON.stringify(text)} is outside the context (${chars.length} characters)`);
          } else if (chars.slice(start, start + len).join("") !== text) {
            bad(`question ${id}`, `the context at answer_start ${start} is ${JSON.stringify(chars.slice(start, start + len).join(""))}, not the answer ${JSON.stringify(text)}`);
          } else {
            answers.push({ text, start });
          }
        }
        if (answers.length === 0 && !opts.keepUnanswered) {
          bad(`question ${id}`, "no usable answer");
          continue;
        }
        out.push({ id, title, question: qa.question, context: p.context, answers });
      }
    });
  });
  return out;
}

/**
 * CoNLL column files (token ... tag per line, `-DOCSTART-` lines, blank lines between sentences), and
 * one-character-per-line Chinese NER files, which have the same layout. Without `tagged`, a line may be
 * a token alone (text to predict).
 */
export async function* readTaggedSentences(file: string, opts: ReadOptions & { tagged?: boolean } = {}): AsyncGenerator<TaggedSentence> {
  const tagged = opts.tagged ?? true;
  let tokens: string[] = [];
  let tags: string[] = [];
  let start = 0;
  let broken = false;
  const flush = function* () {
    if (tokens.length > 0 && !broken) yield { tokens, tags, line: start };
    tokens = [];
    tags = [];
    broken = false;
  };
  for await (const { text, line } of lines(file)) {
    const cols = text.trim().split(/\s+/);
    if (text.trim() === "" || cols[0] === "-DOCSTART-") {
      yield* flush();
      continue;
    }
    if (tokens.length === 0 && !broken) start = line;
    if (broken) continue;
    if (tagged && cols.length < 2) {
      opts.onBadRow?.(`${file}:${line}: expected a token and a tag, found ${JSON.stringify(text.trim())}; the sentence is skipped`);
      broken = true;
      continue;
    }
    const tag = cols[cols.length - 1];
    if (tagged && !/^(O|[BIES]-.+)$/.test(tag)) {
      opts.onBadRow?.(`${file}:${line}: tag ${JSON.stringify(tag)} is not O or B-/I-/E-/S-TYPE; the sentence is skipped`);
      broken = true;
      continue;
    }
    tokens.push(cols[0]);
    tags.push(tagged ? tag : "O");
  }
  yield* flush();
}
