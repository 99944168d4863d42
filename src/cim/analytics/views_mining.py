"""The clusters and the frequently-bought-together pages. Read what the daily refresh stored; never write."""

from django.shortcuts import render

from cim.accounts.roles import Perm
from cim.analytics.basket import rule_list
from cim.analytics.clusters import FEATURES, cluster_list
from cim.core.views import page

RULES_SHOWN = 200


@page(perm=Perm.ANALYTICS_VIEW)
def clusters_view(request):
    computed_at, clusters = cluster_list()
    features = [(key, str(label)) for key, label, *_phrases in FEATURES]
    rows = [{**vars(c), "means": [c.centre.get(key) for key, _label in features]} for c in clusters]
    # The chart: each cluster's mean as a share of the population's, so features of any unit fit one axis.
    chart = {
        "features": [label for _key, label in features],
        "clusters": [
            {
                "name": str(c.number),
                "values": [
                    round(100 * c.centre.get(key, 0) / c.population[key]) if c.population.get(key) else None
                    for key, _label in features
                ],
            }
            for c in clusters
        ],
    }
    context = {
        "nav": "analytics",
        "computed_at": computed_at,
        "clusters": rows,
        "features": features,
        "population": [clusters[0].population.get(key) for key, _label in features] if clusters else [],
        "chart": chart,
    }
    return render(request, "analytics/clusters.html", context)


@page(perm=Perm.ANALYTICS_VIEW)
def rules_view(request):
    total, computed_at, rules = rule_list(limit=RULES_SHOWN)
    return render(
        request,
        "analytics/rules.html",
        {"nav": "analytics", "total": total, "computed_at": computed_at, "rules": rules, "shown": RULES_SHOWN},
    )
