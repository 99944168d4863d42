"""The API of customer clusters, frequently-bought-together rules and each customer's recommended products.
Reads what the daily refresh stored (`cim analytics clusters|rules` refreshes now)."""

from datetime import datetime

from ninja import Query, Router, Schema
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.analytics.basket import recommendations_for, rule_list
from cim.analytics.clusters import cluster_list
from cim.customers.selectors import customer_get
from cim.customers.services import PermissionDenied

router = Router(tags=["analytics"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class TraitOut(Schema):
    feature: str
    direction: str = Field(description="`high` or `low` against the population")


class ClusterOut(Schema):
    number: int
    size: int
    share: float = Field(description="Of the customers clustered")
    description: str = Field(description="In the request's language")
    traits: list[TraitOut]
    centre: dict[str, float] = Field(description="The cluster's mean of each feature")
    population: dict[str, float] = Field(description="Every clustered customer's mean of each feature")


class ClustersOut(Schema):
    computed_at: datetime | None
    clusters: list[ClusterOut]


@router.get("/analytics/clusters", response=ClustersOut, summary="Customer clusters (k-means) and what sets each apart")
def clusters(request):
    _require(request, Perm.ANALYTICS_VIEW)
    computed_at, found = cluster_list()
    return {
        "computed_at": computed_at,
        "clusters": [
            {**vars(c), "traits": [{"feature": key, "direction": way} for key, way in c.traits]} for c in found
        ],
    }


class ProductOut(Schema):
    id: int
    sku: str
    name: str


class RuleOut(Schema):
    antecedents: list[ProductOut] = Field(description="If a basket has these products…")
    consequents: list[ProductOut] = Field(description="…it also has these")
    support: float
    confidence: float
    lift: float


class RulesOut(Schema):
    computed_at: datetime | None
    total: int
    rules: list[RuleOut]


class RulesQuery(Schema):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000_000)


@router.get("/analytics/rules", response=RulesOut, summary="Frequently bought together: the rules, strongest first")
def rules(request, query: Query[RulesQuery]):
    _require(request, Perm.ANALYTICS_VIEW)
    total, computed_at, found = rule_list(limit=query.limit, offset=query.offset)
    return {"computed_at": computed_at, "total": total, "rules": [vars(rule) for rule in found]}


class RecommendationOut(Schema):
    product: ProductOut
    category: str
    reason: str = Field(
        description="`rule`: bought together with what the customer bought; `popular`: in their categories"
    )
    score: float = Field(
        description="lift × confidence of the rule; for popular products, how many customers bought it"
    )
    because: list[str] = Field(description="Names of the products the rule starts from")


@router.get(
    "/customers/{number}/recommendations",
    response=list[RecommendationOut],
    summary="Products to recommend to a customer, best first",
)
def recommendations(request, number: str, limit: int = Query(5, ge=1, le=20)):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = customer_get(user=request.auth, number=number)
    return [
        {**vars(r), "product": {"id": r.product_id, "sku": r.sku, "name": r.name}}
        for r in recommendations_for([customer.pk], limit=limit).get(customer.pk, [])
    ]
