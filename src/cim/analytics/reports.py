"""Reports as files: the dashboard's figures, cohort retention, RFM segments and the lifecycle funnel, built in a
language as one document of titled tables, then written as XLSX (xlsxwriter) or PDF (fpdf2).

PDFs need a font with Chinese characters, found on the machine at run time (`CIM_PDF_FONT`, else the usual
WenQuanYi and Noto CJK files); without one a PDF is refused with a clear error rather than written with empty boxes
where the characters should be.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xlsxwriter
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, override
from fpdf import FPDF
from fpdf.fonts import FontFace

from cim.accounts.models import Team
from cim.analytics.cohorts import cohort_retention
from cim.analytics.dashboard import DashboardFilter, dashboard
from cim.analytics.lifecycle import lifecycle_funnel
from cim.analytics.selectors import rfm_summary
from cim.customers.choices import SourceChannel

REPORTS = {
    "dashboard": gettext_lazy("Dashboard KPIs"),
    "cohorts": gettext_lazy("Cohort retention"),
    "rfm": gettext_lazy("RFM segments"),
    "lifecycle": gettext_lazy("Lifecycle funnel"),
}
# Reports computed over all customers and all time: their schedules' filters do not apply.
UNFILTERED = {"rfm", "lifecycle"}
# Fonts with the Chinese characters, best first; TrueType outlines, which fpdf2 embeds as a subset.
FONT_FILES = (
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "NotoSansSC-Regular.ttf",
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "SourceHanSansSC-Regular.otf",
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
MIME = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


class ReportError(Exception):
    """A report that cannot be built here (no usable font); the message says what to do."""


class Percent(float):
    """A share (0–1) shown as a percentage."""


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list]  # str, int, float, Percent or None ("—")


@dataclass
class Document:
    title: str
    subtitle: str
    tables: list[Table] = field(default_factory=list)


@dataclass
class Built:
    filename: str
    content: bytes
    mimetype: str
    title: str


def _describe(filters: DashboardFilter) -> str:
    start, end = filters.bounds()
    parts = [_("%(start)s to %(end)s") % {"start": start, "end": end}]
    if filters.team_id is not None:
        team = Team.objects.filter(pk=filters.team_id).values_list("name", flat=True).first()
        parts.append(_("team %(name)s") % {"name": team or filters.team_id})
    if filters.channel is not None:
        parts.append(_("channel %(name)s") % {"name": SourceChannel(filters.channel).label})
    return " · ".join(parts)


def _dashboard(filters: DashboardFilter) -> Document:
    board = dashboard(filters)
    figures = [
        (_("Customers"), board.customers),
        (_("New customers"), board.new_customers),
        (_("Active customers (ordered)"), board.active_customers),
        (_("Orders"), board.orders),
        (_("Revenue (net of refunds)"), round(board.revenue, 2)),
        (_("Repeat-purchase rate"), None if board.repeat_rate is None else Percent(board.repeat_rate)),
        (_("NPS"), board.nps),
        (_("NPS answers"), board.nps_answers),
        (_("CSAT (share satisfied)"), board.csat),
        (_("CSAT answers"), board.csat_answers),
        (_("Open tickets"), board.open_tickets),
        (_("Open tickets past an SLA deadline"), board.sla_breached),
        (_("Customers at risk of churning"), board.at_risk_customers),
        (_("Value at risk"), None if board.at_risk_value is None else round(board.at_risk_value, 2)),
    ]
    unit = _("Day") if board.trend_unit == "day" else _("Month")
    return Document(
        title=str(REPORTS["dashboard"]),
        subtitle=_describe(filters),
        tables=[
            Table(_("Key figures"), [_("Figure"), _("Value")], [list(row) for row in figures]),
            Table(
                _("New customers by source channel"),
                [_("Channel"), _("Customers")],
                [[label, n] for _key, label, n in board.new_by_channel],
            ),
            Table(
                _("Revenue and orders"),
                [unit, _("Revenue"), _("Orders"), _("Active customers")],
                [
                    [day.isoformat() if board.trend_unit == "day" else f"{day:%Y-%m}", round(revenue, 2), n, active]
                    for day, revenue, n, active in board.trend
                ],
            ),
        ],
    )


def _cohorts(filters: DashboardFilter) -> Document:
    result = cohort_retention(filters)
    months = [_("Month %(n)s") % {"n": n} for n in range(result.months)]
    rows = [
        [f"{cohort.month:%Y-%m}", cohort.customers, *map(Percent, cohort.retention)]
        + [None] * (result.months - len(cohort.retention))
        for cohort in result.cohorts
    ]
    return Document(
        title=str(REPORTS["cohorts"]),
        subtitle=_describe(filters),
        tables=[Table(_("Share of each cohort who ordered again"), [_("First order"), _("Customers"), *months], rows)],
    )


def _rfm(filters: DashboardFilter) -> Document:
    summary = rfm_summary()
    headers = [_("Segment"), _("Customers")]
    return Document(
        title=str(REPORTS["rfm"]),
        subtitle=_("%(n)s customers who bought") % {"n": summary.customers},
        tables=[
            Table(_("Value segments"), headers, [[label, n] for _k, label, n in summary.value_segments]),
            Table(_("R×F segments"), headers, [[label, n] for _k, label, n in summary.segments]),
        ],
    )


def _lifecycle(filters: DashboardFilter) -> Document:
    rows = [[label, n, None if rate is None else Percent(rate)] for _k, label, n, rate in lifecycle_funnel()]
    return Document(
        title=str(REPORTS["lifecycle"]),
        subtitle=_("Customers who reached each stage, and the share of the step before"),
        tables=[Table(_("Lifecycle funnel"), [_("Stage"), _("Customers"), _("Conversion")], rows)],
    )


BUILDERS: dict[str, Callable[[DashboardFilter], Document]] = {
    "dashboard": _dashboard,
    "cohorts": _cohorts,
    "rfm": _rfm,
    "lifecycle": _lifecycle,
}


def report_document(*, report: str, filters: DashboardFilter, language: str) -> Document:
    with override(language):
        return BUILDERS[report](filters)


def render_xlsx(document: Document) -> bytes:
    """One sheet per table, titles above, numbers as numbers (shares formatted as percentages)."""
    output = io.BytesIO()
    book = xlsxwriter.Workbook(output, {"in_memory": True})
    bold = book.add_format({"bold": True})
    title = book.add_format({"bold": True, "font_size": 14})
    percent = book.add_format({"num_format": "0.0%"})
    for number, table in enumerate(document.tables, start=1):
        # Sheet names: at most 31 characters, none of []:*?/\ .
        name = "".join(ch for ch in table.title if ch not in "[]:*?/\\")[:28] or str(number)
        sheet = book.add_worksheet(f"{number} {name}"[:31])
        sheet.write(0, 0, document.title, title)
        sheet.write(1, 0, document.subtitle)
        sheet.write(2, 0, table.title, bold)
        sheet.write_row(3, 0, table.headers, bold)
        for r, row in enumerate(table.rows, start=4):
            for c, value in enumerate(row):
                if isinstance(value, Percent):
                    sheet.write_number(r, c, value, percent)
                elif value is None:
                    sheet.write_blank(r, c, None)
                else:
                    sheet.write(r, c, value)
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, max(1, len(table.headers) - 1), 12)
    book.close()
    return output.getvalue()


def cjk_font() -> Path:
    """A font file with Chinese characters: `CIM_PDF_FONT`, else the first known one installed."""
    configured = getattr(settings, "CIM_PDF_FONT", "")
    if configured:
        path = Path(configured).expanduser()
        if path.is_file():
            return path
        raise ReportError(_("The PDF font %(path)s (CIM_PDF_FONT) does not exist.") % {"path": path})
    roots = [root for root in (Path(folder).expanduser() for folder in FONT_DIRS) if root.is_dir()]
    for name in FONT_FILES:
        for root in roots:
            if path := next(root.rglob(name), None):
                return path
    raise ReportError(
        _(
            "No font with Chinese characters was found, so PDF reports cannot be written. Install one (Debian and "
            "Ubuntu: apt-get install fonts-wqy-microhei) or set CIM_PDF_FONT to a .ttf or .ttc file; XLSX works "
            "without it."
        )
    )


def _text(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Percent):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_pdf(document: Document) -> bytes:
    """A landscape A4 PDF: the title, the filters, and each table."""
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(document.title)
    pdf.set_creator("CIM")
    pdf.add_font("cjk", fname=str(cjk_font()))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.cell(text=document.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    pdf.cell(text=document.subtitle, new_x="LMARGIN", new_y="NEXT")
    for table in document.tables:
        pdf.ln(4)
        pdf.set_font("cjk", size=12)
        pdf.cell(text=table.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=8 if len(table.headers) > 8 else 9)
        if not table.rows:
            pdf.cell(text=_("No data."), new_x="LMARGIN", new_y="NEXT")
            continue
        first = 3 if len(table.headers) > 8 else 2
        widths = (first, *([1] * (len(table.headers) - 1)))
        # One weight of the font is embedded: headings are shaded rather than bold.
        heading = FontFace(emphasis="", fill_color=(233, 236, 239))
        with pdf.table(col_widths=widths, text_align="LEFT", line_height=5, headings_style=heading) as grid:
            grid.row(table.headers)
            for row in table.rows:
                grid.row([_text(value) for value in row])
    return bytes(pdf.output())


def report_build(*, report: str, format: str, filters: DashboardFilter, language: str) -> Built:
    """The report as a file, in `language`. ReportError when a PDF cannot be written here."""
    document = report_document(report=report, filters=filters, language=language)
    content = render_pdf(document) if format == "pdf" else render_xlsx(document)
    stamp = timezone.localdate() if report in UNFILTERED else filters.bounds()[1]
    return Built(
        filename=f"cim-{report}-{stamp:%Y%m%d}.{format}",
        content=content,
        mimetype=MIME[format],
        title=document.title,
    )
