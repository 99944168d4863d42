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
    """A Latin-letter name in one form whatever the order and case: "ZHANG, San", "Zhang San" and "San Zhang"
    all give "san zhang" (its words, sorted)."""
    return " ".join(sorted(w.lower() for w in _LATIN_WORDS.findall(fold(text))))
