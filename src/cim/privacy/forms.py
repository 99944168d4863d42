from django import forms
from django.utils.translation import gettext_lazy as _

from cim.customers.choices import SourceChannel
from cim.privacy.models import (
    BreachIncident,
    ConsentPurpose,
    CrossBorderTransfer,
    IdentityMethod,
    ImpactAssessment,
    Law,
    RequestKind,
    RetentionRule,
)

DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(label=_("Purpose"), choices=ConsentPurpose.choices)
    granted = forms.TypedChoiceField(
        label=_("Decision"),
        choices=[("1", _("Consents")), ("0", _("Withdraws"))],
        coerce=lambda v: v == "1",
        initial="1",
    )
    text = forms.CharField(
        label=_("Text shown to the customer"), widget=forms.Textarea(attrs={"rows": 3}), max_length=20000
    )
    text_version = forms.CharField(label=_("Text version"), max_length=30)
    channel = forms.ChoiceField(label=_("Channel"), choices=[("", "—"), *SourceChannel.choices], required=False)


class EraseForm(forms.Form):
    confirm = forms.CharField(label=_("Type the customer number to confirm"), max_length=32)
    reason = forms.CharField(label=_("Reason"), max_length=400)

    def __init__(self, *args, number: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.number = number

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.number:
            raise forms.ValidationError(_("Type the customer number exactly to confirm."))
        return value


class RequestForm(forms.Form):
    customer = forms.CharField(label=_("Customer number"), max_length=32, required=False)
    kind = forms.ChoiceField(label=_("Kind"), choices=RequestKind.choices)
    law = forms.ChoiceField(label=_("Law"), choices=Law.choices)
    received_at = forms.DateTimeField(label=_("Received at"), widget=DATETIME, required=False)
    channel = forms.ChoiceField(label=_("Received by"), choices=[("", "—"), *SourceChannel.choices], required=False)
    details = forms.CharField(
        label=_("Details"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000
    )


class RequestActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("verify", "verify"), ("start", "start"), ("complete", "complete"), ("reject", "reject")]
    )
    identity_method = forms.ChoiceField(label=_("Identity checked by"), choices=IdentityMethod.choices, required=False)
    reason = forms.CharField(label=_("Reason for rejection"), max_length=500, required=False)
    note = forms.CharField(label=_("Note"), max_length=400, required=False)


class RetentionRuleForm(forms.ModelForm):
    class Meta:
        model = RetentionRule
        fields = ["name", "action", "days", "enabled"]


class BreachForm(forms.ModelForm):
    class Meta:
        model = BreachIncident
        fields = [
            "title",
            "detected_at",
            "nature",
            "data_categories",
            "subject_categories",
            "approx_subjects",
            "consequences",
            "measures",
            "authority_notified_at",
            "subjects_notified_at",
            "closed_at",
        ]
        widgets = {
            "detected_at": DATETIME,
            "authority_notified_at": DATETIME,
            "subjects_notified_at": DATETIME,
            "closed_at": DATETIME,
            "nature": forms.Textarea(attrs={"rows": 3}),
            "consequences": forms.Textarea(attrs={"rows": 2}),
            "measures": forms.Textarea(attrs={"rows": 3}),
        }


class TransferForm(forms.ModelForm):
    class Meta:
        model = CrossBorderTransfer
        fields = [
            "recipient",
            "country",
            "purpose",
            "legal_basis",
            "data_categories",
            "sensitive",
            "yearly_counts",
            "started_on",
            "ended_on",
            "notes",
        ]
        widgets = {"started_on": DATE, "ended_on": DATE, "notes": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"yearly_counts": _('Individuals per year, as JSON: {"2026": 1200}')}


class AssessmentForm(forms.ModelForm):
    class Meta:
        model = ImpactAssessment
        fields = ["subject", "assessed_on", "processing", "risks", "measures", "conclusion", "review_on"]
        widgets = {
            "assessed_on": DATE,
            "review_on": DATE,
            "processing": forms.Textarea(attrs={"rows": 2}),
            "risks": forms.Textarea(attrs={"rows": 3}),
            "measures": forms.Textarea(attrs={"rows": 3}),
        }


REGISTER_FORMS = {"breaches": BreachForm, "transfers": TransferForm, "assessments": AssessmentForm}
