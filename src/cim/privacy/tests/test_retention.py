import datetime

import pytest
from django.utils import timezone

from cim.activities.models import BehaviourEvent
from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer
from cim.ingest.models import FormSubmission
from cim.privacy.models import Consent, ErasureTombstone, RetentionRule
from cim.privacy.retention import retention_rule_apply, retention_rule_count, retention_rule_save
from cim.privacy.tasks import privacy_retention_daily
from cim.privacy.tests.helpers import make_canary

pytestmark = pytest.mark.django_db


def _age(model, pk, field, days):
    model.objects.filter(pk=pk).update(**{field: timezone.now() - datetime.timedelta(days=days)})


def test_inactive_customers_are_anonymised_with_tombstones(admin_user):
    old = make_customer(admin_user, display_name="旧客户")
    recent = make_customer(admin_user, display_name="新客户")
    Customer.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=800),
        updated_at=timezone.now() - datetime.timedelta(days=800),
    )
    rule = retention_rule_save(
        data={"name": "两年未活跃", "action": "anonymise_inactive", "days": 730}, actor=admin_user
    )

    assert retention_rule_count(rule=rule) == 1
    assert retention_rule_apply(rule=rule, actor=admin_user) == 1

    old.refresh_from_db()
    recent.refresh_from_db()
    assert "旧客户" not in old.display_name and recent.display_name == "新客户"
    assert ErasureTombstone.objects.filter(customer_id=old.pk).exists()
    assert retention_rule_count(rule=rule) == 0
    rule.refresh_from_db()
    assert rule.last_run_count == 1 and rule.last_run_at is not None


def test_old_submissions_go_and_consent_evidence_stays(admin_user):
    customer = make_canary(admin_user)
    linked = FormSubmission.objects.get(customer=customer)
    loose = FormSubmission.objects.create(form=linked.form, raw={"phone": "13800000000"})
    fresh = FormSubmission.objects.create(form=linked.form, raw={"phone": "13900000000"})
    for pk in (linked.pk, loose.pk):
        _age(FormSubmission, pk, "created_at", 100)
    rule = retention_rule_save(data={"name": "表单90天", "action": "delete_submissions", "days": 90}, actor=admin_user)

    assert retention_rule_count(rule=rule) == 2
    assert retention_rule_apply(rule=rule, actor=admin_user) == 2

    assert not FormSubmission.objects.filter(pk=loose.pk).exists()
    linked.refresh_from_db()
    assert linked.raw == {} and linked.ip is None
    assert Consent.objects.filter(submission=linked).exists()
    assert FormSubmission.objects.get(pk=fresh.pk).raw
    assert retention_rule_count(rule=rule) == 0


def test_the_daily_job_runs_the_enabled_rules(admin_user):
    customer = make_canary(admin_user)
    event = BehaviourEvent.objects.get(customer=customer)
    _age(BehaviourEvent, event.pk, "occurred_at", 400)
    retention_rule_save(data={"name": "事件一年", "action": "scrub_events", "days": 365}, actor=admin_user)
    retention_rule_save(
        data={"name": "停用", "action": "anonymise_inactive", "days": 1, "enabled": False}, actor=admin_user
    )

    assert privacy_retention_daily.call() == 1

    event.refresh_from_db()
    assert event.properties == {} and event.user_id == "u-canary"
    customer.refresh_from_db()
    assert customer.display_name == "甄喵测试"
    assert RetentionRule.objects.get(name="事件一年").last_run_count == 1


def test_rules_are_validated(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        retention_rule_save(data={"name": "", "action": "nope", "days": 0}, actor=admin_user)
    assert set(error.value.message_dict) == {"name", "action", "days"}


def test_old_import_files_are_deleted_and_the_import_record_stays(admin_user, settings):
    from pathlib import Path

    from cim.ingest.models import ImportJob

    root = Path(settings.MEDIA_ROOT)
    (root / "imports").mkdir(parents=True)
    jobs = {}
    for name, status, days in (("old", "done", 40), ("running", "running", 40), ("new", "done", 1)):
        (root / "imports" / f"{name}.csv").write_text("姓名,手机\n甄喵测试,13912349876\n")
        job = ImportJob.objects.create(
            file=f"imports/{name}.csv", filename=f"{name}.csv", sha256="0" * 64, file_format="csv", status=status
        )
        _age(ImportJob, job.pk, "created_at", days)
        jobs[name] = job
    rule = retention_rule_save(data={"name": "导入文件", "action": "delete_import_files", "days": 30}, actor=admin_user)

    assert retention_rule_count(rule=rule) == 1
    assert retention_rule_apply(rule=rule, actor=admin_user) == 1

    assert not (root / "imports" / "old.csv").exists()
    assert (root / "imports" / "running.csv").exists() and (root / "imports" / "new.csv").exists()
    assert ImportJob.objects.get(pk=jobs["old"].pk).file == ""
    assert retention_rule_count(rule=rule) == 0
