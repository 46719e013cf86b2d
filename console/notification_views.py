"""The account's Notifications page (linked from the header): the alert emails of each organisation, on or off."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from alerts import services
from alerts.selectors import alerts_wanted
from console.notification_forms import NotificationsForm
from organisations.selectors import memberships_for_user


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request):
    memberships = memberships_for_user(user=request.user)
    if not memberships:
        raise Http404("You are not a member of an organisation.")
    initial = {"email": request.user.email,
               **{NotificationsForm.field_name(m): alerts_wanted(membership=m) for m in memberships}}
    form = NotificationsForm(data=request.POST or None, initial=initial, memberships=memberships)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            request.user.email = form.cleaned_data["email"]
            request.user.save(update_fields=["email"])
            for membership, wanted in form.wanted().items():
                services.alert_preference_set(membership=membership, email_endpoint_alerts=wanted)
        messages.success(request, "Saved your notification settings.")
        return redirect("console:notifications")
    return render(request, "console/alerts/notifications.html", {"form": form, "any_on": any(
        form[form.field_name(m)].value() for m in memberships)}, status=400 if form.errors else 200)
