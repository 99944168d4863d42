"""Names as people write them, made comparable: pinyin that reads surnames as surnames, and Latin names in any
order ("Zhang San", "San Zhang", "ZHANG, San").

pypinyin reads a character alone the common way (单 dan, 曾 ceng); as a surname it is read differently (单 Shan,
曾 Zeng). pypinyin's phrase dictionary knows the compound surnames (尉迟 Yuchi, 万俟 Moqi) when they are read
together; single-character surnames with their own reading are listed here, since no maintained package
carries them.
"""

import re
from functools import lru_cache

from pypinyin import lazy_pinyin
from pypinyin.constants import PINYIN_DICT
from pypinyin.contrib.tone_convert import to_normal

from cim.quality.normalize import fold

# Single-character surnames whose reading differs from the character's most common one.
SURNAME_READINGS = {
    "单": "shan",
    "曾": "zeng",
    "仇": "qiu",
    "区": "ou",
    "解": "xie",
    "查": "zha",
    "朴": "piao",
    "盖": "ge",
    "乐": "yue",
    "秘": "bi",
    "覃": "qin",
    "种": "chong",
    "缪": "miao",
    "翟": "zhai",
    "召": "shao",
    "祭": "zhai",
    "繁": "po",
    "阚": "kan",
    "隗": "wei",
    "员": "yun",
    "句": "gou",
    "都": "du",
    "蔚": "yu",
    "郇": "xun",
    "晟": "sheng",
    "薄": "bo",
    "粘": "nian",
    "折": "she",
    "藏": "zang",
    "番": "pan",
    "洗": "xian",
}
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "上官",
        "司马",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "令狐",
        "澹台",
        "万俟",
        "单于",
        "夏侯",
        "轩辕",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "呼延",
        "百里",
        "东郭",
        "闻人",
        "申屠",
        "公羊",
        "太史",
        "钟离",
        "拓跋",
        "赫连",
        "濮阳",
        "司空",
        "乐正",
        "左丘",
        "第五",
        "亓官",
        "梁丘",
        "仲孙",
        "叔孙",
        "淳于",
        "宗政",
        "漆雕",
        "壤驷",
        "公冶",
        "巫马",
        "鲜于",
        "闾丘",
    ]
)
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
# Every toneless pinyin syllable (ü written v, as pypinyin writes it), from pypinyin's own dictionary.
SYLLABLES = frozenset(
    s
    for readings in PINYIN_DICT.values()
    for s in (to_normal(r) for r in readings.split(","))
    if re.fullmatch("[a-z]+", s) and re.search("[aeiouv]", s)
)


@lru_cache(maxsize=50_000)
def _reading(char: str) -> str:
    return lazy_pinyin(char)[0] if _HAN.match(char) else char


def surname_length(units: list[str]) -> int:
    """How many leading characters of a Chinese name are its surname: 2 for 欧阳娜娜, else 1."""
    return 2 if len(units) > 2 and "".join(units[:2]) in COMPOUND_SURNAMES else 1


def name_pinyin(units: list[str]) -> list[str]:
    """One syllable per unit of a name (a Chinese character, or a Latin word kept as it is), its surname read
    as a surname: 单雄信 → shan xiong xin, 尉迟恭 → yu chi gong."""
    syllables = [_reading(u) for u in units]
    if units and _HAN.match(units[0]):
        if surname_length(units) == 2:
            syllables[:2] = lazy_pinyin("".join(units[:2]))
        elif units[0] in SURNAME_READINGS:
            syllables[0] = SURNAME_READINGS[units[0]]
    return syllables


def plain_pinyin(units: list[str]) -> list[str]:
    """Each unit read alone, the way most people type a name they have only seen written (单 dan)."""
    return [_reading(u) for u in units]


def latin_name_key(text: str) -> str:
    """A Latin-letter name in one form whatever the order, case and spacing: "ZHANG, San", "Zhang San",
    "San Zhang" and "ZhangSan" all give "san zhang" (its syllables or words, sorted)."""
    return " ".join(sorted(latin_name_syllables(text)))


@lru_cache(maxsize=50_000)
def pinyin_syllables(word: str) -> tuple[str, ...] | None:
    """A Latin word read as whole pinyin syllables, the longest first: "pingchao" → (ping, chao), "xian" → (xian,);
    None when it does not read as pinyin ("smith")."""
    word = word.lower()
    if not word:
        return ()
    for end in range(min(len(word), 6), 0, -1):
        if word[:end] in SYLLABLES and (rest := pinyin_syllables(word[end:])) is not None:
            return (word[:end], *rest)
    return None


def latin_name_syllables(text: str) -> list[str]:
    """The words of a Latin-letter name, each cut into pinyin syllables where it reads as pinyin, so that
    "Pingchao Xie" and "XIE Ping Chao" both give xie, ping, chao."""
    syllables: list[str] = []
    for word in _LATIN_WORDS.findall(fold(text)):
        syllables += pinyin_syllables(word) or [word.lower()]
    return syllables


# Sounds that much of China does not tell apart, and input methods forgive (模糊音): zh/z, ch/c, sh/s, n/l,
# and the finals -ang/-an, -eng/-en, -ing/-in.
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


@lru_cache(maxsize=4096)
def fuzzy_syllable(syllable: str) -> str:
    """A syllable with the sounds people confuse folded together: zhang, zan and zang all give "zan"."""
    for initial, plain in _FUZZY_INITIALS:
        if syllable.startswith(initial):
            syllable = plain + syllable[len(initial) :]
            break
    for final, plain in _FUZZY_FINALS:
        if syllable.endswith(final):
            return syllable[: -len(final)] + plain
    return syllable
