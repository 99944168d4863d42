from django.db.models import Count, Q
from django.urls import reverse

from cim.core.commands import ReportingCommand
from cim.ingest.models import CollectionForm, FormSubmission


class Command(ReportingCommand):
    help = "Public collection forms: `list` prints each form with its public path and submission counts."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list"])

    def handle(self, *args, action: str, **options):
        collection_forms = CollectionForm.objects.annotate(
            submission_count=Count("submissions"),
            confirmed_count=Count("submissions", filter=Q(submissions__status=FormSubmission.Status.CONFIRMED)),
        )
        rows = [
            {
                "slug": f.slug,
                "name": f.name,
                "path": reverse("ingest:public_form", kwargs={"slug": f.slug}),
                "verify": f.verify,
                "source_channel": f.source_channel,
                "consent_purpose": f.consent_purpose,
                "consent_version": f.consent_version,
                "is_active": f.is_active,
                "submissions": f.submission_count,
                "confirmed": f.confirmed_count,
                "created_at": f.created_at,
            }
            for f in collection_forms
        ]
        if not self.as_json:
            for row in rows:
                state = "active" if row["is_active"] else "inactive"
                self.stdout.write(
                    f"{row['path']:<30} {state:<8} {row['verify']:<5} {row['submissions']:>6} submitted"
                    f" {row['confirmed']:>6} confirmed  {row['name']}"
                )
        self.report(f"{len(rows)} collection form(s).", {"forms": rows})
