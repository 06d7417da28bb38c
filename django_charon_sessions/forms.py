"""The password check the users' own sessions page asks for after a while."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.utils.translation import gettext_lazy as _


class ConfirmPasswordForm(forms.Form):
    """Ask the signed-in user for their password again."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, request: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: Any = None

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        user = self.request.user
        # authenticate() rather than check_password(): other backends (LDAP,
        # rate limiters listening to user_login_failed) get their say.
        found = authenticate(self.request, username=user.get_username(), password=password)
        if found is None or found.pk != user.pk:
            raise forms.ValidationError(_("That is not your password."), code="invalid")
        self.user = found
        return password
