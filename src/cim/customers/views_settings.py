"""Settings pages: tags, custom fields and the numbering scheme. Only for roles with Perm.SETTINGS_MANAGE."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cim.accounts.roles import Perm
from cim.core.views import page
from cim.customers.choices import CustomFieldType
from cim.customers.configuration import (
    custom_field_create,
    custom_field_update,
    numbering_scheme_update,
    tag_create,
    tag_update,
)
from cim.customers.forms import CustomFieldForm, NumberingForm, TagForm
from cim.customers.models import NumberingScheme
from cim.customers.numbering import format_number, scheme_get
from cim.customers.selectors import custom_field_definitions, tag_list

settings_page = page(perm=Perm.SETTINGS_MANAGE)
CHOICE_TYPES = (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE)


def _show_errors(form, error: ValidationError) -> None:
    """Put a service's per-field messages next to the form's inputs."""
    errors = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
    for key, messages_ in errors.items():
        name = "choices_text" if key == "choices" else key
        form.add_error(name if name in form.fields else None, messages_)


@settings_page
def settings_view(request):
    context = {
        "nav": "settings",
        "tag_count": tag_list().count(),
        "field_count": custom_field_definitions().count(),
        "example": format_number(scheme_get(), scheme_get().next_sequence, timezone.localdate()),
    }
    return render(request, "customers/settings/index.html", context)


@settings_page
def settings_tags_view(request):
    form = TagForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tag = tag_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _show_errors(form, error)
        else:
            messages.success(request, _("Tag “%(name)s” was created.") % {"name": tag.name})
            return redirect("customers:settings_tags")
    context = {"nav": "settings", "section": "tags", "form": form, "tags": tag_list(with_counts=True)}
    return render(request, "customers/settings/tags.html", context)


@settings_page
def settings_tag_edit_view(request, pk: int):
    tag = get_object_or_404(tag_list(), pk=pk)
    initial = {"name": tag.name, "color": tag.color, "description": tag.description}
    form = TagForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            tag_update(tag=tag, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _show_errors(form, error)
        else:
            messages.success(request, _("Tag “%(name)s” was saved.") % {"name": tag.name})
            return redirect("customers:settings_tags")
    context = {"nav": "settings", "section": "tags", "form": form, "tag": tag}
    return render(request, "customers/settings/tag_edit.html", context)


@settings_page
def settings_fields_view(request):
    form = CustomFieldForm(request.POST or None, initial={"position": 0})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            definition = custom_field_create(
                key=data["key"],
                label_zh=data["label_zh"],
                label_en=data["label_en"],
                field_type=data["field_type"],
                choices=form.choices,
                required=data["required"],
                position=data["position"] or 0,
                actor=request.user,
            )
        except ValidationError as error:
            _show_errors(form, error)
        else:
            messages.success(request, _("Custom field “%(key)s” was created.") % {"key": definition.key})
            return redirect("customers:settings_fields")
    context = {
        "nav": "settings",
        "section": "fields",
        "form": form,
        "definitions": custom_field_definitions(active_only=False),
        "language": get_language() or "en",
    }
    return render(request, "customers/settings/fields.html", context)


@settings_page
def settings_field_edit_view(request, pk: int):
    definition = get_object_or_404(custom_field_definitions(active_only=False), pk=pk)
    initial = {
        "label_zh": definition.label_zh,
        "label_en": definition.label_en,
        "required": definition.required,
        "position": definition.position,
        "is_active": definition.is_active,
        "choices_text": "\n".join(definition.choices),
    }
    form = CustomFieldForm(request.POST or None, initial=initial, definition=definition)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            custom_field_update(
                definition=definition,
                actor=request.user,
                label_zh=data["label_zh"],
                label_en=data["label_en"],
                choices=form.choices if definition.field_type in CHOICE_TYPES else None,
                required=data["required"],
                position=data["position"] or 0,
                is_active=data["is_active"],
            )
        except ValidationError as error:
            _show_errors(form, error)
        else:
            messages.success(request, _("Custom field “%(key)s” was saved.") % {"key": definition.key})
            return redirect("customers:settings_fields")
    context = {
        "nav": "settings",
        "section": "fields",
        "form": form,
        "definition": definition,
        "has_choices": definition.field_type in CHOICE_TYPES,
    }
    return render(request, "customers/settings/field_edit.html", context)


@require_POST
@settings_page
def settings_field_active_view(request, pk: int):
    """Deactivate (or reactivate) a custom field: hidden from forms, stored values kept."""
    definition = get_object_or_404(custom_field_definitions(active_only=False), pk=pk)
    custom_field_update(definition=definition, actor=request.user, is_active=not definition.is_active)
    if definition.is_active:
        messages.success(request, _("Custom field “%(key)s” was activated.") % {"key": definition.key})
    else:
        messages.success(request, _("Custom field “%(key)s” was deactivated.") % {"key": definition.key})
    return redirect("customers:settings_fields")


def _example(values: dict, next_sequence: int) -> str:
    """The next number under a scheme that is being edited (not saved)."""
    scheme = NumberingScheme(
        prefix=str(values.get("prefix") or "").strip().upper()[:6],
        date_part=values.get("date_part") or "",
        sequence_width=min(max(int(values.get("sequence_width") or 6), 3), 12),
        check_digit=bool(values.get("check_digit")),
    )
    return format_number(scheme, next_sequence, timezone.localdate())


@settings_page
def settings_numbering_view(request):
    scheme = scheme_get()
    initial = {
        "prefix": scheme.prefix,
        "date_part": scheme.date_part,
        "sequence_width": scheme.sequence_width,
        "check_digit": scheme.check_digit,
    }
    form = NumberingForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            numbering_scheme_update(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _show_errors(form, error)
        else:
            messages.success(
                request,
                _("The numbering scheme was saved. New customers get numbers like %(example)s.")
                % {"example": format_number(scheme_get(), scheme_get().next_sequence, timezone.localdate())},
            )
            return redirect("customers:settings_numbering")
    context = {
        "nav": "settings",
        "section": "numbering",
        "form": form,
        "scheme": scheme,
        "example": format_number(scheme, scheme.next_sequence, timezone.localdate()),
    }
    return render(request, "customers/settings/numbering.html", context)


@settings_page
def settings_numbering_example_view(request):
    """The live example under the numbering form (htmx): what the next number would look like."""
    form = NumberingForm(request.GET)
    example = _example(form.cleaned_data, scheme_get().next_sequence) if form.is_valid() else "—"
    return render(request, "customers/settings/_example.html", {"example": example})
