from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from cim.accounts.models import ApiToken


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, required=False, help_text=_("What the token is for, e.g. the ERP sync.")
    )
    scope = forms.ChoiceField(
        label=_("Scope"),
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        help_text=_("Read only: GET requests. Read and write: every request your role allows."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read when the form is built, so the settings can change without a restart of the test process.
        self.fields["days"] = forms.IntegerField(
            label=_("Expires after (days)"),
            min_value=1,
            max_value=settings.CIM_API_TOKEN_MAX_DAYS,
            initial=settings.CIM_API_TOKEN_DAYS,
        )
