"""Login and password pages; Django's auth views do the work, CIM adds the one-time password rule."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy
from django.utils.translation import gettext as _

from cim.accounts.services import user_password_changed


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_success_url(self):
        # A one-time password is changed before anything else.
        if self.request.user.must_change_password:
            return reverse_lazy("password_change")
        return super().get_success_url()


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("customers:list")

    def form_valid(self, form):
        response = super().form_valid(form)
        user_password_changed(user=self.request.user)
        messages.success(self.request, _("Your password has been changed."))
        return response
