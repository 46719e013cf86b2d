"""The login forms, ours and the Django admin's: Django's, with the username's length checked.

Django's AuthenticationForm sets the username field's max_length after creating it, so no
validator checks it: a 70,000-character username reached authenticate(), and django-axes then
wrote it to a 255-character column (a 500 on PostgreSQL). Checked here, it is a form error.
"""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class _UsernameLengthChecked:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


class LoginForm(_UsernameLengthChecked, AuthenticationForm):
    pass


class AdminLoginForm(_UsernameLengthChecked, AdminAuthenticationForm):
    pass
