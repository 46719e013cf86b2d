"""The Create Webhook form shows the endpoint URL rules of subscriptions.validators at the field."""

from console.forms import SubscriptionForm


def test_the_form_shows_the_ssrf_refusal_on_the_url_field(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False  # the production setting
    # Bad input: the metadata service typed into the Create Webhook form.
    form = SubscriptionForm(data={"url": "https://169.254.169.254/latest/meta-data/",
                                  "activity_types": ["lot.created"]})
    assert not form.is_valid()
    assert "link-local" in " ".join(form.errors["url"])
