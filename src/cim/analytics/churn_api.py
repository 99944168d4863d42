"""The churn-warning API: the customers at risk the caller sees, most at stake first, with the reasons."""

from ninja import Field, Query, Router, Schema

from cim.accounts.roles import Perm, has_perm
from cim.analytics.churn import reason_text
from cim.analytics.churn_selectors import AT_RISK, churn_list
from cim.core.pagination import keyset_page
from cim.customers.services import PermissionDenied

router = Router(tags=["analytics"])


class ReasonOut(Schema):
    key: str = Field(description="recency, recency_single, frequency_drop, not_alive, complaints, breached, "
                     "low_csat or detractor")  # fmt: skip
    weight: float = Field(description="How much it raises the score (log-odds, or the fixed weight)")
    text: str
    params: dict[str, int | float]


class ChurnOut(Schema):
    number: str
    name: str
    owner: str | None
    risk: float
    value: float = Field(description="The next 12 months' lifetime value where estimated, else the total spent")
    p_alive: float | None
    expected_purchases: float | None = Field(description="In the next year (BG/NBD)")
    clv: float | None
    reasons: list[ReasonOut]
    follow_up_id: int | None = Field(description="The open churn follow-up, if any")


class ChurnPage(Schema):
    items: list[ChurnOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def _item(score) -> dict:
    follow_up = score.churn_follow_up
    return {
        "number": score.customer.number,
        "name": score.customer.display_name,
        "owner": score.customer.owner.username if score.customer.owner_id else None,
        "risk": score.churn_risk,
        "value": float(score.value),
        "p_alive": score.p_alive,
        "expected_purchases": score.expected_purchases,
        "clv": None if score.clv is None else float(score.clv),
        "reasons": [
            {"key": key, "weight": weight, "text": reason_text(key, params), "params": params}
            for key, weight, params in score.churn_reasons
        ],
        "follow_up_id": follow_up.pk if follow_up is not None and follow_up.status == "open" else None,
    }


@router.get("/analytics/churn", response=ChurnPage, summary="Customers at risk of churning, with the main reasons")
def churn(
    request,
    mine: bool = Query(False, description="Only customers you own"),
    min_risk: float = Query(AT_RISK, ge=0, le=1),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    if not has_perm(request.auth, Perm.CUSTOMER_VIEW):
        raise PermissionDenied(Perm.CUSTOMER_VIEW)
    scores, next_cursor = keyset_page(
        churn_list(user=request.auth, mine=mine, min_risk=min_risk), cursor=cursor, limit=limit
    )
    return {"items": [_item(score) for score in scores], "next_cursor": next_cursor}
