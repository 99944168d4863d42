"""The at-risk page (流失预警): the customers the user sees, most at stake first, with why; and its download.
Reads only; never writes."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.analytics.churn_selectors import AT_RISK, RISK_CHOICES, churn_list, churn_reason_texts
from cim.audit.services import audit_record
from cim.core.downloads import table_download
from cim.core.views import page, require

PER_PAGE = 50
# A download is built in memory: the riskiest rows up to here, which the page says.
DOWNLOAD_ROWS = 100_000


def _min_risk(request) -> float:
    try:
        value = float(request.GET.get("min_risk", AT_RISK))
    except ValueError:
        return AT_RISK
    return value if value in RISK_CHOICES else AT_RISK


def _table(scores) -> tuple[list[str], list[list]]:
    header = [
        _("Customer number"),
        _("Name"),
        _("Churn risk"),
        _("Value"),
        _("Probability still active"),
        _("Owner"),
        _("Main reasons"),
    ]
    rows = [
        [
            score.customer.number,
            score.customer.display_name,
            round(score.churn_risk, 4),
            float(score.value),
            None if score.p_alive is None else round(score.p_alive, 4),
            str(score.customer.owner or ""),
            "; ".join(churn_reason_texts(score)),
        ]
        for score in scores
    ]
    return header, rows


@page(perm=Perm.CUSTOMER_VIEW)
def churn_view(request):
    mine = request.GET.get("mine") == "1"
    min_risk = _min_risk(request)
    scores = churn_list(user=request.user, mine=mine, min_risk=min_risk)
    export = request.GET.get("format")
    if export in ("csv", "xlsx"):
        # The rows are customers by name: a download is a customer export.
        require(request, Perm.CUSTOMER_EXPORT)
        header, rows = _table(scores[:DOWNLOAD_ROWS])
        audit_record(
            actor=request.user, action="churn.export", target=None, target_type="report", note=f"{export} {len(rows)}"
        )
        return table_download("churn-risk", header, rows, export)
    page_obj = Paginator(scores, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "nav": "customers",
        "page_obj": page_obj,
        "rows": [(score, churn_reason_texts(score)) for score in page_obj],
        "mine": mine,
        "min_risk": min_risk,
        "risk_choices": [(value, round(value * 100)) for value in RISK_CHOICES],
        "can_export": has_perm(request.user, Perm.CUSTOMER_EXPORT),
        "download_rows": DOWNLOAD_ROWS,
    }
    return render(request, "analytics/churn.html", context)
