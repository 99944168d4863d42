"""@mentions in notes (interactions and follow-ups): `@username`, or `@姓名` / the full name written without a
space when exactly one active colleague has it, notify that colleague with a link to the customer.

A colleague is only ever pointed at a customer they can see: a mention of someone outside the customer's scope
(and not in a team it is shared with) refuses the note with an error on the field, naming them and suggesting to
share the customer first. Unknown names are left as text (`@所有人`, a handle elsewhere).
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.functions import Concat
from django.urls import reverse
from django.utils import translation
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from cim.accounts.models import User
from cim.activities.models import Notification
from cim.audit.services import audit_record
from cim.customers.models import Customer

# After a character that cannot end a name or an address, so `someone@example.com` is no mention.
MENTION = re.compile(r"(?<![\w.@])@([\w.\-]{1,60})")


@dataclass(frozen=True)
class Mention:
    text: str
    user: User


def _prefixes(token: str) -> list[str]:
    return [token[:n] for n in range(len(token), 0, -1)]


def mentions_find(text: str) -> list[Mention]:
    """The colleagues `text` mentions, each once, in one query. Raises ValidationError (on `mentions`) for a name
    several colleagues share."""
    tokens = list(dict.fromkeys(m.group(1).rstrip(".-") for m in MENTION.finditer(text or "")))
    tokens = [t for t in tokens if t]
    if not tokens:
        return []
    candidates = {p for token in tokens for p in _prefixes(token)}
    users = list(
        User.objects.filter(is_active=True)
        .annotate(name_east=Concat("last_name", "first_name"), name_west=Concat("first_name", "last_name"))
        .filter(Q(username__in=candidates) | Q(name_east__in=candidates) | Q(name_west__in=candidates))
    )
    by_username = {u.username: u for u in users}
    by_name: dict[str, set[User]] = {}
    for user in users:
        for name in {user.name_east, user.name_west} - {""}:
            by_name.setdefault(name, set()).add(user)
    found: dict[int, Mention] = {}
    ambiguous = []
    for token in tokens:
        for prefix in _prefixes(token):
            rest = token[len(prefix) :]
            # A user name runs to the end of the word, or into text in another script (`@wangwei请回电`).
            if prefix in by_username and (not rest or not rest[0].isascii()):
                found.setdefault(by_username[prefix].pk, Mention(prefix, by_username[prefix]))
                break
            if prefix in by_name:
                named = by_name[prefix]
                if len(named) > 1:
                    ambiguous.append(prefix)
                else:
                    user = next(iter(named))
                    found.setdefault(user.pk, Mention(prefix, user))
                break
    if ambiguous:
        message = _("Several colleagues are called %(names)s; mention them by user name (@username).")
        raise ValidationError({"mentions": [message % {"names": ", ".join(f"@{a}" for a in ambiguous)}]})
    return list(found.values())


def mentions_check(*, text: str, customer: Customer, field: str) -> list[User]:
    """The colleagues `text` mentions, after checking each sees `customer` (their scope, or a share with their
    team). Raises ValidationError on `field` otherwise, so nobody is sent a link they cannot open."""
    try:
        mentions = mentions_find(text)
    except ValidationError as error:
        raise ValidationError({field: error.message_dict["mentions"]}) from None
    blind = [m for m in mentions if not Customer.objects.visible_to(m.user).filter(pk=customer.pk).exists()]
    if blind:
        message = _(
            "%(names)s cannot see this customer, so the mention would lead nowhere. Share the customer with "
            "their team first (Sharing, on the customer page), or remove the mention."
        )
        raise ValidationError({field: [message % {"names": ", ".join(f"@{m.text}" for m in blind)}]})
    return [m.user for m in mentions]


def mentions_notify(*, users: list[User], customer: Customer, actor, target) -> int:
    """Notify each mentioned colleague (not the writer) with a link to the customer; inside the caller's
    transaction, audited on `target` (the interaction or follow-up) with user ids only."""
    users = [u for u in users if actor is None or u.pk != actor.pk]
    if not users:
        return 0
    url = reverse("customers:detail", args=[customer.number])
    # Notifications are stored as text: written in the installation's language, whoever caused them. The
    # customer's number, not their name: a notification outlives an erasure of the customer.
    with translation.override(settings.LANGUAGE_CODE):
        title = _("%(actor)s mentioned you in a note on customer %(number)s") % {
            "actor": actor or _("CIM"),
            "number": customer.number,
        }
    Notification.objects.bulk_create(Notification(user=u, title=Truncator(title).chars(200), url=url) for u in users)
    audit_record(
        actor=actor,
        action=f"{target._meta.model_name}.mention",
        target=target,
        note="users " + " ".join(str(u.pk) for u in sorted(users, key=lambda u: u.pk)),
    )
    return len(users)
