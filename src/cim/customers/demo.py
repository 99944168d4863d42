"""Realistic demo customers, written set-based so that a million load in minutes (DESIGN §3.9).

Faker is slow per call, so it fills small pools once (names, companies, streets) and rows are random
combinations of pool entries. Every batch is one transaction: customers, contact points, tags, search
documents and audit events land together, so an interrupted load leaves only whole batches behind.
"""

import multiprocessing
import random
import time
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from types import SimpleNamespace

from django.db import connection, transaction
from django.utils import timezone
from faker import Faker
from faker.providers.company.zh_CN import Provider as ZhCompany
from faker.providers.person.zh_CN import Provider as ZhPerson
from pypinyin import lazy_pinyin
from stdnum.cn import uscc

from cim.accounts.models import Team, User
from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.audit.services import audit_record
from cim.core.blind_index import blind_index
from cim.core.bulk import insert_rows, rare_checkpoints, value_adapter
from cim.core.tasks import database_statistics_refresh
from cim.customers import choices as c
from cim.customers.models import Address, Customer, CustomerTag, Email, Phone, Tag
from cim.customers.numbering import numbers_allocate
from cim.quality.matching import match_name
from cim.quality.normalize import split_address
from cim.search.models import SearchDocument
from cim.search.services import search_names
from cim.search.tokens import document

BATCH_SIZE = 5000
ZH_SHARE = 0.8
ORGANIZATION_SHARE = 0.15
HISTORY_DAYS = 3 * 365

# Real provinces, cities and districts, weighted roughly by where customers live; the region follows the province.
GEOGRAPHY: list[tuple[str, str, int, str, dict[str, list[str]]]] = [
    (
        "广东省",
        c.Region.SOUTH.value,
        14,
        "510000",
        {
            "广州市": ["天河区", "越秀区", "海珠区", "番禺区"],
            "深圳市": ["南山区", "福田区", "宝安区", "龙岗区"],
            "佛山市": ["禅城区", "南海区", "顺德区"],
        },
    ),
    ("北京市", c.Region.NORTH.value, 9, "100000", {"北京市": ["朝阳区", "海淀区", "东城区", "西城区", "丰台区"]}),
    ("上海市", c.Region.EAST.value, 9, "200000", {"上海市": ["浦东新区", "徐汇区", "静安区", "黄浦区", "闵行区"]}),
    (
        "浙江省",
        c.Region.EAST.value,
        8,
        "310000",
        {"杭州市": ["西湖区", "上城区", "滨江区", "余杭区"], "宁波市": ["鄞州区", "海曙区", "江北区"]},
    ),
    (
        "江苏省",
        c.Region.EAST.value,
        8,
        "210000",
        {"南京市": ["玄武区", "鼓楼区", "建邺区"], "苏州市": ["姑苏区", "吴中区", "虎丘区"]},
    ),
    (
        "山东省",
        c.Region.EAST.value,
        6,
        "250000",
        {"济南市": ["历下区", "市中区", "槐荫区"], "青岛市": ["市南区", "崂山区", "黄岛区"]},
    ),
    ("四川省", c.Region.SOUTHWEST.value, 6, "610000", {"成都市": ["锦江区", "武侯区", "青羊区", "金牛区"]}),
    ("湖北省", c.Region.CENTRAL.value, 5, "430000", {"武汉市": ["武昌区", "洪山区", "江汉区"]}),
    ("湖南省", c.Region.CENTRAL.value, 4, "410000", {"长沙市": ["岳麓区", "芙蓉区", "天心区"]}),
    ("河南省", c.Region.CENTRAL.value, 4, "450000", {"郑州市": ["金水区", "二七区", "中原区"]}),
    ("福建省", c.Region.EAST.value, 4, "350000", {"福州市": ["鼓楼区", "台江区"], "厦门市": ["思明区", "湖里区"]}),
    ("天津市", c.Region.NORTH.value, 3, "300000", {"天津市": ["和平区", "南开区", "河西区"]}),
    ("重庆市", c.Region.SOUTHWEST.value, 3, "400000", {"重庆市": ["渝中区", "江北区", "南岸区"]}),
    ("陕西省", c.Region.NORTHWEST.value, 3, "710000", {"西安市": ["雁塔区", "碑林区", "未央区"]}),
    (
        "辽宁省",
        c.Region.NORTHEAST.value,
        3,
        "110000",
        {"沈阳市": ["和平区", "沈河区", "皇姑区"], "大连市": ["中山区", "沙河口区"]},
    ),
    ("黑龙江省", c.Region.NORTHEAST.value, 2, "150000", {"哈尔滨市": ["南岗区", "道里区"]}),
    ("云南省", c.Region.SOUTHWEST.value, 2, "650000", {"昆明市": ["五华区", "盘龙区"]}),
]
# Admin division codes of the cities above, for unified social credit codes.
DIVISION_CODES = [
    "440100",
    "440300",
    "110105",
    "310115",
    "330106",
    "320102",
    "370102",
    "510104",
    "420106",
    "430104",
    "410105",
    "350203",
    "120101",
    "500103",
    "610113",
    "210102",
    "230103",
    "530102",
]
# Prefixes for which phonenumbers accepts every 8-digit subscriber number as a valid Chinese mobile.
MOBILE_PREFIXES = [
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "182",
    "183",
    "187",
    "188",
    "130",
    "131",
    "132",
    "155",
    "156",
    "185",
    "186",
    "133",
    "153",
    "177",
    "180",
    "181",
    "189",
    "199",
    "191",
    "176",
    "166",
]
ZH_EMAIL_DOMAINS = [
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "foxmail.com",
    "139.com",
    "yeah.net",
    "gmail.com",
    "outlook.com",
    "hotmail.com",
]
EN_EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "proton.me"]
INDUSTRY_WORDS = [
    "科技",
    "网络",
    "信息",
    "传媒",
    "贸易",
    "物流",
    "食品",
    "医疗器械",
    "教育咨询",
    "建筑工程",
    "电子",
    "餐饮管理",
    "环保",
    "新能源",
    "服饰",
    "文化发展",
]
COMPANY_FORMS = ["有限公司", "有限公司", "股份有限公司", "有限责任公司"]
# (name, colour, share of customers carrying it)
TAGS = [
    ("VIP", "#d4a017", 0.06),
    ("潜在客户", "#0d6efd", 0.25),
    ("老客户", "#198754", 0.18),
    ("重点跟进", "#dc3545", 0.08),
    ("黑名单", "#212529", 0.01),
    ("Newsletter", "#6f42c1", 0.15),
    ("生日关怀", "#fd7e14", 0.05),
    ("企业采购", "#20c997", 0.04),
]
# team → (manager, sales staff); demo owners are made when missing.
TEAMS = {
    "华东销售部": ("zhou.min", ["wang.fang", "li.qiang", "chen.jing"]),
    "华南销售部": ("huang.lei", ["lin.na", "zheng.hao", "xu.li"]),
    "大客户部": ("sun.yan", ["ma.jun", "zhao.lei"]),
}
NOTES = [
    "电话回访，对新品感兴趣。",
    "希望下月再联系。",
    "已发送报价单。",
    "门店活动报名客户。",
    "老客户推荐。",
    "Prefers email over phone.",
    "Asked for an English invoice.",
    "投诉已处理，客户满意。",
]


def _picker(values: list, weights: list[float]) -> Callable[[random.Random], object]:
    """A weighted choice with the cumulative weights computed once (random.choices recomputes them per call)."""
    values, cumulative = list(values), list(accumulate(weights))
    return lambda rng: values[bisect(cumulative, rng.random() * cumulative[-1])]


_GEOGRAPHY = _picker(GEOGRAPHY, [g[2] for g in GEOGRAPHY])
_PERSON_TYPE = _picker([c.CustomerType.CONSUMER.value, c.CustomerType.BUSINESS.value], [85, 15])
_ORGANIZATION_TYPE = _picker(
    [
        c.CustomerType.BUSINESS.value,
        c.CustomerType.DISTRIBUTOR.value,
        c.CustomerType.PARTNER.value,
        c.CustomerType.GOVERNMENT.value,
    ],
    [70, 15, 10, 5],
)
_INDUSTRY = _picker(c.Industry.values, [1] * len(c.Industry.values))
_COMPANY_SIZE = _picker(c.CompanySize.values, [30, 30, 20, 12, 8])
_SOURCE = _picker(c.SourceChannel.values, [1] * len(c.SourceChannel.values))
_VALUE_TIER = _picker(c.ValueTier.values, [3, 12, 35, 50])
_STAGE = _picker(c.LifecycleStage.values, [25, 20, 20, 15, 12, 8])
_STATUS = _picker(c.Status.values, [94, 5, 1])
_PHONE_COUNT = _picker([1, 2, 3], [70, 25, 5])


@dataclass
class DemoResult:
    customers: int
    seconds: float


@dataclass
class _Pools:
    """Faker output drawn once; rows combine entries at random."""

    zh_family: Callable[[random.Random], str]
    zh_given_male: list[str]
    zh_given_female: list[str]
    en_first_male: list[str]
    en_first_female: list[str]
    en_last: list[str]
    en_companies: list[str]
    companies: list[tuple[str, str]]  # (name, pinyin of its brand for email domains)
    jobs_zh: list[str]
    jobs_en: list[str]
    streets_zh: list[str]
    us_addresses: list[tuple[str, str, str, str]]
    pinyin: dict[str, str] = field(default_factory=dict)

    def py(self, text: str) -> str:
        value = self.pinyin.get(text)
        if value is None:
            value = self.pinyin[text] = "".join(lazy_pinyin(text))
        return value


def _pools(rng: random.Random, seed: int, size: int = 2000) -> _Pools:
    zh, en = Faker("zh_CN"), Faker("en_US")
    zh.seed_instance(seed)
    en.seed_instance(seed)
    family = list(ZhPerson.last_names.items())

    def given(names: list[str]) -> list[str]:
        # Faker has ~60 given names per gender; two characters of them make thousands of plausible ones.
        chars = sorted({ch for name in names for ch in name})
        singles = [n for n in names if len(n) == 1] or chars
        return [
            rng.choice(chars) + rng.choice(chars) if rng.random() < 0.8 else rng.choice(singles) for _ in range(size)
        ]

    cities = [city.removesuffix("市") for _, _, _, _, cs in GEOGRAPHY for city in cs]
    # Some of Faker's prefixes already read like a company ("…国际公司", "…电脑"); keep the brand-like ones.
    brands = [b for b in ZhCompany.company_prefixes if not b.endswith(("公司", "电脑", "软件", "电子", "科技"))]
    companies = []
    for _ in range(size):
        brand = rng.choice(brands)
        place = rng.choice(cities) if rng.random() < 0.6 else ""
        companies.append((place + brand + rng.choice(INDUSTRY_WORDS) + rng.choice(COMPANY_FORMS), brand))
    return _Pools(
        zh_family=_picker([name for name, _ in family], [weight for _, weight in family]),
        zh_given_male=given(list(ZhPerson.first_names_male)),
        zh_given_female=given(list(ZhPerson.first_names_female)),
        en_first_male=[en.first_name_male() for _ in range(size // 4)],
        en_first_female=[en.first_name_female() for _ in range(size // 4)],
        en_last=[en.last_name() for _ in range(size // 2)],
        en_companies=[en.company() for _ in range(size // 4)],
        companies=companies,
        jobs_zh=[zh.job() for _ in range(size // 10)],
        jobs_en=[en.job() for _ in range(size // 10)],
        streets_zh=[zh.street_address() for _ in range(size)],
        us_addresses=[(en.state(), en.city(), en.street_address(), en.postcode()) for _ in range(size // 4)],
    )


def demo_owners() -> list[User]:
    """The demo sales staff and managers (made when missing, with passwords nobody is told)."""
    owners = []
    for team_name, (manager, staff) in TEAMS.items():
        team, _ = Team.objects.get_or_create(name=team_name)
        for username, role in [(manager, Role.MANAGER), *((name, Role.SALES) for name in staff)]:
            user = User.objects.filter(username=username).first()
            if user is None:
                user, _ = user_create(username=username, role=role, team=team, email=f"{username}@example.com")
            owners.append(user)
    return owners


def demo_tags() -> list[Tag]:
    """The demo tags; an existing tag of the same name keeps its colour."""
    for name, color, _ in TAGS:
        Tag.objects.get_or_create(name=name, defaults={"color": color})
    by_name = {t.name: t for t in Tag.objects.filter(name__in=[t[0] for t in TAGS])}
    return [by_name[name] for name, _, _ in TAGS]


def _mobile(rng: random.Random) -> str:
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


def _as_typed(rng: random.Random, e164: str) -> str:
    """The number the way people write it."""
    national = e164[3:]
    shape = rng.random()
    if shape < 0.6:
        return national
    if shape < 0.85:
        return f"{national[:3]} {national[3:7]} {national[7:]}"
    return f"+86 {national[:3]}-{national[3:7]}-{national[7:]}"


def _uscc(rng: random.Random) -> str:
    body = "91" + rng.choice(DIVISION_CODES) + "".join(rng.choice(uscc._alphabet) for _ in range(9))
    return body + uscc.calc_check_digit(body)


CUSTOMER_FIELDS = [f for f in Customer._meta.concrete_fields if not f.primary_key]
ADDRESS_FIELDS = ["kind", "country", "province", "city", "district", "street", "postal_code", "adcode"]
CONTACT_FIELDS = ["is_primary", "is_verified", "created_at"]
_SET_PER_ROW = {"number", "created_at", "updated_at"}


@dataclass
class _IdRange:
    pk: str


@dataclass
class _Batch:
    """The rows of one batch, ready to insert. Child rows name their customer by its offset in the batch."""

    numbers: list[str]
    customers: list[tuple] = field(default_factory=list)
    phones: list[tuple] = field(default_factory=list)
    emails: list[tuple] = field(default_factory=list)
    addresses: list[tuple] = field(default_factory=list)
    tags: list[tuple] = field(default_factory=list)
    documents: list[tuple] = field(default_factory=list)


class _Generator:
    """Makes the rows of a batch from the pools; needs no database, so it can run in another process."""

    def __init__(self, *, seed: int, total: int, owners: list[tuple[int, int | None]], tag_ids: list[int]):
        self.seed = seed
        self.pools = _pools(random.Random(seed), seed)
        self.owners = owners
        self.tag_ids = tag_ids
        self.total = total
        self.now = timezone.now()
        self.start = self.now - timedelta(days=HISTORY_DAYS)
        self.prepare = [(f.attname, value_adapter(f)) for f in CUSTOMER_FIELDS]
        # Computed on save (blind indexes, the birthday's year and month), which bulk inserts skip.
        self.derived = [f for f in CUSTOMER_FIELDS if hasattr(f, "source")]
        # Sensitive values are encrypted here, before they reach the database (cim.core.crypto).
        self.seal = {
            (model, name): value_adapter(model._meta.get_field(name))
            for model, names in ((Phone, ("number", "raw")), (Email, ("address", "raw")), (Address, ("street",)))
            for name in names
        }
        # A namespace stands in for Customer: model instances cost ~50 µs each to make.
        self.defaults = {f.attname: f.get_default() for f in CUSTOMER_FIELDS if f.attname not in _SET_PER_ROW}

    def _address(self, rng: random.Random, customer: SimpleNamespace, overseas: bool) -> tuple[tuple, str]:
        """An address in ADDRESS_FIELDS order, and the region it lies in."""
        if overseas:
            state, city, street, postcode = rng.choice(self.pools.us_addresses)
            return (c.AddressType.HOME.value, "US", state, city, "", street, postcode, ""), c.Region.OVERSEAS.value
        province, region, _, postcode, cities = _GEOGRAPHY(rng)
        city = rng.choice(list(cities))
        kind = c.AddressType.WORK.value if customer.kind == c.Kind.ORGANIZATION.value else c.AddressType.HOME.value
        district, street = rng.choice(cities[city]), rng.choice(self.pools.streets_zh)
        adcode = split_address(province + city + district)["adcode"]
        return (kind, "CN", province, city, district, street, postcode, adcode), region

    def _person(self, rng: random.Random, customer: SimpleNamespace) -> list[str]:
        """Fill in a person; return their email addresses."""
        p = self.pools
        female = rng.random() < 0.5
        customer.gender = c.Gender.FEMALE.value if female else c.Gender.MALE.value
        if rng.random() < ZH_SHARE:
            family = p.zh_family(rng)
            given = rng.choice(p.zh_given_female if female else p.zh_given_male)
            customer.family_name, customer.given_name = family, given
            customer.display_name = family + given
            if rng.random() < 0.1:
                english = rng.choice(p.en_first_female if female else p.en_first_male)
                customer.english_name = f"{english} {p.py(family).capitalize()}"
            full = p.py(family) + p.py(given)
            initials = "".join(p.py(ch)[0] for ch in family + given)
            local = rng.choice(
                [
                    full + str(rng.randrange(10, 99)),
                    f"{p.py(family)}.{p.py(given)}",
                    initials + str(rng.randrange(1960, 2008)),
                    str(rng.randrange(10**7, 10**10)),
                ]
            )
            domains, jobs = ZH_EMAIL_DOMAINS, p.jobs_zh
        else:
            first = rng.choice(p.en_first_female if female else p.en_first_male)
            last = rng.choice(p.en_last)
            customer.family_name, customer.given_name = last, first
            customer.display_name = f"{first} {last}"
            simple = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
            local = rng.choice([simple, simple.replace(".", "") + str(rng.randrange(1, 999))])
            domains, jobs = EN_EMAIL_DOMAINS, p.jobs_en
        if rng.random() < 0.8:
            customer.birthday = date(1955, 1, 1) + timedelta(days=rng.randrange(51 * 365))
        if rng.random() < 0.4:
            customer.company = rng.choice(p.companies)[0]
            customer.job_title = rng.choice(jobs)
        customer.customer_type = _PERSON_TYPE(rng)
        emails = [f"{local}@{rng.choice(domains)}"]
        if rng.random() < 0.15:
            emails.append(f"{local.split('.')[0]}_work@{rng.choice(domains)}")
        return emails

    def _organization(self, rng: random.Random, customer: SimpleNamespace) -> list[str]:
        p = self.pools
        customer.kind = c.Kind.ORGANIZATION.value
        if rng.random() < 0.85:
            name, brand = rng.choice(p.companies)
            customer.uscc = _uscc(rng)
            domain = p.py(brand) + rng.choice([".com", ".com.cn", ".cn"])
        else:
            name = rng.choice(p.en_companies)
            domain = "".join(ch for ch in name.lower() if ch.isalnum())[:20] + ".com"
        customer.display_name = name
        customer.industry = _INDUSTRY(rng)
        customer.company_size = _COMPANY_SIZE(rng)
        customer.customer_type = _ORGANIZATION_TYPE(rng)
        return [f"{rng.choice(['info', 'sales', 'contact', 'service', 'purchase'])}@{domain}"]

    def batch(self, batch_no: int, numbers: list[str], first_index: int) -> _Batch:
        # Seeded per batch: the same seed gives the same data whichever process makes which batch.
        rng = random.Random(f"{self.seed}:{batch_no}")
        out = _Batch(numbers=numbers)
        now = Phone._meta.get_field("created_at").get_db_prep_save(self.now, connection)
        for offset, number in enumerate(numbers):
            # Spread over the history in customer order, so later numbers were created later.
            created = self.start + (self.now - self.start) * ((first_index + offset + rng.random()) / self.total)
            customer = SimpleNamespace(
                **self.defaults,
                number=number,
                created_at=created,
                updated_at=created + (self.now - created) * rng.random() ** 3,
            )
            if rng.random() < ORGANIZATION_SHARE:
                emails = self._organization(rng, customer)
            else:
                emails = self._person(rng, customer)
            if self.owners and rng.random() < 0.97:
                customer.owner_id, customer.team_id = rng.choice(self.owners)
            customer.source_channel = _SOURCE(rng)
            customer.value_tier = _VALUE_TIER(rng)
            customer.lifecycle_stage = _STAGE(rng)
            customer.status = _STATUS(rng)
            if rng.random() < 0.1:
                customer.notes = rng.choice(NOTES)
            address, customer.region = self._address(rng, customer, overseas=rng.random() < 0.05)
            phones = {e164: _as_typed(rng, e164) for e164 in (_mobile(rng) for _ in range(_PHONE_COUNT(rng)))}
            if rng.random() > (0.9 if customer.kind == c.Kind.PERSON.value else 0.7):
                emails = []
            emails = list(dict.fromkeys(emails))

            customer.match_name = match_name(customer.display_name)
            for derived in self.derived:
                derived.pre_save(customer, True)
            out.customers.append(tuple(prep(getattr(customer, name)) for name, prep in self.prepare))
            for i, (e164, raw) in enumerate(phones.items()):
                out.phones.append(
                    (
                        offset,
                        c.PhoneType.MOBILE.value if i == 0 else c.PhoneType.WORK.value,
                        self.seal[Phone, "number"](e164),
                        self.seal[Phone, "raw"](raw),
                        blind_index("phone", e164),
                        i == 0,
                        False,
                        now,
                    )
                )
            for i, email in enumerate(emails):
                out.emails.append(
                    (
                        offset,
                        c.EmailType.PERSONAL.value if i == 0 else c.EmailType.WORK.value,
                        self.seal[Email, "address"](email),
                        self.seal[Email, "raw"](email),
                        blind_index("email", email),
                        i == 0,
                        False,
                        now,
                    )
                )
            street = ADDRESS_FIELDS.index("street")
            address = (*address[:street], self.seal[Address, "street"](address[street]), *address[street + 1 :])
            out.addresses.append((offset, *address, True, False, now))
            out.tags += [
                (offset, tag_id, now)
                for tag_id, (_, _, share) in zip(self.tag_ids, TAGS, strict=True)
                if rng.random() < share
            ]
            out.documents.append((offset, document(names=search_names(customer), phones=phones, emails=emails)))
        return out


def _consecutive(pks: list[int]) -> bool:
    """One executemany in one transaction gives consecutive ids, but nothing promises it."""
    return pks == list(range(pks[0], pks[0] + len(pks)))


def _save(batch: _Batch) -> None:
    """Write one batch in one transaction."""
    with transaction.atomic():
        insert_rows(Customer, [f.name for f in CUSTOMER_FIELDS], batch.customers)
        by_number = dict(Customer.objects.filter(number__in=batch.numbers).values_list("number", "pk"))
        pks = [by_number[number] for number in batch.numbers]
        consecutive = _consecutive(pks)
        for model, fields, rows in (
            (Phone, ["kind", "number", "raw", "match_key", *CONTACT_FIELDS], batch.phones),
            (Email, ["kind", "address", "raw", "match_key", *CONTACT_FIELDS], batch.emails),
            (Address, [*ADDRESS_FIELDS, *CONTACT_FIELDS], batch.addresses),
            (CustomerTag, ["tag", "added_at"], batch.tags),
            (SearchDocument, ["tokens"], batch.documents),
        ):
            if consecutive:
                insert_rows(model, ["customer", *fields], rows, first_pk=pks[0])
            else:
                insert_rows(model, ["customer", *fields], [(pks[row[0]], *row[1:]) for row in rows])
        # One event per batch naming its id range: per-customer events would double the cost of a load.
        audit_record(
            actor=None,
            action="customer.demo_load",
            target=_IdRange(f"{pks[0]}-{pks[-1]}"),
            target_type="customers.customer",
            note=f"{len(pks)} demo customers, ids {pks[0]}-{pks[-1]}",
        )


_worker: _Generator | None = None


def _worker_start(kwargs: dict) -> None:
    global _worker
    _worker = _Generator(**kwargs)


def _worker_batch(batch_no: int, numbers: list[str], first_index: int) -> _Batch:
    return _worker.batch(batch_no, numbers, first_index)


def _batches(count: int, numbers: list[str], generator_args: dict) -> Iterator[_Batch]:
    """The batches in order. Where the OS can fork, a second process makes them while this one writes,
    keeping at most a few batches in flight."""
    spans = [(no, numbers[start : start + BATCH_SIZE], start) for no, start in enumerate(range(0, count, BATCH_SIZE))]
    if "fork" not in multiprocessing.get_all_start_methods() or len(spans) < 2:
        generator = _Generator(**generator_args)
        for span in spans:
            yield generator.batch(*span)
        return
    # The child never touches the database, and multiprocessing ends it with os._exit, so the parent's
    # inherited connection is never closed from the child.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_worker_start, initargs=(generator_args,)) as pool:
        pending: deque = deque()
        for span in spans:
            pending.append(pool.submit(_worker_batch, *span))
            if len(pending) > 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def demo_load(*, customers: int, seed: int = 0, progress: Callable[[int], None] | None = None) -> DemoResult:
    """Add `customers` demo customers with owners, tags, contact points and search documents; `progress(n)` per
    batch."""
    started = time.monotonic()
    owners = [(u.pk, u.team_id) for u in demo_owners()]
    tag_ids = [t.pk for t in demo_tags()]
    numbers = numbers_allocate(customers)
    generator_args = {"seed": seed, "total": customers, "owners": owners, "tag_ids": tag_ids}
    with rare_checkpoints():
        for batch in _batches(customers, numbers, generator_args):
            _save(batch)
            if progress:
                progress(len(batch.numbers))
    database_statistics_refresh()  # without statistics the planner reads every customer to show the newest 25
    return DemoResult(customers=customers, seconds=time.monotonic() - started)
