"""The import wizard: upload a file, check the column mapping, dry-run it, import it, follow its progress."""

import csv
import itertools
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from cim.accounts.roles import Perm, has_perm
from cim.core.views import page
from cim.customers.choices import SourceChannel
from cim.ingest.models import ImportJob, ImportMapping, ImportRowError
from cim.ingest.readers import TEXT_ENCODINGS, FileProblem, RowProblem, encoding_label, open_table
from cim.ingest.selectors import import_job_get, import_job_list
from cim.ingest.services import (
    ACTIVE_STATUSES,
    IMPORT_KINDS,
    import_errors_read,
    import_job_remap,
    import_job_start,
    import_job_upload,
    import_mapping_save,
)

import_page = page(perm=Perm.CUSTOMER_IMPORT)
SAMPLE_ROWS = 3


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("What the rows are"),
        choices=[
            ("customers", gettext_lazy("Customers")),
            ("orders", gettext_lazy("Orders")),
            ("interactions", gettext_lazy("Interactions (calls, visits, follow-up records)")),
        ],
        initial="customers",
        required=False,
    )
    file = forms.FileField(
        label=gettext_lazy("File"), help_text=gettext_lazy("CSV, Excel (.xlsx or .xls), vCard, JSON or JSON Lines")
    )
    sheet = forms.CharField(
        max_length=100,
        required=False,
        label=gettext_lazy("Sheet"),
        help_text=gettext_lazy("In a workbook of several sheets, the one to read; blank: the first that maps"),
    )
    encoding = forms.ChoiceField(
        choices=[("", gettext_lazy("Found from the file")), *TEXT_ENCODINGS.items()],
        required=False,
        label=gettext_lazy("Text encoding"),
        help_text=gettext_lazy("For CSV and other text files, when the characters come out wrong"),
    )
    saved_mapping = forms.ModelChoiceField(
        ImportMapping.objects.all(), required=False, label=gettext_lazy("Saved mapping"), empty_label="—"
    )
    source = forms.CharField(
        max_length=50,
        required=False,
        label=gettext_lazy("Source system"),
        help_text=gettext_lazy("Where the file comes from (e.g. shop). Its ids are matched on re-import."),
    )
    source_channel = forms.ChoiceField(
        choices=[("", "—"), *SourceChannel.choices], required=False, label=gettext_lazy("Source channel")
    )
    update_existing = forms.BooleanField(
        required=False,
        label=gettext_lazy(
            "Update the customer whose phone or email matches, instead of flagging a possible duplicate"
        ),
    )


@import_page
def import_list_view(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    allowed = form.fields["kind"].choices
    form.fields["kind"].choices = [(k, label) for k, label in allowed if has_perm(request.user, IMPORT_KINDS[k].perm)]
    if request.method == "POST" and form.is_valid():
        saved = form.cleaned_data["saved_mapping"]
        try:
            job = import_job_upload(
                upload=form.cleaned_data["file"],
                actor=request.user,
                mapping=saved.mapping if saved else None,
                source=form.cleaned_data["source"],
                source_channel=form.cleaned_data["source_channel"],
                update_existing=form.cleaned_data["update_existing"],
                kind=form.cleaned_data["kind"] or "customers",
                sheet=form.cleaned_data["sheet"].strip(),
                encoding=form.cleaned_data["encoding"],
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error("file" if field in ("file", "mapping") else None, problems)
        else:
            return redirect("ingest:import_detail", pk=job.pk)
    context = {"nav": "import", "form": form, "jobs": import_job_list(user=request.user).order_by("-id")[:20]}
    return render(request, "ingest/import_list.html", context)


def _samples(job: ImportJob) -> dict[str, list[str]]:
    """The first rows' values per column, so a person can see what a column holds while mapping it."""
    try:
        table = open_table(Path(settings.MEDIA_ROOT) / job.file, job.filename, job.sheet, job.encoding)
    except FileProblem:
        return {}
    samples: dict[str, list[str]] = {c: [] for c in table.columns}
    for _row, record in itertools.islice(table.rows, SAMPLE_ROWS):
        if isinstance(record, RowProblem):
            continue
        for column, value in record.items():
            if column in samples:
                samples[column].append(", ".join(value) if isinstance(value, list) else str(value))
    return samples


@import_page
def import_detail_view(request, pk: int):
    job = import_job_get(user=request.user, pk=pk)
    context = {
        "nav": "import",
        "job": job,
        "active": job.status in ACTIVE_STATUSES,
        "counts": job.counts or {},
        "dry_run_counts": job.dry_run_counts or {},
        "error_count": ImportRowError.objects.filter(job=job, dry_run=False).count(),
        "dry_run_error_count": ImportRowError.objects.filter(job=job, dry_run=True).count(),
    }
    if request.htmx and request.htmx.target == "import-status":
        return render(request, "ingest/_import_status.html", context)
    if not job.rows_done and job.status not in ACTIVE_STATUSES:
        samples = _samples(job)
        context["columns"] = [(c, job.mapping.get(c, ""), samples.get(c, [])) for c in job.headers]
        context["encoding"] = encoding_label(job.encoding) if job.encoding else ""
        context["targets"] = IMPORT_KINDS[job.kind].targets()
    return render(request, "ingest/import_detail.html", context)


@require_POST
@import_page
def import_mapping_view(request, pk: int):
    job = import_job_get(user=request.user, pk=pk)
    mapping = {column: request.POST.get(f"map-{i}", "") for i, column in enumerate(job.headers)}
    try:
        import_job_remap(job=job, mapping=mapping, actor=request.user)
        if name := request.POST.get("save_as", "").strip():
            import_mapping_save(name=name, mapping=mapping, actor=request.user)
            messages.success(request, _("The mapping was saved as “%(name)s”.") % {"name": name})
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, problem)
        return redirect("ingest:import_detail", pk=job.pk)
    if "dry_run" in request.POST or "run" in request.POST:
        return _start(request, job, dry_run="dry_run" in request.POST)
    return redirect("ingest:import_detail", pk=job.pk)


@require_POST
@import_page
def import_start_view(request, pk: int):
    job = import_job_get(user=request.user, pk=pk)
    return _start(request, job, dry_run="dry_run" in request.POST)


def _start(request, job: ImportJob, *, dry_run: bool):
    try:
        import_job_start(job=job, actor=request.user, dry_run=dry_run)
    except ValidationError as error:
        messages.info(request, " ".join(error.messages))
    return redirect("ingest:import_detail", pk=job.pk)


@import_page
def import_errors_view(request, pk: int):
    """The rejected rows as CSV (row, column, reason), with a BOM so Excel shows the Chinese."""
    job = import_job_get(user=request.user, pk=pk)
    dry_run = request.GET.get("dry_run") == "1"
    errors = import_errors_read(job=job, dry_run=dry_run, actor=request.user)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([_("Row"), _("Column"), _("Reason")])
    writer.writerows(errors.values_list("row", "column", "message").iterator(chunk_size=2000))
    return response
