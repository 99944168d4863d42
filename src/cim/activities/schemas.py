"""The Segment / RudderStack message, as the tracking API accepts it (the documented fields; others are ignored)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.utils.translation import gettext as _
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _id_text(value: Any) -> Any:
    """SDKs may send numeric ids; Segment treats them as text. An empty id is no id."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _utc(value: datetime | None) -> datetime | None:
    """In UTC; a timestamp without a zone is taken as UTC, as Segment does."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


Id = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_id_text)]
# SDKs send null for an empty object as often as they leave it out.
JsonObject = Annotated[dict[str, Any], BeforeValidator(lambda value: {} if value is None else value)]
Timestamp = Annotated[datetime | None, AfterValidator(_utc)]
MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]


class TrackingMessage(BaseModel):
    """One identify, track, page, screen, group or alias call."""

    model_config = ConfigDict(extra="ignore")

    type: MessageType
    userId: Id = None
    anonymousId: Id = None
    messageId: str | None = Field(None, min_length=1, max_length=100)
    timestamp: Timestamp = None
    originalTimestamp: Timestamp = None
    event: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=200)
    properties: JsonObject = Field(default_factory=dict)
    traits: JsonObject = Field(default_factory=dict)
    context: JsonObject = Field(default_factory=dict)
    groupId: Id = None
    previousId: Id = None


def message_errors(message: TrackingMessage) -> list[dict]:
    """What Segment requires beyond the types: an identity, and the fields each type is about."""
    errors = []

    def missing(field: str, text: str) -> None:
        errors.append({"field": field, "code": "missing", "message": text})

    if not (message.userId or message.anonymousId):
        missing("userId", _("Send userId or anonymousId."))
    if message.type == "track" and not (message.event and message.event.strip()):
        missing("event", _("A track call needs the event name."))
    if message.type == "group" and not message.groupId:
        missing("groupId", _("A group call needs groupId."))
    if message.type == "alias" and not message.previousId:
        missing("previousId", _("An alias call needs previousId."))
    return errors
