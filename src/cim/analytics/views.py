"""The analytics page: RFM (grid and segments) and customer lifetime value. Reads only; never writes."""

from django.core.exceptions import ValidationError
from django.shortcuts import render

from cim.accounts.roles import Perm
from cim.analytics.selectors import clv_summary, lifecycle_summary, rfm_summary
from cim.core.views import page


@page(perm=Perm.ANALYTICS_VIEW)
def analytics_view(request):
    rfm = rfm_summary()
    try:
        clv, clv_problem = clv_summary(), ""
    except ValidationError as error:
        clv, clv_problem = None, " ".join(error.messages)
    grid = [
        {"r": r + 1, "f": f + 1, "customers": count} for r, row in enumerate(rfm.grid) for f, count in enumerate(row)
    ]
    context = {
        "nav": "analytics",
        "rfm": rfm,
        "grid": grid,
        "funnel": lifecycle_summary(),
        "clv": clv,
        "clv_problem": clv_problem,
    }
    return render(request, "analytics/overview.html", context)
