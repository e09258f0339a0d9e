#!/usr/bin/env python3
"""Writes the tokenizer test corpus: varied text, one JSON string per line.

Usage: tokenizer-corpus.py OUT.jsonl [--seed N] [--min-bytes N]

Deterministic for a seed (Python's random.Random). Each item is one text, so
texts may hold newlines. The kinds of text (mixed within items as well):
Latin with precomposed and combining accents, CJK (inside and outside the
pre-tokenizer's [一-龥] range, kana, Hangul), Cyrillic, Greek, Arabic and
Hebrew with vowel marks, Devanagari and Thai (\\p{M}), emoji with skin tones,
ZWJ sequences, flags and keycaps, source code with indentation, long digit
runs and other numerals (\\p{N}: full-width, Arabic-Indic, Roman, fractions),
white space and newline runs (tabs, CR LF, NBSP, U+3000, U+2028, U+0085,
U+FEFF), DeepSeek-V3's special-token strings whole, cut short and glued to
text, punctuation and symbol soup, random assigned code points, and
sentence-like prose.

Characters come only from Unicode 14 assignments (this Python's unicodedata
says which): the regex engine's tables (PCRE2 10.42) know no later ones.
"""

import argparse
import json
import random
import sys
import unicodedata

# Unicode 14, as Debian 12's PCRE2 10.42 has it. A Python with other tables
# would pick other code points in random_code_points() and so write another
# corpus for the same seed.
EXPECTED_UNICODE = "14.0.0"

SPECIAL_TOKENS = [
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
    "<｜User｜>", "<｜Assistant｜>", "<|EOT|>", "<｜fim▁hole｜>",
    "<｜fim▁begin｜>", "<｜fim▁end｜>", "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>",
    "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>",
    "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>", "<｜tool▁sep｜>",
    "<｜place▁holder▁no▁0｜>", "<｜place▁holder▁no▁42｜>",
    "<｜place▁holder▁no▁799｜>",
]

LATIN_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or "
    "his from at which but have an they you were her she there been one all "
    "would their we him has when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may "
    "then do first any my now such like our over man me even most made after "
    "also did many before must through back years where much your way well "
    "don't I'm it's we've they're you'll he'd O'Neill rock'n'roll e-mail "
    "café naïve résumé façade coöperate jalapeño piñata Ærøskøbing Straße "
    "Größe über schön déjà-vu garçon élève Île-de-France Łódź Dvořák Škoda "
    "smörgåsbord fjörður Þingvellir Ångström Việt Nam tiếng Việt phở "
    "İstanbul ığdır şeker Ǆemal ǅ ǈ ﬁnance ﬂow"
).split()

CYRILLIC_WORDS = (
    "привет мир это тест токенизатора Москва Санкт-Петербург "
    "съешь же ещё этих мягких французских булок да выпей чаю "
    "Україна їжак ґанок Беларусь ў Србија ђак љубав њива џеп"
).split()

GREEK_WORDS = "Καλημέρα κόσμε ἀρχὴ ῥήτωρ ψυχή Ἑλλάς ὦ ΑΒΓΔ".split()

CJK_PHRASES = [
    "我们今天学习中文", "深度求索", "人工智能正在改变世界", "这是一个测试。",
    "「你好」，他说。", "東京都渋谷区", "日本語のテキストです", "カタカナとひらがな",
    "ラーメンを食べたい！", "한국어 문장입니다", "안녕하세요 세계", "𠀀𠀁𪚥 鿿 鿦",
    "㐀㐁 㒖", "漢字かな交じり文", "中文，英文,混合Mixed文本", "（全角括号）【】《》",
    "１２３４５６７８９０", "ＡＢＣａｂｃ", "ｶﾀｶﾅ", "〇一二三四五六七八九十百千万亿",
]

ARABIC_HEBREW = [
    "مرحبا بالعالم", "اللُّغَةُ العَرَبِيَّةُ", "بِسْمِ ٱللَّٰهِ", "٠١٢٣٤٥٦٧٨٩",
    "۱۲۳ فارسی", "שָׁלוֹם עוֹלָם", "עברית", "اردو زبان", "ﷺ ﷲ",
]

INDIC_THAI = [
    "नमस्ते दुनिया", "हिन्दी भाषा", "क्षत्रिय", "संस्कृतम्", "ভাষা বাংলা",
    "தமிழ் மொழி", "ภาษาไทย", "สวัสดีครับ", "ก่ข้ำ", "각", "a\u0301e\u0300o\u0302",
    "\u0301\u0302lone marks", "ç\u0327\u0327", "Z\u0351\u0352\u0357algo",
    "x\u20dd\u20de", "e\u0308\u0304",
]

EMOJI = [
    "😀", "😂", "🤖", "🚀", "❤️", "👍🏽", "👋🏿", "🙏🏻", "👨‍👩‍👧‍👦", "👩‍💻",
    "🧑🏾‍🚀", "🏳️‍🌈", "🏴‍☠️", "❤️‍🔥", "🇫🇷", "🇯🇵", "🇺🇸🇬🇧", "1️⃣", "#️⃣",
    "*️⃣", "©️", "™️", "☺", "✌️", "🫠", "🥲", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👁️‍🗨️",
]

SYMBOLS = list(
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~…—–«»‹›„“”‘’¿¡§¶†‡•‰′″€£¥₹₿©®™°±×÷"
    "∞≈≠≤≥∑∏√∫∂∇∈∉∀∃⊂⊃∪∩⊕⊗→←↔⇒⇔↑↓□■▲▼◆○●★☆♠♣♥♦♪♫☐☑✓✗─│┌┐└┘├┤"
    "、。，！？：；「」『』（）【】〈〉《》・ー～￥＄％＃＆＊＋＝＜＞｜"
    "¢¤¦¨¯´¸˘˙˚˛˜˝ˆˇ^`´¨"
)

WHITESPACE = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n",
              "\r", " \n", "\n ", " \t\n", "\u00a0", "\u3000", "\u2028",
              "\u2029", "\u0085", "\ufeff", "\u2003", "\u200b", "\u180e",
              "\u000b", "\u000c", "\u1680", "\u202f", "\u205f"]

NUMERALS = ["½", "¾", "⅓", "²", "³", "¹", "⁴", "₁₂", "Ⅻ", "ⅻ", "Ⅳ", "①②③",
            "⑴", "⒈", "٣", "۴", "४२", "๓", "፩", "〡〢", "𝟙𝟚", "𝟘"]

CODE_SNIPPETS = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "int main(int argc, char **argv) {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto &x : v)\n\t\tx *= 2;\n\treturn 0;\n}\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;\n",
    "<div class=\"main\"><p>Hello &amp; welcome!</p></div>\n",
    "#include <stdio.h>\n#define MAX(a,b) ((a)>(b)?(a):(b))\n",
    "fn main() {\n    let s: String = \"héllo\".to_string();\n    println!(\"{s:?}\");\n}\n",
    "    if (x != nullptr && x->next) { x = x->next; }  // skip\n",
    "{\"key\": [1, 2.5e-3, true, null], \"nested\": {\"a\": \"b\"}}\n",
    "$ ls -la /usr/local/bin | grep -E '^-rwx' > out.txt 2>&1\n",
    "x = [i**2 for i in range(10) if i % 2 == 0]\nprint(f'{x!r:>20}')\n",
    "template <typename T>\nT clamp(T v, T lo, T hi) { return v < lo ? lo : hi < v ? hi : v; }\n",
    "# Title\n\n- item one\n- item **two**\n\n```python\nprint('hi')\n```\n",
    "https://example.com/path?query=1&lang=en#frag user@example.org\n",
    "\t\t\treturn;\n\t\t}\n\t}\n}\n",
    "        }\n    ]\n}\n",
    "a+=1;b-=2;c*=3;d/=4;e%=5;f<<=6;g>>=7;h&=8;i|=9;j^=10;\n",
    "::std::map<::std::string, int>::const_iterator it = m.cbegin();\n",
]

# Hand-written paragraphs, used whole and cut at random places.
REAL_TEXT = [
    "The tokenizer turns text into integers before the model sees it. "
    "Numbers are split into groups of at most three digits, so 1234567 "
    "becomes 123, 456 and 7; Chinese and Japanese runs are cut apart from "
    "the Latin text around them.",
    "Ce matin, à 7 h 30, le café était déjà froid. « Tant pis », a-t-elle "
    "dit, en ouvrant la fenêtre sur la rue où passaient les vélos.",
    "Der Größenvergleich zeigt: Die neue Version ist schneller, aber sie "
    "braucht 12 % mehr Speicher. Übrigens – das Ergebnis hängt stark von "
    "der Eingabe ab.",
    "В четверг, 14 марта, мы запустили модель на восьми графических "
    "процессорах. Скорость выросла почти вдвое!",
    "今天下午，我们在北京召开了发布会。新模型的上下文长度达到十二万八千个词元，"
    "推理速度比上一代快百分之四十。",
    "昨日は雨でしたが、今日はいい天気です。午後から散歩に行きましょうか？",
    "오늘 회의는 오후 세 시에 시작합니다. 자료는 미리 읽어 주세요.",
    "يعمل النموذج على ثمانية معالجات رسومية، ويبلغ طول السياق ١٢٨ ألف رمز.",
    "मॉडल ने परीक्षा में ९५ प्रतिशत अंक प्राप्त किए, जो पिछले संस्करण से बेहतर है।",
    "Q: What is 17 × 23?\nA: 17 × 23 = 391. Check: 391 / 17 = 23 ✓\n",
    "Dear team,\n\nPlease find attached the report (v2.1, 3.4 MB). "
    "Let me know if anything is unclear — thanks! 🙏\n\nBest,\nAna",
    "  * step 1: download\n  * step 2: verify the checksum (sha256)\n"
    "  * step 3: run `./install.sh --prefix=$HOME/.local`\n",
]


def real_text(rng):
    text = rng.choice(REAL_TEXT)
    if rng.random() < 0.5:
        return text
    start = rng.randrange(len(text))
    return text[start:start + rng.randint(1, 200)]


PROSE_WORDS = (
    "model token text language the a quick brown fox jumps over lazy dog "
    "research paper results show that our method improves accuracy by "
    "percent compared with previous work we train on data from many sources "
    "including books code and the web evaluation benchmark inference GPU "
    "memory bandwidth latency throughput attention layer expert routing"
).split()


def digits(rng, low, high):
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(low, high)))


def number(rng):
    kind = rng.randrange(9)
    if kind == 0:
        return digits(rng, 1, 3)
    if kind == 1:
        return digits(rng, 4, 40)
    if kind == 2:
        return digits(rng, 60, 300)
    if kind == 3:
        return f"{rng.randint(0, 10**9):,}"
    if kind == 4:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
    if kind == 5:
        return f"{rng.uniform(0, 1):.3e}"
    if kind == 6:
        return "0x" + "".join(rng.choice("0123456789abcdefABCDEF")
                              for _ in range(rng.randint(1, 16)))
    if kind == 7:
        return rng.choice(NUMERALS) + digits(rng, 0, 4)
    return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1900, 2100)}"


def assigned(code_point):
    char = chr(code_point)
    return unicodedata.category(char) not in ("Cn", "Cs")


def random_code_points(rng, count):
    """Assigned code points from the planes text uses."""
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x52F), (0x530, 0x10FF),
              (0x1100, 0x1FFF), (0x2000, 0x2BFF), (0x2C00, 0x2FFF),
              (0x3000, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xD7FF),
              (0xF900, 0xFFFD), (0x10000, 0x1FAFF), (0x20000, 0x2A6DF),
              (0xE0000, 0xE007F)]
    out = []
    while len(out) < count:
        low, high = rng.choice(ranges)
        code_point = rng.randint(low, high)
        if assigned(code_point):
            out.append(chr(code_point))
    return "".join(out)


def special_fragment(rng):
    token = rng.choice(SPECIAL_TOKENS)
    kind = rng.randrange(6)
    if kind == 0:
        return token
    if kind == 1:  # cut short: must not match
        return token[: rng.randint(1, len(token) - 1)]
    if kind == 2:  # two glued together
        return token + rng.choice(SPECIAL_TOKENS)
    if kind == 3:
        return " " + token + " "
    if kind == 4:  # inside a word
        return "pre" + token + "post"
    return token.replace("｜", "|")  # ASCII bars: not a special token


def word(rng):
    kind = rng.randrange(20)
    if kind < 8:
        w = rng.choice(LATIN_WORDS)
        return w.capitalize() if rng.random() < 0.2 else w
    if kind < 10:
        return rng.choice(CYRILLIC_WORDS)
    if kind < 12:
        return rng.choice(CJK_PHRASES)
    if kind == 12:
        return rng.choice(GREEK_WORDS)
    if kind == 13:
        return rng.choice(ARABIC_HEBREW)
    if kind == 14:
        return rng.choice(INDIC_THAI)
    if kind == 15:
        return rng.choice(EMOJI) * rng.randint(1, 3)
    if kind == 16:
        return number(rng)
    if kind == 17:
        return "".join(rng.choice(SYMBOLS) for _ in range(rng.randint(1, 8)))
    if kind == 18:
        return special_fragment(rng)
    return unicodedata.normalize(rng.choice(["NFD", "NFC", "NFKD"]),
                                 rng.choice(LATIN_WORDS + GREEK_WORDS))


def separator(rng):
    roll = rng.random()
    if roll < 0.75:
        return " "
    if roll < 0.85:
        return ""
    if roll < 0.92:
        return rng.choice([", ", ". ", "! ", "? ", "; ", ": ", " - ", "...", "\n"])
    return rng.choice(WHITESPACE)


def mixed(rng, words):
    parts = []
    for _ in range(words):
        parts.append(word(rng))
        parts.append(separator(rng))
    return "".join(parts)


def prose(rng):
    sentences = []
    for _ in range(rng.randint(1, 8)):
        words = [rng.choice(PROSE_WORDS) for _ in range(rng.randint(4, 20))]
        words[0] = words[0].capitalize()
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), number(rng))
        sentences.append(" ".join(words) + rng.choice([".", ".", "!", "?", ":"]))
    joiner = rng.choice([" ", " ", "  ", "\n", "\n\n"])
    return joiner.join(sentences)


def whitespace_run(rng):
    run = "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 30)))
    return rng.choice(["", "x", "word", "中", "1"]) + run + rng.choice(["", "y", "end", "文", "2", "!"])


def code(rng):
    text = "".join(rng.choice(CODE_SNIPPETS) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.3:
        text = text.replace("    ", "\t")
    return text


def symbol_soup(rng):
    return "".join(rng.choice(SYMBOLS + WHITESPACE[:3] + list("aZ9"))
                   for _ in range(rng.randint(3, 120)))


def long_digits(rng):
    return rng.choice(["", "id=", "π≈", "Total: ", " "]) + digits(rng, 50, 2000) + rng.choice(["", ".", "\n", " units", "年"])


def item(rng):
    kind = rng.randrange(100)
    if kind < 30:
        return mixed(rng, rng.randint(1, 60))
    if kind < 42:
        return prose(rng)
    if kind < 50:
        return real_text(rng)
    if kind < 60:
        return code(rng)
    if kind < 67:
        return whitespace_run(rng)
    if kind < 74:
        return symbol_soup(rng)
    if kind < 79:
        return long_digits(rng)
    if kind < 87:
        return random_code_points(rng, rng.randint(1, 80))
    if kind < 94:
        return "".join(special_fragment(rng) + mixed(rng, rng.randint(0, 5))
                       for _ in range(rng.randint(1, 5)))
    # A chat-like transcript with special tokens around turns.
    turns = []
    for _ in range(rng.randint(1, 4)):
        turns.append("<｜User｜>" + mixed(rng, rng.randint(1, 15)))
        turns.append("<｜Assistant｜>" + prose(rng) + "<｜end▁of▁sentence｜>")
    return "<｜begin▁of▁sentence｜>" + "".join(turns)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--min-bytes", type=int, default=1_500_000)
    args = parser.parse_args()
    if unicodedata.unidata_version != EXPECTED_UNICODE:
        print(f"tokenizer-corpus: note: Python's Unicode tables are "
              f"{unicodedata.unidata_version}, not {EXPECTED_UNICODE}; random "
              f"code points may include characters PCRE2 does not know",
              file=sys.stderr)
    rng = random.Random(args.seed)
    total = 0
    count = 0
    with open(args.out, "w", encoding="utf-8") as out:
        while total < args.min_bytes:
            text = item(rng)
            if not text:
                continue
            out.write(json.dumps(text, ensure_ascii=False) + "\n")
            total += len(text.encode("utf-8"))
            count += 1
    print(f"tokenizer-corpus: {count} texts, {total} bytes of UTF-8 -> {args.out}")


if __name__ == "__main__":
    main()
