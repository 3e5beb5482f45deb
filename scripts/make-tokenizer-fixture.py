"""Generates test/fixtures/tokenizer-bert-base-uncased.json: BertTokenizerFast encodings with the real
bert-base-uncased vocabulary (../shared/data/vocab), on WikiText-2 validation lines and hard cases.
Run by hand with transformers installed; the tests only read the JSON."""
import json, pathlib, shutil, tempfile
from transformers import BertTokenizerFast

root = pathlib.Path(__file__).resolve().parent.parent
shared = root.parent / "shared" / "data"
# transformers 5 renamed BertTokenizerFast's `vocab_file` argument to `vocab` and silently ignores the old
# name, giving a five-token vocabulary (that is how ../shared/fixtures/hf/tokenizer-*.json were made):
# load from a folder instead.
folder = tempfile.mkdtemp()
shutil.copy(shared / "vocab" / "bert-base-uncased-vocab.txt", pathlib.Path(folder) / "vocab.txt")
tok = BertTokenizerFast.from_pretrained(folder, do_lower_case=True)
assert len(tok) == 30522, len(tok)
lines = [l.strip() for l in open(shared / "wikitext-2" / "wiki.valid.tokens", encoding="utf8") if l.strip()][:150]
hard = ["Héllo Wörld! Ça va? naïve café", "ＦＵＬＬ ｗｉｄｔｈ and 全角 characters", "中文分词测试，混合English文本。", "emoji 🙂 and\ttabs\nnewlines",
        "control\u0000chars\u200bzero width", "don't stop-believing... (really) [MASK] [CLS] [SEP]", "ÀÉÎÕÜ àéîõü ß ﬁ ligatures",
        "１２３ numbers 3.14159 1,000,000", "Ελληνικά και русский текст", "日本語のテキストとカタカナ", "a" * 300, "", "   "]
cases = []
for t in lines + hard:
    e = tok(t, return_offsets_mapping=True)
    cases.append({"text": t, "ids": e["input_ids"], "tokens": tok.convert_ids_to_tokens(e["input_ids"]), "type_ids": e["token_type_ids"],
                  "offsets": [list(o) for o in e["offset_mapping"]]})
pairs = []
for i in range(0, 60, 2):
    a, b = lines[i], lines[i + 1]
    for ml in (16, 64):
        e = tok(a, b, truncation="longest_first", max_length=ml)
        pairs.append({"text": a, "text_pair": b, "max_length": ml, "ids": e["input_ids"], "type_ids": e["token_type_ids"],
                      "tokens": tok.convert_ids_to_tokens(e["input_ids"])})
out = {"tokenizer": "BertTokenizerFast", "vocab": "bert-base-uncased-vocab.txt", "transformers": __import__("transformers").__version__,
       "cases": cases, "pairs": pairs}
(root / "test" / "fixtures" / "tokenizer-bert-base-uncased.json").write_text(json.dumps(out, ensure_ascii=False))
print(len(cases), "cases", len(pairs), "pairs")
