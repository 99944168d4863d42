from ninja.security import HttpBearer, SessionAuth

from cim.accounts.services import api_token_authenticate


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cim_…` with a token from `cim token create USER`."""

    def authenticate(self, request, token: str):
        user = api_token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class BrowserSessionAuth(SessionAuth):
    """The logged-in browser session (CSRF-checked), so pages can call the API."""


API_AUTH = [TokenAuth(), BrowserSessionAuth()]
