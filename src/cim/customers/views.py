"""Customer pages: the list, the 360° page, create and edit, archive, tagging and saved views.

Views validate input and call services and selectors; they never write themselves (DESIGN §3.1).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from pydantic import ValidationError as PydanticValidationError

from cim.accounts.models import Team
from cim.accounts.roles import Perm, has_perm
from cim.activities.follow_up_selectors import customer_follow_ups
from cim.activities.models import Interaction
from cim.activities.selectors import customer_activity, customer_order_summary
from cim.activities.views import timeline_context
from cim.analytics.basket import recommendations_for
from cim.core.api_errors import _pydantic_detail
from cim.core.views import page, safe_next
from cim.customers import choices as c
from cim.customers.filters import CustomerFilter
from cim.customers.forms import (
    ArchiveForm,
    BulkTagForm,
    ContactRows,
    CustomerForm,
    SavedViewForm,
    SingleTagForm,
    active_users,
)
from cim.customers.history import field_label
from cim.customers.models import Address, Customer
from cim.customers.saved_views import saved_view_delete, saved_view_save
from cim.customers.schemas import CustomerInput
from cim.customers.selectors import (
    CappedPaginator,
    InvalidNumber,
    custom_field_definitions,
    customer_get,
    customer_ids_visible,
    customer_list,
    saved_view_list,
    tag_list,
)
from cim.customers.services import (
    CONTACT_MODELS,
    DuplicatesFound,
    customer_archive,
    customer_create,
    customer_restore,
    customer_reveal,
    customer_update,
    customers_tag,
    locked_fields,
)
from cim.customers.sharing_selectors import customer_changeable, share_marks
from cim.customers.tasks import customers_tag_matching
from cim.customers.views_sharing import sharing_context
from cim.privacy.masking import field_policy, mask_customer, mask_customers
from cim.privacy.registry import field_info, sensitive_fields
from cim.quality.explain import comparison_reasons
from cim.quality.scores import customer_completeness
from cim.quality.selectors import customer_merges, customer_pairs
from cim.segments.models import Segment
from cim.segments.selectors import segment_list
from cim.service.selectors import customer_service_summary

PAGE_SIZES = (25, 50, 100)
LIST_FIELDS = ("tag", "cf")
CHOICE_FILTERS = (
    "kind",
    "customer_type",
    "lifecycle_stage",
    "value_tier",
    "source_channel",
    "region",
    "industry",
    "gender",
)
# The options of each, empty value left out (the form offers "Any").
_CHOICES = {name: [(v, label) for v, label in Customer._meta.get_field(name).choices if v] for name in CHOICE_FILTERS}
DATE_FILTERS = ("created", "updated", "birthday")
SORT_CHOICES = [
    ("-created", gettext_lazy("Newest first")),
    ("created", gettext_lazy("Oldest first")),
    ("-updated", gettext_lazy("Recently updated")),
    ("updated", gettext_lazy("Least recently updated")),
    ("name", gettext_lazy("Name A–Z")),
    ("-name", gettext_lazy("Name Z–A")),
    ("number", gettext_lazy("Number ascending")),
    ("-number", gettext_lazy("Number descending")),
]
SORT_COLUMNS = {"number": "number", "name": "name", "updated": "-updated"}
PROFILE_FIELDS = (
    "display_name",
    "family_name",
    "given_name",
    "alias",
    "english_name",
    "gender",
    "birthday",
    "id_number",
    "company",
    "job_title",
    "uscc",
    "industry",
    "company_size",
)
CLASSIFICATION_FIELDS = ("customer_type", "source_channel", "value_tier", "region", "lifecycle_stage", "status")
FILTER_LABELS = {
    "q": gettext_lazy("Search"),
    "status": gettext_lazy("Status"),
    "tag": gettext_lazy("Tag"),
    "cf": gettext_lazy("Custom field"),
    "sort": gettext_lazy("Sort"),
    "created_from": gettext_lazy("Created from"),
    "created_to": gettext_lazy("Created to"),
    "updated_from": gettext_lazy("Updated from"),
    "updated_to": gettext_lazy("Updated to"),
    "birthday_from": gettext_lazy("Birthday from"),
    "birthday_to": gettext_lazy("Birthday to"),
    "shared": gettext_lazy("Shared with my team"),
}


def parse_filters(params) -> tuple[CustomerFilter, list[str]]:
    """The list's filters from a query string. Invalid values are dropped and described, never a 500."""
    data: dict = {}
    for name in CustomerFilter.model_fields:
        if name in LIST_FIELDS:
            values = [v.strip() for v in params.getlist(name) if v.strip()]
            if values:
                data[name] = values
        elif value := params.get(name, "").strip():
            data[name] = value
    try:
        return CustomerFilter.model_validate(data), []
    except PydanticValidationError as error:
        problems, bad = [], set()
        for detail in error.errors():
            name = str(detail["loc"][0]) if detail.get("loc") else ""
            bad.add(name)
            label = FILTER_LABELS.get(name) or field_label(name)
            problems.append(
                _("Ignored the filter “%(field)s”: %(message)s")
                % {"field": label, "message": _pydantic_detail(detail)["message"]}
            )
        data = {k: v for k, v in data.items() if k not in bad}
        try:
            return CustomerFilter.model_validate(data), problems
        except PydanticValidationError:
            return CustomerFilter(), problems


def _list_query(params) -> str:
    """The current filters as a query string, without the page number and empty values (for saved views)."""
    query = params.copy()
    query.pop("page", None)
    for key in list(query):
        values = [v for v in query.getlist(key) if v.strip()]
        if values:
            query.setlist(key, values)
        else:
            del query[key]
    return query.urlencode()


def _sort_links(current: str) -> dict:
    """For each sortable column: the sort value a click sets and the arrow showing the current order."""
    links = {}
    for column, default in SORT_COLUMNS.items():
        plain = default.lstrip("-")
        if current == plain:
            links[column] = {"sort": f"-{plain}", "arrow": "▲"}
        elif current == f"-{plain}":
            links[column] = {"sort": plain, "arrow": "▼"}
        else:
            links[column] = {"sort": default, "arrow": ""}
    return links


def _options(pairs, selected) -> list[tuple[object, str, bool]]:
    """(value, label, whether selected) of a select's options: `selected` is a value or a list of them. Decided here
    once, not per option by the template engine (see `{% options %}`)."""
    chosen = selected if isinstance(selected, list | set) else {selected}
    return [(value, str(label), value in chosen) for value, label in pairs]


def _filter_panel(request, filters: CustomerFilter) -> dict:
    """What the filter form offers; only the full page needs it, not an htmx update of the results."""
    segments = list(segment_list())
    tags = [(tag.name, tag.name) for tag in tag_list()]
    return {
        "choice_filters": [
            (name, field_label(name), _options(_CHOICES[name], getattr(filters, name))) for name in CHOICE_FILTERS
        ],
        "status_options": _options(
            [("current", _("Current (not archived)")), *c.Status.choices, ("any", _("Any"))], filters.status
        ),
        "date_filters": [(name, FILTER_LABELS[f"{name}_from"], FILTER_LABELS[f"{name}_to"]) for name in DATE_FILTERS],
        "sort_options": _options(SORT_CHOICES, filters.sort),
        "tag_options": _options(tags, filters.tag),
        "owner_options": _options([(u.pk, u) for u in active_users()], filters.owner_id),
        "team_options": _options([(t.pk, t) for t in Team.objects.order_by("name")], filters.team_id),
        "segment_options": _options([(seg.pk, seg.name) for seg in segments], filters.segment),
        "saved_views": saved_view_list(user=request.user),
        "advanced_open": bool(set(request.GET) - {"q", "sort", "per_page", "page", "status"}),
        "cf_values": [*filters.cf, ""],
        "static_lists": [seg for seg in segments if seg.kind == Segment.Kind.STATIC],
    }


@page(perm=Perm.CUSTOMER_VIEW)
def customer_list_view(request):
    filters, filter_errors = parse_filters(request.GET)
    try:
        per_page = int(request.GET.get("per_page", PAGE_SIZES[0]))
    except ValueError:
        per_page = PAGE_SIZES[0]
    if per_page not in PAGE_SIZES:
        per_page = PAGE_SIZES[0]
    page_number = request.GET.get("page")
    paginator = CappedPaginator(customer_list(user=request.user, filters=filters), per_page, page=page_number)
    page_obj = paginator.get_page(page_number)
    page_obj.object_list = mask_customers(request.user, list(page_obj.object_list))
    marks = share_marks(user=request.user, customer_ids=[customer.pk for customer in page_obj.object_list])
    for customer in page_obj.object_list:
        customer.share_mark = marks.get(customer.pk)
    page_range = list(paginator.get_elided_page_range(page_obj.number, on_each_side=2, on_ends=1))
    if paginator.has_more:
        page_range.append(paginator.ELLIPSIS)  # the last page shown is not the last page
    context = {
        "nav": "customers",
        "filters": filters,
        "filter_errors": filter_errors,
        "page_obj": page_obj,
        "page_range": page_range,
        "per_page": per_page,
        "page_sizes": PAGE_SIZES,
        "sort_links": _sort_links(filters.sort),
        "query": _list_query(request.GET),
        "can_tag": has_perm(request.user, Perm.CUSTOMER_TAG),
    }
    if request.htmx and request.htmx.target == "results" and not request.htmx.history_restore_request:
        response = render(request, "customers/_results.html", context)
    else:
        context.update(_filter_panel(request, filters))
        response = render(request, "customers/list.html", context)
    response["Vary"] = "HX-Request"
    return response


def _customer_or_404(request, number: str, *, for_change: bool = False) -> Customer:
    try:
        return customer_get(user=request.user, number=number, for_change=for_change)
    except InvalidNumber as error:
        raise Http404(str(error)) from None


def _custom_field_rows(customer: Customer) -> list[tuple[str, str]]:
    language = get_language() or "en"
    rows = []
    for definition in custom_field_definitions(active_only=False):
        value = customer.custom_fields.get(definition.key)
        if value in (None, "", []) and not definition.is_active:
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
        rows.append((definition.label(language), shown))
    return rows


def _field_rows(customer: Customer, names) -> list[tuple[str, object]]:
    """(label, shown value) of the fields that have a value; choices by their label."""
    rows = []
    for name in names:
        value = getattr(customer, name)
        if value in (None, ""):
            continue
        if Customer._meta.get_field(name).choices:
            value = getattr(customer, f"get_{name}_display")()
        rows.append((field_label(name), value))
    return rows


@page(perm=Perm.CUSTOMER_VIEW)
def customer_detail_view(request, number: str):
    customer = mask_customer(request.user, _customer_or_404(request, number))
    # A customer shared with the user's team read-only is shown without the buttons that would change it.
    changeable = customer_changeable(user=request.user, customer=customer)
    timeline = timeline_context(request, customer)
    held = timeline["timeline_held"]  # the cards of kinds the customer has none of ask nothing
    context = {
        **sharing_context(request, customer=customer),
        **timeline,
        "nav": "customers",
        "profile_rows": _field_rows(customer, PROFILE_FIELDS),
        "classification_rows": _field_rows(customer, CLASSIFICATION_FIELDS),
        "custom_field_rows": _custom_field_rows(customer),
        "activity": customer_activity(customer=customer, has_events="event" in held),
        "order_summary": customer_order_summary(customer=customer, has_orders="order" in held),
        "can_log": has_perm(request.user, Perm.ACTIVITY_LOG),
        "can_order": has_perm(request.user, Perm.ORDER_MANAGE),
        "follow_ups": customer_follow_ups(user=request.user, customer=customer, has_follow_ups="follow_up" in held),
        "summary": customer_service_summary(
            customer=customer, has_tickets="ticket" in held, has_answers="survey" in held
        ),
        "can_handle": has_perm(request.user, Perm.TICKET_HANDLE),
        "interaction_kinds": Interaction.Kind.choices,
        "interaction_outcomes": Interaction.Outcome.choices,
        "can_edit": changeable and has_perm(request.user, Perm.CUSTOMER_CHANGE),
        "can_archive": changeable and has_perm(request.user, Perm.CUSTOMER_ARCHIVE),
        "can_tag": changeable and has_perm(request.user, Perm.CUSTOMER_TAG),
        "all_tags": tag_list() if has_perm(request.user, Perm.CUSTOMER_TAG) else [],
        "archive_form": ArchiveForm(),
        "pairs": customer_pairs(user=request.user, customer=customer),
        "completeness": customer_completeness(customer),
        "merges": customer_merges(customer=customer),
        "can_merge": changeable and has_perm(request.user, Perm.CUSTOMER_MERGE),
        "recommendations": recommendations_for([customer.pk]).get(customer.pk, []),
        "can_reveal": has_perm(request.user, Perm.CUSTOMER_REVEAL),
        "masked_profile": [
            (key, field_label(key.split(".", 1)[1]))
            for key in sorted(customer.masked_fields)
            if key.startswith("customer.")
        ],
    }
    return render(request, "customers/detail.html", context)


@require_POST
@page(perm=Perm.CUSTOMER_REVEAL)
def customer_reveal_view(request, number: str):
    """The unmasked values of one field, audited; an htmx fragment that replaces the masked ones."""
    customer = _customer_or_404(request, number)
    field = request.POST.get("field", "")
    try:
        values = customer_reveal(customer=customer, fields=[field], actor=request.user)
    except ValidationError as error:
        return render(request, "customers/_revealed.html", {"error": " ".join(error.messages)}, status=422)
    if not request.htmx:
        messages.info(request, _("Revealed: %(values)s") % {"values": ", ".join(map(str, values[field])) or "—"})
        return redirect("customers:detail", number=customer.number)
    return render(request, "customers/_revealed.html", {"values": values[field], "field": field})


def _error_dict(error: ValidationError) -> dict[str, list[str]]:
    return error.message_dict if hasattr(error, "error_dict") else {"": error.messages}


def _submit(request, form: CustomerForm, contacts: ContactRows, customer: Customer | None) -> Customer | None:
    """Validate the form, call the service; on errors, put each message next to its input and return None.
    A new customer that looks like an existing one is shown as such first (`form.duplicates`), once."""
    if not form.is_valid():
        return None
    try:
        data = CustomerInput.model_validate({**form.input_data(), **contacts.input_data()})
        if customer is None:
            strict = not request.POST.get("keep_both")
            return customer_create(data=data, actor=request.user, strict=strict, channel="page")
        return customer_update(customer=customer, data=data, actor=request.user)
    except DuplicatesFound as found:
        visible = set(customer_ids_visible(user=request.user, ids=[d.customer.pk for d in found.duplicates]))
        shown = [d for d in found.duplicates if d.customer.pk in visible]
        for duplicate in shown:
            duplicate.reasons = comparison_reasons(duplicate.contributions)
        form.duplicates = {"visible": shown, "hidden": len(found.duplicates) - len(shown)}
        return None
    except PydanticValidationError as error:
        errors: dict[str, list[str]] = {}
        for detail in map(_pydantic_detail, error.errors()):
            errors.setdefault(detail["field"], []).append(detail["message"])
    except ValidationError as error:
        errors = _error_dict(error)
    for key, messages_ in errors.items():
        if not contacts.claim_error(key, messages_):
            form.add_error(form.field_for_error(key), messages_)
    return None


def _form_page(request, form, contacts, customer=None):
    context = {
        "nav": "customers" if customer else "new",
        "form": form,
        "contacts": contacts,
        "customer": customer,
        "has_errors": bool(form.errors) or contacts.has_errors,
        "duplicates": getattr(form, "duplicates", None),
    }
    return render(request, "customers/form.html", context)


def _form_kwargs(customer=None) -> dict:
    return {
        "definitions": custom_field_definitions(),
        "tags": list(tag_list()),
        "customer": customer,
        "language": get_language() or "en",
    }


@page(perm=Perm.CUSTOMER_CHANGE)
def customer_create_view(request):
    if request.method == "POST":
        form = CustomerForm(request.POST, **_form_kwargs())
        contacts = ContactRows.from_post(request.POST)
        customer = _submit(request, form, contacts, None)
        if customer is not None:
            messages.success(request, _("Customer %(number)s was created.") % {"number": customer.number})
            return redirect("customers:detail", number=customer.number)
    else:
        form = CustomerForm(**_form_kwargs())
        contacts = ContactRows.from_customer(None)
    return _form_page(request, form, contacts)


def _lock_masked(request, customer: Customer, form: CustomerForm, contacts: ContactRows) -> None:
    """Fields the user may not change are shown read only, in their masked form, and never sent."""
    locked = locked_fields(user=request.user, owner_id=customer.owner_id)
    if not locked:
        return
    policy, owner_id = field_policy(request.user), customer.owner_id

    def shown(obj) -> str:
        if isinstance(obj, Address):
            street = policy.mask(field_info("customers.address", "street").mask, obj.street, owner_id)
            return " ".join(p for p in (obj.province, obj.city, obj.district, street) if p)
        entry = sensitive_fields(obj._meta.label_lower)[0]
        return str(policy.mask(entry.mask, getattr(obj, entry.field), owner_id))

    scalars = {}
    for entry in sensitive_fields("customers.customer"):
        if entry.field in locked:
            scalars[entry.field] = policy.mask(entry.mask, getattr(customer, entry.field, None), owner_id)
    form.lock(scalars)
    contacts.lock(
        {prefix: [shown(o) for o in getattr(customer, prefix).all()] for prefix in CONTACT_MODELS if prefix in locked}
    )


@page(perm=Perm.CUSTOMER_CHANGE)
def customer_edit_view(request, number: str):
    customer = _customer_or_404(request, number, for_change=True)
    if request.method == "POST":
        form = CustomerForm(request.POST, **_form_kwargs(customer))
        contacts = ContactRows.from_post(request.POST)
        _lock_masked(request, customer, form, contacts)
        if _submit(request, form, contacts, customer) is not None:
            messages.success(request, _("Your changes were saved."))
            return redirect("customers:detail", number=customer.number)
    else:
        form = CustomerForm(initial=CustomerForm.initial_for(customer), **_form_kwargs(customer))
        contacts = ContactRows.from_customer(customer)
        _lock_masked(request, customer, form, contacts)
    return _form_page(request, form, contacts, customer)


@require_POST
@page(perm=Perm.CUSTOMER_ARCHIVE)
def customer_archive_view(request, number: str):
    customer = _customer_or_404(request, number, for_change=True)
    form = ArchiveForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    customer_archive(customer=customer, actor=request.user, reason=reason)
    messages.success(request, _("Customer %(number)s was archived.") % {"number": customer.number})
    return redirect("customers:detail", number=customer.number)


@require_POST
@page(perm=Perm.CUSTOMER_ARCHIVE)
def customer_restore_view(request, number: str):
    customer = _customer_or_404(request, number, for_change=True)
    customer_restore(customer=customer, actor=request.user)
    messages.success(request, _("Customer %(number)s was restored.") % {"number": customer.number})
    return redirect("customers:detail", number=customer.number)


@require_POST
@page(perm=Perm.CUSTOMER_TAG)
def customer_tag_view(request, number: str):
    """Add or remove one tag on one customer, from the 360° page."""
    customer = _customer_or_404(request, number, for_change=True)
    form = SingleTagForm(request.POST)
    if not form.is_valid() or not (form.cleaned_data["add"].strip() or form.cleaned_data["remove"].strip()):
        messages.error(request, _("Enter a tag of 1 to 50 characters."))
    else:
        add, remove = form.cleaned_data["add"].strip(), form.cleaned_data["remove"].strip()
        customers_tag(
            customer_ids=[customer.pk], add=[add] if add else [], remove=[remove] if remove else [], actor=request.user
        )
        if add:
            messages.success(request, _("Tag “%(tag)s” was added.") % {"tag": add})
        else:
            messages.success(request, _("Tag “%(tag)s” was removed.") % {"tag": remove})
    return redirect(reverse("customers:detail", args=[customer.number]) + "#tags")


@require_POST
@page(perm=Perm.CUSTOMER_TAG)
def customers_bulk_tag_view(request):
    """Add or remove a tag on the customers ticked in the list."""
    back = safe_next(request, reverse("customers:list"))
    form = BulkTagForm(request.POST)
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()][:1000]
    if not form.is_valid():
        messages.error(request, _("Enter a tag of 1 to 50 characters."))
        return redirect(back)
    tag, op = form.cleaned_data["tag"].strip(), form.cleaned_data["op"]
    if request.POST.get("all_matching"):
        # Every customer the filters match may be far more than a request should touch: the worker does it.
        filters, _problems = parse_filters(QueryDict(request.POST.get("query", "")))
        customers_tag_matching.enqueue(
            user_id=request.user.pk,
            filters=filters.model_dump(mode="json"),
            add=[tag] if op == "add" else [],
            remove=[tag] if op == "remove" else [],
        )
        messages.info(request, _("Tagging every matching customer in the background; refresh in a moment."))
        return redirect(back)
    if not ids:
        messages.warning(request, _("Tick the customers to tag first."))
        return redirect(back)
    ids = customer_ids_visible(user=request.user, ids=ids, action="change")
    changed = customers_tag(
        customer_ids=ids, add=[tag] if op == "add" else [], remove=[tag] if op == "remove" else [], actor=request.user
    )
    if op == "add":
        text = ngettext(
            "Tag “%(tag)s” was added to %(count)d customer.", "Tag “%(tag)s” was added to %(count)d customers.", changed
        )
    else:
        text = ngettext(
            "Tag “%(tag)s” was removed from %(count)d customer.",
            "Tag “%(tag)s” was removed from %(count)d customers.",
            changed,
        )
    messages.success(request, text % {"tag": tag, "count": changed})
    return redirect(back)


@require_POST
@page(perm=Perm.CUSTOMER_VIEW)
def saved_view_create_view(request):
    form = SavedViewForm(request.POST)
    query = ""
    if form.is_valid():
        query = form.cleaned_data["query"].lstrip("?")
        try:
            view = saved_view_save(
                user=request.user, name=form.cleaned_data["name"], query=query, is_shared=form.cleaned_data["is_shared"]
            )
        except ValidationError as error:
            messages.error(request, " ".join(m for ms in _error_dict(error).values() for m in ms))
        else:
            messages.success(request, _("View “%(name)s” was saved.") % {"name": view.name})
    else:
        messages.error(request, _("Give the view a name of 1 to 100 characters."))
    return redirect(reverse("customers:list") + (f"?{query}" if query else ""))


@require_POST
@page(perm=Perm.CUSTOMER_VIEW)
def saved_view_delete_view(request, pk: int):
    view = get_object_or_404(saved_view_list(user=request.user), pk=pk)
    saved_view_delete(saved_view=view, actor=request.user)
    messages.success(request, _("View “%(name)s” was deleted.") % {"name": view.name})
    return redirect("customers:list")
