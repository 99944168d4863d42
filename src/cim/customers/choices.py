"""Every choice list of customer master data, in one place."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    PERSON = "person", _("Person")
    ORGANIZATION = "organization", _("Organization")


class Gender(models.TextChoices):
    UNKNOWN = "", _("Unknown")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")


class Status(models.TextChoices):
    ACTIVE = "active", _("Active")
    INACTIVE = "inactive", _("Inactive")
    ARCHIVED = "archived", _("Archived")


class CustomerType(models.TextChoices):
    CONSUMER = "consumer", _("Consumer")
    BUSINESS = "business", _("Business")
    DISTRIBUTOR = "distributor", _("Distributor")
    PARTNER = "partner", _("Partner")
    GOVERNMENT = "government", _("Government")
    OTHER = "other", _("Other")


class SourceChannel(models.TextChoices):
    WEBSITE = "website", _("Website")
    MINI_PROGRAM = "mini_program", _("Mini program")
    WECHAT = "wechat", _("WeChat")
    APP = "app", _("App")
    EVENT = "event", _("Offline event")
    REFERRAL = "referral", _("Referral")
    SALES = "sales", _("Sales staff")
    PHONE = "phone", _("Phone")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    OTHER = "other", _("Other")


class ValueTier(models.TextChoices):
    VIP = "vip", _("VIP")
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")


class Region(models.TextChoices):
    NORTH = "north", _("North China")
    NORTHEAST = "northeast", _("Northeast China")
    EAST = "east", _("East China")
    CENTRAL = "central", _("Central China")
    SOUTH = "south", _("South China")
    SOUTHWEST = "southwest", _("Southwest China")
    NORTHWEST = "northwest", _("Northwest China")
    HK_MO_TW = "hk_mo_tw", _("Hong Kong, Macao and Taiwan")
    OVERSEAS = "overseas", _("Overseas")


class Industry(models.TextChoices):
    RETAIL = "retail", _("Retail")
    MANUFACTURING = "manufacturing", _("Manufacturing")
    TECHNOLOGY = "technology", _("Information technology")
    FINANCE = "finance", _("Finance and insurance")
    EDUCATION = "education", _("Education")
    HEALTHCARE = "healthcare", _("Healthcare")
    REAL_ESTATE = "real_estate", _("Real estate")
    LOGISTICS = "logistics", _("Logistics")
    HOSPITALITY = "hospitality", _("Hospitality and catering")
    ENERGY = "energy", _("Energy")
    AGRICULTURE = "agriculture", _("Agriculture")
    MEDIA = "media", _("Media and entertainment")
    PUBLIC = "public", _("Public sector")
    OTHER = "other", _("Other")


class CompanySize(models.TextChoices):
    MICRO = "1-9", _("1–9 employees")
    SMALL = "10-49", _("10–49 employees")
    MEDIUM = "50-199", _("50–199 employees")
    LARGE = "200-999", _("200–999 employees")
    ENTERPRISE = "1000+", _("1,000+ employees")


class LifecycleStage(models.TextChoices):
    POTENTIAL = "potential", _("Potential")
    NEW = "new", _("New")
    REPEAT = "repeat", _("Repeat")
    LOYAL = "loyal", _("Loyal")
    AT_RISK = "at_risk", _("At risk")
    CHURNED = "churned", _("Churned")


class PhoneType(models.TextChoices):
    MOBILE = "mobile", _("Mobile")
    WORK = "work", _("Work")
    HOME = "home", _("Home")
    FAX = "fax", _("Fax")
    OTHER = "other", _("Other")


class EmailType(models.TextChoices):
    PERSONAL = "personal", _("Personal")
    WORK = "work", _("Work")
    OTHER = "other", _("Other")


class AddressType(models.TextChoices):
    HOME = "home", _("Home")
    WORK = "work", _("Work")
    BILLING = "billing", _("Billing")
    SHIPPING = "shipping", _("Shipping")
    OTHER = "other", _("Other")


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")
    MULTI_CHOICE = "multi_choice", _("Multiple choice")


class DatePart(models.TextChoices):
    NONE = "", _("None")
    YEAR = "%Y", _("Year (2026)")
    YEAR_MONTH = "%Y%m", _("Year and month (202611)")
