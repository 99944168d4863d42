from allauth.account import views as allauth_views
from django.urls import include, path
from django.views.generic import RedirectView

from cim.accounts import views

urlpatterns = [
    # CIM's older names for allauth's pages (links, bookmarks, `reverse("login")`): the same views at the same paths.
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("password/", RedirectView.as_view(pattern_name="account_change_password"), name="password_change"),
    # django-allauth: /login/, /logout/, /password/change/, /password/reset/…, /reauthenticate/, /2fa/…
    path("", include("allauth.urls")),
    path("account/tokens/", views.api_token_list, name="api_tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
]
