"""Campaign pages: the list, the editor with a preview per recipient, and the report. Views validate and call
services."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from cim.accounts.roles import Perm, has_perm
from cim.automation.campaigns import (
    LABELS,
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_pause,
    campaign_schedule,
    campaign_start,
    campaign_update,
    variant_content,
)
from cim.automation.campaigns_selectors import campaign_get, campaign_list, campaign_report
from cim.automation.models import Campaign, MessageTemplate
from cim.core.views import page
from cim.customers.models import Customer
from cim.privacy.models import ConsentPurpose
from cim.segments.models import Segment

TEMPLATE_NAME_EXAMPLE = "{{ customer.display_name }}"
TEMPLATE_RECOMMENDATIONS_EXAMPLE = "{% for product in recommendations %}{{ product.name }}{% endfor %}"
NUMBERS = (
    "test_percent",
    "test_wait_hours",
    "throttle_per_minute",
    "attribution_days",
)


@page(perm=Perm.ANALYTICS_VIEW)
def campaign_list_view(request):
    campaigns = list(campaign_list(status=request.GET.get("status") or None)[:200])
    reports = {c.pk: campaign_report(campaign=c).total for c in campaigns if c.status != Campaign.Status.DRAFT}
    context = {
        "nav": "campaigns",
        "rows": [(c, reports.get(c.pk)) for c in campaigns],
        "statuses": Campaign.Status.choices,
        "status": request.GET.get("status", ""),
        "can_manage": has_perm(request.user, Perm.CAMPAIGN_MANAGE),
    }
    return render(request, "automation/campaigns/list.html", context)


PARTS = ("subject", "body", "html", "language")


def _posted_content(post, prefix: str) -> dict | None:
    """One language's content from the form, or None when its subject and text are empty."""
    content = {part: post.get(f"{prefix}-{part}", "") for part in PARTS}
    if not (content["subject"].strip() or content["body"].strip()):
        return None
    return content | {"language": content["language"] or "zh-hans"}


def _posted_variants(post) -> list[dict]:
    """The variants of the form; each may have a translation (the form offers one other language)."""
    variants = []
    for index in range(len(LABELS)):
        variant = _posted_content(post, f"variant-{index}")
        if variant is not None:
            translation = _posted_content(post, f"variant-{index}-tr")
            variants.append(variant | {"translations": [translation] if translation else []})
    return variants


def _other_language(language: str) -> str:
    return next((code for code, _name in settings.LANGUAGES if code != language), language)


def _variant_blocks(variants: list[dict], errors: dict) -> list[dict]:
    """Five blocks, A to E: the ones in use, then empty ones to add a variant; each with its translation."""
    blocks = []
    for index, label in enumerate(LABELS):
        empty = {"subject": "", "body": "", "html": "", "language": ""}
        data = variants[index] if index < len(variants) else {**empty, "translations": []}
        blank = empty | {"language": _other_language(data["language"] or "zh-hans")}
        translation = data["translations"][0] if data["translations"] else blank
        prefix = f"variants.{index}"
        blocks.append(
            {
                "index": index,
                "label": label,
                **data,
                "tr": translation,
                "errors": {part: errors.get(f"{prefix}.{part}", []) for part in PARTS},
                "tr_errors": {part: errors.get(f"{prefix}.translations.0.{part}", []) for part in PARTS}
                | {"translations": errors.get(f"{prefix}.translations", [])},
            }
        )
    return blocks


def _form(request, campaign: Campaign | None):
    if campaign is not None and campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        messages.warning(request, _("The campaign has started; only its cost and description can change (API/CLI)."))
        return redirect("automation:campaign_detail", pk=campaign.pk)
    current = {
        "name": campaign.name if campaign else "",
        "description": campaign.description if campaign else "",
        "segment": str(campaign.segment_id) if campaign else "",
        "purpose": campaign.purpose if campaign else ConsentPurpose.MARKETING,
        "test_percent": campaign.test_percent if campaign else 0,
        "test_metric": campaign.test_metric if campaign else Campaign.Metric.CLICK_RATE,
        "test_wait_hours": campaign.test_wait_hours if campaign else 4,
        "throttle_per_minute": campaign.throttle_per_minute if campaign else 0,
        "attribution_days": campaign.attribution_days if campaign else 7,
        "cost": campaign.cost if campaign else 0,
    }
    values = {name: request.POST.get(name, value) for name, value in current.items()}
    variants = (
        _posted_variants(request.POST)
        if request.method == "POST"
        else [
            variant_content(v)
            for v in campaign.variants.select_related("template").prefetch_related("translations").order_by("label")
        ]
        if campaign
        else []
    )
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        data = {**values, "variants": variants}
        for name in NUMBERS:
            data[name] = str(data[name]).strip()
        try:
            if campaign is None:
                campaign = campaign_create(actor=request.user, **data)
            else:
                campaign = campaign_update(campaign=campaign, actor=request.user, **data)
        except ValidationError as error:
            errors = error.message_dict
        else:
            messages.success(request, _("Campaign saved."))
            return redirect("automation:campaign_detail", pk=campaign.pk)
    context = {
        "nav": "campaigns",
        "campaign": campaign,
        "values": values,
        "variants": _variant_blocks(variants, errors),
        "errors": errors,
        "variant_errors": [m for key, ms in errors.items() if key == "variants" for m in ms],
        "segments": Segment.objects.only("pk", "name", "kind", "size"),
        "purposes": ConsentPurpose.choices,
        "metrics": Campaign.Metric.choices,
        "languages": settings.LANGUAGES,
        "template_help": _(
            "Use %(name)s and the other customer fields, and %(recommendations)s for the products analytics "
            "suggests. Two or more variants with a test share make an A/B test; leave a variant empty to drop it."
        )
        % {"name": TEMPLATE_NAME_EXAMPLE, "recommendations": TEMPLATE_RECOMMENDATIONS_EXAMPLE},
    }
    return render(request, "automation/campaigns/form.html", context, status=400 if errors else 200)


@page(perm=Perm.CAMPAIGN_MANAGE)
def campaign_create_view(request):
    return _form(request, None)


@page(perm=Perm.CAMPAIGN_MANAGE)
def campaign_edit_view(request, pk: int):
    return _form(request, campaign_get(pk=pk))


@require_POST
@page(perm=Perm.CAMPAIGN_MANAGE)
def campaign_preview_view(request):
    """The editor's preview: the variants being edited, rendered for one customer the user may see."""
    from cim.automation.messaging import customer_languages, template_in, template_preview

    number = request.POST.get("customer", "").strip()
    customer = Customer.objects.visible_to(request.user).filter(number=number).first() if number else None
    rendered, problem = [], ""
    if customer is None:
        problem = _("No customer with this number that you may see.")
    else:
        purpose = request.POST.get("purpose") or ConsentPurpose.MARKETING
        language = customer_languages([customer.pk], purpose).get(customer.pk, "")
        for label, variant in zip(LABELS, _posted_variants(request.POST), strict=False):
            templates = {
                content["language"]: MessageTemplate(
                    channel="email", purpose=purpose, **{part: content[part] for part in PARTS}
                )
                for content in [variant, *variant["translations"]]
            }
            template = template_in(templates, language)
            try:
                rendered.append((label, template_preview(template=template, customer=customer), ""))
            except ValidationError as error:
                rendered.append((label, None, " ".join(error.messages)))
    context = {"customer": customer, "rendered": rendered, "problem": problem}
    return render(request, "automation/campaigns/_preview.html", context)


@page(perm=Perm.ANALYTICS_VIEW)
def campaign_detail_view(request, pk: int):
    campaign = campaign_get(pk=pk)
    report = campaign_report(campaign=campaign)
    chart = {
        "labels": [v.label for v in report.variants],
        "stages": [
            [_("Sent"), [v.sent for v in report.variants]],
            [_("Delivered"), [v.delivered for v in report.variants]],
            [_("Opened"), [v.opened for v in report.variants]],
            [_("Clicked"), [v.clicked for v in report.variants]],
            [_("Converted"), [v.converted for v in report.variants]],
        ],
        "hourly": report.hourly,
        "text": {"opens": _("Opens"), "clicks": _("Clicks"), "variant": _("Variant")},
    }
    context = {
        "nav": "campaigns",
        "campaign": campaign,
        "report": report,
        "chart": chart,
        "variants": campaign.variants.select_related("template").prefetch_related("translations").order_by("label"),
        "can_manage": has_perm(request.user, Perm.CAMPAIGN_MANAGE),
        "now": timezone.localtime(),
    }
    return render(request, "automation/campaigns/detail.html", context)


ACTIONS = {
    "start": (campaign_start, gettext_lazy("Campaign started: the worker is queueing its messages.")),
    "pause": (campaign_pause, gettext_lazy("Campaign paused.")),
    "cancel": (campaign_cancel, gettext_lazy("Campaign cancelled.")),
}


@require_POST
@page(perm=Perm.CAMPAIGN_MANAGE)
def campaign_action_view(request, pk: int, action: str):
    campaign = campaign_get(pk=pk)
    try:
        if action == "schedule":
            raw = request.POST.get("at", "")
            at = parse_datetime(raw) if raw else None
            if raw and at is None:
                raise ValidationError({"scheduled_at": [_("Enter a date and time.")]})
            if at is not None and timezone.is_naive(at):
                at = timezone.make_aware(at)
            campaign_schedule(campaign=campaign, at=at, actor=request.user)
            messages.success(request, _("Campaign scheduled.") if at else _("Campaign back to draft."))
        elif action == "delete":
            campaign_delete(campaign=campaign, actor=request.user)
            messages.success(request, _("Campaign deleted."))
            return redirect("automation:campaign_list")
        elif action in ACTIONS:
            service, done = ACTIONS[action]
            service(campaign=campaign, actor=request.user)
            messages.success(request, done)
        else:
            raise Http404
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("automation:campaign_detail", pk=pk)
