"""Chinese (and some English) customer records with known duplicates, shaped like real CRM data.

`records(people, seed)` yields dicts with the columns an export has (name, phone as typed, email, birthday as
written, address, company, gender) and `entity`, the person behind the record. Most records lack a birthday,
email or address. A fifth of the people have one to three more records, each carrying what happens to real
data: traditional characters, a homophone (张/章), the name in pinyin or Latin order, a typo, a changed or
differently written phone, a dropped field. And the traps that must not merge: relatives who share a phone and
an address (a parent and a child, a couple), and namesakes in the same district.

`python bench/dedupe_data.py N OUT.csv` writes a file (entity column included) for other tools.
"""

import csv
import random
import sys
from collections import defaultdict
from datetime import date, timedelta

import opencc
from pypinyin import lazy_pinyin

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤单欧"
)
# Weights roughly as in China's population: 王, 李, 张 are about a fifth between them.
SURNAME_WEIGHTS = [7.2, 7.1, 6.9, 5.4, 4.6, 3.1, 2.3, 2.2, 2.0, 1.7, 1.3, 1.2, 1.2] + [0.6] * (len(SURNAMES) - 13)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬飞鑫波斌宇浩凯健俊帆帅旭宁龙林欣佳瑶怡婷雪"
    "琳晨建国志文海斌鹏辉丹颖倩琦梅莉鹏亮成春燕雷红蕾晓"
)
DISTRICTS = [
    ("广东省", "深圳市", "南山区"),
    ("广东省", "深圳市", "福田区"),
    ("广东省", "广州市", "天河区"),
    ("北京市", "北京市", "朝阳区"),
    ("北京市", "北京市", "海淀区"),
    ("上海市", "上海市", "浦东新区"),
    ("上海市", "上海市", "徐汇区"),
    ("浙江省", "杭州市", "西湖区"),
    ("江苏省", "南京市", "鼓楼区"),
    ("四川省", "成都市", "武侯区"),
]
STREETS = ["科技园路", "建国路", "人民路", "中山路", "解放路", "文三路", "学院路", "世纪大道", "长江路", "和平街"]
COMPANIES = [
    "华为技术有限公司",
    "腾讯科技有限公司",
    "小米科技有限责任公司",
    "比亚迪股份有限公司",
    "美团点评",
    "京东集团",
]
ENGLISH_FIRST = ["Robert", "William", "Elizabeth", "Katherine", "James", "Michael", "Jennifer", "Thomas", "Susan"]
NICKNAMES = {"Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Katherine": "Kate", "James": "Jim"}
ENGLISH_LAST = ["Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Anderson", "Thomas", "Lee"]
MOBILE_PREFIXES = ["138", "139", "136", "135", "150", "151", "158", "159", "186", "187", "188", "189", "177", "199"]

_s2t = opencc.OpenCC("s2t")


def _homophones() -> dict[str, list[str]]:
    """Characters that sound alike (the same toneless pinyin), among those names are made of."""
    by_sound = defaultdict(list)
    for char in dict.fromkeys(SURNAMES + GIVEN + "章刚钢纲岗伟炜玮娟鹃静靖婧敏闵民明铭鸣"):
        by_sound[lazy_pinyin(char)[0]].append(char)
    return {char: [c for c in chars if c != char] for chars in by_sound.values() for char in chars if len(chars) > 1}


HOMOPHONES = _homophones()


def _near_sounds() -> dict[str, list[str]]:
    """Characters that sound nearly alike (zh/z, ch/c, sh/s, n/l, -ng/-n), but not the same."""
    from cim.quality.names import fuzzy_syllable

    by_sound = defaultdict(list)
    pool = dict.fromkeys(SURNAMES + GIVEN + "章刚钢纲岗伟炜玮娟鹃静靖婧敏闵民明铭鸣珍真臻琴勤芹斌滨彬")
    for char in pool:
        by_sound[fuzzy_syllable(lazy_pinyin(char)[0])].append(char)
    return {
        char: [c for c in chars if lazy_pinyin(c)[0] != lazy_pinyin(char)[0]]
        for chars in by_sound.values()
        for char in chars
        if any(lazy_pinyin(c)[0] != lazy_pinyin(char)[0] for c in chars)
    }


NEAR_SOUNDS = _near_sounds()


def _mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _as_typed(rng: random.Random, mobile: str) -> str:
    return rng.choice(
        [
            mobile,
            f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}",
            f"+86 {mobile}",
            f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
        ]
    )


def _birthday_as_written(rng: random.Random, day: date) -> str:
    return rng.choice([day.isoformat(), f"{day.year}/{day.month}/{day.day}", f"{day.year}年{day.month}月{day.day}日"])


def _person(rng: random.Random, entity: int) -> dict:
    english = rng.random() < 0.1
    if english:
        first, last = rng.choice(ENGLISH_FIRST), rng.choice(ENGLISH_LAST)
        name = f"{first} {last}"
        surname = last
    else:
        surname = rng.choices(SURNAMES, weights=SURNAME_WEIGHTS)[0]
        name = surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2, 2))))
    province, city, district = rng.choice(DISTRICTS)
    return {
        "entity": entity,
        "name": name,
        "surname": surname,
        "english": english,
        "gender": rng.choice(["male", "female"]),
        "birthday": date(1950, 1, 1) + timedelta(days=rng.randrange(55 * 365)),
        "phone": _mobile(rng),
        "email": f"user{entity}x{rng.randrange(1000)}@{rng.choice(['qq.com', '163.com', 'gmail.com'])}",
        "address": f"{province}{city}{district}{rng.choice(STREETS)}{rng.randrange(1, 300)}号",
        "district": (province, city, district),
        "company": rng.choice(COMPANIES) if rng.random() < 0.3 else "",
    }


def _record(rng: random.Random, person: dict, *, sparse: bool = True) -> dict:
    """One record of a person as some channel captured it: most fields are often missing."""
    return {
        "entity": person["entity"],
        "name": person["name"],
        "phone": _as_typed(rng, person["phone"]) if rng.random() < 0.95 else "",
        "email": person["email"] if not sparse or rng.random() < 0.3 else "",
        "birthday": _birthday_as_written(rng, person["birthday"]) if not sparse or rng.random() < 0.35 else "",
        "address": person["address"] if not sparse or rng.random() < 0.4 else "",
        "company": person["company"],
        "gender": person["gender"] if rng.random() < 0.7 else "",
    }


def _pinyin_name(rng: random.Random, name: str, surname: str) -> str:
    family = "".join(lazy_pinyin(surname)).capitalize()
    given = "".join(lazy_pinyin(name[len(surname) :])).capitalize()
    return rng.choice([f"{family} {given}", f"{given} {family}", f"{family.upper()}, {given}", f"{family}{given}"])


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())[-11:]


def _corrupt(rng: random.Random, person: dict, original: dict) -> dict:
    """A duplicate record: one to three of the things that happen to real data. It shares with the person's
    first record a phone, an email or a birthday, as a record a business could recognise does: one that shares
    nothing but a name is not a duplicate anyone could tell from a namesake."""
    record = _record(rng, person)
    name = person["name"]
    phone_changed = False
    for change in rng.sample(
        ["script", "homophone", "pinyin", "typo", "phone", "format", "drop"], rng.choice((1, 2, 3))
    ):
        if change == "script" and not person["english"]:
            record["name"] = _s2t.convert(record["name"])
        elif change == "homophone" and not person["english"]:
            positions = [i for i, ch in enumerate(name) if ch in HOMOPHONES and i > 0]
            if positions:
                i = rng.choice(positions)
                record["name"] = name[:i] + rng.choice(HOMOPHONES[name[i]]) + name[i + 1 :]
        elif change == "pinyin":
            if person["english"]:
                first, last = name.split()
                record["name"] = rng.choice([f"{last}, {first}", f"{NICKNAMES.get(first, first)} {last}"])
            else:
                record["name"] = _pinyin_name(rng, name, person["surname"])
        elif change == "typo" and not person["english"] and len(name) > 2:
            # The wrong candidate of a pinyin input method: a character that sounds nearly the same (zh/z, in/ing).
            i = rng.randrange(1, len(name))
            if near := NEAR_SOUNDS.get(name[i]):
                record["name"] = name[:i] + rng.choice(near) + name[i + 1 :]
        elif change == "phone":
            record["phone"] = _as_typed(rng, _mobile(rng))  # changed number
            phone_changed = True
        elif change == "format":
            record["phone"] = _as_typed(rng, person["phone"])
        elif change == "drop":
            record[rng.choice(["phone", "email", "address", "birthday"])] = ""
    shared = (
        (record["phone"] and _digits(record["phone"]) == _digits(original["phone"]))
        or (record["email"] and record["email"] == original["email"])
        or (record["birthday"] and original["birthday"])
    )
    if not shared:
        if original["phone"] and not phone_changed:
            record["phone"] = _as_typed(rng, person["phone"])
        elif original["email"]:
            record["email"] = original["email"]
        else:
            day = person["birthday"]
            original["birthday"] = original["birthday"] or _birthday_as_written(rng, day)
            record["birthday"] = record["birthday"] or _birthday_as_written(rng, day)
    return record


def records(people: int, seed: int = 1) -> list[dict]:
    """The records of `people` people, with duplicates and traps, shuffled."""
    rng = random.Random(seed)
    out = []
    next_entity = people
    for entity in range(people):
        person = _person(rng, entity)
        first = _record(rng, person)
        out.append(first)
        roll = rng.random()
        if roll < 0.2:
            out += [_corrupt(rng, person, original=first) for _ in range(rng.choice((1, 1, 2, 3)))]
        elif roll < 0.25 and not person["english"]:
            # A relative: same surname, same phone and home, another given name, gender and birthday.
            relative = {**person, "entity": next_entity, "birthday": person["birthday"] - timedelta(days=9000)}
            relative["name"] = person["surname"] + rng.choice(GIVEN) + rng.choice(GIVEN)
            relative["gender"] = rng.choice(["male", "female"])
            relative["email"] = f"user{next_entity}@qq.com"
            next_entity += 1
            out.append(_record(rng, relative, sparse=False))
        elif roll < 0.3:
            # A namesake in the same district: everything else differs.
            namesake = {**_person(rng, next_entity), "name": person["name"], "surname": person["surname"]}
            namesake["district"] = person["district"]
            namesake["address"] = "".join(person["district"]) + f"{rng.choice(STREETS)}{rng.randrange(1, 300)}号"
            next_entity += 1
            out.append(_record(rng, namesake))
    rng.shuffle(out)
    for number, record in enumerate(out, 1):
        record["record_id"] = number
    return out


COLUMNS = ["record_id", "entity", "name", "phone", "email", "birthday", "address", "company", "gender"]


def main() -> None:
    people, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(records(people))


if __name__ == "__main__":
    main()
