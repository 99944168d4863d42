from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.accounts.models import Team
from cim.accounts.roles import Scope, scope_of
from cim.core.blind_index import BlindIndexField, DerivedIndexField
from cim.core.context import memoized
from cim.core.crypto import DatePartField, EncryptedDateField, EncryptedTextField
from cim.customers import choices as c


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user, action: str = "view") -> "CustomerQuerySet":
        """The customers `user` may see (`action="view"`) or change (`"change"`): those their role's scope holds
        (own, their team's, their department's or all; DESIGN §3.4), and those shared with their team for now
        (read shares count for viewing only). The role's permissions and field masking still apply to both. The
        condition is built once per read-only request: the list and the navigation bar's counts both ask it."""
        if not (user and user.is_authenticated and user.is_active):
            return self.none()
        if scope_of(user) == Scope.ALL:
            return self
        from cim.customers.sharing_selectors import shared_customers_q

        def condition() -> Q:
            return self._scope_q(user) | shared_customers_q(user, action=action)

        return self.filter(memoized(("customers_visible_q", user.pk, action), condition))

    def shared_with(self, user, action: str = "view") -> "CustomerQuerySet":
        """Only the customers shared with `user`'s team for now: visible by definition, so their condition alone
        (not ANDed with the scope's), which keeps "Shared with my team" a lookup of the shares."""
        if not (user and user.is_authenticated and user.is_active):
            return self.none()
        from cim.customers.sharing_selectors import shared_customers_q

        return self.filter(shared_customers_q(user, action=action))

    def in_scope_of(self, user) -> "CustomerQuerySet":
        """The customers the role's scope alone gives `user`, shares left out: what they may share onwards."""
        if not (user and user.is_authenticated and user.is_active):
            return self.none()
        if scope_of(user) == Scope.ALL:
            return self
        return self.filter(self._scope_q(user))

    @staticmethod
    def scope_holds(user, customer: "Customer") -> bool:
        """`in_scope_of(user)` asked of one loaded customer, in Python: the same rule as `_scope_q`, without the
        query (the 360° page asked it twice). Reads `customer.owner` when its owner's team decides."""
        if not (user and user.is_authenticated and user.is_active):
            return False
        if scope_of(user) == Scope.ALL or (customer.owner_id is not None and customer.owner_id == user.pk):
            return True
        from cim.accounts.scopes import scope_team_ids

        teams = scope_team_ids(user)
        if teams is None:
            return False
        return customer.team_id in teams or (customer.owner_id is not None and customer.owner.team_id in teams)

    @staticmethod
    def _scope_q(user) -> Q:
        from cim.accounts.scopes import scope_team_ids

        teams = scope_team_ids(user)
        if teams is not None:
            # A team's customers: assigned to the team, or owned by one of its members.
            return Q(team_id__in=teams) | Q(owner__team_id__in=teams) | Q(owner_id=user.pk)
        return Q(owner_id=user.pk)


class Customer(models.Model):
    """A person or an organization the business deals with, under a unique customer number."""

    Kind = c.Kind
    Status = c.Status

    number = models.CharField(_("customer number"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=12, choices=c.Kind.choices, default=c.Kind.PERSON)
    display_name = models.CharField(_("name"), max_length=200)
    # The name's syllables or words sorted (cim.quality.matching.name_keys): finds 张三, 章三 and "Zhang San" as
    # candidates of one another, on every entry path.
    match_name = models.CharField(_("name key"), max_length=200, blank=True, editable=False)  # indexed in Meta
    family_name = models.CharField(_("family name"), max_length=100, blank=True)
    given_name = models.CharField(_("given name"), max_length=100, blank=True)
    alias = models.CharField(_("alias"), max_length=200, blank=True)
    english_name = models.CharField(_("English name"), max_length=200, blank=True)
    gender = models.CharField(_("gender"), max_length=8, choices=c.Gender.choices, blank=True, default="")
    birthday = EncryptedDateField(_("birthday"), null=True, blank=True)
    # The birthday's year and month, not its day, in plaintext: birthday months and age ranges stay queries
    # (segments, greetings) while the full date stays encrypted (docs/encryption.md).
    birth_year = DatePartField(_("year of birth"), source="birthday", part="year")
    birth_month = DatePartField(_("month of birth"), source="birthday", part="month")
    # The birthday's month-day, solar and lunar, as keyed hashes only: today's birthdays are an indexed lookup
    # while the day itself stays encrypted (docs/care.md).
    # Indexed in Meta (built concurrently on a live database).
    birthday_md_key = DerivedIndexField(
        _("birthday key"),
        source="birthday",
        kind="birthday_md",
        derive="cim.automation.calendar.solar_month_day",
        db_index=False,
    )
    lunar_birthday_md_key = DerivedIndexField(
        _("lunar birthday key"),
        source="birthday",
        kind="lunar_birthday_md",
        derive="cim.automation.calendar.lunar_month_day",
        db_index=False,
    )
    # Greeted on the lunar birthday (农历生日) too, as many families keep it (care plans, date triggers).
    keeps_lunar_birthday = models.BooleanField(_("keeps a lunar birthday"), default=False)
    # Resident identity card number (居民身份证号码), normalised by stdnum's cn.ric; found by its keyed hash only.
    id_number = EncryptedTextField(_("ID number"), max_length=18, blank=True)
    id_number_key = BlindIndexField(_("ID number key"), source="id_number", kind="id_number", db_index=False)
    company = models.CharField(_("company"), max_length=200, blank=True)
    job_title = models.CharField(_("job title"), max_length=100, blank=True)
    uscc = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    industry = models.CharField(_("industry"), max_length=20, choices=c.Industry.choices, blank=True)
    company_size = models.CharField(_("company size"), max_length=10, choices=c.CompanySize.choices, blank=True)
    customer_type = models.CharField(_("customer type"), max_length=20, choices=c.CustomerType.choices, blank=True)
    source_channel = models.CharField(_("source channel"), max_length=20, choices=c.SourceChannel.choices, blank=True)
    value_tier = models.CharField(_("value tier"), max_length=10, choices=c.ValueTier.choices, blank=True)
    region = models.CharField(_("region"), max_length=12, choices=c.Region.choices, blank=True)
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=12, choices=c.LifecycleStage.choices, default=c.LifecycleStage.POTENTIAL
    )
    status = models.CharField(_("status"), max_length=10, choices=c.Status.choices, default=c.Status.ACTIVE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
        db_index=False,  # customer_owner_idx leads with it
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
        db_index=False,  # customer_team_idx leads with it
    )
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    tags = models.ManyToManyField("Tag", verbose_name=_("tags"), through="CustomerTag", related_name="customers")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("last reviewed"), null=True, blank=True)
    # Indexed only where set (customer_merged_into_idx): nearly every customer has none, and an index holding
    # them all leads SQLite to walk it for "not merged" instead of reading the table.
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-id"], name="customer_status_idx"),
            models.Index(fields=["owner", "status", "-id"], name="customer_owner_idx"),
            models.Index(fields=["team", "status", "-id"], name="customer_team_idx"),
            models.Index(fields=["display_name"], name="customer_name_idx"),
            # Matched exactly, never with LIKE: a plain index, without the pattern-ops twin Django adds on
            # PostgreSQL for a CharField's db_index (customers 0015).
            models.Index(fields=["match_name"], name="customer_match_name_idx"),
            models.Index(fields=["id_number_key"], name="customer_id_number_key_idx"),
            models.Index(fields=["updated_at"], name="customer_updated_idx"),
            # Customer anniversaries and "N days after joining" are day ranges on it (cim.automation.calendar).
            models.Index(fields=["created_at"], name="customer_created_idx"),
            models.Index(fields=["birthday_md_key"], name="customer_birthday_md_idx"),
            models.Index(fields=["lunar_birthday_md_key"], name="customer_lunar_md_idx"),
            models.Index(
                fields=["merged_into"], condition=Q(merged_into__isnull=False), name="customer_merged_into_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.number})"

    @property
    def is_archived(self) -> bool:
        return self.status == c.Status.ARCHIVED


def derived_updates(values: dict) -> dict:
    """The columns computed from some of `values` (the ID number's key, the birthday's year and month), for a
    queryset `update()`, which skips the `pre_save` that keeps them in step otherwise."""
    plain = SimpleNamespace(**values)
    return {
        f.attname: f.pre_save(plain, False)
        for f in Customer._meta.concrete_fields
        if getattr(f, "source", None) in values
    }


class ContactPoint(models.Model):
    """What phones, emails and addresses share: a type, a primary flag and a verified flag."""

    is_primary = models.BooleanField(_("primary"), default=False)
    is_verified = models.BooleanField(_("verified"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-is_primary", "id"]


class Phone(ContactPoint):
    """A customer's phone number, in E.164 and as entered."""

    # phone_unique_per_customer leads with the customer: a second index of it would only slow writes.
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="phones", db_index=False
    )
    kind = models.CharField(_("type"), max_length=10, choices=c.PhoneType.choices, default=c.PhoneType.MOBILE)
    number = EncryptedTextField(_("number (E.164)"), max_length=20)
    raw = EncryptedTextField(_("as entered"), max_length=64, blank=True)
    # How a phone is matched exactly, now and once numbers are encrypted (DESIGN §5); indexed in Meta.
    match_key = BlindIndexField(_("match key"), source="number", kind="phone", db_index=False)

    class Meta(ContactPoint.Meta):
        verbose_name = _("phone")
        verbose_name_plural = _("phones")
        constraints = [
            models.UniqueConstraint(fields=["customer", "match_key"], name="phone_unique_per_customer"),
            models.UniqueConstraint(fields=["customer"], condition=Q(is_primary=True), name="phone_one_primary"),
        ]
        indexes = [models.Index(fields=["match_key"], name="phone_match_key_idx")]

    def __str__(self) -> str:
        return self.number


class Email(ContactPoint):
    """A customer's email address, lower-cased, and as entered."""

    # email_unique_per_customer leads with the customer.
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="emails", db_index=False
    )
    kind = models.CharField(_("type"), max_length=10, choices=c.EmailType.choices, default=c.EmailType.PERSONAL)
    address = EncryptedTextField(_("address"), max_length=254)
    raw = EncryptedTextField(_("as entered"), max_length=254, blank=True)
    match_key = BlindIndexField(_("match key"), source="address", kind="email", db_index=False)

    class Meta(ContactPoint.Meta):
        verbose_name = _("email")
        verbose_name_plural = _("emails")
        constraints = [
            models.UniqueConstraint(fields=["customer", "match_key"], name="email_unique_per_customer"),
            models.UniqueConstraint(fields=["customer"], condition=Q(is_primary=True), name="email_one_primary"),
        ]
        indexes = [models.Index(fields=["match_key"], name="email_match_key_idx")]

    def __str__(self) -> str:
        return self.address


class Address(ContactPoint):
    """A postal address, split the way Chinese addresses are written."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="addresses"
    )
    kind = models.CharField(_("type"), max_length=10, choices=c.AddressType.choices, default=c.AddressType.HOME)
    country = models.CharField(_("country"), max_length=2, default="CN")
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    district = models.CharField(_("district"), max_length=50, blank=True)
    street = EncryptedTextField(_("street address"), max_length=200, blank=True)
    # The administrative division code (行政区划代码) of the district, or of the city when no district is known.
    adcode = models.CharField(_("division code"), max_length=6, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=12, blank=True)

    class Meta(ContactPoint.Meta):
        verbose_name = _("address")
        verbose_name_plural = _("addresses")
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(is_primary=True), name="address_one_primary"),
        ]

    def __str__(self) -> str:
        return " ".join(p for p in [self.province, self.city, self.district, self.street] if p)


class Tag(models.Model):
    """A free label such as VIP or 潜在客户, with a colour."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    color = models.CharField(_("colour"), max_length=7, default="#6c757d")
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CustomerTag(models.Model):
    """A tag on a customer: who put it there and when."""

    # customer_tag_unique and customer_tag_by_tag_idx lead with these: no index of their own.
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, db_index=False)
    tag = models.ForeignKey(Tag, verbose_name=_("tag"), on_delete=models.CASCADE, db_index=False)
    added_at = models.DateTimeField(_("added at"), auto_now_add=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("added by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        ordering = ["tag__name"]
        constraints = [models.UniqueConstraint(fields=["customer", "tag"], name="customer_tag_unique")]
        indexes = [models.Index(fields=["tag", "customer"], name="customer_tag_by_tag_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.tag_id}"


class CustomFieldDefinition(models.Model):
    """A field an administrator adds to customers; values live in `Customer.custom_fields[key]`."""

    key = models.SlugField(_("key"), max_length=50, unique=True)
    label_zh = models.CharField(_("label (Chinese)"), max_length=100)
    label_en = models.CharField(_("label (English)"), max_length=100)
    field_type = models.CharField(_("type"), max_length=12, choices=c.CustomFieldType.choices)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    required = models.BooleanField(_("required"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return self.key

    def label(self, language: str) -> str:
        return self.label_zh if language.startswith("zh") else self.label_en


class NumberingScheme(models.Model):
    """How customer numbers look (prefix, date part, sequence, check digit); one row. The sequence only grows."""

    prefix = models.CharField(_("prefix"), max_length=6, default="C")
    date_part = models.CharField(
        _("date part"), max_length=6, choices=c.DatePart.choices, blank=True, default=c.DatePart.YEAR
    )
    sequence_width = models.PositiveSmallIntegerField(_("sequence digits"), default=6)
    check_digit = models.BooleanField(_("check digit"), default=True)
    next_sequence = models.PositiveBigIntegerField(_("next sequence"), default=1)

    class Meta:
        verbose_name = _("numbering scheme")
        verbose_name_plural = _("numbering schemes")
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(id=1), name="numbering_scheme_single_row")]

    def __str__(self) -> str:
        return self.prefix


class SavedView(models.Model):
    """A named set of list filters, private or shared with everyone."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(_("name"), max_length=100)
    query = models.CharField(_("filters"), max_length=2000)
    is_shared = models.BooleanField(_("shared"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("saved view")
        verbose_name_plural = _("saved views")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_view_unique_name")]

    def __str__(self) -> str:
        return self.name


class ExternalId(models.Model):
    """A customer's id in another system (a shop, a mini program, an SDK): how imports and events find them again."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="external_ids",
        db_index=False,  # external_id_customer_idx
    )
    system = models.CharField(_("system"), max_length=50)
    value = models.CharField(_("external id"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        ordering = ["system", "value"]
        constraints = [models.UniqueConstraint(fields=["system", "value"], name="external_id_unique")]
        indexes = [models.Index(fields=["customer"], name="external_id_customer_idx")]

    def __str__(self) -> str:
        return f"{self.system}:{self.value}"


class Share(models.Model):
    """A customer, a static list or a segment shared with a team (or a whole department) until an end date."""

    class Access(models.TextChoices):
        READ = "read", _("Read")
        EDIT = "edit", _("Read and edit")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.CASCADE, related_name="shares"
    )
    # A list or a segment is shared with its members as they are while the share lasts, read through
    # segments.SegmentMember when customers are listed.
    segment = models.ForeignKey(
        "segments.Segment",
        verbose_name=_("list or segment"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="shares",
    )
    team = models.ForeignKey(
        Team, verbose_name=_("shared with"), on_delete=models.CASCADE, related_name="shares_received"
    )
    include_subteams = models.BooleanField(_("whole department"), default=False)
    access = models.CharField(_("access"), max_length=4, choices=Access.choices, default=Access.READ)
    reason = models.CharField(_("reason"), max_length=500)
    expires_at = models.DateTimeField(_("until"))
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("shared by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="shares_made",
    )
    created_at = models.DateTimeField(_("shared at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("revoked by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("share")
        verbose_name_plural = _("shares")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False, segment__isnull=True)
                | Q(customer__isnull=True, segment__isnull=False),
                name="share_one_subject",
            ),
        ]
        indexes = [
            # What a team receives, still running: the part of every non-global customer list that sharing adds.
            models.Index(fields=["team", "expires_at"], name="share_team_idx"),
            models.Index(fields=["customer", "expires_at"], name="share_customer_idx"),
            models.Index(fields=["segment", "expires_at"], name="share_segment_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id or self.segment_id}→{self.team_id}"

    @property
    def last_day(self):
        """The day the share runs through (it ends at the start of the next, in the installation's time zone)."""
        return timezone.localtime(self.expires_at - timedelta(microseconds=1)).date()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
