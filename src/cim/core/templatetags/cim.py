"""Template helpers of the pages: role checks, the main menu, Bootstrap form widgets, readable tag badges."""

from functools import cache, lru_cache
from html import escape
from urllib.parse import quote

from django import forms, template
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, override

from cim.accounts.roles import ROLE_PERMISSIONS, has_perm

register = template.Library()


@register.filter
def can(user, perm: str) -> bool:
    """`{% if request.user|can:"settings.manage" %}`: the same check the views make."""
    return has_perm(user, perm)


@register.simple_tag(takes_context=True)
def main_menu(context) -> SafeString:
    """The navigation bar's menu. It depends only on the role, the language and the page, so each process renders
    it once per such triple: 25 links and 13 permission checks took 2–3 ms of every page."""
    user = context["request"].user
    return _main_menu(user.role if user.is_active else "", get_language(), context.get("nav", ""))


@lru_cache(maxsize=512)
def _main_menu(role: str, language: str | None, nav: str) -> SafeString:
    with override(language):
        granted = ROLE_PERMISSIONS.get(role, frozenset())
        return render_to_string("core/_main_menu.html", {"granted": granted, "nav": nav})


@register.simple_tag
def options(choices) -> SafeString:
    """`{% options choices %}`: the escaped `<option>` elements of (value, label, selected) triples. The list page's
    filter form has over a hundred; written by the template engine, they cost 6 % of the whole page's work."""
    # html.escape is what Django's escape calls, without wrapping each value in a SafeString.
    return mark_safe(
        "".join(
            f'<option value="{escape(str(value))}"{" selected" if on else ""}>{escape(str(label))}</option>'
            for value, label, on in choices
        )
    )


@register.filter
def customer_url(number: str) -> str:
    """`{{ customer.number|customer_url }}`: what `{% url 'customers:detail' number %}` gives, from the address
    reversed once per script prefix: a list reversed it for each of its rows, a tenth of the rows' work."""
    return _customers_url(get_script_prefix()) + quote(number, safe="!$&'()*+,;=~:@") + "/"


@lru_cache(maxsize=8)
def _customers_url(script_prefix: str) -> str:
    return reverse("customers:detail", args=["0"]).removesuffix("0/")


@register.filter
def among(value: str, names: str) -> bool:
    """`{% if nav|among:"campaigns messages" %}`: whether `value` is one of the space-separated names."""
    return bool(value) and value in names.split()


@register.filter
def choice_label(instance, name: str):
    """`{{ customer|choice_label:"lifecycle_stage" }}`: what `get_lifecycle_stage_display` shows, from the field's
    labels read once per language. Django's builds and hashes the whole list of choices on every call: 2 ms for the
    two such columns of a list page."""
    value = getattr(instance, name)
    return _choice_labels(type(instance), name, get_language()).get(value, value)


@cache
def _choice_labels(model, name: str, language: str | None) -> dict:
    return {value: str(label) for value, label in model._meta.get_field(name).flatchoices}


@register.filter(expects_localtime=True)
def minute(value) -> str:
    """`{{ when|minute }}`: the local time as `date:"Y-m-d H:i"` shows it, for tables and feeds of many rows, where
    the date filter's formatting in Python cost a tenth of a list page; strftime does it in C."""
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@register.filter(expects_localtime=True)
def iso(value) -> str:
    """`{{ when|iso }}`: ISO 8601 in local time, as `date:"c"` gives it (for `<time datetime>`), without its cost."""
    return value.isoformat() if value else ""


@register.filter
def text_color(background: str) -> str:
    """Black or white, whichever reads better on a `#rrggbb` tag colour."""
    try:
        red, green, blue = (int(background.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    except (ValueError, AttributeError):
        return "#fff"
    # Relative luminance, simplified (ITU-R BT.601 weights).
    return "#000" if (0.299 * red + 0.587 * green + 0.114 * blue) > 150 else "#fff"


def _css_class(widget) -> str:
    if isinstance(widget, forms.CheckboxInput):
        return "form-check-input"
    if isinstance(widget, forms.CheckboxSelectMultiple | forms.RadioSelect):
        return ""
    if isinstance(widget, forms.Select):
        return "form-select"
    return "form-control"


@register.filter
def bs(field):
    """A bound field's widget with Bootstrap's classes, marked invalid when it has errors."""
    widget = field.field.widget
    classes = [widget.attrs.get("class", ""), _css_class(widget)]
    if field.errors:
        classes.append("is-invalid")
    return field.as_widget(attrs={"class": " ".join(c for c in classes if c)})


@register.filter
def is_checkbox(field) -> bool:
    return isinstance(field.field.widget, forms.CheckboxInput)


@register.filter
def is_multi_checkbox(field) -> bool:
    return isinstance(field.field.widget, forms.CheckboxSelectMultiple)


@register.filter
def attr_value(obj, name: str):
    """`{{ filters|attr_value:name }}`: an attribute named by a variable."""
    return getattr(obj, name, None)


@register.filter
def get_item(mapping, key):
    """`{{ row.errors|get_item:name }}`: a dict entry named by a variable."""
    return mapping.get(key) if hasattr(mapping, "get") else None
