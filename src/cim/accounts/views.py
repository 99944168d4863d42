"""The API token page; login, MFA and passwords are django-allauth's pages (see urls.py and docs/security.md)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cim.accounts.forms import ApiTokenForm
from cim.accounts.selectors import api_token_list as tokens_of
from cim.accounts.services import api_token_create, api_token_revoke
from cim.core.views import page


@page
def api_token_list(request):
    """List the user's tokens and create one; a new token's secret is shown on this response only."""
    created = raw = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created, raw = api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                days=form.cleaned_data["days"],
                actor=request.user,
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            form = ApiTokenForm()
    response = render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": tokens_of(user=request.user), "created": created, "raw": raw, "nav": "tokens"},
    )
    # The secret must not linger in a cache or the browser's history.
    response["Cache-Control"] = "no-store"
    return response


@page
@require_POST
def api_token_revoke_view(request, token_id: int):
    token = get_object_or_404(tokens_of(user=request.user), pk=token_id)
    api_token_revoke(token=token, actor=request.user)
    messages.success(request, _("Token %(prefix)s… revoked.") % {"prefix": token.prefix})
    return redirect("api_tokens")
