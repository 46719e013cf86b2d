"""Administration > Webhooks: the list, as cards or a compact table, with search, filter, sort and pages.

One page of subscriptions costs a fixed number of queries (a COUNT for the pager, the
page, its activity types, and the card numbers and endpoint health of that page only), whatever the total.
Health (delivery.health_view.health_status) is an expression of the page's own query, so filtering and
sorting by it costs no extra query; by default the broken webhooks (breaker open, failing) come first.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Q, Subquery
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from console.forms import EVENT_ID
from delivery.health_view import HEALTH_CHOICES, endpoint_health_view, health_rank, health_status
from delivery.models import Delivery
from delivery.selectors import subscription_card_stats
from organisations.selectors import membership_for_user
from subscriptions.models import Subscription
from subscriptions.selectors import activity_codes
from subscriptions.selectors import subscription_list as select_subscriptions

PAGE_SIZE = 30


class ListForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    state = forms.ChoiceField(label="State", required=False, choices=[("", "All states"), *Subscription.State.choices])
    health = forms.ChoiceField(label="Health", required=False, choices=[("", "Any health"), *HEALTH_CHOICES])
    sort = forms.ChoiceField(label="Sort by", required=False, choices=[
        ("broken", "Broken first, then newest"), ("health", "Health, worst first"), ("newest", "Newest first"),
        ("oldest", "Oldest first"), ("url", "URL, A to Z"), ("last", "Last delivery, latest first"),
    ])
    view = forms.ChoiceField(label="Show as", required=False, choices=[("cards", "Cards"), ("table", "Table")])

    def value(self, name: str) -> str:
        """Return the cleaned value, or the default when missing or invalid (a stale link still shows the list)."""
        self.is_valid()
        default = {"sort": "broken", "view": "cards"}.get(name, "")
        return self.cleaned_data.get(name) or default


def _ordered(qs, sort: str):
    if sort in ("broken", "health"):
        return qs.annotate(rank=health_rank(broken_only=sort == "broken")).order_by("rank", "-created_at", "-id")
    if sort == "oldest":
        return qs.order_by("created_at", "id")
    if sort == "url":
        return qs.order_by("url", "id")
    if sort == "last":
        latest = (Delivery.objects.filter(subscription=OuterRef("pk")).order_by("-created_at", "-id")
                  .values("created_at")[:1])
        return qs.annotate(last_at=Subquery(latest)).order_by(F("last_at").desc(nulls_last=True), "-created_at")
    return qs.order_by("-created_at", "-id")


@login_required
@require_GET
def subscription_list(request):
    membership = membership_for_user(user=request.user)
    request.membership = membership
    form = ListForm(request.GET)
    context = {"form": form, "view": form.value("view"), "cards": [], "page_obj": None, "filtered": False}
    if membership:
        qs = select_subscriptions(organisation=membership.organisation)
        q, state, health_is = form.value("q").strip(), form.value("state"), form.value("health")
        if EVENT_ID.match(q.lower().replace("-", "")) and q.lower().startswith("evt_"):
            # An event id: no webhook's URL holds one, so find the event across every webhook.
            return redirect(reverse("console:event_list") + "?" + urlencode({"q": q}))
        if q:
            qs = qs.filter(Q(url__icontains=q) | Q(description__icontains=q))
        if state:
            qs = qs.filter(state=state)
        if health_is:
            qs = qs.annotate(health=health_status()).filter(health=health_is)
        page = Paginator(_ordered(qs, form.value("sort")), PAGE_SIZE).get_page(request.GET.get("page"))
        subscriptions = list(page.object_list)
        stats = subscription_card_stats(subscriptions=subscriptions)
        health = endpoint_health_view(subscriptions=subscriptions)
        context.update(
            page_obj=page, filtered=bool(q or state or health_is),
            cards=[{"subscription": s, "stats": stats[s.id], "health": health[s.id], "types": activity_codes(s)}
                   for s in subscriptions],
        )
    return render(request, "console/subscriptions/list.html", context)
