"""Generates test/fixtures/wordpiece-wikitext2-slice-2000.txt: the vocabulary HF tokenizers'
BertWordPieceTokenizer trains on the bundled WikiText-2 slice, data/wikitext-2-slice/wiki.train.tokens (size
2000, min frequency 2, alphabet limit 1000). Run by hand with `tokenizers` installed; the tests only read the
file."""
import pathlib
from tokenizers import BertWordPieceTokenizer

root = pathlib.Path(__file__).resolve().parent.parent
t = BertWordPieceTokenizer(lowercase=True)
t.train([str(root / "data/wikitext-2-slice/wiki.train.tokens")], vocab_size=2000, min_frequency=2, limit_alphabet=1000,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
vocab = [w for w, _ in sorted(t.get_vocab().items(), key=lambda x: x[1])]
(root / "test/fixtures/wordpiece-wikitext2-slice-2000.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
print(len(vocab))
