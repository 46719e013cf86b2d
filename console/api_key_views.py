"""Administration > API keys: an organisation's admins create keys (shown once), see them in use, revoke them."""

from cryptography.fernet import InvalidToken
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from api.selectors import api_key_get, api_keys_for_organisation
from api.services import api_key_create, api_key_revoke
from console.api_key_forms import ApiKeyForm
from console.permissions import membership_or_404, require_admin
from subscriptions.signing_secrets import decrypt_secret, encrypt_secret

SESSION_KEY = "api:new-key:{}"


def _admin_membership(request):
    membership = membership_or_404(request)
    require_admin(membership)
    return membership


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    """GET: the organisation's keys and the create form; POST: create one, then show it once."""
    membership = _admin_membership(request)
    form = ApiKeyForm(data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            api_key, key = api_key_create(organisation=membership.organisation, name=form.cleaned_data["name"],
                                          scopes=form.cleaned_data["scopes"], expires_at=form.expires_at(),
                                          created_by=request.user)
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            # Kept for the next page only, encrypted even in the session store (as a signing secret is).
            request.session[SESSION_KEY.format(api_key.id)] = encrypt_secret(key)
            return redirect("console:api_key_created", api_key_id=api_key.id)
    return render(request, "console/api_keys/list.html", {
        "keys": api_keys_for_organisation(organisation=membership.organisation), "form": form,
    }, status=400 if form.errors else 200)


@never_cache
@require_GET
@login_required
def api_key_created(request, api_key_id):
    """Show a new key once: it leaves the session as this page renders, and no cache keeps it."""
    membership = _admin_membership(request)
    api_key = api_key_get(organisation=membership.organisation, api_key_id=api_key_id)
    if api_key is None:
        raise Http404("No such API key.")
    token = request.session.pop(SESSION_KEY.format(api_key.id), None)
    try:
        key = decrypt_secret(token) if token else None
    except InvalidToken:
        key = None
    return render(request, "console/api_keys/created.html", {"api_key": api_key, "key": key})


@login_required
@require_http_methods(["GET", "POST"])
def api_key_revoke_view(request, api_key_id):
    """GET: confirm; POST: revoke the key (from the next request on it, 401)."""
    membership = _admin_membership(request)
    api_key = api_key_get(organisation=membership.organisation, api_key_id=api_key_id)
    if api_key is None:
        raise Http404("No such API key.")
    if request.method == "POST":
        if api_key_revoke(api_key=api_key, by=request.user):
            messages.success(request, f"Revoked {api_key.name} ({api_key.prefix}…): requests with it are refused.")
        else:
            messages.info(request, "This key was already revoked.")
        return redirect("console:api_keys")
    return render(request, "console/api_keys/confirm_revoke.html", {"api_key": api_key})
