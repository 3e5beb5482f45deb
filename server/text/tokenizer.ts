// BERT's WordPiece tokenizer on Hugging Face `tokenizers` (the Rust library, prebuilt for Node): BERT
// normalisation (clean text, Chinese characters split, accent stripping and lower-casing for uncased),
// BERT pre-tokenisation, [CLS] A [SEP] B [SEP] with segment ids, `longest_first` truncation, offsets.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { bertNormalizer, bertPreTokenizer, bertProcessing, Tokenizer, WordPiece, wordPieceDecoder, type TruncationStrategy } from "tokenizers";
import { exists, writeFileAtomic } from "../util/fs.js";

export const SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

export class TokenizerError extends Error {}

export interface Encoded {
  ids: number[];
  typeIds: number[];
  tokens: string[];
  /** Character offsets [start, end) into the text (or the pair's text, for segment 1); [0, 0] for specials. */
  offsets: [number, number][];
  /** Segment of each token: 0, 1, or null for special tokens. */
  sequenceIds: (number | null)[];
  /** Word index of each token within its segment (null for specials): word pieces of one word share it. */
  wordIds: (number | null)[];
}

export interface TokenizerOptions {
  /** Uncased models lower-case and strip accents (HF do_lower_case). Default true. */
  lowercase?: boolean;
  /** Default: same as lowercase, as BertTokenizer's strip_accents=None. */
  stripAccents?: boolean;
}

export class BertTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number;
  private queue: Promise<unknown> = Promise.resolve();
  private truncation: number | undefined;

  private constructor(
    private readonly tok: Tokenizer,
    readonly vocab: string[],
    readonly lowercase: boolean,
    /** The file the vocabulary came from (vocab.txt, tokenizer.json), for messages. */
    readonly source = "vocabulary",
  ) {
    this.vocabSize = vocab.length;
    const id = (t: string) => {
      const i = tok.tokenToId(t);
      if (i === null || i === undefined) throw new TokenizerError(`vocabulary has no ${t} token`);
      return i;
    };
    this.padId = id("[PAD]");
    this.unkId = id("[UNK]");
    this.clsId = id("[CLS]");
    this.sepId = id("[SEP]");
    this.maskId = id("[MASK]");
  }

  /** From a WordPiece `vocab.txt` (one token per line, id = line number). */
  static async fromVocabFile(file: string, opts: TokenizerOptions = {}): Promise<BertTokenizer> {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (e) {
      throw new TokenizerError(`${file}: cannot read vocabulary (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const vocab = text.split(/\r?\n/);
    if (vocab[vocab.length - 1] === "") vocab.pop();
    return BertTokenizer.fromVocab(vocab, opts, file);
  }

  static fromVocab(vocab: string[], opts: TokenizerOptions = {}, source = "vocabulary"): BertTokenizer {
    const map: Record<string, number> = {};
    vocab.forEach((t, i) => {
      if (!(t in map)) map[t] = i;
    });
    for (const s of SPECIAL_TOKENS) if (!(s in map)) throw new TokenizerError(`${source}: missing special token ${s}`);
    const lowercase = opts.lowercase ?? true;
    const tok = new Tokenizer(WordPiece.init(map, { unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 }));
    tok.setNormalizer(bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: opts.stripAccents ?? lowercase, lowercase }));
    tok.setPreTokenizer(bertPreTokenizer());
    tok.setPostProcessor(bertProcessing(["[SEP]", map["[SEP]"]], ["[CLS]", map["[CLS]"]]));
    tok.setDecoder(wordPieceDecoder("##", true));
    tok.addSpecialTokens([...SPECIAL_TOKENS]);
    return new BertTokenizer(tok, vocab, lowercase, source);
  }

  /** From a `tokenizer.json` written by HF tokenizers (ours or `save_pretrained`). */
  static async fromTokenizerJson(file: string): Promise<BertTokenizer> {
    let json: { model?: { type?: string; vocab?: Record<string, number> }; normalizer?: { lowercase?: boolean } };
    try {
      json = JSON.parse(await fs.readFile(file, "utf8"));
    } catch (e) {
      throw new TokenizerError(`${file}: cannot read tokenizer (${(e as Error).message})`);
    }
    if (json.model?.type !== "WordPiece" || !json.model.vocab) throw new TokenizerError(`${file}: not a WordPiece tokenizer`);
    const vocab: string[] = [];
    for (const [t, i] of Object.entries(json.model.vocab)) vocab[i] = t;
    return new BertTokenizer(Tokenizer.fromFile(file), vocab, json.normalizer?.lowercase ?? true, file);
  }

  /** From a model folder: tokenizer.json if present, else vocab.txt (+ do_lower_case of tokenizer_config.json). */
  static async fromDir(dir: string): Promise<BertTokenizer> {
    const has = (f: string) => exists(path.join(dir, f));
    if (await has("tokenizer.json")) return BertTokenizer.fromTokenizerJson(path.join(dir, "tokenizer.json"));
    if (await has("vocab.txt")) {
      let lowercase = true;
      if (await has("tokenizer_config.json")) {
        const c = JSON.parse(await fs.readFile(path.join(dir, "tokenizer_config.json"), "utf8")) as { do_lower_case?: boolean };
        lowercase = c.do_lower_case ?? true;
      }
      return BertTokenizer.fromVocabFile(path.join(dir, "vocab.txt"), { lowercase });
    }
    throw new TokenizerError(`${dir}: no tokenizer.json or vocab.txt`);
  }

  /** Writes vocab.txt, tokenizer.json and tokenizer_config.json (what HF's BertTokenizerFast loads). */
  async save(dir: string): Promise<void> {
    await writeFileAtomic(path.join(dir, "vocab.txt"), this.vocab.join("\n") + "\n");
    this.tok.save(path.join(dir, "tokenizer.json"));
    const config = { tokenizer_class: "BertTokenizer", do_lower_case: this.lowercase, model_max_length: 512 };
    await writeFileAtomic(path.join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2) + "\n");
  }

  /**
   * HF's `tokenizer(text, pair, truncation="longest_first", max_length)`: [CLS] text [SEP] (pair [SEP]).
   * Calls are serialised because truncation is tokenizer state in the Rust library.
   */
  encode(text: string, pair?: string | null, opts: { maxLength?: number; addSpecialTokens?: boolean } = {}): Promise<Encoded> {
    const run = async (): Promise<Encoded> => {
      if (opts.maxLength !== this.truncation) {
        if (opts.maxLength === undefined) this.tok.disableTruncation();
        else this.tok.setTruncation(opts.maxLength, { strategy: "LongestFirst" as TruncationStrategy });
        this.truncation = opts.maxLength;
      }
      const e = await this.tok.encode(text, pair ?? null, { addSpecialTokens: opts.addSpecialTokens ?? true });
      const sequenceIds = e.getSequenceIds().map((s) => (s === undefined ? null : s));
      const specials = e.getSpecialTokensMask();
      return {
        ids: e.getIds(),
        typeIds: e.getTypeIds(),
        tokens: e.getTokens(),
        offsets: e.getOffsets().map(([a, b]) => [a, b] as [number, number]),
        sequenceIds: sequenceIds.map((s, i) => (specials[i] ? null : s)),
        wordIds: e.getWordIds().map((w, i) => (specials[i] || w === undefined ? null : w)),
      };
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Token ids of many texts, without special tokens or truncation (for corpora). */
  tokenizeBatch(texts: string[]): Promise<Int32Array[]> {
    const run = async (): Promise<Int32Array[]> => {
      if (this.truncation !== undefined) {
        this.tok.disableTruncation();
        this.truncation = undefined;
      }
      const enc = await this.tok.encodeBatch(texts, { addSpecialTokens: false });
      return enc.map((e) => Int32Array.from(e.getIds()));
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** 1 for word-piece continuations ("##..."), per id: for whole-word masking. */
  continuationMask(): Uint8Array {
    return Uint8Array.from(this.vocab, (t) => (t.startsWith("##") ? 1 : 0));
  }

  idToToken(id: number): string {
    return this.vocab[id] ?? "[UNK]";
  }
}
