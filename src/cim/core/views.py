"""What every page shares: the login gate, the forced password change, permission checks and 403s."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from cim.accounts.roles import has_perm
from cim.customers.services import PermissionDenied as ServicePermissionDenied
from cim.customers.services import ReadOnlyShare


def page(view=None, *, perm: str | None = None):
    """Wrap a page view: login required, a pending password change first, `perm` (if given) or 403.

    A service's own PermissionDenied becomes a 403 too, so a page never shows a 500 for a role check.
    """

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            if request.user.must_change_password:
                return redirect("account_change_password")
            if perm is not None and not has_perm(request.user, perm):
                raise PermissionDenied(_("Your role does not allow this."))
            try:
                return view(request, *args, **kwargs)
            except ReadOnlyShare:
                raise PermissionDenied(_("This customer is shared with your team for reading only.")) from None
            except ServicePermissionDenied:
                raise PermissionDenied(_("Your role does not allow this.")) from None

        return wrapper

    return decorate(view) if view is not None else decorate


def require(request, perm: str) -> None:
    """403 unless the user's role grants `perm` (for pages where only some actions need it)."""
    if not has_perm(request.user, perm):
        raise PermissionDenied(_("Your role does not allow this."))


def safe_next(request, fallback: str) -> str:
    """The `next` URL the form sent when it points back into this site, else `fallback`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback
