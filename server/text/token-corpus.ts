// A tokenized corpus in three flat arrays: every token id (16-bit when the vocabulary fits), where each
// sentence starts, and where each document's sentences start. No per-sentence objects: a 1 GB corpus
// (~250M tokens) takes ~0.5 GB, and documents or sentences are views made on demand.

export type TokenIds = Uint16Array | Int32Array;

export class TokenCorpus {
  private constructor(
    readonly ids: TokenIds,
    /** Token offset of each sentence, plus the end: sentences + 1 entries. */
    readonly sentenceOffsets: Uint32Array,
    /** Sentence offset of each document, plus the end: documents + 1 entries. */
    readonly docOffsets: Uint32Array,
    private readonly first = 0,
    /** Number of documents in this view. */
    readonly length = docOffsets.length - 1,
  ) {}

  static fromArrays(ids: TokenIds, sentenceOffsets: Uint32Array, docOffsets: Uint32Array): TokenCorpus {
    return new TokenCorpus(ids, sentenceOffsets, docOffsets);
  }

  /** From documents given as arrays of sentences of token ids (tests, small inputs). */
  static fromDocuments(docs: ArrayLike<number>[][], vocabSize = 1 << 31): TokenCorpus {
    const b = new TokenCorpusBuilder(vocabSize);
    for (const d of docs) b.add(d);
    return b.finish();
  }

  /** Number of sentences of document `d`. */
  sentences(d: number): number {
    const i = this.first + d;
    return this.docOffsets[i + 1] - this.docOffsets[i];
  }

  /** Token ids of sentence `j` of document `d` (a view). */
  sentence(d: number, j: number): TokenIds {
    const s = this.docOffsets[this.first + d] + j;
    return this.ids.subarray(this.sentenceOffsets[s], this.sentenceOffsets[s + 1]);
  }

  /** Tokens in documents [from, to). */
  tokens(from = 0, to = this.length): number {
    const a = this.docOffsets[this.first + from];
    const b = this.docOffsets[this.first + to];
    return this.sentenceOffsets[b] - this.sentenceOffsets[a];
  }

  /** Documents [from, to) as a corpus sharing these arrays. */
  slice(from: number, to: number): TokenCorpus {
    return new TokenCorpus(this.ids, this.sentenceOffsets, this.docOffsets, this.first + from, to - from);
  }

  /** Documents as arrays of sentences (copies; for tests and small corpora). */
  toDocuments(): number[][][] {
    return Array.from({ length: this.length }, (_, d) => Array.from({ length: this.sentences(d) }, (_, j) => Array.from(this.sentence(d, j))));
  }
}

/** Builds a TokenCorpus document by document in growing flat arrays. */
export class TokenCorpusBuilder {
  private ids: TokenIds;
  private tokenCount = 0;
  private sentenceOffsets = new Uint32Array(1024);
  private sentenceCount = 0;
  private docOffsets = new Uint32Array(256);
  private docCount = 0;

  constructor(vocabSize: number) {
    this.ids = vocabSize <= 65536 ? new Uint16Array(1 << 16) : new Int32Array(1 << 16);
  }

  /** Adds a document; empty sentences are dropped and an empty document is not added. */
  add(sentences: ArrayLike<number>[]): void {
    const kept = sentences.filter((s) => s.length > 0);
    if (kept.length === 0) return;
    this.docOffsets = ensure(this.docOffsets, this.docCount + 2);
    this.docOffsets[this.docCount++] = this.sentenceCount;
    for (const s of kept) {
      this.sentenceOffsets = ensure(this.sentenceOffsets, this.sentenceCount + 2);
      this.sentenceOffsets[this.sentenceCount++] = this.tokenCount;
      this.ids = ensure(this.ids, this.tokenCount + s.length);
      this.ids.set(s, this.tokenCount);
      this.tokenCount += s.length;
    }
  }

  finish(): TokenCorpus {
    this.sentenceOffsets[this.sentenceCount] = this.tokenCount;
    this.docOffsets[this.docCount] = this.sentenceCount;
    return TokenCorpus.fromArrays(this.ids.slice(0, this.tokenCount), this.sentenceOffsets.slice(0, this.sentenceCount + 1), this.docOffsets.slice(0, this.docCount + 1));
  }
}

/** The array, or a copy with room for `n` elements (growing by half again). */
function ensure<T extends Uint16Array | Int32Array | Uint32Array>(a: T, n: number): T {
  if (n <= a.length) return a;
  const grown = new (a.constructor as new (n: number) => T)(Math.max(n, Math.ceil(a.length * 1.5)));
  grown.set(a);
  return grown;
}
