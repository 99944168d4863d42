"""The forms of the service pages. They check shapes; the services check the rules."""

from django import forms
from django.utils.translation import gettext_lazy as _

from cim.accounts.models import Team
from cim.service import choices as c
from cim.service.selectors import ticket_handlers
from cim.service.services import MAX_BODY, MAX_REASON, MAX_SUBJECT


def _handler_choice(label) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(queryset=ticket_handlers(), required=False, label=label, empty_label=_("Nobody"))


def _team_choice(label) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False, label=label)


class TicketForm(forms.Form):
    customer = forms.CharField(max_length=40, label=_("Customer number"))
    subject = forms.CharField(max_length=MAX_SUBJECT, label=_("Subject"))
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False, max_length=MAX_BODY, label=_("Description")
    )
    channel = forms.ChoiceField(choices=c.Channel.choices, label=_("Channel"))
    category = forms.ChoiceField(choices=c.Category.choices, label=_("Category"), initial=c.Category.COMPLAINT)
    priority = forms.ChoiceField(choices=c.Priority.choices, label=_("Priority"), initial=c.Priority.NORMAL)
    assignee = _handler_choice(_("Assignee"))
    team = _team_choice(_("Team"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = ticket_handlers()
        self.fields["team"].help_text = _("Empty: the assignee's team, else yours.")


class MessageForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=MAX_BODY, label=_("Message"))
    kind = forms.ChoiceField(choices=c.MessageKind.choices)
    email_customer = forms.BooleanField(required=False, initial=True, label=_("Email the reply to the customer"))
    then = forms.ChoiceField(
        choices=[("", _("Keep the status")), (c.Status.WAITING, _("Then wait on the customer"))],
        required=False,
        label=_("Then"),
    )


class TransitionForm(forms.Form):
    status = forms.ChoiceField(choices=c.Status.choices)
    resolution_code = forms.ChoiceField(
        choices=[("", "—"), *c.ResolutionCode.choices], required=False, label=_("Resolution")
    )


class AssignForm(forms.Form):
    assignee = _handler_choice(_("Assignee"))
    team = _team_choice(_("Team"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = ticket_handlers()


class EscalateForm(forms.Form):
    reason = forms.CharField(max_length=MAX_REASON, label=_("Reason"))
    assignee = _handler_choice(label=_("Hand over to"))
    team = _team_choice(label=_("Hand over to team"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = ticket_handlers()
        self.fields["assignee"].empty_label = _("Keep the assignee")
        self.fields["team"].empty_label = _("Keep the team")


class SurveySendForm(forms.Form):
    kind = forms.ChoiceField(choices=c.SurveyKind.choices, label=_("Survey"))
    channel = forms.ChoiceField(choices=c.SurveyChannel.choices, label=_("Send by"))


_MINUTES = forms.NumberInput(attrs={"class": "form-control form-control-sm", "style": "max-width: 9rem"})


class SlaPolicyForm(forms.Form):
    """One priority's row on the SLA settings page (prefixed with the priority)."""

    first_response_minutes = forms.IntegerField(
        min_value=1, max_value=1_000_000, label=_("First response (minutes)"), widget=_MINUTES
    )
    resolution_minutes = forms.IntegerField(
        min_value=1, max_value=1_000_000, label=_("Resolution (minutes)"), widget=_MINUTES
    )
    business_hours_only = forms.BooleanField(
        required=False, label=_("Business hours only"), widget=forms.CheckboxInput(attrs={"class": "form-check-input"})
    )
