"""History pages: the customer's timeline, logging interactions, orders with refunds and cancellations, products.

Views validate input and call services and selectors; they never write themselves (DESIGN §3.1).
"""

from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from pydantic import ValidationError as PydanticValidationError

from cim.accounts.roles import Perm, has_perm
from cim.activities.api import attachment_response
from cim.activities.forms import InteractionForm, OrderForm, OrderLineFormSet, ProductForm, RefundForm
from cim.activities.history_schemas import InteractionInput, OrderInput, ProductInput, RefundInput
from cim.activities.interactions import interaction_log
from cim.activities.models import Attachment, Order, Product
from cim.activities.orders import order_cancel, order_create, order_mark_paid, order_refund, product_save
from cim.activities.performance import performance_report, performance_table
from cim.activities.selectors import interaction_get, order_get, order_list, product_list
from cim.activities.timeline import SOURCES, Cursor, timeline_page
from cim.audit.services import audit_record
from cim.core.api_errors import _pydantic_detail
from cim.core.downloads import table_download
from cim.core.views import page
from cim.customers.selectors import customer_get

TIMELINE_PAGE = 30
MAX_BLANK_LINES = 50


def _customer(request, number: str):
    return customer_get(user=request.user, number=number)


def timeline_context(request, customer) -> dict:
    """The timeline's filter and first (or requested) page, for the customer page and the timeline partial."""
    kinds = [kind for kind in request.GET.getlist("kind") if kind in SOURCES]
    before = Cursor.decode(request.GET.get("before"))
    feed = timeline_page(customer_id=customer.pk, kinds=kinds or None, before=before, limit=TIMELINE_PAGE)
    return {
        "customer": customer,
        "timeline": feed.entries,
        "timeline_next": feed.next_cursor.encode() if feed.next_cursor else "",
        "timeline_kinds": [(source.kind, source.label, source.kind in kinds) for source in SOURCES.values()],
        "timeline_filtered": kinds,
        "timeline_held": feed.held,
    }


@page(perm=Perm.CUSTOMER_VIEW)
def timeline_view(request, number: str):
    """A page of the timeline: more entries (htmx appends them) or a filtered feed."""
    context = timeline_context(request, _customer(request, number))
    if not request.htmx:
        return render(request, "activities/timeline_page.html", {**context, "nav": "customers"})
    more = bool(request.GET.get("before"))
    return render(request, "activities/_timeline_entries.html" if more else "activities/_timeline.html", context)


def _apply_errors(form, error: Exception) -> None:
    """Put the service's or schema's messages next to the inputs they are about."""
    if isinstance(error, PydanticValidationError):
        errors: dict[str, list[str]] = {}
        for detail in map(_pydantic_detail, error.errors()):
            errors.setdefault(detail["field"], []).append(detail["message"])
    else:
        errors = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
    for key, texts in errors.items():
        name = key.split(".")[0]
        form.add_error(name if name in form.fields else None, texts)


@page(perm=Perm.ACTIVITY_LOG)
def interaction_create_view(request, number: str):
    customer = _customer(request, number)
    form = InteractionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            data = InteractionInput.model_validate(form.input_data())
            interaction_log(customer=customer, data=data, actor=request.user, files=form.cleaned_data["files"])
        except (PydanticValidationError, ValidationError) as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Interaction logged."))
            return redirect(reverse("customers:detail", args=[customer.number]) + "#timeline")
    return render(request, "activities/interaction_form.html", {"nav": "customers", "customer": customer, "form": form})


@page(perm=Perm.CUSTOMER_VIEW)
def interaction_detail_view(request, pk: int):
    interaction = interaction_get(user=request.user, pk=pk)
    return render(request, "activities/interaction_detail.html", {"nav": "customers", "interaction": interaction})


@page(perm=Perm.CUSTOMER_VIEW)
def attachment_view(request, pk: int):
    attachment = get_object_or_404(Attachment, pk=pk)
    interaction_get(user=request.user, pk=attachment.interaction_id)  # 404 outside the user's scope
    return attachment_response(attachment)


@page(perm=Perm.ORDER_MANAGE)
def order_create_view(request, number: str):
    customer = _customer(request, number)
    wanted = request.GET.get("lines", "")
    extra = min(int(wanted), MAX_BLANK_LINES) if wanted.isdigit() and int(wanted) > 0 else 3
    form = OrderForm(request.POST or None)
    lines = OrderLineFormSet(request.POST or None, prefix="lines")
    lines.extra = extra
    if request.method == "POST" and form.is_valid() and lines.is_valid():
        data = form.input_data()
        data["lines"] = [line for line in (f.input_data() for f in lines) if line]
        try:
            order = order_create(customer=customer, data=OrderInput.model_validate(data), actor=request.user)
        except (PydanticValidationError, ValidationError) as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Order %(number)s recorded.") % {"number": order.number})
            return redirect("activities:order", order.pk)
    context = {"nav": "customers", "customer": customer, "form": form, "lines": lines, "more": extra + 3}
    return render(request, "activities/order_form.html", context)


@page(perm=Perm.CUSTOMER_VIEW)
def order_detail_view(request, pk: int):
    order = order_get(user=request.user, pk=pk)
    context = {
        "nav": "orders",
        "order": order,
        "refund_form": RefundForm(),
        "can_manage": has_perm(request.user, Perm.ORDER_MANAGE),
    }
    return render(request, "activities/order_detail.html", context)


@page(perm=Perm.ORDER_MANAGE)
@require_POST
def order_action_view(request, pk: int, action: str):
    order = order_get(user=request.user, pk=pk)
    try:
        if action == "refund":
            form = RefundForm(request.POST)
            if not form.is_valid():
                raise ValidationError([text for texts in form.errors.values() for text in texts])
            order_refund(order=order, data=RefundInput.model_validate(form.cleaned_data), actor=request.user)
            messages.success(request, _("Refund recorded."))
        elif action == "cancel":
            order_cancel(order=order, reason=request.POST.get("reason", "")[:200], actor=request.user)
            messages.success(request, _("Order cancelled."))
        else:
            order_mark_paid(order=order, actor=request.user)
            messages.success(request, _("Order marked paid."))
    except ValidationError as error:
        for text in error.messages:
            messages.error(request, text)
    return redirect("activities:order", order.pk)


@page(perm=Perm.CUSTOMER_VIEW)
def order_list_view(request):
    orders = order_list(user=request.user)
    status = request.GET.get("status", "")
    if status in Order.Status.values:
        orders = orders.filter(status=status)
    paginator = Paginator(orders, 50)
    context = {
        "nav": "orders",
        "page_obj": paginator.get_page(request.GET.get("page")),
        "statuses": Order.Status.choices,
        "status": status,
    }
    return render(request, "activities/order_list.html", context)


@page(perm=Perm.CUSTOMER_VIEW)
def product_list_view(request):
    q = request.GET.get("q", "").strip()[:100]
    paginator = Paginator(product_list(q=q), 50)
    context = {
        "nav": "orders",
        "page_obj": paginator.get_page(request.GET.get("page")),
        "q": q,
        "can_manage": has_perm(request.user, Perm.ORDER_MANAGE),
    }
    return render(request, "activities/product_list.html", context)


@page(perm=Perm.ORDER_MANAGE)
def product_edit_view(request, sku: str | None = None):
    product = get_object_or_404(Product, sku=sku) if sku else None
    form = ProductForm(request.POST or None, instance=product)
    if product is not None:
        form.fields["sku"].disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            saved = product_save(data=ProductInput.model_validate(form.cleaned_data), actor=request.user)
        except PydanticValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Product %(sku)s saved.") % {"sku": saved.sku})
            return redirect("activities:products")
    return render(request, "activities/product_form.html", {"nav": "orders", "form": form, "product": product})


def _midnight(text: str, *, days_after: int = 0) -> datetime | None:
    """The start of the day `text` names (YYYY-MM-DD), `days_after` later; None when absent or not a date."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day + timedelta(days=days_after), time()))


def _period(request) -> tuple[datetime | None, datetime | None]:
    """The report's period from the `since` and `until` dates, `until` included."""
    return _midnight(request.GET.get("since", "")), _midnight(request.GET.get("until", ""), days_after=1)


@page(perm=Perm.PERFORMANCE_VIEW)
def performance_view(request):
    since, until = _period(request)
    try:
        report = performance_report(user=request.user, since=since, until=until)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        report = performance_report(user=request.user)
    export = request.GET.get("format")
    if export in ("csv", "xlsx"):
        header, rows = performance_table(report)
        audit_record(actor=request.user, action="performance.export", target=None, target_type="report", note=export)
        return table_download(f"performance-{report.since:%Y%m%d}-{report.until:%Y%m%d}", header, rows, export)
    context = {
        "nav": "performance",
        "report": report,
        "since": timezone.localdate(report.since),
        "until": timezone.localdate(report.until) - timedelta(days=1),
    }
    return render(request, "activities/performance.html", context)
