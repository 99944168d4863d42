from ninja.security import HttpBearer, SessionAuth

from cim.accounts.models import ApiToken
from cim.accounts.services import api_token_authenticate

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenScopeDenied(Exception):
    """A read-only token was used for a write (POST, PUT, PATCH, DELETE)."""


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cim_…` with a token from the token page, the API or `cim token create USER`.

    Unknown tokens fall through to the session (then 401); revoked and expired ones are refused with their own
    code (TokenRefused); read-only tokens may only read (TokenScopeDenied, 403).
    """

    def authenticate(self, request, token: str):
        api_token = api_token_authenticate(token)
        if api_token is None:
            return None
        if api_token.scope == ApiToken.Scope.READ and request.method not in SAFE_METHODS:
            raise TokenScopeDenied
        request.user = api_token.user
        request.api_token = api_token
        return api_token.user


class BrowserSessionAuth(SessionAuth):
    """The logged-in browser session (CSRF-checked), so pages can call the API."""


API_AUTH = [TokenAuth(), BrowserSessionAuth()]
