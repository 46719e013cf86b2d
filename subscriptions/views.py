from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from organisations.selectors import membership_for_user
from subscriptions.selectors import subscription_list as select_subscriptions


@login_required
def subscription_list(request):
    membership = membership_for_user(user=request.user)
    subscriptions = select_subscriptions(organisation=membership.organisation) if membership else []
    return render(request, "subscriptions/list.html", {"subscriptions": subscriptions})
