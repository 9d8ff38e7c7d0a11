"""Bearer tokens for the HTTP API: made once, stored only as a hash."""

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from .models import ApiToken


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """The stored token and the token itself, which is not kept anywhere: show it once."""
    token = secrets.token_urlsafe(32)
    return ApiToken.objects.create(user=user, name=name, token_hash=_digest(token)), token


def user_for_token(token: str) -> AbstractBaseUser | None:
    """The active user a token acts as, or None for an unknown token or inactive user."""
    found = (
        ApiToken.objects.select_related("user").filter(token_hash=_digest(token)).first()
        if token
        else None
    )
    if found is None or not found.user.is_active:
        return None
    ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
    return found.user
