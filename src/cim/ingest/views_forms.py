"""Collection forms: the builder and submission list for administrators, and the public pages visitors fill in.

The public pages need no login and may be framed on another site (the embed snippet). A cross-site frame gets
no cookies, so they use none: no CSRF cookie (abuse is met by rate limits, a honeypot and verification instead),
no session, and the language comes from the browser or `?lang=`.
"""

import ipaddress
import logging
import math

from csp.decorators import csp_replace
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import get_usage

from cim.accounts.roles import Perm
from cim.core.blind_index import blind_index
from cim.core.context import request_id
from cim.core.views import page
from cim.customers.choices import Gender, SourceChannel
from cim.ingest.collection import (
    CHANNEL_FIELD,
    CODE_TTL,
    FIELD_SPECS,
    LINK_TTL,
    MAX_ATTEMPTS,
    MAX_LABEL,
    FormInput,
    Outcome,
    collection_form_create,
    collection_form_update,
    email_link_submission,
    field_item,
    form_submission_clean,
    form_submission_receive,
    submission_from_step_token,
    submission_step_token,
    verification_check_code,
    verification_confirm_link,
    verification_resend,
)
from cim.ingest.models import CollectionForm, FormSubmission, VerificationChallenge
from cim.privacy.models import ConsentPurpose

logger = logging.getLogger(__name__)

form_admin_page = page(perm=Perm.SETTINGS_MANAGE)
SUBMISSIONS_PER_PAGE = 50
HONEYPOT = "website"
BUILDER_SETTINGS = (
    "name",
    "slug",
    "title_zh",
    "title_en",
    "verify",
    "source_channel",
    "consent_purpose",
    "consent_version",
    "consent_text_zh",
    "consent_text_en",
    "is_active",
)


# --- administrators: build forms, read submissions


class BuilderForm(forms.Form):
    """A collection form's settings, and per customer field: asked?, required?, its labels."""

    name = forms.CharField(max_length=100, label=gettext_lazy("Name"), help_text=gettext_lazy("Shown to staff only."))
    slug = forms.SlugField(
        max_length=50,
        label=gettext_lazy("Web address"),
        help_text=gettext_lazy("The end of the public address, e.g. spring-fair: lower-case letters, digits, hyphens."),
    )
    title_zh = forms.CharField(max_length=200, label=gettext_lazy("Title (Chinese)"))
    title_en = forms.CharField(max_length=200, label=gettext_lazy("Title (English)"))
    verify = forms.ChoiceField(choices=CollectionForm.Verify.choices, label=gettext_lazy("Verification"))
    source_channel = forms.ChoiceField(
        choices=SourceChannel.choices, label=pgettext_lazy("collection form", "Source channel")
    )
    consent_purpose = forms.ChoiceField(choices=ConsentPurpose.choices, label=gettext_lazy("Consent purpose"))
    consent_version = forms.CharField(
        max_length=30,
        label=gettext_lazy("Consent text version"),
        help_text=gettext_lazy("Give a new version whenever the text changes, e.g. 2025-01."),
    )
    consent_text_zh = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label=gettext_lazy("Consent text (Chinese)")
    )
    consent_text_en = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label=gettext_lazy("Consent text (English)")
    )
    is_active = forms.BooleanField(required=False, label=gettext_lazy("Active: the public address accepts submissions"))

    def __init__(self, *args, current_fields: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        asked = {item["field"]: item for item in current_fields}
        for key, spec in FIELD_SPECS.items():
            item = asked.get(key) or field_item(key, required=False)
            # The table's column headings say what each input is; screen readers get it from aria-label.
            for name, initial, column in (
                ("include", key in asked, gettext_lazy("Ask")),
                ("required", item["required"], gettext_lazy("Required")),
            ):
                widget = forms.CheckboxInput(attrs={"aria-label": format_lazy("{}: {}", spec.label, column)})
                self.fields[f"{key}_{name}"] = forms.BooleanField(required=False, initial=initial, widget=widget)
            for language, column in (("zh", gettext_lazy("Label (Chinese)")), ("en", gettext_lazy("Label (English)"))):
                widget = forms.TextInput(attrs={"aria-label": format_lazy("{}: {}", spec.label, column)})
                self.fields[f"{key}_label_{language}"] = forms.CharField(
                    max_length=MAX_LABEL, required=False, initial=item[f"label_{language}"], widget=widget
                )

    def setting_fields(self):
        return [self[name] for name in BUILDER_SETTINGS]

    def field_rows(self):
        """One row per customer field, for the builder's table."""
        return [
            {
                "label": spec.label,
                "include": self[f"{key}_include"],
                "required": self[f"{key}_required"],
                "label_zh": self[f"{key}_label_zh"],
                "label_en": self[f"{key}_label_en"],
            }
            for key, spec in FIELD_SPECS.items()
        ]

    def form_input(self) -> FormInput:
        data = self.cleaned_data
        return FormInput(
            **{name: data[name] for name in BUILDER_SETTINGS},
            fields=[
                {
                    "field": key,
                    "required": data[f"{key}_required"],
                    "label_zh": data[f"{key}_label_zh"],
                    "label_en": data[f"{key}_label_en"],
                }
                for key in FIELD_SPECS
                if data[f"{key}_include"]
            ],
        )


def _builder_save(request, builder: BuilderForm, form: CollectionForm | None):
    """Save a valid builder through the service; None when the service refused it (its errors are on the builder)."""
    try:
        if form is None:
            return collection_form_create(data=builder.form_input(), actor=request.user)
        return collection_form_update(form=form, data=builder.form_input(), actor=request.user)
    except ValidationError as error:
        for key, problems in error.message_dict.items():
            builder.add_error(key if key in builder.fields else None, problems)
    return None


@form_admin_page
def form_list_view(request):
    collection_forms = CollectionForm.objects.annotate(
        submission_count=Count("submissions"),
        confirmed_count=Count("submissions", filter=Q(submissions__status=FormSubmission.Status.CONFIRMED)),
    )
    context = {"nav": "settings", "section": "forms", "collection_forms": collection_forms}
    return render(request, "ingest/forms/list.html", context)


@form_admin_page
def form_create_view(request):
    initial = {"verify": CollectionForm.Verify.SMS, "source_channel": SourceChannel.WEBSITE, "is_active": True}
    defaults = [field_item("display_name", True), field_item("phone", True)]
    builder = BuilderForm(request.POST or None, initial=initial, current_fields=defaults)
    if request.method == "POST" and builder.is_valid() and (form := _builder_save(request, builder, None)):
        messages.success(request, _("Form “%(name)s” was created.") % {"name": form.name})
        return redirect("ingest:form_edit", pk=form.pk)
    context = {"nav": "settings", "section": "forms", "builder": builder}
    return render(request, "ingest/forms/builder.html", context)


@form_admin_page
def form_edit_view(request, pk: int):
    form = get_object_or_404(CollectionForm, pk=pk)
    initial = {name: getattr(form, name) for name in BUILDER_SETTINGS}
    builder = BuilderForm(request.POST or None, initial=initial, current_fields=form.fields)
    if request.method == "POST" and builder.is_valid() and _builder_save(request, builder, form):
        messages.success(request, _("Form “%(name)s” was saved.") % {"name": form.name})
        return redirect("ingest:form_edit", pk=form.pk)
    public_url = request.build_absolute_uri(reverse("ingest:public_form", kwargs={"slug": form.slug}))
    context = {
        "nav": "settings",
        "section": "forms",
        "builder": builder,
        "form": form,
        "public_url": public_url,
        "submission_count": form.submissions.count(),
    }
    return render(request, "ingest/forms/builder.html", context)


@form_admin_page
def form_submissions_view(request, pk: int):
    form = get_object_or_404(CollectionForm, pk=pk)
    submissions = form.submissions.select_related("customer").prefetch_related("challenges").order_by("-id")
    page_obj = Paginator(submissions, SUBMISSIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "nav": "settings",
        "section": "forms",
        "form": form,
        "page_obj": page_obj,
        "columns": [(item["field"], item["label_zh"] if _is_zh() else item["label_en"]) for item in form.fields],
    }
    return render(request, "ingest/forms/submissions.html", context)


def _is_zh() -> bool:
    return (translation.get_language() or "").startswith("zh")


# --- visitors: the public form, the verification step, the email link


class PublicForm(forms.Form):
    """The fields a collection form asks, labelled in the page's language. The service does the validating."""

    def __init__(self, collection: CollectionForm, language: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        suffix = "zh" if language.startswith("zh") else "en"
        for item in collection.fields:
            self.fields[item["field"]] = _public_field(item["field"], item[f"label_{suffix}"], item["required"])
        self.fields["consent"] = forms.BooleanField(required=False)

    def customer_fields(self):
        return [self[name] for name in self.fields if name != "consent"]

    def show_errors(self, errors: dict[str, list[str]]) -> None:
        for key, problems in errors.items():
            self.add_error(key if key in self.fields else None, problems)


def _public_field(key: str, label: str, required: bool) -> forms.Field:
    # `required` only as an attribute, for the asterisk: errors come from the service, in one place and language.
    attrs = {"required": True} if required else {}
    if key == "gender":
        choices = [("", "—"), *((value, name) for value, name in Gender.choices if value)]
        return forms.ChoiceField(choices=choices, label=label, required=False, widget=forms.Select(attrs=attrs))
    widgets = {
        "display_name": forms.TextInput(attrs={**attrs, "autocomplete": "name"}),
        "phone": forms.TextInput(attrs={**attrs, "type": "tel", "inputmode": "tel", "autocomplete": "tel"}),
        "email": forms.EmailInput(attrs={**attrs, "autocomplete": "email"}),
        "company": forms.TextInput(attrs={**attrs, "autocomplete": "organization"}),
        "job_title": forms.TextInput(attrs={**attrs, "autocomplete": "organization-title"}),
        "birthday": forms.DateInput(attrs={**attrs, "type": "date", "autocomplete": "bday"}),
    }
    return forms.CharField(label=label, required=False, widget=widgets[key])


def client_ip(request) -> str | None:
    """The visitor's address: from `CIM_CLIENT_IP_HEADER` behind a proxy (its last entry, the one the proxy added)."""
    header = settings.CIM_CLIENT_IP_HEADER
    forwarded = request.META.get(header, "").split(",")[-1].strip() if header else ""
    for candidate in (forwarded, request.META.get("REMOTE_ADDR", "")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def _rate_key(ip: str | None) -> str:
    if ip and ":" in ip:
        # One IPv6 subscriber gets a whole /64.
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return ip or "unknown"


def _over_limit(request, group: str, rate: str, value: str) -> int | None:
    """Count this request under (group, value); the seconds until the limit resets when it is over, else None."""
    usage = get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        return max(usage["time_left"], 1)
    return None


def _contacts_over_limit(request, target_hashes) -> int | None:
    """Count a message (or submission) for each phone or email, by keyed hash; over the limit for any → seconds."""
    waits = [
        wait
        for target in target_hashes
        if (wait := _over_limit(request, "forms.contact", settings.CIM_FORM_RATE_PER_CONTACT, target))
    ]
    return max(waits) if waits else None


def _language(request, default: str = "") -> str:
    """`?lang=` (or the posted `lang`) when it names a language, else `default`, else the browser's."""
    wanted = request.GET.get("lang") or request.POST.get("lang") or default
    return wanted if wanted in dict(settings.LANGUAGES) else translation.get_language()


def _render(request, template: str, context: dict, language: str, status: int = 200):
    with translation.override(language):
        response = render(request, template, {**context, "language": language}, status=status)
    response["Content-Language"] = language
    return response


def _unavailable(request, language: str, message):
    """A 404 page saying why; `message` is lazy, so it renders in `language`."""
    return _render(request, "ingest/forms/unavailable.html", {"message": message}, language, status=404)


def _too_many(request, language: str, seconds: int, per_contact: bool):
    minutes = math.ceil(seconds / 60)
    with translation.override(language):
        if per_contact:
            message = ngettext(
                "Too many messages were sent to this phone number or email address. "
                "Please try again in %(minutes)s minute.",
                "Too many messages were sent to this phone number or email address. "
                "Please try again in %(minutes)s minutes.",
                minutes,
            )
        else:
            message = ngettext(
                "Too many submissions came from your network. Please try again in %(minutes)s minute.",
                "Too many submissions came from your network. Please try again in %(minutes)s minutes.",
                minutes,
            )
    response = _render(request, "ingest/forms/limited.html", {"message": message % {"minutes": minutes}}, language, 429)
    response["Retry-After"] = str(seconds)
    return response


def _site_url(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _step_url(submission: FormSubmission, **query) -> str:
    url = reverse("ingest:form_step", kwargs={"slug": submission.form.slug, "token": submission_step_token(submission)})
    return f"{url}?{urlencode(query)}" if query else url


@csrf_exempt
@xframe_options_exempt
@csp_replace({"frame-ancestors": None})  # embeddable on the business's own sites
def public_form_view(request, slug: str):
    collection = CollectionForm.objects.filter(slug=slug, is_active=True).first()
    language = _language(request)
    if collection is None:
        return _unavailable(request, language, gettext_lazy("This form is not available."))
    with translation.override(language):
        form = PublicForm(collection, language, request.POST if request.method == "POST" else None)
        if request.method == "POST":
            ip = client_ip(request)
            if wait := _over_limit(request, "forms.submit.ip", settings.CIM_FORM_RATE_PER_IP, _rate_key(ip)):
                return _too_many(request, language, wait, per_contact=False)
            if request.POST.get(HONEYPOT):
                # A bot: it is shown the usual thanks and nothing is stored.
                logger.warning(
                    "collection form %s: honeypot filled, submission dropped (request %s)", slug, request_id()
                )
                return _render(request, "ingest/forms/done.html", {"form": collection}, language)
            values = {item["field"]: request.POST.get(item["field"], "") for item in collection.fields}
            consent = bool(request.POST.get("consent"))
            cleaned, errors = form_submission_clean(form=collection, values=values, consent=consent)
            if not errors:
                contacts = [blind_index(kind, cleaned[kind]) for kind in ("phone", "email") if kind in cleaned]
                if wait := _contacts_over_limit(request, contacts):
                    return _too_many(request, language, wait, per_contact=True)
                try:
                    submission = form_submission_receive(
                        form=collection,
                        values=values,
                        consent=consent,
                        ip=ip,
                        user_agent=request.headers.get("User-Agent", ""),
                        language=language,
                        site_url=_site_url(request),
                    )
                except ValidationError as error:
                    errors = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
                else:
                    return HttpResponseRedirect(_step_url(submission))
            form.show_errors(errors)
        context = {
            "form": collection,
            "public_form": form,
            "consent_text": collection.consent_text(language),
            "honeypot": HONEYPOT,
        }
        return _render(request, "ingest/forms/public.html", context, language)


def _masked_phone(raw: str) -> str:
    digits = [c for c in raw if c.isdigit()]
    return "•••• " + "".join(digits[-4:])


def _masked_email(raw: str) -> str:
    local, _at, domain = raw.partition("@")
    return f"{local[:1]}•••@{domain}"


CODE_MESSAGES = {
    Outcome.EXPIRED: gettext_lazy("This code has expired. Ask for a new one."),
    Outcome.CLOSED: gettext_lazy("This submission is no longer waiting for a code."),
}


@csrf_exempt
@xframe_options_exempt
@csp_replace({"frame-ancestors": None})
def public_step_view(request, slug: str, token: str):
    """After submitting: enter the SMS code, wait for the email link, or read the thanks."""
    submission = submission_from_step_token(token)
    language = _language(request, default=submission.language if submission else "")
    if submission is None or submission.form.slug != slug:
        return _unavailable(request, language, gettext_lazy("This link is not valid, or it has expired."))
    error = ""
    with translation.override(language):
        if request.method == "POST" and request.POST.get("action") == "code":
            outcome = verification_check_code(submission=submission, code=request.POST.get("code", ""))
            if outcome in (Outcome.VERIFIED, Outcome.LOCKED):
                return HttpResponseRedirect(_step_url(submission))
            if outcome == Outcome.WRONG:
                left = MAX_ATTEMPTS - submission.challenges.get(channel=VerificationChallenge.Channel.SMS).attempts
                error = ngettext(
                    "That code is not right. You have %(n)s more try.",
                    "That code is not right. You have %(n)s more tries.",
                    left,
                ) % {"n": left}
            else:
                error = CODE_MESSAGES[outcome]
        elif request.method == "POST" and request.POST.get("action") == "resend":
            channel = request.POST.get("channel", "")
            challenge = submission.challenges.filter(channel=channel, verified_at__isnull=True).first()
            if challenge is not None:
                if wait := _contacts_over_limit(request, [challenge.target_hash]):
                    return _too_many(request, language, wait, per_contact=True)
                verification_resend(submission=submission, channel=channel, site_url=_site_url(request))
            return HttpResponseRedirect(_step_url(submission, sent=channel))
        submission.refresh_from_db()
        challenges = {c.channel: c for c in submission.challenges.all()}
        context = {
            "form": submission.form,
            "submission": submission,
            "sms": challenges.get(VerificationChallenge.Channel.SMS),
            "email": challenges.get(VerificationChallenge.Channel.EMAIL),
            "phone": _masked_phone(submission.raw.get(CHANNEL_FIELD["sms"], "")),
            "email_address": _masked_email(submission.raw.get(CHANNEL_FIELD["email"], "")),
            "error": error,
            "sent": (resent := challenges.get(request.GET.get("sent", ""))) is not None and not resent.verified_at,
            "form_url": reverse("ingest:public_form", kwargs={"slug": slug}),
            "code_minutes": int(CODE_TTL.total_seconds() // 60),
            "link_hours": int(LINK_TTL.total_seconds() // 3600),
        }
        return _render(request, "ingest/forms/step.html", context, language)


LINK_MESSAGES = {
    Outcome.EXPIRED: gettext_lazy("This link has expired. Fill in the form again, or ask for a new email."),
    Outcome.INVALID: gettext_lazy("This link is not valid. If you asked for a new email, use the newest one."),
    Outcome.CLOSED: gettext_lazy("This submission is no longer waiting for confirmation."),
}


@csrf_exempt
@xframe_options_exempt
@csp_replace({"frame-ancestors": None})
def public_email_link_view(request, slug: str, token: str):
    """The double opt-in link. Opening it shows a button: mail scanners that open links must not confirm."""
    submission, problem = email_link_submission(token)
    language = _language(request, default=submission.language if submission else "")
    if submission is None or submission.form.slug != slug:
        return _unavailable(request, language, LINK_MESSAGES[problem or Outcome.INVALID])
    if request.method == "POST":
        submission, outcome = verification_confirm_link(token=token)
        if outcome == Outcome.VERIFIED:
            return HttpResponseRedirect(_step_url(submission))
        return _unavailable(request, language, LINK_MESSAGES[outcome])
    return _render(request, "ingest/forms/email_link.html", {"form": submission.form}, language)
