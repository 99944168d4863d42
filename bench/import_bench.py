"""Import speed: `python bench/import_bench.py --rows N [--postgres URL]`.

Writes a CSV of N messy customer rows (GB18030, Chinese headers, phones typed every which way), then times on a
fresh database: SQLite's raw `executemany` of the customer rows in one transaction (the physical limit; COPY on
PostgreSQL), a plain unvalidated Django `bulk_create` of the same rows, and `cim import` with full validation,
normalisation, search documents and duplicate checks. Prints rows/s and writes its section of bench/RESULTS.md.
"""

import argparse
import csv
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402

FAMILY = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬建华飞鑫波斌"
    "宇浩凯健俊帆帅旭宁龙林欣佳瑶怡婷雪琳晨"
)
MOBILE_PREFIXES = [str(p) for p in (*range(130, 140), *range(150, 154), *range(155, 160), *range(180, 190), 177, 199)]
HEADER = ["会员编号", "姓名", "手机号码", "邮箱", "性别", "生日", "公司", "标签", "备注"]


def rows(count: int, seed: int):
    rng = random.Random(seed)
    for i in range(count):
        name = rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
        mobile = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
        phone = rng.choice(
            [
                mobile,
                f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}",
                f"+86 {mobile}",
                f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
            ]
        )
        email = f"user{i}@{rng.choice(['qq.com', '163.com', 'example.cn'])}" if rng.random() < 0.6 else ""
        birthday = (
            f"{rng.randrange(1960, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            if rng.random() < 0.7
            else ""
        )
        yield [
            f"M{i:08d}",
            name,
            phone,
            email,
            rng.choice(["男", "女", ""]),
            birthday,
            rng.choice(["", "", "华为技术有限公司", "深圳市腾讯计算机系统有限公司", "小米科技有限责任公司"]),
            rng.choice(["", "", "VIP", "新客", "VIP|老客户"]),
            rng.choice(["", "", "", "展会获客"]),
        ]


def write_csv(path: Path, count: int, seed: int) -> None:
    with path.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows(count, seed))


def setup(data_dir: Path, database_url: str | None) -> None:
    os.environ["CIM_DATA_DIR"] = str(data_dir)
    if database_url:
        os.environ["CIM_DATABASE_URL"] = database_url
    else:
        os.environ.pop("CIM_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def reset() -> None:
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    else:
        connection.close()
        for path in Path(os.environ["CIM_DATA_DIR"]).glob("cim.sqlite3*"):
            path.unlink()
    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("bootstrap", "--no-demo", verbosity=0, stdout=quiet)


def customer_names(path: Path):
    with path.open(encoding="gb18030", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for i, row in enumerate(reader):
            yield f"B{i:09d}", row[1], row[6], row[8]


def time_raw(path: Path) -> float:
    """The customer rows as plain tuples in one transaction: executemany on SQLite, COPY on PostgreSQL. The
    floor any importer of these rows stands on."""
    from django.db import connection, transaction

    from cim.core.bulk import insert_rows
    from cim.customers.models import Customer
    from cim.ingest.importer import CUSTOMER_COLUMNS, CUSTOMER_DEFAULTS

    names = [name for name, _adapt in CUSTOMER_COLUMNS]
    now = datetime.now(UTC)
    base = {**CUSTOMER_DEFAULTS, "created_at": now, "updated_at": now}

    def tuples():
        for number, name, company, notes in customer_names(path):
            values = {**base, "number": number, "display_name": name, "company": company, "notes": notes}
            yield tuple(adapt(values[n]) for n, adapt in CUSTOMER_COLUMNS)

    started = time.perf_counter()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            columns = ", ".join(connection.ops.quote_name(n) for n in names)
            with connection.cursor() as cursor, cursor.copy(f"COPY customers_customer ({columns}) FROM STDIN") as copy:
                for row in tuples():
                    copy.write_row(row)
        else:
            insert_rows(Customer, names, tuples())
    return time.perf_counter() - started


def time_bulk_create(path: Path) -> float:
    from django.db import transaction

    from cim.customers.models import Customer

    started = time.perf_counter()
    batch = []
    with transaction.atomic():
        for number, name, company, notes in customer_names(path):
            batch.append(Customer(number=number, display_name=name, company=company, notes=notes))
            if len(batch) == 2000:
                Customer.objects.bulk_create(batch)
                batch = []
        Customer.objects.bulk_create(batch)
    return time.perf_counter() - started


def anonymous_megabytes() -> float:
    """This process's own memory: its resident set without the pages of files it maps (the database's mmap)."""
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("RssAnon:")) / 1024


def time_import(path: Path) -> tuple[float, dict, list[float]]:
    """Seconds, counts, and the process's own memory (MB) sampled as each fifth of the rows is done."""
    from cim.accounts.models import User
    from cim.ingest.services import import_job_create, import_run

    admin = User.objects.filter(role="administrator").first()
    rows = sum(1 for _ in customer_names(path))
    done = 0
    samples = [anonymous_megabytes()]

    def progress(count: int) -> None:
        nonlocal done
        done += count
        if done * 5 // rows > (done - count) * 5 // rows:
            samples.append(anonymous_megabytes())

    started = time.perf_counter()
    job = import_job_create(path=path, filename=path.name, actor=admin, source="bench")
    counts = import_run(job=job, actor=admin, progress=progress)
    return time.perf_counter() - started, vars(counts), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--postgres", help="also a database URL to run against, e.g. postgres://postgres@127.0.0.1/cim_bench"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cim-import-bench-"))
    try:
        csv_path = scratch / "customers.csv"
        write_csv(csv_path, args.rows, args.seed)
        setup(scratch, args.postgres)
        from django.db import connection

        results = []
        for label, action in (
            ("raw executemany" if not args.postgres else "COPY", time_raw),
            ("Django bulk_create (no validation)", time_bulk_create),
        ):
            reset()
            seconds = action(csv_path)
            results.append((label, seconds))
        reset()
        seconds, counts, memory = time_import(csv_path)
        results.append(("cim import (validated, normalised, indexed, deduplicated)", seconds))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines = [
            f"`bench/import_bench.py --rows {args.rows}`: {args.rows:,} rows on {connection.vendor}, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs. The file is "
            f"{csv_path.stat().st_size / 1024**2:.0f} MB of GB18030 CSV with Chinese headers; each method starts "
            f"from an empty database. Import counts: {counts}. Peak memory of the process {peak:.0f} MB. The "
            "import's own memory (resident, without the database file's mmap) before it starts and after each fifth "
            f"of the rows: {', '.join(f'{mb:.0f}' for mb in memory)} MB.",
            "",
            "| method | seconds | rows/s |",
            "|---|---:|---:|",
        ]
        lines += [f"| {label} | {s:.1f} | {args.rows / s:,.0f} |" for label, s in results]
        print("\n".join(lines))
        write_section(f"Import of customers ({connection.vendor})", lines, args.results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
