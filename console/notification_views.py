"""The account's Notifications page (linked from the header): the alert emails, on or off."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from alerts import services
from alerts.selectors import alerts_wanted
from console.notification_forms import NotificationsForm
from console.permissions import membership_or_404


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request):
    membership = membership_or_404(request)
    initial = {"email": request.user.email, "email_endpoint_alerts": alerts_wanted(membership=membership)}
    form = NotificationsForm(data=request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            request.user.email = form.cleaned_data["email"]
            request.user.save(update_fields=["email"])
            services.alert_preference_set(membership=membership,
                                          email_endpoint_alerts=form.cleaned_data["email_endpoint_alerts"])
        messages.success(request, "Saved your notification settings.")
        return redirect("console:notifications")
    return render(request, "console/alerts/notifications.html", {"form": form}, status=400 if form.errors else 200)
