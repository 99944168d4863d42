"""Background work of data quality, run by `cim worker`."""

from dataclasses import asdict

from django_tasks import task

from cim.accounts.models import User
from cim.quality.services import duplicates_scan, match_model_train


@task()
def duplicates_scan_run(*, user_id: int | None, train: bool = False, link: list[str] | None = None) -> dict:
    user = User.objects.filter(pk=user_id).first() if user_id else None
    if train:
        match_model_train(actor=user)
    return asdict(duplicates_scan(actor=user, link=tuple(link) if link else None))
