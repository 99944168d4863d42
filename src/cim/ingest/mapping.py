"""Which column of an import file fills which customer field: the targets, and the headers people write for them."""

import re
import unicodedata

from django.utils.translation import gettext_lazy as _

from cim.customers.models import CustomFieldDefinition

# target → (label, headers that mean it, compared folded: NFKC, lower case, no spaces or punctuation).
TARGETS: dict[str, tuple] = {
    "external_id": (
        _("External id"),
        "外部编号 外部id 编号 客户id 会员号 会员编号 会员id id externalid customerid memberid uid userid",
    ),
    "number": (_("Customer number"), "客户号 客户编号 cim客户号 customernumber number"),
    "kind": (_("Kind"), "客户性质 个人企业 kind customerkind"),
    "display_name": (
        _("Name"),
        "姓名 名字 客户名称 客户姓名 名称 联系人 联系人姓名 name fullname displayname customername contact contactname",
    ),
    "family_name": (_("Family name"), "姓 姓氏 lastname familyname surname"),
    "given_name": (_("Given name"), "名 firstname givenname"),
    "alias": (_("Alias"), "昵称 别名 微信昵称 alias nickname"),
    "english_name": (_("English name"), "英文名 英文名字 英文姓名 englishname"),
    "gender": (_("Gender"), "性别 gender sex"),
    "birthday": (_("Birthday"), "生日 出生日期 出生年月日 birthday birthdate dateofbirth dob"),
    "company": (
        _("Company"),
        "公司 公司名称 单位 工作单位 企业名称 company companyname organization organisation organizationname org "
        "employer",
    ),
    "job_title": (_("Job title"), "职位 职务 岗位 头衔 title jobtitle position organizationtitle"),
    "id_number": (_("ID number"), "身份证号 身份证号码 身份证 证件号 证件号码 居民身份证号码 idnumber idcard idno"),
    "uscc": (_("Unified social credit code"), "统一社会信用代码 信用代码 社会信用代码 uscc creditcode"),
    "industry": (_("Industry"), "行业 所属行业 industry"),
    "company_size": (_("Company size"), "规模 公司规模 企业规模 人数 员工人数 companysize size employees"),
    "customer_type": (_("Customer type"), "客户类型 类型 customertype type"),
    "source_channel": (
        _("Source channel"),
        "来源 渠道 来源渠道 客户来源 获客渠道 source channel sourcechannel leadsource",
    ),
    "value_tier": (_("Value tier"), "客户等级 等级 价值等级 会员等级 tier valuetier level"),
    "region": (_("Region"), "区域 大区 地区 销售区域 region"),
    "lifecycle_stage": (_("Lifecycle stage"), "阶段 客户阶段 生命周期 生命周期阶段 lifecyclestage stage"),
    "status": (_("Status"), "状态 客户状态 status"),
    "owner": (_("Owner (user name)"), "负责人 销售 跟进人 归属销售 客户经理 所属销售 owner salesrep accountmanager"),
    "team": (_("Team"), "团队 部门 所属部门 所属团队 team"),
    "tags": (_("Tags"), "标签 客户标签 tags tag labels"),
    "phones": (
        _("Mobile phone"),
        "手机 手机号 手机号码 移动电话 电话 电话号码 联系电话 联系手机 联系方式 "
        "mobile mobilephone cell cellphone phone phonenumber tel telephone phones",
    ),
    "phones_work": (
        _("Work phone"),
        "办公电话 电话(办公) 工作电话 座机 公司电话 单位电话 workphone officephone businessphone",
    ),
    "phones_home": (_("Home phone"), "家庭电话 电话(家庭) 住宅电话 homephone"),
    "emails": (_("Email"), "邮箱 邮箱地址 电子邮箱 电子邮件 邮件 email mail emailaddress emails"),
    "emails_work": (_("Work email"), "工作邮箱 公司邮箱 workemail"),
    "address": (
        _("Address"),
        "地址 详细地址 联系地址 通讯地址 住址 收货地址 所在地 所在地区 省市区 所在省市区 "
        "address streetaddress fulladdress addressformatted",
    ),
    "province": (_("Province"), "省 省份 province state"),
    "city": (_("City"), "市 城市 所在城市 city"),
    "district": (_("District"), "区 区县 县区 district county"),
    "postal_code": (_("Postal code"), "邮编 邮政编码 zip zipcode postalcode postcode"),
    "country": (_("Country"), "国家 国家地区 country"),
    "notes": (_("Notes"), "备注 说明 描述 备注信息 notes note remark remarks comment comments description memo"),
}
IGNORE = ""
# Targets several columns may fill; any other target takes one column.
LIST_TARGETS = {"phones", "phones_work", "phones_home", "emails", "emails_work", "tags", "notes", IGNORE}
_PUNCTUATION = re.compile(r"[\s_\-:：*()（）\[\]【】/·.]+")
_BRACKETED = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")
_DIGITS = re.compile(r"\d+")


def fold_header(header: str) -> str:
    return _PUNCTUATION.sub("", unicodedata.normalize("NFKC", header).lower())


def header_forms(header: str) -> list[str]:
    """The header folded, then without what it says in brackets (a unit, 必填): 实付金额(元) means 实付金额, while
    电话(办公) may still be named as a whole; then without numbers, as contacts exports number repeated fields
    (手机2, Google's "Phone 1 - Value", Outlook's "E-mail 2 Address"); last, a nested JSON key's own name."""
    folded = fold_header(header)
    bare = fold_header(_BRACKETED.sub("", header))
    unnumbered = _DIGITS.sub("", bare).removesuffix("value")
    last_key = fold_header(header.rsplit(".", 1)[-1]) if "." in header else ""  # JSON's contact.phone
    return [form for form in dict.fromkeys([folded, bare, unnumbered, last_key]) if form]


def header_target(synonyms: dict[str, str], header: str) -> str:
    return next((synonyms[form] for form in header_forms(header) if form in synonyms), IGNORE)


def _synonyms() -> dict[str, str]:
    synonyms = {fold_header(target): target for target in TARGETS}
    for target, (_label, headers) in TARGETS.items():
        for header in headers.split():
            synonyms.setdefault(fold_header(header), target)
    for key, label_zh, label_en in CustomFieldDefinition.objects.filter(is_active=True).values_list(
        "key", "label_zh", "label_en"
    ):
        for header in (f"cf.{key}", key, label_zh, label_en):
            synonyms.setdefault(fold_header(header), f"cf.{key}")
    return synonyms


def auto_map(columns: list[str]) -> dict[str, str]:
    """A target for each column whose header names one ("" for the rest). Several columns may fill the
    list targets (phones, emails, tags); any other target goes to the first column that names it."""
    synonyms = _synonyms()
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        target = header_target(synonyms, column)
        if target in taken and target not in LIST_TARGETS:
            target = IGNORE
        mapping[column] = target
        taken.add(target)
    return mapping


def target_choices() -> list[tuple[str, str]]:
    """Every target as (value, label), custom fields included, for the wizard's drop-downs."""
    choices = [(target, str(label)) for target, (label, _h) in TARGETS.items()]
    choices += [
        (f"cf.{d.key}", d.label_zh if _is_chinese() else d.label_en)
        for d in CustomFieldDefinition.objects.filter(is_active=True).order_by("position", "key")
    ]
    return choices


def _is_chinese() -> bool:
    from django.utils.translation import get_language

    return (get_language() or "").startswith("zh")


def mapping_errors(mapping: dict[str, str], columns: list[str]) -> list[str]:
    """What is wrong with a mapping a person or a file gave: unknown targets, targets used twice, no name."""
    known = {t for t, _label in target_choices()}
    problems = []
    used: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in columns:
            problems.append(str(_("The mapping names a column the file does not have: %(c)s")) % {"c": column})
        elif target and target not in known:
            problems.append(
                str(_("Column “%(c)s” is mapped to an unknown field “%(t)s”.")) % {"c": column, "t": target}
            )
        elif target and target in used and target not in LIST_TARGETS:
            problems.append(
                str(_("Columns “%(a)s” and “%(b)s” are both mapped to “%(t)s”."))
                % {"a": used[target], "b": column, "t": target}
            )
        used.setdefault(target, column)
    if not {"display_name", "family_name", "given_name", "external_id", "number"} & set(mapping.values()):
        problems.append(str(_("Map a column to the customer's name.")))
    return problems
