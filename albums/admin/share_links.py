"""The share links of an album, managed on the album's page: made with an expiry (30 days
unless changed), an optional password (stored as Django's hash, never shown), and what a
visitor may do; withdrawn with "Revoked"; the link, its views and last use shown."""

from django import forms
from django.contrib import admin
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from django.utils.html import format_html

from ..models import ShareLink


class ShareLinkForm(forms.ModelForm):
    new_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Set a new one; empty keeps it as it is.",
    )
    remove_password = forms.BooleanField(label="No password", required=False)
    revoked = forms.BooleanField(label="Revoked", required=False)

    class Meta:
        model = ShareLink
        fields = ["label", "expires_at", "allow_download", "show_details"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["revoked"].initial = self.instance.revoked_at is not None

    def save(self, commit=True):
        link = super().save(commit=False)
        if self.cleaned_data.get("new_password"):
            link.password = make_password(self.cleaned_data["new_password"])
        elif self.cleaned_data.get("remove_password"):
            link.password = ""
        if self.cleaned_data.get("revoked") and link.revoked_at is None:
            link.revoked_at = timezone.now()
        elif not self.cleaned_data.get("revoked"):
            link.revoked_at = None
        if commit:
            link.save()
        return link


class ShareLinkInline(admin.TabularInline):
    model = ShareLink
    form = ShareLinkForm
    extra = 0
    fields = [
        "address", "label", "expires_at", "new_password", "remove_password", "has_password",
        "allow_download", "show_details", "revoked", "view_count", "last_used_at",
    ]  # fmt: skip
    readonly_fields = ["address", "has_password", "view_count", "last_used_at"]

    @admin.display(description="Link")
    def address(self, link: ShareLink):
        if link.pk is None:
            return "(made when saved)"
        return format_html(
            '<a href="{}" rel="noreferrer">{}</a>', link.get_absolute_url(), link.token
        )

    @admin.display(description="Has a password", boolean=True)
    def has_password(self, link: ShareLink):
        return bool(link.password)
