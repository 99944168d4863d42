"""Forms of the customer pages. They only collect and shape input; services validate the meaning and write."""

import re
from dataclasses import dataclass, field

from django import forms
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from cim.accounts.models import Team, User
from cim.customers import choices as c
from cim.customers.models import Customer, CustomFieldDefinition, NumberingScheme, Share, Tag

SCALAR_FIELDS = [
    "kind",
    "display_name",
    "family_name",
    "given_name",
    "alias",
    "english_name",
    "gender",
    "birthday",
    "keeps_lunar_birthday",
    "id_number",
    "company",
    "job_title",
    "uscc",
    "industry",
    "company_size",
    "customer_type",
    "source_channel",
    "value_tier",
    "region",
    "lifecycle_stage",
    "status",
    "owner",
    "team",
    "notes",
]
ORG_ONLY_FIELDS = ("uscc", "industry", "company_size")
DATE_INPUT = {"type": "date"}


def active_users():
    return User.objects.filter(is_active=True).order_by("username")


def cf_name(key: str) -> str:
    return f"cf_{key}"


def custom_field_formfield(definition: CustomFieldDefinition, language: str) -> forms.Field:
    """One input per custom field. All optional here: the service checks `required` and each type."""
    label = definition.label(language)
    required = {"required": True} if definition.required else {}
    kind = definition.field_type
    if kind == c.CustomFieldType.NUMBER:
        return forms.CharField(label=label, required=False, widget=forms.NumberInput(attrs={"step": "any", **required}))
    if kind == c.CustomFieldType.DATE:
        return forms.CharField(label=label, required=False, widget=forms.DateInput(attrs={**DATE_INPUT, **required}))
    if kind == c.CustomFieldType.CHOICE:
        options = [("", "---------"), *((choice, choice) for choice in definition.choices)]
        return forms.ChoiceField(label=label, required=False, choices=options, widget=forms.Select(attrs=required))
    if kind == c.CustomFieldType.MULTI_CHOICE:
        options = [(choice, choice) for choice in definition.choices]
        return forms.MultipleChoiceField(
            label=label, required=False, choices=options, widget=forms.CheckboxSelectMultiple
        )
    return forms.CharField(label=label, required=False, max_length=1000, widget=forms.TextInput(attrs=required))


class CustomerForm(forms.Form):
    """The scalar fields, owner and team, tags and custom fields of a customer; labels come from the model."""

    def __init__(self, *args, definitions=(), tags=(), customer: Customer | None = None, language="en", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(forms.fields_for_model(Customer, fields=SCALAR_FIELDS))
        self.definitions = list(definitions)
        # The service composes the name from family + given name, and says so when both are empty.
        self.fields["display_name"].required = False
        self.fields["uscc"] = forms.CharField(label=self.fields["uscc"].label, required=False, max_length=30)
        # Written with spaces or a lower-case x too: the service normalises and checks it.
        self.fields["id_number"] = forms.CharField(label=self.fields["id_number"].label, required=False, max_length=30)
        self.fields["kind"].widget.attrs["data-kind-select"] = ""
        self.fields["birthday"].widget = forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d")
        self.fields["notes"].widget.attrs["rows"] = 3
        self.fields["owner"].queryset = active_users()
        self.fields["team"].queryset = Team.objects.order_by("name")
        # Archiving has its own button, so "archived" is offered only to keep an archived customer so.
        statuses = [c.Status.ACTIVE, c.Status.INACTIVE]
        if customer is not None and customer.is_archived:
            statuses.append(c.Status.ARCHIVED)
        self.fields["status"].choices = [(s.value, s.label) for s in statuses]
        self.fields["tags"] = forms.MultipleChoiceField(
            label=capfirst(Customer._meta.get_field("tags").verbose_name),
            required=False,
            choices=[(t.name, t.name) for t in tags],
            widget=forms.CheckboxSelectMultiple,
        )
        self.tag_colors = {t.name: t.color for t in tags}
        self.fields["new_tags"] = forms.CharField(
            label=_("New tags"), required=False, max_length=500, help_text=_("Separate several tags with commas.")
        )
        for definition in self.definitions:
            self.fields[cf_name(definition.key)] = custom_field_formfield(definition, language)

    @classmethod
    def initial_for(cls, customer: Customer) -> dict:
        initial = {name: getattr(customer, name) for name in SCALAR_FIELDS if name not in ("owner", "team")}
        initial["owner"] = customer.owner_id
        initial["team"] = customer.team_id
        initial["tags"] = [t.name for t in customer.tags.all()]
        for key, value in customer.custom_fields.items():
            initial[cf_name(key)] = value
        return initial

    @property
    def custom_field_inputs(self) -> list:
        return [self[cf_name(d.key)] for d in self.definitions]

    locked: frozenset[str] = frozenset()

    def lock(self, shown: dict[str, str]) -> None:
        """Show these fields read only, as `shown` (their masked form); they are never sent to the service."""
        message = _("Masked for your role: you may not change this field.")
        for name, value in shown.items():
            if name not in self.fields:
                continue
            label = self.fields[name].label
            self.fields[name] = forms.CharField(label=label, required=False, disabled=True, help_text=message)
            self.initial[name] = value or "—"
        self.locked = frozenset(shown)

    def input_data(self) -> dict:
        """The cleaned values in the shape of `CustomerInput` (without contact points)."""
        data = self.cleaned_data
        values = {name: data.get(name) for name in SCALAR_FIELDS if name not in ("owner", "team", *self.locked)}
        for name in ("industry", "company_size", "customer_type", "source_channel", "value_tier", "region"):
            values[name] = values[name] or None
        if values["kind"] == c.Kind.PERSON:
            # Hidden for persons; clearing them keeps a kind switch from leaving a stray code behind.
            values.update({name: "" if name == "uscc" else None for name in ORG_ONLY_FIELDS})
        values["owner_id"] = data["owner"].pk if data.get("owner") else None
        values["team_id"] = data["team"].pk if data.get("team") else None
        new_tags = [t.strip() for t in re.split(r"[,，、;；]", data.get("new_tags") or "") if t.strip()]
        values["tags"] = list(dict.fromkeys([*data.get("tags", []), *new_tags]))
        values["custom_fields"] = {d.key: data.get(cf_name(d.key)) for d in self.definitions}
        return values

    def field_for_error(self, key: str) -> str | None:
        """The input a service error key (`display_name`, `owner_id`, `custom_fields.x`, `tags.0`) belongs to."""
        if key.startswith("custom_fields."):
            name = cf_name(key.split(".", 1)[1])
        elif key.startswith("tags"):
            name = "new_tags"
        else:
            name = key.removesuffix("_id")
        return name if name in self.fields else None


@dataclass
class ContactRow:
    index: str
    values: dict
    is_primary: bool = False
    is_verified: bool = False
    errors: dict = field(default_factory=dict)

    def filled(self, main: tuple[str, ...]) -> bool:
        return any(self.values.get(name, "").strip() for name in main)


@dataclass
class ContactKind:
    prefix: str
    fields: tuple[str, ...]
    main: tuple[str, ...]
    kinds: list
    rows: list[ContactRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    locked: list[str] | None = None  # the masked values shown read only when the user may not change them

    @property
    def next_index(self) -> int:
        return max((int(r.index) for r in self.rows), default=-1) + 1

    @property
    def template_row(self) -> ContactRow:
        """The row "add another" copies; the script replaces `__i__` with the next index."""
        return ContactRow(index="__i__", values={**{name: "" for name in self.fields}, "kind": self.kinds[0][0]})


class ContactRows:
    """Repeated phone, email and address rows posted as `phones-0-number`, `phones-primary=0`, …"""

    MAX_ROWS = 20
    SPECS = {
        "phones": (("number", "kind"), ("number",), c.PhoneType.choices),
        "emails": (("address", "kind"), ("address",), c.EmailType.choices),
        "addresses": (
            ("kind", "province", "city", "district", "street", "postal_code"),
            ("province", "city", "district", "street"),
            c.AddressType.choices,
        ),
    }

    def __init__(self):
        self.kinds = {
            prefix: ContactKind(prefix=prefix, fields=fields, main=main, kinds=kinds)
            for prefix, (fields, main, kinds) in self.SPECS.items()
        }
        self._sent: dict[str, list[ContactRow]] = {}

    @property
    def phones(self) -> ContactKind:
        return self.kinds["phones"]

    @property
    def emails(self) -> ContactKind:
        return self.kinds["emails"]

    @property
    def addresses(self) -> ContactKind:
        return self.kinds["addresses"]

    @classmethod
    def from_post(cls, post) -> "ContactRows":
        rows = cls()
        for prefix, kind in rows.kinds.items():
            indexes = sorted({int(m[1]) for key in post if (m := re.match(rf"^{prefix}-(\d{{1,3}})-", key))})
            primary = post.get(f"{prefix}-primary", "")
            for i in indexes:
                values = {name: post.get(f"{prefix}-{i}-{name}", "") for name in kind.fields}
                values["kind"] = values["kind"] or kind.kinds[0][0]
                kind.rows.append(
                    ContactRow(
                        index=str(i),
                        values=values,
                        is_primary=primary == str(i),
                        is_verified=post.get(f"{prefix}-{i}-is_verified") == "on",
                    )
                )
            if not kind.rows:
                kind.rows.append(cls._blank(kind))
        return rows

    @classmethod
    def from_customer(cls, customer: Customer | None) -> "ContactRows":
        rows = cls()
        if customer is not None:
            sources = {
                "phones": customer.phones.all(),
                "emails": customer.emails.all(),
                "addresses": customer.addresses.all(),
            }
            for prefix, kind in rows.kinds.items():
                for i, item in enumerate(sources[prefix]):
                    values = {name: getattr(item, name) for name in kind.fields}
                    if prefix == "phones":
                        values["number"] = item.raw or item.number
                    elif prefix == "emails":
                        values["address"] = item.address
                    kind.rows.append(
                        ContactRow(
                            index=str(i), values=values, is_primary=item.is_primary, is_verified=item.is_verified
                        )
                    )
        for kind in rows.kinds.values():
            # One empty row to type into, so a new contact needs no script.
            kind.rows.append(cls._blank(kind))
        return rows

    @staticmethod
    def _blank(kind: ContactKind) -> ContactRow:
        values = {name: "" for name in kind.fields}
        values["kind"] = kind.kinds[0][0]
        return ContactRow(index=str(kind.next_index), values=values)

    def lock(self, shown: dict[str, list[str]]) -> None:
        """Show these kinds (`phones`) read only, as `shown` (masked values); they are never sent to the service."""
        for prefix, values in shown.items():
            if prefix in self.kinds:
                self.kinds[prefix].locked = values
                self.kinds[prefix].rows = []

    def input_data(self) -> dict:
        """The filled rows as `CustomerInput` lists; remembers which row each list item came from."""
        data = {}
        for prefix, kind in self.kinds.items():
            if kind.locked is not None:
                continue
            sent = [row for row in kind.rows if row.filled(kind.main)][: self.MAX_ROWS]
            self._sent[prefix] = sent
            data[prefix] = [
                {
                    **{k: v.strip() for k, v in row.values.items()},
                    "is_primary": row.is_primary,
                    "is_verified": row.is_verified,
                }
                for row in sent
            ]
        return data

    def claim_error(self, key: str, messages: list[str]) -> bool:
        """Attach an error keyed `phones.1.number` to its row; False when the key is not a contact's."""
        prefix, _dot, rest = key.partition(".")
        if prefix not in self.kinds:
            return False
        position, _dot, name = rest.partition(".")
        sent = self._sent.get(prefix, [])
        if position.isdigit() and int(position) < len(sent):
            row = sent[int(position)]
            row.errors.setdefault(name if name in self.kinds[prefix].fields else "row", []).extend(messages)
        else:
            self.kinds[prefix].errors.extend(messages)
        return True

    @property
    def has_errors(self) -> bool:
        return any(kind.errors or any(r.errors for r in kind.rows) for kind in self.kinds.values())


class BulkTagForm(forms.Form):
    tag = forms.CharField(label=_("Tag"), max_length=50)
    op = forms.ChoiceField(choices=[("add", _("Add tag")), ("remove", _("Remove tag"))])


class SingleTagForm(forms.Form):
    add = forms.CharField(label=_("Add tag"), max_length=50, required=False)
    remove = forms.CharField(max_length=50, required=False)


class SavedViewForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    is_shared = forms.BooleanField(label=_("Share with everyone"), required=False)
    query = forms.CharField(max_length=2000, required=False)


class ArchiveForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class TagForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(forms.fields_for_model(Tag, fields=["name", "color", "description"]))
        self.fields["color"] = forms.RegexField(
            label=self.fields["color"].label,
            regex=r"^#[0-9a-fA-F]{6}$",
            initial="#6c757d",
            widget=forms.TextInput(attrs={"type": "color", "class": "form-control-color"}),
            error_messages={"invalid": _("Enter a colour as #rrggbb.")},
        )


class CustomFieldForm(forms.Form):
    """Create (with key and type) or edit (labels, choices, required, position, active) a custom field."""

    key = forms.RegexField(
        label=capfirst(CustomFieldDefinition._meta.get_field("key").verbose_name),
        max_length=50,
        regex=r"^[a-z][a-z0-9_]*$",
        help_text=_("Lower-case letters, digits and _, starting with a letter. Cannot be changed later."),
        error_messages={"invalid": _("Use lower-case letters, digits and _, starting with a letter.")},
    )
    choices_text = forms.CharField(
        label=capfirst(CustomFieldDefinition._meta.get_field("choices").verbose_name),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For choice fields: one choice per line."),
    )

    def __init__(self, *args, definition: CustomFieldDefinition | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        model_fields = forms.fields_for_model(
            CustomFieldDefinition, fields=["label_zh", "label_en", "field_type", "required", "position", "is_active"]
        )
        self.fields.update(model_fields)
        self.order_fields(["key", "label_zh", "label_en", "field_type", "choices_text", "required", "position"])
        if definition is None:
            del self.fields["is_active"]
        else:
            # Key and type stay as created, so stored values keep their meaning.
            del self.fields["key"], self.fields["field_type"]

    @property
    def choices(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("choices_text", "").splitlines() if line.strip()]


class NumberingForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(
            forms.fields_for_model(NumberingScheme, fields=["prefix", "date_part", "sequence_width", "check_digit"])
        )
        # The service checks the range and says so next to the field.
        self.fields["sequence_width"].widget.attrs.update(min=3, max=12)


class ShareForm(forms.Form):
    """The share dialog: with which team, how, why and until when (the service checks the meaning)."""

    team = forms.ModelChoiceField(label=_("Share with team"), queryset=Team.objects.order_by("name"))
    include_subteams = forms.BooleanField(label=_("Also the teams under it (the whole department)"), required=False)
    access = forms.ChoiceField(label=_("Access"), choices=Share.Access.choices, initial=Share.Access.READ)
    reason = forms.CharField(
        label=_("Why"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text=_("Shown to the team.")
    )
    until = forms.DateField(label=_("Until (last day)"), widget=forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d"))
